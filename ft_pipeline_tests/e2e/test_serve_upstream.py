"""The guard in front of another model server (`serve --upstream URL`; `--engine vllm` is this with a
vLLM it starts): the CPU server stands in for vLLM (the same OpenAI API and adapter endpoints), with
its own home, no rate limit and no live rollouts of its own, as vLLM has none. Through the guard:
the openai client's plain, streamed and response_format answers, the limits, a planted e-mail
masked in the guard's traffic log and answer and nowhere outside the raw zones (the upstream
only ever read it masked), adapters loaded, switched and unloaded upstream, and an upstream that
is down answers as a 503 OpenAI error, never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from ft_pipeline.core import answers
from ft_pipeline.core.release import registry
from ft_pipeline.core.task import TaskConfig
from ft_pipeline_tests.core.serving.helpers import (
    free_port, lora_adapter, publish_version, serve_process, stop_process, write_task)

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
PLANTED = "jane.doe.4711@example.com"
NAME = "ticket-router"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, tiny_model_dir):
    """v1 current and v2 published; the upstream serves v1 from a home of its own (its registry the
    same folder, so it accepts the registry's adapter paths); the guard serves the public port."""
    home, upstream_home = tmp_path_factory.mktemp("guard-home"), tmp_path_factory.mktemp("upstream-home")
    task_path = write_task(tmp_path_factory.mktemp("task"))
    adapters = tmp_path_factory.mktemp("adapters")
    for seed in (1, 2):
        publish_version(home, tiny_model_dir, task_path, lora_adapter(tiny_model_dir, adapters / f"a{seed}", seed))
    registry.set_current(home / "registry", NAME, "v1")
    (upstream_home / "registry").symlink_to(home / "registry")
    up_port, port = free_port(), free_port()
    upstream = serve_process(upstream_home, up_port, "--name", NAME, "--requests-per-minute", "0", "--no-live-rollout")
    guard = serve_process(home, port, "--name", NAME, "--upstream", f"http://127.0.0.1:{up_port}")
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
    state = {"home": home, "upstream_home": upstream_home, "url": f"http://127.0.0.1:{port}", "client": client,
             "upstream_url": f"http://127.0.0.1:{up_port}", "upstream": upstream, "task": TaskConfig.from_yaml(task_path)}
    yield state
    for proc in (guard, upstream):
        stop_process(proc)


def ask(proxied, content: str, **kwargs):
    return proxied["client"].chat.completions.create(model=NAME, messages=[{"role": "user", "content": content}], **kwargs)


def upstream_ids(proxied) -> set[str]:
    return {m["id"] for m in httpx.get(proxied["upstream_url"] + "/v1/models", timeout=30).json()["data"]}


def logged(home) -> list[dict]:
    return [json.loads(line) for day in sorted((home / "traffic").glob("*.jsonl")) for line in day.read_text().splitlines()]


def test_models_come_from_the_upstream_with_their_base_model(proxied, tiny_model_dir):
    models = proxied["client"].models.list().data
    assert [m.id for m in models] == [NAME] and models[0].parent == str(tiny_model_dir)
    assert upstream_ids(proxied) == {NAME}


def test_plain_streamed_and_response_format_answers_pass_the_guard(proxied):
    reply = ask(proxied, "My parcel never arrived, where is it?")
    assert answers.check_answer(proxied["task"], reply.choices[0].message.content) is None
    assert reply.system_fingerprint == f"{NAME}/v1" and reply.usage.completion_tokens > 0
    mine = next(e for e in logged(proxied["home"]) if e["request_id"] == reply.id)  # the guard's log, its id
    assert mine["status"] == 200 and mine["version"] == f"{NAME}/v1"

    chunks = list(ask(proxied, "Please reset my account password", stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and chunks[-1].choices[0].finish_reason == "stop"
    assert answers.check_answer(proxied["task"], text) is None
    body = json.dumps({"model": NAME, "stream": True, "messages": [{"role": "user", "content": "refund please"}]})
    request = urllib.request.Request(proxied["url"] + "/v1/chat/completions", body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        events = [line for line in response.read().decode().split("\n\n") if line]
    assert response.headers["content-type"].startswith("text/event-stream") and events[-1] == "data: [DONE]"

    schema = json.loads(json.dumps(proxied["task"].schema))
    schema["properties"]["queue"]["enum"] = ["account"]  # narrower than the task's: passed through upstream
    reply = ask(proxied, "charged twice", response_format={
        "type": "json_schema", "json_schema": {"name": "route", "schema": schema, "strict": True}})
    assert json.loads(reply.choices[0].message.content)["queue"] == "account"


def test_limits_and_withheld_answers_are_4xx_openai_errors(proxied):
    with pytest.raises(openai.BadRequestError) as caught:  # refused by the guard: never sent upstream
        ask(proxied, "x" * 20_000)
    assert caught.value.body["code"] == "request_too_long"
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        ask(proxied, "where is my parcel", max_tokens=3)
    assert caught.value.body["code"] == "answer_check_failed"
    with pytest.raises(openai.NotFoundError):
        proxied["client"].chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert not any(e.get("error") == "request_too_long" for e in logged(proxied["upstream_home"]))


def test_a_planted_email_is_masked_before_the_upstream_and_nowhere_outside_the_raw_zone(proxied):
    reply = ask(proxied, f"My card was charged twice, please write to {PLANTED} about it")
    streamed = list(ask(proxied, f"Refund to {PLANTED} please", stream=True))
    assert PLANTED not in reply.model_dump_json() + "".join(c.model_dump_json() for c in streamed)
    mine = next(e for e in logged(proxied["home"]) if e["request_id"] == reply.id)
    assert mine["pii_masked_request"] == {"EMAIL_ADDRESS": 1} and "<EMAIL_ADDRESS_1>" in mine["messages"][-1]["content"]
    assert mine["answer"] == reply.choices[0].message.content
    # what the upstream read (its own log) was already masked: the model never saw the address
    read = [e for e in logged(proxied["upstream_home"]) if "<EMAIL_ADDRESS_1>" in json.dumps(e.get("messages"))]
    assert len(read) == 2 and all(e["pii_masked_request"] == {} for e in read)
    for home in (proxied["home"], proxied["upstream_home"]):
        leaks = [str(p) for p in home.rglob("*") if p.is_file() and "raw" not in p.relative_to(home).parts
                 and PLANTED.encode() in p.read_bytes()]
        assert leaks == []


def test_adapters_are_loaded_switched_and_unloaded_upstream(proxied):
    v2 = proxied["home"] / "registry" / NAME / "v2"
    post = lambda path, body: proxied["client"].post(path, body=body, cast_to=str)  # noqa: E731
    post("/load_lora_adapter", {"lora_name": f"{NAME}:v2", "lora_path": str(v2)})
    assert {m.id for m in proxied["client"].models.list().data} == {NAME, f"{NAME}:v2"}
    assert upstream_ids(proxied) == {NAME, f"{NAME}:v2"}
    assert proxied["client"].chat.completions.create(
        model=f"{NAME}:v2", messages=[{"role": "user", "content": "hi"}]).system_fingerprint == f"{NAME}/v2"
    # `current` switched in place: NAME now maps to the module already loaded for v2, v1's is unloaded upstream
    post("/load_lora_adapter", {"lora_name": NAME, "lora_path": str(v2 / "adapter"), "load_inplace": True})
    assert ask(proxied, "hi").system_fingerprint == f"{NAME}/v2" and upstream_ids(proxied) == {f"{NAME}:v2"}
    post("/unload_lora_adapter", {"lora_name": f"{NAME}:v2"})
    assert [m.id for m in proxied["client"].models.list().data] == [NAME] and upstream_ids(proxied) == {f"{NAME}:v2"}
    with pytest.raises(openai.BadRequestError):  # only promoted versions, checked by the guard first
        post("/load_lora_adapter", {"lora_name": "x", "lora_path": str(proxied["home"])})


def test_an_upstream_that_is_down_is_a_503_openai_error_and_a_clear_start_error(proxied):
    stop_process(proxied["upstream"])
    with pytest.raises(openai.InternalServerError) as caught:
        ask(proxied, "where is my parcel")
    assert caught.value.status_code == 503 and caught.value.body["code"] == "upstream_unavailable"
    assert "Traceback" not in json.dumps(caught.value.body)
    models = httpx.get(proxied["url"] + "/v1/models", timeout=30)
    assert models.status_code == 503 and models.json()["error"]["code"] == "upstream_unavailable"
    assert logged(proxied["home"])[-1]["status"] == 503
    health = httpx.get(proxied["url"] + "/health", timeout=30)  # down to a load balancer and to the UI's resource
    assert health.status_code == 503 and health.json()["error"]["code"] == "upstream_unavailable"
    # started against a server that does not answer: one line, exit 2
    out = subprocess.run([sys.executable, "-m", "ft_pipeline.cli", "serve", "--name", NAME, "--port", str(free_port()),
                          "--upstream", proxied["upstream_url"]], capture_output=True, text=True,
                         env={**__import__("os").environ, "FT_PIPELINE_HOME": str(proxied["home"])})
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "is not answering" in out.stderr, out.stderr
