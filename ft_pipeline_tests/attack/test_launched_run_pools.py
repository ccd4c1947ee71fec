"""Runs the daemon or the UI launch (the instance's run launcher: a `dagster api execute_run` worker
started by the code server, steps in their own processes) are swept like in-process runs: a
SIGKILLed worker's pool slot is freed, but only once its step process is gone too.

Dagster's run monitoring would not do it: DefaultRunLauncher cannot check a worker's health, so
the run stays STARTED and holds the training slot for ever. The run here is launched as the
daemon launches it, through the project's dagster.yaml and a gRPC code server."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CODE = """
import os, time
import dagster as dg
from ft_pipeline.defs.pools import TRAINING_POOL

@dg.asset(pool=TRAINING_POOL)
def adapter_step():
    open(os.environ["FT_TEST_STARTED"], "w").write(str(os.getpid()))
    time.sleep(600)

defs = dg.Definitions(assets=[adapter_step], jobs=[dg.define_asset_job("train", [adapter_step])])
"""


@pytest.fixture()
def instance(tmp_path, monkeypatch):
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FT_TEST_STARTED", str(tmp_path / "started"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    with dg.DagsterInstance.get() as instance:
        yield instance


def _holders(instance) -> set[str]:
    from ft_pipeline.defs.pools import TRAINING_POOL

    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(TRAINING_POOL).claimed_slots}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_launched_runs_dead_worker_is_swept_once_its_steps_are_gone(instance, tmp_path):
    import dagster as dg
    from dagster._core.test_utils import create_run_for_test, create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import PythonFileTarget

    from ft_pipeline.defs.pools import HOST_TAG, HostTaggedRunLauncher, sweep_stale_runs

    assert isinstance(instance.run_launcher, HostTaggedRunLauncher)  # what dagster.yaml names
    (tmp_path / "code.py").write_text(CODE)
    target = PythonFileTarget(python_file=str(tmp_path / "code.py"), attribute=None,
                              working_directory=str(tmp_path), location_name="test")
    started = tmp_path / "started"
    pids: set[int] = set()
    with create_test_daemon_workspace_context(target, instance) as context:
        workspace = context.create_request_context()
        job = workspace.get_code_location("test").get_repository("__repository__").get_full_job("train")
        run = create_run_for_test(instance, job_name="train", remote_job_origin=job.get_remote_origin(),
                                  job_code_origin=job.get_python_origin(), job_snapshot=job.job_snapshot)
        instance.launch_run(run.run_id, workspace)
        try:
            deadline = time.time() + 90
            while not started.exists():
                assert time.time() < deadline, "the launched run's step never started"
                assert instance.get_run_by_id(run.run_id).status != dg.DagsterRunStatus.FAILURE
                time.sleep(0.2)
            step = int(started.read_text())
            assert instance.get_run_by_id(run.run_id).tags[HOST_TAG] == socket.gethostname()
            assert _holders(instance) == {run.run_id}
            worker = next(int(e.dagster_event.engine_event_data.metadata["pid"].value)
                          for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
                          if "Started process for run" in (e.dagster_event.message or ""))
            pids = {worker, step}
            assert worker != step  # the step runs in its own process, as the multiprocess executor does

            assert sweep_stale_runs(instance) == []  # alive: never touched
            os.kill(worker, signal.SIGKILL)
            _wait_gone(worker)
            # The worker is gone but its step still trains in the slot: freeing it now would let a
            # second training step start beside this one.
            assert sweep_stale_runs(instance) == []
            assert _holders(instance) == {run.run_id}
            os.kill(step, signal.SIGKILL)
            _wait_gone(step)
            assert sweep_stale_runs(instance) == [run.run_id]
            assert not _holders(instance)
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        finally:
            for pid in pids:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


def _wait_gone(pid: int) -> None:
    # The killed worker is the code server's child (the step the worker's): reaped by its parent,
    # or left a zombie, which process_alive counts as gone.
    import psutil

    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} outlived SIGKILL")
