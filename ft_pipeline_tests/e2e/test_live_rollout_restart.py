"""A live stepwise canary survives a server restart: `ft-pipeline serve` in a subprocess, called with
the openai client, moves the candidate from 50% to 100% of the traffic, is stopped in the middle of
the second step, and started again; the restarted server resumes at the second step with the pairs
and labels it had, and its gate decides on them (fewer requests after the restart than a step
needs). The evidence on disk holds scores and answers, never a request's text (an e-mail address
planted in one is nowhere in it)."""
from __future__ import annotations

import json
import time

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline.core.serving import live_evidence
from ft_pipeline_tests.core.serving import rollout_helpers
from ft_pipeline_tests.core.serving.helpers import free_port
from ft_pipeline_tests.e2e.test_live_rollout import NAME, ask_and_label, cli

openai = pytest.importorskip("openai")
PER_STEP = 30  # pairs a step: 30 of 30 alike give a 95% interval of about +-0.11, within the helpers' 0.15
# The first answers after a restart come from a cold process: one slow pair in 30 moves a p95 ratio's
# interval to several times the incumbent's. Latency is not what this test judges.
TASK = rollout_helpers.TASK.replace("min_requests: 20", f"min_requests: {PER_STEP}\n  steps: [50, 100]") \
    .replace("max_p95_latency_increase: 3.0", "max_p95_latency_increase: 50.0")
BEFORE_STOP = 12  # pairs of step 2 collected before the server stops
PLANTED = "jane.roe.4471@example.com"


def pairs_on_disk(home, stage: int | None = None) -> int:
    path = home / "rollouts" / NAME / "v2.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return sum("stage" in line and stage in (None, line["stage"]) for line in lines)


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    """The copies are paired in the background, after each client's answer."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_a_live_stepwise_canary_resumes_after_a_restart_with_the_pairs_it_had(tmp_path_factory, tiny_model_dir,
                                                                              monkeypatch):
    from ft_pipeline.defs.serving.resources import ModelServerResource

    resource = None
    home, folder = tmp_path_factory.mktemp("restart-home"), tmp_path_factory.mktemp("restart-task")
    assert [rollout_helpers.publish_trained(home, tiny_model_dir, folder, *args, task=TASK)
            for args in (("billing", 0, True), ("billing", 1, False))] == ["v1", "v2"]
    started = cli(home, "rollout", "--name", NAME, "--version", "v2", "--live")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["steps"] == [50, 100]
    monkeypatch.setenv("FT_PIPELINE_HOME", str(home))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    events = lambda: registry.rollout_events(home / "registry" / NAME / "v2")  # noqa: E731

    def serving():
        nonlocal resource  # a fresh port: the stopped server's connections may hold the old one (TIME_WAIT)
        resource = ModelServerResource(name=NAME, port=free_port(), start_timeout_s=240)
        proc = resource.start()
        client = openai.OpenAI(base_url=resource.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        return proc, {"url": resource.url, "client": client}

    proc, live = serving()
    try:
        assert resource.health()["rollout"] | {"paired": 0} == {
            "version": "v2", "mode": "canary", "paired": 0, "min_requests": PER_STEP, "step": 1, "steps": 2, "share": 0.5}
        sent = 0
        while not any(e["event"] == "step" for e in events()):
            assert sent < PER_STEP, events()[-1]
            ask_and_label(live, sent)
            sent += 1
            wait_for(lambda: pairs_on_disk(home) == sent, "each request paired before the next")
        assert resource.health()["rollout"]["share"] == 1.0  # the next share without a restart
        planted = live["client"].chat.completions.create(model=NAME, messages=[  # its pair is stored, its text never
            {"role": "user", "content": f"ticket: charged twice, write to {PLANTED}"}])
        assert planted.choices[0].message.content == "billing"
        for i in range(BEFORE_STOP - 1):
            ask_and_label(live, 100 + i)
        wait_for(lambda: pairs_on_disk(home, 1) == BEFORE_STOP, "step 2's pairs on disk")
    finally:
        resource.stop(proc)
    assert [e["event"] for e in events()][-1] not in registry.FINAL_STEPS

    proc, live = serving()
    try:
        health = resource.health()["rollout"]
        assert (health["step"], health["share"], health["paired"]) == (2, 1.0, BEFORE_STOP)  # resumed, same evidence
        after = 0
        while events()[-1]["event"] not in registry.FINAL_STEPS:
            assert after < PER_STEP, "the restarted server started the step over"
            ask_and_label(live, 200 + after)
            after += 1
            wait_for(lambda: pairs_on_disk(home, 1) == BEFORE_STOP + after or events()[-1]["event"] in registry.FINAL_STEPS,
                     "each request paired before the next")
            time.sleep(0.2)  # the gate runs right after the step's last pair is written
    finally:
        resource.stop(proc)
    assert after == PER_STEP - BEFORE_STOP  # the pairs from before the restart counted
    gate = [e for e in events() if e["event"] == "gate"][-1]
    assert (gate["step"], gate["paired_requests"]) == (2, PER_STEP) and gate["labelled"] >= BEFORE_STOP
    assert events()[-1]["event"] == "switched", gate["verdicts"]
    assert registry.current_version(home / "registry", NAME) == "v2"
    # the evidence: scores and the answers returned, never what the client wrote
    evidence = live_evidence.evidence_file(NAME, "v2").read_text()
    assert PLANTED not in evidence and "jane.roe" not in evidence
    assert "charged twice" not in evidence and "ticket" not in evidence
    assert {json.loads(line).get("candidate", {}).get("answer") for line in evidence.splitlines()} - {None} == {"billing"}
