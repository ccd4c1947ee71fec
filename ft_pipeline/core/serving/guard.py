"""What stands between a client and the model: limits on what a request may ask, the redaction
engine the training data went through (on the request before the model reads it, and on the answer
before the client does), and the task's own answer check.

A request over a limit is refused with the OpenAI error object and a 4xx status, before any
generation. An answer that fails the task's check (not a label of the task, not JSON of its schema,
cut off by max_tokens) is withheld: 422 with code `answer_check_failed`, never a 200 carrying an
answer the task calls invalid. Guided decoding (decoding.py) makes that rare for structured and
classification tasks: the grammar allows only valid answers, so only running out of tokens fails.
The check judges the model's answer; the client gets it masked. A value masked inside an answer
can leave it outside an enum of the schema: the value is still never returned in clear.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

from ft_pipeline.core import answers


class GuardError(Exception):
    """A refusal, carried to the client as the OpenAI error object with `status`."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.type, self.code, self.param = status, type_, code, param


@dataclass(frozen=True)
class Limits:
    max_request_chars: int = 16_000  # all message text of one request
    max_messages: int = 64
    max_prompt_tokens: int = 2_048  # the rendered chat prompt
    max_tokens: int = 512  # the most a request may ask to generate
    requests_per_minute: int = 120  # per client address; 0: no limit
    max_body_bytes: int = 1_000_000  # checked on Content-Length before the body is parsed


class RateLimiter:
    """A sliding one-minute window per client. Memory is bounded: the least recently seen clients
    are forgotten past `max_clients`."""

    def __init__(self, per_minute: int, max_clients: int = 10_000, clock=time.monotonic):
        self.per_minute, self.max_clients, self.clock = per_minute, max_clients, clock
        self._seen: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, client: str) -> None:
        if self.per_minute <= 0:
            return
        now = self.clock()
        with self._lock:
            window = self._seen.pop(client, None) or deque()
            while window and now - window[0] >= 60:
                window.popleft()
            self._seen[client] = window
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
            if len(window) >= self.per_minute:
                retry = int(60 - (now - window[0])) + 1
                raise GuardError(429, f"rate limit: {self.per_minute} requests per minute; retry in {retry} s",
                                 "requests", "rate_limit_exceeded")
            window.append(now)


def check_request(request, limits: Limits) -> None:
    """The limits and refusals that need no model: raises GuardError."""
    if request.n != 1:
        raise GuardError(400, "only n=1 is supported", code="unsupported_parameter", param="n")
    if request.tools:
        raise GuardError(400, "tools are not supported by this server", code="unsupported_parameter", param="tools")
    if len(request.messages) > limits.max_messages:
        raise GuardError(400, f"{len(request.messages)} messages; at most {limits.max_messages}",
                         code="too_many_messages", param="messages")
    chars = sum(len(m.text()) for m in request.messages)
    if chars > limits.max_request_chars:
        raise GuardError(400, f"the messages hold {chars} characters; at most {limits.max_request_chars}",
                         code="request_too_long", param="messages")
    budget = request.token_budget()
    if budget is not None and budget > limits.max_tokens:
        raise GuardError(400, f"max_tokens={budget}; at most {limits.max_tokens}", code="max_tokens_too_large",
                         param="max_tokens")


def check_prompt_tokens(n: int, limits: Limits) -> None:
    if n > limits.max_prompt_tokens:
        raise GuardError(400, f"the prompt is {n} tokens; this model accepts at most {limits.max_prompt_tokens}",
                         code="context_length_exceeded", param="messages")


def requested_schema(request) -> tuple[bool, dict | None]:
    """(wants JSON, the schema it must fit): from response_format; a schema given must be one."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return False, None
    if fmt.type == "json_object":
        return True, None
    schema = fmt.json_schema.schema_ if fmt.json_schema else None
    if not isinstance(schema, dict):
        raise GuardError(400, "response_format json_schema needs a `schema` object", param="response_format")
    from jsonschema import exceptions, validators

    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        raise GuardError(400, f"response_format: not a valid JSON Schema ({exc.message[:200]})",
                         param="response_format") from None
    return True, schema


def parser_for(task, wants_json: bool, schema: dict | None):
    """The grammar generation follows: the request's schema, else the task's answer form (its JSON
    schema, its label set), else none (free text)."""
    from ft_pipeline.core.serving import decoding

    try:
        if wants_json:
            return decoding.json_parser(schema or (task.schema if task.type == "structured" else None))
        if task.type == "structured":
            return decoding.json_parser(task.schema)
        if task.type == "classification" and task.labels:
            return decoding.label_parser(task.labels)
    except Exception as exc:  # the enforcer raises assorted errors on schemas it does not read
        raise GuardError(400, f"response_format: this schema cannot guide decoding ({type(exc).__name__})",
                         param="response_format") from None
    return None


def answer_problem(task, text: str, wants_json: bool, schema: dict | None) -> str | None:
    """Why an answer may not be returned (the rule it breaks, never its content), or None."""
    problem = answers.check_answer(task, text)
    if problem is None and wants_json:
        obj = answers.strict_json_object(text)
        problem = "not a JSON object" if obj is None else (
            f"fails the requested schema ({answers.schema_error(schema, obj)})"
            if schema is not None and answers.schema_error(schema, obj) else None)
    return problem


class Redaction:
    """The training data's redaction engine (the task's config: its patterns, allow list, policy),
    applied to chat turns. Counts say how many values of each entity type were masked."""

    def __init__(self, task):
        self.config = task.sections.redaction
        # Requests are handled on a thread pool; spaCy's pipeline is not documented thread-safe.
        self._lock = threading.Lock()

    def messages(self, messages: list[dict]) -> tuple[list[dict], Counter]:
        from ft_pipeline.core.data.redaction import redact_chunk

        with self._lock:
            [(record, counts)] = redact_chunk([{"id": "request", "messages": messages}], self.config)
        return record["messages"], Counter(counts)

    def text(self, text: str) -> tuple[str, Counter]:
        turns, counts = self.messages([{"role": "assistant", "content": text}])
        return turns[0]["content"], counts

    def warm_up(self) -> None:
        """Loads spaCy and Presidio now, not on the first client's request."""
        self.text(json.dumps({"warm": "up"}))
