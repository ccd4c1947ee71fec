"""The FastAPI app: one router per resource, as vLLM's OpenAI server has (models, chat completions,
LoRA adapters), request and response bodies from protocol.py, and every error as the OpenAI error
object with a 4xx status, so the official client raises its usual exceptions (BadRequestError,
NotFoundError, RateLimitError, UnprocessableEntityError). An unexpected failure is a 500 with a
request id and no traceback: the traceback could quote a request.

Streaming: the guard must see the whole answer (a masked value can span tokens; the task's check is
on the whole answer), so a streamed answer is generated, checked and redacted first, then sent as
SSE chunks ending in `data: [DONE]`. Streaming keeps the protocol, not the first-token latency.
The same holds in front of vLLM (upstream.py): its answer is fetched whole, then checked, masked, chunked.
(No `from __future__ import annotations` here: FastAPI reads the route signatures at run time.)
"""

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from ft_pipeline.core import answers
from ft_pipeline.core.serving import protocol, traffic
from ft_pipeline.core.serving.engine import Adapter, AdapterError, Engine
from ft_pipeline.core.serving.guard import (
    GuardError, Limits, RateLimiter, Redaction, answer_problem, check_prompt_tokens, check_request, requested_schema)

log = logging.getLogger("ft_pipeline.serve")


@dataclass
class ServeState:
    engine: Engine  # or upstream.UpstreamEngine (vLLM behind the guard): the same methods
    task: object  # TaskConfig: the answer check, the system prompt, the redaction config
    redaction: Redaction
    resolve_adapter: Callable[[str, str], Adapter]  # (name, lora_path) -> Adapter, or AdapterError
    limits: Limits = field(default_factory=Limits)
    rate: RateLimiter | None = None
    rollout: Callable[[], object] | None = None  # the live rollout now running (live.Watcher), or None

    def __post_init__(self):
        self.rate = self.rate or RateLimiter(self.limits.requests_per_minute)


def create_app(state: ServeState):
    from fastapi import APIRouter, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    app = FastAPI(title="ft-pipeline serve", docs_url=None, redoc_url=None)

    def error(status: int, message: str, type_: str, code=None, param=None) -> JSONResponse:
        return JSONResponse(protocol.error_body(message, type_, code, param), status_code=status)

    @app.exception_handler(GuardError)
    async def _guard(request, exc: GuardError):
        return error(exc.status, str(exc), exc.type, exc.code, exc.param)

    @app.exception_handler(AdapterError)
    async def _adapter(request, exc: AdapterError):
        return error(exc.status, str(exc), "invalid_request_error",
                     "model_not_found" if exc.status == 404 else "invalid_adapter")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        # The location and the rule, never the offending value (it may be a customer's message).
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(400, f"{where or 'body'}: {first.get('msg', 'invalid')}", "invalid_request_error", param=where or None)

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail), "invalid_request_error")

    @app.exception_handler(Exception)
    async def _crash(request, exc: Exception):
        rid = f"err-{time.time_ns():x}"
        log.error("request %s failed: %s", rid, type(exc).__name__)
        return error(500, f"internal error ({rid})", "server_error")

    @app.middleware("http")
    async def _body_limit(request: Request, call_next):
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > state.limits.max_body_bytes:
            return error(413, f"request body of {size} bytes; at most {state.limits.max_body_bytes}",
                         "invalid_request_error", "request_too_large")
        return await call_next(request)

    models = APIRouter(tags=["models"])

    @models.get("/v1/models")
    def list_models() -> protocol.ModelList:
        return protocol.ModelList(data=[protocol.ModelCard(id=a.name, root=str(a.path), parent=state.engine.base_id)
                                        for a in state.engine.models()])

    @models.get("/health")
    def health():
        problem = state.engine.problem()
        if problem:  # a 503, so a load balancer (and ModelServerResource.health) sees it down
            return error(503, problem, "server_error", "upstream_unavailable")
        live = state.rollout() if state.rollout else None
        return {"status": "ok", "models": {a.name: a.version for a in list(state.engine.adapters.values())},
                "rollout": {"version": live.version, "mode": live.config.mode, "paired": len(live.ids),
                            "min_requests": live.config.min_requests, "step": live.stage + 1,
                            "steps": len(live.config.shares()), "share": live.share} if live else None}

    adapters = APIRouter(tags=["adapters"])

    @adapters.post("/v1/load_lora_adapter", response_class=PlainTextResponse)
    def load_lora_adapter(body: protocol.LoadLoRAAdapterRequest) -> str:
        state.engine.load(state.resolve_adapter(body.lora_name, body.lora_path), replace=body.load_inplace)
        return f"Success: LoRA adapter '{body.lora_name}' added successfully."

    @adapters.post("/v1/unload_lora_adapter", response_class=PlainTextResponse)
    def unload_lora_adapter(body: protocol.UnloadLoRAAdapterRequest) -> str:
        state.engine.unload(body.lora_name)
        return f"Success: LoRA adapter '{body.lora_name}' removed successfully."

    chat = APIRouter(tags=["chat"])

    @chat.post("/v1/chat/completions")
    def chat_completions(body: protocol.ChatCompletionRequest, request: Request):
        client = request.client.host if request.client else "unknown"
        live = state.rollout() if state.rollout and body.model in state.engine.adapters else None
        if live is not None and body.model == live.name:  # `<name>` answers as the rollout routes it
            answer = live.handle(state, body, client, request.headers.get("x-request-id"))
        else:
            answer = complete(state, body, client)
        headers = {"x-ft-pipeline-version": answer["system_fingerprint"]}
        if not body.stream:
            return JSONResponse(answer, headers=headers)
        return StreamingResponse(sse(answer, body), media_type="text/event-stream", headers=headers)

    feedback = APIRouter(tags=["feedback"])

    @feedback.post("/v1/feedback")
    def post_feedback(body: protocol.FeedbackRequest) -> dict:
        """A label for an answered request: checked against the task's answers, redacted, appended to
        the traffic day (retraining counts it), and handed to a live rollout's task-metric gate."""
        entry = traffic.find(body.request_id)
        if entry is None or entry.get("status") != 200:
            raise GuardError(404, f"no answered request {body.request_id!r} in the recent traffic log",
                             code="request_not_found", param="request_id")
        problem = answers.check_answer(state.task, body.label)
        if problem:
            raise GuardError(400, f"label: {problem} (a label is the answer the {state.task.name} task expects)",
                             code="invalid_label", param="label")
        label, masked = state.redaction.text(body.label)
        traffic.record({"event": "feedback", "request_id": body.request_id, "label": label,
                        "version": entry.get("version"), "pii_masked_label": dict(masked)})
        live = state.rollout() if state.rollout else None
        if live is not None:
            live.label(body.request_id, label)
        return {"request_id": body.request_id, "recorded": True}

    for router in (models, adapters, chat, feedback):
        app.include_router(router)
    return app


