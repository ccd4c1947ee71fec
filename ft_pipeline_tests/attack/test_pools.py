"""Pools across processes: `ft-pipeline run` executes in process, not launched by the daemon, so the
training and registry steps of two runs are kept apart only by their pools' slots. Each run here
is its own process, as two `ft-pipeline run` are, on a fresh instance with the project's
dagster.yaml; the step is a small asset in the real training pool, and each process starts as the
runner does (in_process_run_tags: sweep, then tag its runs with host and pid)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# argv: result file, seconds to hold the slot, and optionally a host tag to pose as another host.
CHILD = """
import json, sys, time
import dagster as dg
from ft_pipeline.defs.pools import HOST_TAG, TRAINING_POOL, in_process_run_tags

out, hold = sys.argv[1], float(sys.argv[2])

@dg.asset(pool=TRAINING_POOL)
def adapter_step():
    start = time.time()
    open(out + ".started", "w").write(str(start))
    time.sleep(hold)
    open(out, "w").write(json.dumps([start, time.time()]))

instance = dg.DagsterInstance.get()
tags = {**in_process_run_tags(instance), **({HOST_TAG: sys.argv[3]} if len(sys.argv) > 3 else {})}
dg.materialize([adapter_step], instance=instance, tags=tags)
"""


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    import dagster as dg

    with dg.DagsterInstance.get() as instance:  # creates the SQLite tables once: two processes that
        instance.get_run_records(limit=1)  # both find none race to create them (a fresh home only)
    return home


def _start(out: Path, hold: float, *host: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(hold), *host], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_started(out: Path, proc: subprocess.Popen, limit: float = 40) -> None:
    deadline = time.time() + limit
    while not Path(str(out) + ".started").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the step never started"
        time.sleep(0.1)


def _holder(instance) -> set[str]:
    from ft_pipeline.defs.pools import TRAINING_POOL

    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(TRAINING_POOL).claimed_slots}


def _killed_holder(tmp_path: Path, *host: str) -> tuple[str, subprocess.Popen]:
    """A run that took the training slot and was SIGKILLed while holding it; its run id."""
    import dagster as dg

    proc = _start(tmp_path / "dead.json", 600, *host)
    _wait_started(tmp_path / "dead.json", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with dg.DagsterInstance.get() as instance:
        (run_id,) = _holder(instance)
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    return run_id, proc


def test_two_runs_in_the_training_pool_do_not_overlap(home, tmp_path):
    # The second run starts while the first trains, as a second `ft-pipeline run` or a daemon run
    # would. Two claims in the same millisecond can both win on Dagster 1.13 (its claim is a
    # select then an update of the row it read), so this test does not start both at once.
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    procs = [_start(first, 4)]
    _wait_started(first, procs[0])
    procs.append(_start(second, 1))
    for proc in procs:
        assert proc.wait(timeout=90) == 0, proc.stderr.read().decode()[-2000:]
    (a_start, a_end), (b_start, b_end) = (json.loads(p.read_text()) for p in (first, second))
    assert a_end <= b_start, f"the second training step started {a_end - b_start:.1f} s before the first ended"


def test_the_real_training_and_promotion_steps_are_in_the_pools():
    import dagster as dg

    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.pools import REGISTRY_POOL, TRAINING_POOL

    pools = {k: defs.resolve_assets_def(dg.AssetKey(k)).op.pool for k in ("adapter_weights", "promoted_model")}
    assert pools == {"adapter_weights": TRAINING_POOL, "promoted_model": REGISTRY_POOL}


def test_a_killed_run_does_not_block_the_next_start(home, tmp_path):
    import dagster as dg

    dead, _ = _killed_holder(tmp_path)
    began = time.time()
    nxt = _start(tmp_path / "next.json", 0)  # sweeps on start, as `ft-pipeline run` does
    try:
        assert nxt.wait(timeout=60) == 0, nxt.stderr.read().decode()[-2000:]
    finally:
        nxt.kill()
    start, _ = json.loads((tmp_path / "next.json").read_text())
    assert start - began < 20  # process start and imports only: no wait for the dead run's slot
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
        assert not _holder(instance)


def test_the_sweep_never_frees_a_live_run_or_another_hosts(home, tmp_path):
    import dagster as dg

    from ft_pipeline.defs.pools import HOST_TAG, stale_pool_slots_sensor, sweep_stale_runs

    elsewhere, _ = _killed_holder(tmp_path, "another-host")  # its pid means nothing on this host
    with dg.DagsterInstance.get() as instance:
        assert sweep_stale_runs(instance) == []
        assert _holder(instance) == {elsewhere}
        # Had it run here, the daemon's sensor would free it (and the live run below must not wait).
        instance.add_run_tags(elsewhere, {HOST_TAG: socket.gethostname()})
        skip = stale_pool_slots_sensor(dg.build_sensor_context(instance=instance))
        assert elsewhere in skip.skip_message and not _holder(instance)

    live = _start(tmp_path / "live.json", 600)
    try:
        _wait_started(tmp_path / "live.json", live)
        with dg.DagsterInstance.get() as instance:
            (run_id,) = _holder(instance)
            assert sweep_stale_runs(instance) == []
            assert _holder(instance) == {run_id}
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        live.kill()
        live.wait()


def test_a_reused_pid_is_not_the_runs_process():
    from ft_pipeline.defs.pools import process_alive

    assert process_alive(os.getpid(), time.time())
    assert not process_alive(os.getpid(), time.time() - 24 * 3600)  # this process was born after that run began
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not process_alive(proc.pid, None)
