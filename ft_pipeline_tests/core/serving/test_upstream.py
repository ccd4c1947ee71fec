"""The guard's app over UpstreamEngine, in front of a stand-in for vLLM's OpenAI server that answers
what the test says (the CPU server masks its own answers, so only a server that answers an e-mail
address shows the guard masking an upstream's answer). Real app, real redaction engine, real HTTP:
the answer masked in the plain reply, in every streamed chunk and in the traffic log; the request
sent upstream redacted and carrying the task's form as vLLM's structured outputs; an upstream
that fails is a 502 OpenAI error, its refusals relayed as 4xx."""
from __future__ import annotations

import json
import threading
import time

import pytest

from ft_pipeline.core.serving import traffic
from ft_pipeline.core.serving.app import ServeState, create_app
from ft_pipeline.core.serving.engine import Adapter, AdapterError
from ft_pipeline.core.serving.guard import Limits, Redaction
from ft_pipeline.core.serving.upstream import UpstreamEngine
from ft_pipeline.core.task import TaskConfig
from ft_pipeline_tests.core.serving.helpers import free_port

EMAIL = "jane.doe.4711@example.com"


@pytest.fixture(scope="module")
def upstream():
    """vLLM's endpoints as the guard calls them; `script` sets the next answers, `seen` keeps the bodies."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    script = {"content": "ok", "status": 200}
    seen: list[dict] = []
    app = FastAPI()

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": "m", "root": script.get("root")}]}

    @app.post("/v1/chat/completions")
    def chat(body: dict):
        seen.append(body)
        if script["status"] != 200:
            return JSONResponse({"error": {"message": "prompt too long for this model", "type": "BadRequestError",
                                           "code": 400}} if script["status"] < 500 else {"detail": "boom"},
                                status_code=script["status"])
        return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": script["content"]}}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16}}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "script": script, "seen": seen}
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def guard(upstream, tiny_model_dir, tmp_path, ft_home):
    from fastapi.testclient import TestClient

    def make(task: TaskConfig):
        upstream["script"].update(content="ok", status=200, root=str(tmp_path))
        upstream["seen"].clear()
        engine = UpstreamEngine(upstream["url"], tiny_model_dir, "tiny-base")
        engine.attach([Adapter("m", tmp_path, "m/v1")])
        state = ServeState(engine, task, Redaction(task), lambda name, path: None, Limits())
        return TestClient(create_app(state), raise_server_exceptions=False)

    return make


def chat(c, content="hi", **body):
    return c.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": content}], **body})


def test_an_email_in_the_upstream_answer_is_masked_in_the_reply_every_chunk_and_the_log(guard, upstream):
    task = TaskConfig(name="notes", type="generation")
    c = guard(task)
    upstream["script"]["content"] = f"Sure, I will write to {EMAIL} today."
    reply = chat(c, f"please mail {EMAIL}")
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "Sure, I will write to <EMAIL_ADDRESS_1> today."
    streamed = chat(c, "again", stream=True)
    events = [e for e in streamed.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and len(events) > 4
    assert all(EMAIL not in e and "jane" not in e for e in events)  # no chunk holds any part of the address
    text = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events[:-1]
                   if json.loads(e[6:])["choices"])
    assert "<EMAIL_ADDRESS_1>" in text
    entries = [json.loads(line) for line in traffic.day_file(traffic.today()).read_text().splitlines()]
    assert [e["pii_masked_answer"] for e in entries] == [{"EMAIL_ADDRESS": 1}] * 2
    assert EMAIL not in traffic.day_file(traffic.today()).read_text()
    # what vLLM read: the request redacted, under the module's name, with the task's budget
    first = upstream["seen"][0]
    assert EMAIL not in json.dumps(first) and "<EMAIL_ADDRESS_1>" in first["messages"][-1]["content"]
    assert first["model"] == "m" and first["stream"] is False and first["max_tokens"] == task.max_new_tokens


def test_the_task_form_goes_upstream_as_vllm_structured_outputs(guard, upstream):
    c = guard(TaskConfig(name="sentiment", type="classification", labels=["positive", "negative"]))
    upstream["script"]["content"] = "positive"
    assert chat(c).status_code == 200
    assert upstream["seen"][-1]["structured_outputs"] == {"choice": ["positive", "negative"]}
    upstream["script"]["content"] = "maybe"  # not a label: the guard withholds it, whatever upstream did
    assert chat(c).json()["error"]["code"] == "answer_check_failed"
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    c = guard(TaskConfig(name="route", type="structured", schema=schema))
    upstream["script"]["content"] = '{"q": "a"}'
    assert chat(c, seed=3, stop=["END"]).status_code == 200
    sent = upstream["seen"][-1]
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    assert sent["seed"] == 3 and sent["stop"] == ["END"]


def test_upstream_failures_are_openai_errors_never_a_traceback(guard, upstream):
    c = guard(TaskConfig(name="notes", type="generation"))
    upstream["script"]["status"] = 500
    reply = chat(c)
    assert reply.status_code == 502 and reply.json()["error"]["code"] == "upstream_error"
    assert "Traceback" not in reply.text and "boom" not in reply.text
    upstream["script"]["status"] = 400
    reply = chat(c)
    assert reply.status_code == 400 and "prompt too long" in reply.json()["error"]["message"]


def test_an_upstream_serving_another_folder_under_the_name_is_refused(upstream, tiny_model_dir, tmp_path):
    upstream["script"]["root"] = str(tmp_path / "elsewhere")
    engine = UpstreamEngine(upstream["url"], tiny_model_dir, "tiny-base")
    with pytest.raises(AdapterError, match="from another folder"):
        engine.attach([Adapter("m", tmp_path, "m/v1")])
