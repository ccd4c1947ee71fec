"""`ft-pipeline serve` as a user runs it: a real subprocess on 127.0.0.1 serving a promoted tiny-model
release, called with the official openai client. Answers fit the task's schema (plain, streamed,
and with response_format), a new version goes live without a restart, over-limit requests get a
4xx OpenAI error, and an e-mail address planted in a request is masked in the traffic log and
found nowhere outside the raw zone."""
from __future__ import annotations

import json
import os
import urllib.request

import pytest

from ft_pipeline.core import answers
from ft_pipeline.core.release import registry
from ft_pipeline.core.task import TaskConfig
from ft_pipeline_tests.core.serving.helpers import free_port, lora_adapter, publish_version, write_task

openai = pytest.importorskip("openai")
PLANTED = "jane.doe.4711@example.com"
NAME = "ticket-router"


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir):
    """Two published versions, `current` back on v1, and the server on it, started (and stopped)
    by the pipeline's own resource: `python -m ft_pipeline.cli serve` in a subprocess."""
    from ft_pipeline.defs.serving.resources import ModelServerResource

    home = tmp_path_factory.mktemp("serve-home")
    task_path = write_task(tmp_path_factory.mktemp("task"))
    adapters = tmp_path_factory.mktemp("adapters")
    for seed in (1, 2):
        publish_version(home, tiny_model_dir, task_path, lora_adapter(tiny_model_dir, adapters / f"a{seed}", seed))
    registry.set_current(home / "registry", NAME, "v1")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FT_PIPELINE_HOME", str(home))
        env.setenv("OMP_NUM_THREADS", "1")  # two torch threads spin against the other tests' load
        resource = ModelServerResource(port=free_port(), start_timeout_s=240)
        proc = resource.start()
        client = openai.OpenAI(base_url=resource.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        yield {"home": home, "url": resource.url, "client": client, "task": TaskConfig.from_yaml(task_path),
               "resource": resource}
        resource.stop(proc)
    assert proc.returncode is not None


def ask(served, content: str, **kwargs):
    return served["client"].chat.completions.create(model=NAME, messages=[{"role": "user", "content": content}], **kwargs)


def test_models_lists_the_adapter_with_its_base_model(served, tiny_model_dir):
    models = served["client"].models.list().data
    assert [m.id for m in models] == [NAME]
    assert models[0].parent == str(tiny_model_dir)


def test_plain_answer_fits_the_task_schema_and_names_its_version(served):
    reply = ask(served, "My parcel never arrived, where is it?")
    assert answers.check_answer(served["task"], reply.choices[0].message.content) is None
    assert reply.choices[0].finish_reason == "stop"
    assert reply.system_fingerprint == f"{NAME}/v1"
    assert reply.usage.completion_tokens > 0


def test_streamed_answer_arrives_in_chunks_ending_in_done(served):
    chunks = list(ask(served, "Please reset my account password", stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and chunks[-1].choices[0].finish_reason == "stop"
    assert answers.check_answer(served["task"], text) is None
    body = json.dumps({"model": NAME, "stream": True, "messages": [{"role": "user", "content": "refund please"}]})
    request = urllib.request.Request(served["url"] + "/v1/chat/completions", body.encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        events = [line for line in response.read().decode().split("\n\n") if line]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "data: [DONE]"


def test_response_format_json_schema_is_followed(served):
    """A schema narrower than the task's (one queue allowed): the answer must fit both."""
    schema = json.loads(json.dumps(served["task"].schema))
    schema["properties"]["queue"]["enum"] = ["account"]
    reply = ask(served, "charged twice", response_format={
        "type": "json_schema", "json_schema": {"name": "route", "schema": schema, "strict": True}})
    content = reply.choices[0].message.content
    assert answers.check_answer(served["task"], content) is None
    assert json.loads(content)["queue"] == "account"


def test_an_answer_cut_off_by_max_tokens_is_withheld_as_a_422(served):
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        ask(served, "where is my parcel", max_tokens=3)
    assert caught.value.body["code"] == "answer_check_failed"


def test_requests_over_limits_get_a_4xx_openai_error_never_a_500(served):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(served, "x" * 20_000)
    assert caught.value.body["code"] == "request_too_long"
    with pytest.raises(openai.BadRequestError) as caught:
        ask(served, "hi", max_tokens=100_000)
    assert caught.value.body["code"] == "max_tokens_too_large"
    with pytest.raises(openai.NotFoundError):
        served["client"].chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as caught:  # not a chat role: a validation error, as the error object
        served["client"].chat.completions.create(model=NAME, messages=[{"role": "robot", "content": "hi"}])
    assert "Traceback" not in str(caught.value.body)


def test_a_new_version_goes_live_without_a_restart(served):
    v2 = served["home"] / "registry" / NAME / "v2"
    post = lambda path, body: served["client"].post(path, body=body, cast_to=str)
    post("/load_lora_adapter", {"lora_name": f"{NAME}:v2", "lora_path": str(v2)})
    assert {m.id for m in served["client"].models.list().data} == {NAME, f"{NAME}:v2"}
    assert served["client"].chat.completions.create(
        model=f"{NAME}:v2", messages=[{"role": "user", "content": "hi"}]).system_fingerprint == f"{NAME}/v2"
    # what `current` answers with, swapped in place: no moment without it
    post("/load_lora_adapter", {"lora_name": NAME, "lora_path": str(v2 / "adapter"), "load_inplace": True})
    assert ask(served, "hi").system_fingerprint == f"{NAME}/v2"
    post("/unload_lora_adapter", {"lora_name": f"{NAME}:v2"})
    assert [m.id for m in served["client"].models.list().data] == [NAME]
    with pytest.raises(openai.BadRequestError):  # only promoted versions: a folder outside the registry is refused
        post("/load_lora_adapter", {"lora_name": "x", "lora_path": str(served["home"])})


def test_a_planted_email_is_masked_in_the_traffic_log_and_nowhere_outside_the_raw_zone(served):
    reply = ask(served, f"My card was charged twice, please write to {PLANTED} about it")
    assert PLANTED not in reply.model_dump_json()
    entries = [json.loads(line) for day in sorted((served["home"] / "traffic").glob("*.jsonl"))
               for line in day.read_text().splitlines()]
    mine = next(e for e in entries if e["request_id"] == reply.id)
    assert mine["pii_masked_request"] == {"EMAIL_ADDRESS": 1}
    assert "<EMAIL_ADDRESS_1>" in mine["messages"][-1]["content"]
    assert mine["version"] and mine["status"] == 200 and mine["answer"] == reply.choices[0].message.content
    leaks = [str(p) for p in served["home"].rglob("*") if p.is_file() and "raw" not in p.relative_to(served["home"]).parts
             and PLANTED.encode() in p.read_bytes()]
    assert leaks == []  # the server's own log, $FT_PIPELINE_HOME/logs/serve.log, included
    assert (served["home"] / "logs" / "serve.log").is_file()


def test_production_traffic_shows_the_day_and_which_version_serves(served):
    """The UI's view: the day's partition counts requests per version and masked values, and asks
    the live server (through the resource) what it serves now: v2 since the in-place swap."""
    import dagster as dg

    from ft_pipeline.core.serving import traffic
    from ft_pipeline.defs.serving.assets import production_traffic

    with pytest.MonkeyPatch.context() as env:
        env.setenv("FT_PIPELINE_HOME", str(served["home"]))
        result = dg.materialize([production_traffic], partition_key=traffic.today(),
                                resources={"model_server": served["resource"]})
    metadata = result.asset_materializations_for_node("production_traffic")[0].metadata
    assert metadata["serving_now"].data == {NAME: f"{NAME}/v2"}
    assert set(metadata["by_version"].data) == {f"{NAME}/v1", f"{NAME}/v2"}
    assert metadata["pii_masked"].data["EMAIL_ADDRESS"] >= 1 and metadata["answers_withheld"].value >= 1
    assert PLANTED not in json.dumps({k: str(v) for k, v in metadata.items()})
