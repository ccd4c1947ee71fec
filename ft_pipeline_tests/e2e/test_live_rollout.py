"""A rollout on live traffic, as a user runs it: `ft-pipeline serve` in a subprocess on trained tiny
adapters, called with the official openai client, labels sent to /v1/feedback. A worse canary is
rolled back by itself once enough requests are in (current unchanged, the reason in the audit
trail); an equal version in shadow switches by itself and answers as `<name>` from then on."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline_tests.core.serving import rollout_helpers
from ft_pipeline_tests.core.serving.helpers import free_port

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
NAME = "ticket-queue"
# 30 pairs: with 30 of 30 alike a rate's 95% interval spans about +-0.11, within the helpers' tolerances
TASK = rollout_helpers.TASK.replace("min_requests: 20", "min_requests: 30")


def cli(home, *args):
    import os

    return subprocess.run([sys.executable, "-m", "ft_pipeline.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "FT_PIPELINE_HOME": str(home)})


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model_dir):
    """v1 (answers billing) current, v2 (answers shipping) beside it, put in a live canary before the
    server starts; v3 (billing again) published for the second test."""
    from ft_pipeline.defs.serving.resources import ModelServerResource

    home, folder = tmp_path_factory.mktemp("live-home"), tmp_path_factory.mktemp("live-task")
    assert [rollout_helpers.publish_trained(home, tiny_model_dir, folder, *args, task=TASK) for args in
            (("billing", 0, True), ("shipping", 0, False), ("billing", 1, False))] == ["v1", "v2", "v3"]
    started = cli(home, "rollout", "--name", NAME, "--version", "v2", "--live", "--mode", "canary")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["event"] == "canary_started"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FT_PIPELINE_HOME", str(home))
        env.setenv("OMP_NUM_THREADS", "1")
        resource = ModelServerResource(name=NAME, port=free_port(), start_timeout_s=240)
        proc = resource.start()
        client = openai.OpenAI(base_url=resource.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        yield {"home": home, "url": resource.url, "client": client, "resource": resource}
        resource.stop(proc)


def ask_and_label(live, i: int, label: str = "billing"):
    reply = live["client"].chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": f"ticket {i}: I was charged twice for order {1000 + i}"}])
    answered = httpx.post(live["url"] + "/v1/feedback", json={"request_id": reply.id, "label": label}, timeout=60)
    assert answered.status_code == 200, answered.text
    return reply


def until_decided(live, version: str, most: int) -> list[dict]:
    """Requests (each labelled right after its answer) until the version's rollout decided."""
    folder = live["home"] / "registry" / NAME / version
    for i in range(most):
        reply = ask_and_label(live, i)
        assert reply.model == NAME and reply.choices[0].message.content in ("billing", "shipping")
        events = registry.rollout_events(folder)
        if events[-1]["event"] in ("switched", "rolled_back"):
            return events
    deadline = time.monotonic() + 30  # the last copies are paired in the background
    while registry.rollout_events(folder)[-1]["event"] not in ("switched", "rolled_back"):
        assert time.monotonic() < deadline, registry.rollout_events(folder)[-1]
        time.sleep(0.5)
    return registry.rollout_events(folder)


def test_a_worse_live_canary_is_rolled_back_by_itself(live):
    root = live["home"] / "registry"
    health = live["resource"].health()
    assert health["rollout"]["version"] == "v2" and health["rollout"]["mode"] == "canary"
    assert health["models"] == {NAME: f"{NAME}/v1", f"{NAME}:v2": f"{NAME}/v2"}
    events = until_decided(live, "v2", most=120)
    assert [e["event"] for e in events] == ["canary_started", "progress", "progress", "gate", "rolled_back"]
    assert [e["paired_requests"] for e in events[1:3]] == [10, 20]  # the record filled as pairs came in
    gate = events[3]
    assert gate["live"] and gate["paired_requests"] == 30 and gate["labelled"] >= 29
    assert "task_metric" in events[-1]["failed_gates"]
    assert registry.current_version(root, NAME) == "v1"
    # the canary really answered clients: the traffic log holds answers by both versions
    logged = [json.loads(line) for day in (live["home"] / "traffic").glob("*.jsonl") for line in day.read_text().splitlines()]
    versions = {e["version"] for e in logged if e.get("status") == 200 and e.get("event") != "feedback"}
    assert versions == {f"{NAME}/v1", f"{NAME}/v2"}
    time.sleep(0.5)
    assert live["resource"].health() == {"status": "ok", "models": {NAME: f"{NAME}/v1"}, "rollout": None}
    assert all(ask_and_label(live, i).system_fingerprint == f"{NAME}/v1" for i in range(3))  # the incumbent alone
    audit = cli(live["home"], "audit", "--name", NAME, "--version", "v2")
    assert audit.returncode == 0 and "current stays v1: task_metric: worse" in audit.stdout
    assert "| progress | v1 | 20 paired requests so far" in audit.stdout
    # the rolled-back version is refused by name, unless forced
    refused = cli(live["home"], "rollback", "--name", NAME, "--to", "v2")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "online gate rolled it back" in refused.stderr


def test_an_equal_live_shadow_switches_by_itself(live):
    started = cli(live["home"], "rollout", "--name", NAME, "--version", "v3", "--live", "--mode", "shadow")
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 30  # the server looks for a new rollout every few seconds
    while (live["resource"].health()["rollout"] or {}).get("version") != "v3":
        assert time.monotonic() < deadline
        ask_and_label(live, 0)
        time.sleep(1)
    events = until_decided(live, "v3", most=60)
    assert [e["event"] for e in events] == ["shadow_started", "progress", "progress", "gate", "switched"], events[3].get("verdicts")
    assert registry.current_version(live["home"] / "registry", NAME) == "v3"
    time.sleep(0.5)
    reply = ask_and_label(live, 1)
    assert reply.system_fingerprint == f"{NAME}/v3" and reply.model == NAME  # switched without a restart


def test_feedback_is_checked_against_the_task(live):
    post = lambda body: httpx.post(live["url"] + "/v1/feedback", json=body, timeout=60)  # noqa: E731
    reply = live["client"].chat.completions.create(model=NAME, messages=[{"role": "user", "content": "ticket: refund"}])
    bad = post({"request_id": reply.id, "label": "refunds"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_label"
    assert post({"request_id": "chatcmpl-nope", "label": "billing"}).status_code == 404
    assert post({"request_id": "../../etc", "label": "billing"}).status_code == 400
    assert post({"label": "billing"}).status_code == 400
    assert post({"request_id": reply.id, "label": "shipping"}).status_code == 200
    logged = [json.loads(line) for day in (live["home"] / "traffic").glob("*.jsonl") for line in day.read_text().splitlines()]
    assert [e["label"] for e in logged if e.get("event") == "feedback" and e["request_id"] == reply.id] == ["shipping"]