def complete(state: ServeState, body: protocol.ChatCompletionRequest, client: str,
             log: Callable[[dict], object] = traffic.record, cid: str | None = None) -> dict:
    """One guarded completion, logged to production_traffic whether it was answered or refused.
    A rollout replays requests through here with its own `log` (the entry carries everything its
    online gate scores: status, answer as returned, values masked, latency)."""
    started, cid = time.monotonic(), cid or protocol.completion_id()
    adapter = state.engine.adapters.get(body.model)
    entry = {"request_id": cid, "model": adapter.name if adapter else None,
             "version": adapter.version if adapter else None, "stream": body.stream,
             "response_format": body.response_format.type if body.response_format else None}
    try:
        state.rate.admit(client)
        check_request(body, state.limits)
        if adapter is None:
            raise GuardError(404, f"the model {body.model[:100]!r} does not exist; GET /v1/models lists what is served",
                             "invalid_request_error", "model_not_found", "model")
        task = state.task
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
        if task.system_prompt and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": task.system_prompt})  # as the adapter was trained
        # The model reads the request as the training data read: redacted. What it never sees it cannot repeat.
        messages, masked_request = state.redaction.messages(messages)
        entry.update(messages=messages, pii_masked_request=dict(masked_request))
        prompt_ids = state.engine.render(messages)
        check_prompt_tokens(len(prompt_ids), state.limits)
        wants_json, schema = requested_schema(body)
        generation = state.engine.generate(
            adapter.name, prompt_ids, min(body.token_budget() or task.max_new_tokens, state.limits.max_tokens),
            temperature=body.temperature or 0.0, top_p=body.top_p or 1.0, seed=body.seed,
            parser=state.engine.guide(task, wants_json, schema), stops=body.stops(), messages=messages)
        entry.update(finish_reason=generation.finish_reason, prompt_tokens=generation.prompt_tokens,
                     completion_tokens=generation.completion_tokens, version=generation.version)
        # The check judges what the model answered; the client then gets it masked.
        problem = answer_problem(task, generation.text, wants_json, schema)
        text, masked_answer = state.redaction.text(generation.text)
        entry["pii_masked_answer"] = dict(masked_answer)
        if problem:
            cut = " (cut off at max_tokens)" if generation.finish_reason == "length" else ""
            raise GuardError(422, f"the answer was withheld: it is {problem}{cut}, which the {task.name} task's "
                                  "check does not accept", "invalid_response_error", "answer_check_failed")
        entry.update(answer=text, status=200)
        usage = protocol.Usage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens,
                               total_tokens=generation.prompt_tokens + generation.completion_tokens)
        return protocol.completion(cid, adapter.name, text, generation.finish_reason, usage, generation.version)
    except (GuardError, AdapterError) as exc:
        entry.update(status=exc.status, error=getattr(exc, "code", None) or "adapter_error")
        raise
    finally:
        entry.setdefault("status", 500)
        log({**entry, "latency_ms": round((time.monotonic() - started) * 1000, 1)})


def sse(answer: dict, body: protocol.ChatCompletionRequest):
    """The finished answer as chat.completion.chunk events, a few characters of text each."""
    cid, model, fingerprint = answer["id"], answer["model"], answer["system_fingerprint"]
    choice = answer["choices"][0]

    def event(payload: dict) -> str:
        return f"data: {json.dumps(payload)}\n\n"

    yield event(protocol.chunk(cid, model, fingerprint, {"role": "assistant", "content": ""}))
    for piece in re.findall(r"\S+\s*|\s+", choice["message"]["content"]):
        yield event(protocol.chunk(cid, model, fingerprint, {"content": piece}))
    yield event(protocol.chunk(cid, model, fingerprint, {}, choice["finish_reason"]))
    if body.stream_options and body.stream_options.include_usage:
        yield event(protocol.chunk(cid, model, fingerprint, {}, usage=protocol.Usage(**answer["usage"])))
    yield "data: [DONE]\n\n"
