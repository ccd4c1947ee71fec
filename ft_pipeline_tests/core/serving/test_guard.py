"""The guard on the real app in-process (FastAPI's TestClient, the tiny model, the real redaction
engine): answers masked and counted, limits refused as 4xx OpenAI errors, a bug a 500 without a
traceback, labels and schemas followed by guided decoding. One model load for the module."""
from __future__ import annotations

import json

import pytest

from ft_pipeline.core.serving import traffic
from ft_pipeline.core.serving.app import ServeState, create_app
from ft_pipeline.core.serving.engine import Adapter, AdapterError, Engine
from ft_pipeline.core.serving.guard import GuardError, Limits, RateLimiter, Redaction
from ft_pipeline.core.task import TaskConfig
from ft_pipeline_tests.core.serving.helpers import lora_adapter

EMAIL = "jane.doe.4711@example.com"


@pytest.fixture(scope="module")
def engine(tiny_model_dir, tmp_path_factory):
    engine = Engine(tiny_model_dir, "tiny-base")
    engine.load(Adapter("m", lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter") / "a", 3), "m/v1"))
    return engine


def refuse(name, path):
    raise AdapterError("not in this test's registry")


def client(engine, task: TaskConfig, resolve=refuse, **limits):
    from fastapi.testclient import TestClient

    state = ServeState(engine, task, Redaction(task), resolve, Limits(**limits))
    return TestClient(create_app(state), raise_server_exceptions=False)


def chat(c, content="hi", **body):
    return c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": content}], **body})


def logged(home) -> list[dict]:
    return [json.loads(line) for line in traffic.day_file(traffic.today()).read_text().splitlines()]


def test_pii_in_an_answer_is_masked_and_counted(engine, ft_home):
    """The grammar forces the model to write an e-mail address: the client gets it masked."""
    c = client(engine, TaskConfig(name="notes", type="generation"))
    schema = {"type": "object", "properties": {"note": {"type": "string", "enum": [f"mail {EMAIL}"]}},
              "required": ["note"]}
    reply = chat(c, response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}})
    assert reply.status_code == 200, reply.text
    answer = reply.json()["choices"][0]["message"]["content"]
    assert json.loads(answer) == {"note": "mail <EMAIL_ADDRESS_1>"}
    [entry] = logged(ft_home)
    assert entry["pii_masked_answer"] == {"EMAIL_ADDRESS": 1} and entry["answer"] == answer
    assert EMAIL not in traffic.day_file(traffic.today()).read_text()


def test_a_classification_answer_is_one_of_the_task_labels(engine, ft_home):
    c = client(engine, TaskConfig(name="sentiment", type="classification", labels=["positive", "negative", "neutral"]))
    reply = chat(c, "great service")
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] in {"positive", "negative", "neutral"}


@pytest.mark.parametrize("limits, body, status, code", [
    ({"max_request_chars": 50}, {"messages": [{"role": "user", "content": "x" * 51}]}, 400, "request_too_long"),
    ({"max_prompt_tokens": 10}, {}, 400, "context_length_exceeded"),
    ({"max_tokens": 8}, {"max_tokens": 9}, 400, "max_tokens_too_large"),
    ({"max_messages": 1}, {"messages": [{"role": "user", "content": "a"}] * 2}, 400, "too_many_messages"),
    ({}, {"n": 2}, 400, "unsupported_parameter"),
    ({}, {"model": "nope"}, 404, "model_not_found"),
    ({"max_body_bytes": 100}, {"messages": [{"role": "user", "content": "y" * 200}]}, 413, "request_too_large"),
])
def test_requests_over_limits_are_refused_with_the_openai_error_object(engine, ft_home, limits, body, status, code):
    c = client(engine, TaskConfig(name="notes", type="generation"), **limits)
    reply = c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["code"] == code and error["message"] and set(error) == {"message", "type", "param", "code"}


def test_the_rate_limit_is_a_429_per_client(engine, ft_home):
    c = client(engine, TaskConfig(name="notes", type="generation"), requests_per_minute=2)
    codes = [chat(c, model="nope").status_code for _ in range(3)]
    assert codes == [404, 404, 429]
    assert chat(c).json()["error"]["code"] == "rate_limit_exceeded"
    assert [e["status"] for e in logged(ft_home)] == [404, 404, 429, 429]


def test_rate_limiter_window_slides():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    limiter.admit("a"), limiter.admit("a")
    with pytest.raises(GuardError):
        limiter.admit("a")
    limiter.admit("b")  # per client
    now[0] = 60.0
    limiter.admit("a")  # the first two left the window


def test_invalid_bodies_are_400s_that_never_echo_the_request(engine, ft_home):
    c = client(engine, TaskConfig(name="notes", type="generation"))
    reply = c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "robot", "content": EMAIL}]})
    assert reply.status_code == 400 and EMAIL not in reply.text
    reply = c.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and "error" in reply.json()


def test_a_bug_is_a_500_with_an_id_and_no_traceback(engine, ft_home):
    def broken(name, path):
        raise RuntimeError(f"secret detail {EMAIL}")

    c = client(engine, TaskConfig(name="notes", type="generation"), resolve=broken)
    reply = c.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/tmp"})
    assert reply.status_code == 500
    assert reply.json()["error"]["message"].startswith("internal error (err-")
    assert EMAIL not in reply.text and "Traceback" not in reply.text


def test_an_invalid_response_format_schema_is_a_400(engine, ft_home):
    c = client(engine, TaskConfig(name="notes", type="generation"))
    reply = chat(c, response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": 12}}})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "response_format"


def test_requests_that_wait_together_are_answered_as_one_batch_each_with_its_own_answer(engine):
    """Each request's grammar allows only its own word: a row mixed up in the batch would answer
    another request's word (or break its grammar)."""
    import threading

    from ft_pipeline.core.serving.decoding import label_parser

    words = ["billing", "shipping", "account", "refund"]
    prompts = [engine.render([{"role": "user", "content": f"request {i}"}]) for i in range(len(words))]
    answers, before = {}, sum(n for size, n in engine.batch_sizes.items() if size > 1)

    def ask(i):
        answers[i] = engine.generate("m", prompts[i], 12, parser=label_parser([words[i]]))

    taken = lambda: sum(size * n for size, n in engine.batch_sizes.items())
    start = taken()
    with engine._lock:  # the engine is busy: every request queues behind it
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(words))]
        for t in threads:
            t.start()
        for _ in range(3000):  # bounded: at most 30 s for four threads to queue
            if len(engine._queue) + taken() - start >= len(words):
                break
            threading.Event().wait(0.01)
    for t in threads:
        t.join(timeout=120)
    assert [answers[i].text for i in range(len(words))] == words
    assert all(answers[i].finish_reason == "stop" for i in range(len(words)))
    assert sum(n for size, n in engine.batch_sizes.items() if size > 1) > before
