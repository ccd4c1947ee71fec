"""MLflow tracking never blocks the pipeline: with the tracking server unreachable the graph still
trains and promotes, the operations wait under $FT_PIPELINE_HOME/mlflow/pending/, and the first
contact with a live server (a real `mlflow server` on 127.0.0.1) sends them, in order."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from ft_pipeline import cli
from ft_pipeline.core.release import registry
from ft_pipeline.core.tracking import models, queue
from ft_pipeline_tests.conftest import REPO
from ft_pipeline_tests.defs import mlflow_helpers as mh
from ft_pipeline_tests.defs.pipeline_helpers import (
    RELAXED_GATES, add_source, demo_slice, demo_task, pipeline_keys, run_config, write_preset,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def mlflow_server(tmp_path):
    """A real tracking server (SQLite backend, proxied artifacts) on 127.0.0.1, started in the
    background; the test waits for it only when it needs it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"

    def wait() -> str:
        for _ in range(600):  # 5 minutes at most on two busy cores
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                return url
            except OSError:
                assert proc.poll() is None, "mlflow server exited"
                time.sleep(0.5)
        raise AssertionError("mlflow server did not come up")

    yield wait
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_a_refused_operation_does_not_block_the_queue(ft_home, monkeypatch):
    """Down: queued with a warning, at once (no minutes of HTTP retries). Up: sent in order. An
    operation the store refuses (an alias for a version never mirrored) is set aside in failed/."""
    warnings = []
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    payload = {"experiment": "t", "run_key": "k1", "metric": "accuracy", "variants": {"tuned": {"accuracy": 0.5, "n": 4}},
               "comparisons": {}, "groups_with_intervals": {}, "gates_failed": [], "report_path": ""}
    started = time.time()
    assert queue.submit("log_evaluation", payload, warn=warnings.append) is False
    assert time.time() - started < 30
    assert "unreachable" in warnings[-1] and "1 pending" in warnings[-1]
    assert queue.submit("set_alias", {"name": "t", "version": "v9", "alias": "champion"}, warn=warnings.append) is False

    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the default SQLite store: always there
    assert queue.flush(warn=warnings.append) == 0
    [refused] = (ft_home / "mlflow" / "pending" / "failed").glob("*.json")
    assert json.loads(refused.read_text())["op"] == "set_alias" and "never mirrored" in warnings[-1]
    [run] = mh.client().search_runs([mh.client().get_experiment_by_name("t").experiment_id])
    assert run.data.metrics["eval.tuned.accuracy"] == 0.5 and run.data.tags["ft_pipeline.run_key"] == "k1"


def test_unreachable_server_still_promotes_then_everything_is_sent(tmp_path, tiny_model_dir, monkeypatch, mlflow_server):
    from ft_pipeline.definitions import defs

    home = tmp_path / "ft_home"
    home.mkdir()
    (tmp_path / "dh").mkdir()
    monkeypatch.setenv("FT_PIPELINE_HOME", str(home))
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    source = demo_slice(tmp_path / "input.jsonl", per_split={"train": 30, "eval": 4, "test": 6})
    config = run_config(tiny_model_dir, write_preset(tmp_path / "tiny.yaml", max_steps=30, save_steps=15),
                        task={"path": str(demo_task(tmp_path / "task.yaml", gates=RELAXED_GATES))})
    with dg.instance_for_test(temp_dir=str(tmp_path / "dh")) as instance:
        job = defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=instance, run_config=config, raise_on_error=False,
                                        partition_key=add_source(instance, source), asset_selection=pipeline_keys(defs))
        assert result.success
        assert registry.current_version(home / "registry", mh.NAME) == "v1"
        pending = [p.name.split("-", 2)[2] for p in sorted((home / "mlflow" / "pending").glob("*.json"))]
        assert pending == ["log_training.json", "log_evaluation.json", "register_release.json"]
        logged = [e.user_message for e in instance.all_logs(result.run_id)]
        assert any(f"MLflow tracking at {dead} is unreachable" in m for m in logged)
        assert mh.holding([home / "mlflow" / "pending"], mh.records_of(home)) == []  # digests and counts only

        # The server is back (at its own address): the next promotion sends the queue first.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server())
        again = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("promoted_model")])
        assert again.success and list((home / "mlflow" / "pending").glob("*.json")) == []
        mh.assert_tracked(home, result, instance, source, version="v2", uri=os.environ["MLFLOW_TRACKING_URI"],
                          stores=[tmp_path / "server.db", tmp_path / "server-artifacts"])
        assert mh.client().get_model_version(mh.NAME, "1").tags["registry_version"] == "v1"

        # a version in rollout is the challenger; promoting it makes it the champion, and no longer a challenger
        models.mirror_alias(mh.NAME, "v2", models.CHALLENGER)
        assert mh.client().get_registered_model(mh.NAME).aliases == {"champion": "2", "challenger": "2"}
        assert cli.main(["rollback"]) == 0
        assert mh.champion() == "v1"


def test_make_mlflow_opens_the_ui_on_the_default_store_on_localhost():
    import subprocess

    home = os.environ.get("FT_PIPELINE_HOME", str(REPO / "var"))
    done = subprocess.run(["make", "-n", "--no-print-directory", "mlflow"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == (
        f".venv/bin/mlflow ui --backend-store-uri sqlite:///{home}/mlflow/mlflow.db -h 127.0.0.1 -p 5000")
    assert queue.default_uri() == f"sqlite:///{Path(home).resolve()}/mlflow/mlflow.db"
