"""PostgreSQL storage end to end: a real PostgreSQL server on 127.0.0.1, an instance built from
the repo's dagster.postgres.yaml, part of the pipeline materialized against it, and its history
read back from the database."""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import dagster as dg
import pytest

from ft_pipeline_tests.conftest import REPO
from ft_pipeline_tests.defs.pipeline_helpers import add_source, demo_slice

PG_USER, PG_DB = "ft_dagster", "ft_pipeline_runs"
REDACTED_CHECKS = ("labels_are_verified", "annotators_agree", "redacted_dataset_has_no_confidential_content")


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        # A failure, not a skip: a green run must mean PostgreSQL storage was tested.
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin/; "
                    "install the Debian package `postgresql` (.ci/run does: apt-get install postgresql)")
    return Path(found[-1]).parent


def _server_account() -> dict:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` account."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and no `postgres` user exists to run the server as "
                    "(the Debian package `postgresql` creates it)")
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server():
    """A throwaway cluster: password auth over TCP on 127.0.0.1, its socket in a temp dir."""
    bin_dir, account = _pg_bin(), _server_account()
    base = Path(tempfile.mkdtemp(prefix="ft-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    password, port = secrets.token_hex(12), _free_port()
    (base / "pwfile").write_text(password + "\n")
    if account:
        for path in (base, sock, base / "pwfile"):
            os.chown(path, account["user"], account["group"])

    def pg(*args: str, timeout: int = 90) -> None:
        done = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=base, capture_output=True, text=True,
                              timeout=timeout, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, **account)
        assert done.returncode == 0, f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}"

    pg("initdb", "-D", str(data), "-U", PG_USER, f"--pwfile={base / 'pwfile'}", "-E", "UTF8", "--locale=C",
       "--auth-host=scram-sha-256", "--auth-local=scram-sha-256")
    # fsync off: a test cluster, thrown away after; it saves seconds on a busy disk.
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c full_page_writes=off"
    pg("pg_ctl", "start", "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o", options)
    conninfo = {"host": "127.0.0.1", "port": port, "user": PG_USER, "password": password}
    try:
        import psycopg2

        admin = psycopg2.connect(dbname="postgres", connect_timeout=10, **conninfo)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {PG_DB}")
        admin.close()
        yield {**conninfo, "dbname": PG_DB}
    finally:
        pg("pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60")
        shutil.rmtree(base, ignore_errors=True)


def _count_events(conninfo: dict, run_id: str) -> dict[str, int]:
    import psycopg2

    with psycopg2.connect(connect_timeout=10, **conninfo) as conn, conn.cursor() as cur:
        cur.execute("SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s GROUP BY 1", (run_id,))
        return dict(cur.fetchall())


def test_pipeline_history_is_stored_in_postgres(postgres_server, tmp_path, monkeypatch):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    from ft_pipeline.definitions import defs

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "ft_home"))
    for var, value in {"HOST": "host", "PORT": "port", "USER": "user", "PASSWORD": "password", "DB": "dbname"}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{var}", str(postgres_server[value]))
    # The default slice: big enough for the label gates (coverage, kappa) to pass on it.
    source = demo_slice(tmp_path / "slice.jsonl")

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey("task"), dg.AssetKey("raw_dataset"), dg.AssetKey("redacted_dataset")],
            partition_key=add_source(instance, source),
        )
        assert result.success
        evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert set(evaluations) == set(REDACTED_CHECKS)
        assert all(evaluations.values()), f"gates failed on the demo slice: {evaluations}"
        run_id = result.run_id

    # A fresh instance object holds no state of the run: whatever it reports came from PostgreSQL.
    with dg.DagsterInstance.get() as again:
        assert again.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        for key in ("raw_dataset", "redacted_dataset"):
            event = again.get_latest_materialization_event(dg.AssetKey(key))
            assert event is not None and event.run_id == run_id
            assert len(event.asset_materialization.metadata["sha256"].value) == 64
        raw_meta = again.get_latest_materialization_event(dg.AssetKey("raw_dataset")).asset_materialization.metadata
        assert raw_meta["records"].value + raw_meta["quarantined"].value == 40 + 6 + 12 + 2  # + 2 confidential
        check_keys = [dg.AssetCheckKey(dg.AssetKey("redacted_dataset"), name) for name in REDACTED_CHECKS]
        latest = again.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
        assert {key.name: (record.run_id, record.status.value) for key, record in latest.items()} == {
            name: (run_id, "SUCCEEDED") for name in REDACTED_CHECKS
        }

    counts = _count_events(postgres_server, run_id)
    assert counts.get("ASSET_MATERIALIZATION") == 3  # task, raw_dataset, redacted_dataset
    assert counts.get("ASSET_CHECK_EVALUATION") == len(REDACTED_CHECKS)
    assert counts.get("PIPELINE_SUCCESS") == 1
