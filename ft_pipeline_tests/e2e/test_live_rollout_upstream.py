"""A live rollout run by the guard in front of another model server (`serve --upstream URL`, as in
front of vLLM): the guard loads the candidate upstream as `<name>:<version>`, routes `<name>`'s
requests, judges, and serves the outcome by what `<name>` maps to upstream. The CPU server stands
in for vLLM, with live rollouts of its own turned off. A worse canary is rolled back (current
unchanged, the candidate unloaded upstream); an equal shadow switches, and `<name>` answers with
the candidate's upstream module from then on, the incumbent's unloaded."""
from __future__ import annotations

import json
import time

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline_tests.core.serving.helpers import free_port, serve_process, stop_process
from ft_pipeline_tests.e2e.test_live_rollout import NAME, TASK, ask_and_label, cli, until_decided

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model_dir):
    """v1 (answers billing) current, v2 (shipping) in a live canary, v3 (billing) for the shadow."""
    from ft_pipeline_tests.core.serving import rollout_helpers

    home, folder = tmp_path_factory.mktemp("guard-live-home"), tmp_path_factory.mktemp("guard-live-task")
    upstream_home = tmp_path_factory.mktemp("upstream-live-home")
    assert [rollout_helpers.publish_trained(home, tiny_model_dir, folder, *args, task=TASK) for args in
            (("billing", 0, True), ("shipping", 0, False), ("billing", 1, False))] == ["v1", "v2", "v3"]
    started = cli(home, "rollout", "--name", NAME, "--version", "v2", "--live", "--mode", "canary")
    assert started.returncode == 0, started.stderr
    (upstream_home / "registry").symlink_to(home / "registry")
    up_port, port = free_port(), free_port()
    upstream = serve_process(upstream_home, up_port, "--name", NAME, "--requests-per-minute", "0", "--no-live-rollout")
    guard = serve_process(home, port, "--name", NAME, "--upstream", f"http://127.0.0.1:{up_port}")
    url = f"http://127.0.0.1:{port}"
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
    yield {"home": home, "url": url, "client": client, "upstream_url": f"http://127.0.0.1:{up_port}"}
    for proc in (guard, upstream):
        stop_process(proc)


def health(live) -> dict:
    return httpx.get(live["url"] + "/health", timeout=30).json()


def upstream_ids(live) -> set[str]:
    return {m["id"] for m in httpx.get(live["upstream_url"] + "/v1/models", timeout=30).json()["data"]}


def test_a_worse_canary_through_the_guard_is_rolled_back_and_unloaded_upstream(live):
    assert health(live)["rollout"]["version"] == "v2"
    assert upstream_ids(live) == {NAME, f"{NAME}:v2"}  # the guard loaded the candidate upstream
    events = until_decided(live, "v2", most=120)
    assert [e["event"] for e in events][-2:] == ["gate", "rolled_back"]
    assert "task_metric" in events[-1]["failed_gates"] and events[-2]["live"]
    assert registry.current_version(live["home"] / "registry", NAME) == "v1"
    logged = [json.loads(line) for day in (live["home"] / "traffic").glob("*.jsonl") for line in day.read_text().splitlines()]
    assert {e["version"] for e in logged if e.get("status") == 200} == {f"{NAME}/v1", f"{NAME}/v2"}  # both answered clients
    time.sleep(0.5)
    assert health(live)["models"] == {NAME: f"{NAME}/v1"} and upstream_ids(live) == {NAME}
    assert all(ask_and_label(live, i).system_fingerprint == f"{NAME}/v1" for i in range(3))
    audit = cli(live["home"], "audit", "--name", NAME, "--version", "v2")
    assert audit.returncode == 0 and "current stays v1: task_metric: worse" in audit.stdout


def test_an_equal_shadow_through_the_guard_switches_by_remapping_the_name(live):
    started = cli(live["home"], "rollout", "--name", NAME, "--version", "v3", "--live", "--mode", "shadow")
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 30  # the guard looks for a new rollout every few seconds
    while (health(live)["rollout"] or {}).get("version") != "v3":
        assert time.monotonic() < deadline
        ask_and_label(live, 0)
        time.sleep(1)
    events = until_decided(live, "v3", most=60)
    assert events[-1]["event"] == "switched", events[-2].get("verdicts")
    assert registry.current_version(live["home"] / "registry", NAME) == "v3"
    time.sleep(0.5)
    reply = ask_and_label(live, 1)
    assert reply.system_fingerprint == f"{NAME}/v3" and reply.model == NAME
    # `<name>` now maps to the module the candidate was loaded as; the incumbent's is gone upstream
    assert health(live)["models"] == {NAME: f"{NAME}/v3"} and upstream_ids(live) == {f"{NAME}:v3"}
