"""The record-level steps on Ray Data (`--engine ray`): the same bytes as the local engine, the
same counts when a Ray worker is killed mid-redaction, and no raw text in Ray's own files."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ft_pipeline_tests.conftest import DEMO_RECORDS

pytest.importorskip("ray")
BIN = Path(sys.executable).parent / "ft-pipeline"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """400 demo records: four batches of 128 or fewer, with records quarantined among them."""
    path = tmp_path_factory.mktemp("records") / "records.jsonl"
    path.write_text("".join(DEMO_RECORDS.read_text().splitlines(keepends=True)[:400]))
    return path


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, records):
    """The records redacted by the local engine: the reference bytes and summary."""
    from ft_pipeline.core.data.redaction import redact_file

    home = tmp_path_factory.mktemp("local-home")
    os.environ["FT_PIPELINE_HOME"] = str(home)
    try:
        summary = redact_file(records, home / "out.jsonl")
    finally:
        del os.environ["FT_PIPELINE_HOME"]
    return (home / "out.jsonl").read_bytes(), summary, home


def same_key(home: Path, local_home: Path) -> None:
    """The local run's digest key in `home`: ids are keyed per home, and the bytes are compared."""
    (home / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy2(local_home / "raw" / "digest.key", home / "raw" / "digest.key")


def test_cli_ray_engine_writes_the_local_engines_bytes(tmp_path, records, local_run):
    env = {**os.environ, "FT_PIPELINE_HOME": str(tmp_path)}
    env.pop("RAY_ADDRESS", None)
    same_key(tmp_path, local_run[2])
    out = subprocess.run([str(BIN), "redact", str(records), str(tmp_path / "out.jsonl"), "--engine", "ray"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-800:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    reference, local_summary, _ = local_run
    assert (tmp_path / "out.jsonl").read_bytes() == reference
    for key in ("in", "out", "quarantined", "entities", "quarantine_reasons", "sha256"):
        assert summary[key] == local_summary[key], key
    staging = tmp_path / "raw" / ".ray-staging"
    assert not staging.exists() or not any(staging.iterdir()), "the staged raw records outlive the run"


def test_cli_ray_engine_names_a_cluster_that_does_not_answer(tmp_path, records):
    """A RAY_ADDRESS where no Ray listens is the user's mistake: exit 2 and one line, no traceback."""
    env = {**os.environ, "FT_PIPELINE_HOME": str(tmp_path), "RAY_ADDRESS": "127.0.0.1:9",
           "RAY_gcs_server_port_wait_time_s": "1"}  # Ray's own wait, 20 s by default
    out = subprocess.run([str(BIN), "redact", str(records), str(tmp_path / "out.jsonl"), "--engine", "ray"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr[-800:]
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("ft-pipeline redact: error: RAY_ADDRESS=127.0.0.1:9")


def test_run_names_a_cluster_that_does_not_answer_before_any_work(tmp_path, records):
    """The same mistake through `ft-pipeline run --engine ray`: one line at the request check, not a
    failure inside the ingest asset after the run started."""
    task = Path(__file__).resolve().parents[2] / "configs" / "tasks" / "demo-triage.yaml"
    env = {**os.environ, "FT_PIPELINE_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path),
           "RAY_ADDRESS": "127.0.0.1:9", "RAY_gcs_server_port_wait_time_s": "1"}
    out = subprocess.run([str(BIN), "run", str(records), "--task", str(task), "--engine", "ray"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr[-800:]
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("ft-pipeline run: error: --engine: RAY_ADDRESS=127.0.0.1:9")
    assert not (tmp_path / "home" / "raw" / "raw_dataset").exists()  # nothing ingested


@pytest.mark.parametrize("in_memory_bytes, actor", [
    # Staged on disk and read by Ray Data (read_text, map_batches): inputs too large to send from the driver.
    (4096, "MapWorker(MapBatches(RedactBatch))"),
    # Sent from the driver to plain actors (ray.util.ActorPool), as the CLI test above sends its records.
    (None, "ray::MapActor"),
], ids=["ray-data", "actor-pool"])
def test_killed_ray_worker_is_retried_and_every_record_accounted_for(tmp_path, monkeypatch, records, local_run,
                                                                     in_memory_bytes, actor):
    """One map actor is SIGKILLed once the first results are back (the others still in
    flight): Ray restarts it and retries its batch, and the output is the local engine's, record
    for record. Ray's own session folder (logs, events) holds none of the raw e-mail addresses."""
    import psutil
    import ray

    from ft_pipeline.core.data.redaction import redact_file
    from ft_pipeline.core.scale import ray_data
    from ft_pipeline.core.scale.ray_data import shutdown

    if in_memory_bytes:
        monkeypatch.setattr(ray_data, "IN_MEMORY_BYTES", in_memory_bytes)
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    same_key(tmp_path, local_run[2])
    killed: list[int] = []

    def kill_one_worker(done: int, total) -> None:
        if killed or done >= total:
            return
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if actor in " ".join(proc.info["cmdline"] or []):
                proc.kill()
                killed.append(proc.info["pid"])
                return

    try:
        summary = redact_file(records, tmp_path / "out.jsonl", engine="ray", progress=kill_one_worker)
        session = Path(ray._private.worker._global_node.get_session_dir_path())
        ray_files = [p for p in session.rglob("*") if p.is_file() and not p.is_symlink()]
    finally:
        shutdown()
    reference, local_summary, _ = local_run
    assert killed, "no Ray worker was found to kill"
    assert summary["in"] == summary["out"] + summary["quarantined"] == local_summary["in"]
    assert (tmp_path / "out.jsonl").read_bytes() == reference
    redacted_away = set(EMAIL.findall(records.read_text())) - set(EMAIL.findall(reference.decode()))
    assert len(redacted_away) > 30
    for path in ray_files:
        text = path.read_bytes().decode("utf-8", "replace")
        assert not [e for e in redacted_away if e in text], f"raw e-mail addresses in Ray's {path.name}"


def test_embedded_ray_never_joins_a_ray_found_on_the_machine(tmp_path, monkeypatch):
    """Without RAY_ADDRESS the engine starts a Ray of its own, spilling into the raw zone. Ray's
    ray.init() with no address would join the last `ray start` cluster of the machine (its address
    file, faked here to point where nothing answers) and spill wherever that cluster says."""
    import json as _json

    import ray
    import ray._private.utils

    from ft_pipeline.core.scale.engines import connect
    from ft_pipeline.core.scale.ray_data import shutdown

    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_gcs_server_port_wait_time_s", "1")
    monkeypatch.setattr(ray._private.utils, "read_ray_address", lambda temp_dir=None: "127.0.0.1:9")
    try:
        assert connect() == "local"
        config = ray._private.worker._global_node._config
        spill = _json.loads(config["object_spilling_config"])["params"]["directory_path"]
        session = Path(ray._private.worker._global_node.get_session_dir_path())
    finally:
        shutdown()
    assert Path(spill) == tmp_path / "raw" / "ray-spill"
    # Its session folder (logs, worker output) too, not /tmp/ray: reached through a short link when
    # the home's path is too long for Ray's sockets, as pytest's is.
    assert session.resolve().parent == (tmp_path / "raw" / "ray").resolve()
