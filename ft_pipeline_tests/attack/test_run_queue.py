"""`ft-pipeline run` in the instance's run queue, on a fresh SQLite instance with the project's
dagster.yaml: it waits behind a started run of its home (a run the UI or a sensor started, here
made through the instance API and held by a live process), the UI sees it waiting, the daemon's
own counter holds a queued run of the home back while it holds the home, and a second run no longer
removes a source partition that a run in flight uses."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ft_pipeline.defs.run_queue import home_turn
from ft_pipeline_tests.defs.pipeline_helpers import demo_slice, demo_task

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def instance(tmp_path, monkeypatch, ft_home):
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


@pytest.fixture()
def live_pid():
    """A process that stays alive while the test holds it: the stale-run sweep keeps its runs."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield sleeper.pid
    sleeper.kill()
    sleeper.wait()


def _started_run(instance, job, tags: dict[str, str]):
    """A STARTED run of `job` in the instance, as a run worker of this host would hold it."""
    import dagster as dg

    return instance.create_run_for_job(job, tags=tags, status=dg.DagsterRunStatus.STARTED)


def _wait_for(predicate, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_cli_run_waits_behind_a_started_run_of_its_home_and_goes_when_it_ends(instance, live_pid, tmp_path):
    import dagster as dg

    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.pools import HOST_TAG, PID_TAG
    from ft_pipeline.defs.run_queue import HOME_TAG, TURN_JOB, TURN_TAG, home_tag_value

    retrain = defs.resolve_job_def("retrain")
    # A retrain the daemon launched for this home, its worker alive.
    blocker = _started_run(instance, retrain, {**retrain.tags, HOME_TAG: home_tag_value(),
                                               HOST_TAG: socket.gethostname(), PID_TAG: str(live_pid)})
    source = demo_slice(tmp_path / "a.jsonl")
    task = demo_task(tmp_path / "task.yaml")
    cli = subprocess.Popen([sys.executable, "-m", "ft_pipeline.cli", "run", str(source), "--task", str(task)],
                           env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        turns = lambda: [r.dagster_run for r in instance.get_run_records(filters=dg.RunsFilter(job_name=TURN_JOB))]
        turn = _wait_for(turns, 120, "the CLI's turn in the instance")[0]
        children = lambda: instance.get_run_records(filters=dg.RunsFilter(tags={TURN_TAG: turn.run_id}))
        time.sleep(4)  # polls once a second: several chances to jump the queue
        assert cli.poll() is None, cli.stderr.read()[-1500:]
        assert instance.get_run_by_id(turn.run_id).status == dg.DagsterRunStatus.NOT_STARTED  # the UI sees it wait
        assert children() == [], "the CLI ran while a started run of its home held it"

        instance.report_run_failed(blocker, message="the blocking run ended")
        _wait_for(children, 60, "the CLI's first run once the home was free")
        assert instance.get_run_by_id(turn.run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        cli.send_signal(signal.SIGINT)
        try:
            cli.wait(timeout=60)
        except subprocess.TimeoutExpired:
            cli.kill()
            cli.wait()


def test_a_held_turn_holds_back_a_queued_ui_run_of_its_home_by_the_daemons_counter(instance):
    import dagster as dg
    from dagster._utils.tags import TagConcurrencyLimitsCounter

    from ft_pipeline.definitions import defs

    from ft_pipeline.defs.run_queue import HOME_TAG, home_tag_value

    retrain = defs.resolve_job_def("retrain")
    assert HOME_TAG in retrain.tags, "a retrain from the UI or a sensor would not wait for its home"
    # The run the UI would queue (a real QUEUED run needs a code location's origin; the counter reads
    # tags). The job's home tag is read when the definitions load, in this process for another
    # test's home: a code location loads them with its own FT_PIPELINE_HOME.
    queued = SimpleNamespace(tags={**retrain.tags, HOME_TAG: home_tag_value()})
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits

    def daemon_blocks() -> bool:  # what QueuedRunCoordinatorDaemon decides for the queued run
        active = [r.dagster_run for r in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))]
        return TagConcurrencyLimitsCounter(limits, active).is_blocked(queued)

    assert not daemon_blocks()
    with home_turn(instance, "demo", poll=0.1):
        assert daemon_blocks(), "a queued retrain of the home would start beside the CLI's run"
    assert not daemon_blocks()


def test_turns_of_one_home_go_in_order_and_other_homes_pass(instance, monkeypatch, tmp_path):
    """Within a home, first come first served; another home passes unless it trains the same model
    (dagster.yaml: one run per home, one per model)."""
    import threading

    order: list[str] = []
    home = os.environ["FT_PIPELINE_HOME"]
    with home_turn(instance, "demo", poll=0.1):
        second = threading.Thread(target=_take, args=(instance, "demo", "second", order))
        second.start()
        time.sleep(1.0)
        monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "other_home"))
        _take(instance, "other", "other home", order)  # does not wait
        same_model = threading.Thread(target=_take, args=(instance, "demo", "same model", order))
        same_model.start()
        time.sleep(1.0)  # it has read its home
        monkeypatch.setenv("FT_PIPELINE_HOME", home)
        order.append("first")
    second.join(20)
    same_model.join(20)
    assert order[:2] == ["other home", "first"], order
    assert sorted(order[2:]) == ["same model", "second"], order


def _take(instance, model: str, name: str, order: list[str]) -> None:
    with home_turn(instance, model, poll=0.1):
        order.append(name)


def test_a_second_run_keeps_the_partition_a_run_in_flight_uses(instance, live_pid):
    """Before: a second `ft-pipeline run` removed every other registered source, and the first
    run's ingest died on an unknown partition (DagsterUnknownPartitionError)."""
    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.data.partitions import RAW_FILES, register_sources
    from ft_pipeline.defs.pools import HOST_TAG, PID_TAG
    from ft_pipeline.runner import activate_sources

    register_sources(instance, ["a.jsonl", "old.jsonl"])
    ingest = defs.resolve_job_def("ingest_source")
    _started_run(instance, ingest, {**ingest.tags, "dagster/partition": "a.jsonl",
                                    HOST_TAG: socket.gethostname(), PID_TAG: str(live_pid)})

    deactivated = activate_sources(instance, ["b.jsonl"])

    assert deactivated == ["old.jsonl"]
    assert sorted(instance.get_dynamic_partitions(RAW_FILES.name)) == ["a.jsonl", "b.jsonl"]


def test_the_turns_limit_rule_agrees_with_the_daemons_counter():
    """run_queue.held_back copies the queued-run daemon's tag_concurrency_limits rule (Dagster has no
    public call for it); on every mix of limits and in-progress runs it must hold back exactly the
    runs the daemon's own counter holds back, so an upgrade that changes the rule fails here."""
    import itertools
    import random
    from types import SimpleNamespace

    from dagster._utils.tags import TagConcurrencyLimitsCounter  # the daemon's rule, read only in this test

    from ft_pipeline.defs.run_queue import held_back

    rng = random.Random(0)
    keys, values = ["ft_pipeline/home", "ft_pipeline/model", "ft_pipeline/job"], ["a", "b", "retrain"]
    limit_kinds = [None, "a", "retrain", {"applyLimitPerUniqueValue": True}, {"applyLimitPerUniqueValue": False}]
    cases = 0
    for key, kind, most in itertools.product(keys, limit_kinds, [0, 1, 2]):
        limits = [{"key": key, "limit": most, **({} if kind is None else {"value": kind})}]
        for _ in range(40):
            others = [{k: rng.choice(values) for k in keys if rng.random() < 0.6} for _ in range(rng.randint(0, 4))]
            tags = {k: rng.choice(values) for k in keys if rng.random() < 0.7}
            daemon = TagConcurrencyLimitsCounter(limits, [SimpleNamespace(tags=o) for o in others])
            assert held_back(limits, others, tags) == daemon.is_blocked(SimpleNamespace(tags=tags)), (limits, others, tags)
            cases += 1
    assert cases == 1800
