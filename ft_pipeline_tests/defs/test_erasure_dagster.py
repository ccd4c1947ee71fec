"""Dagster's records of an erased record, rewritten through the event log storage: SQLite (a
database per run, the runless one and the index) and PostgreSQL (dagster-postgres, a real server)
take the same path, the events still load, and a second pass finds nothing."""
from __future__ import annotations

import shutil

import dagster as dg
import pytest

from ft_pipeline.core.digest import keyed_digest
from ft_pipeline.core.erasure.mentions import ERASED, Mentions
from ft_pipeline.defs.release.erasure_dagster import DagsterRecordsError, scrub_compute_logs, scrub_dagster_records
from ft_pipeline_tests.conftest import REPO
from ft_pipeline_tests.e2e.test_postgres import postgres_server  # noqa: F401 (the fixture)

VALUE = "olwen.brightwater@gmail.com"


def _events(instance: dg.DagsterInstance, canary: str) -> str:
    """A run and a runless event whose metadata and messages mention the record; the run id."""
    @dg.asset
    def scored(context):
        context.log.warning(f"low score for {canary}")
        return dg.MaterializeResult(metadata={"worst": canary, "asked_by": VALUE.title(), "n": 3})

    run_id = dg.materialize([scored], instance=instance).run_id
    instance.report_runless_asset_event(dg.AssetObservation("scored", metadata={"reviewed": f"{canary} ok"}))
    return run_id


def _serialized_rows(instance: dg.DagsterInstance) -> str:
    """Every stored event, as text: what the storage's tables hold, not what an API returns."""
    import sqlalchemy as db

    storage, text = instance.event_log_storage, []
    shards = [*storage.get_all_run_ids(), ""] if storage.is_run_sharded else []
    for connect in [storage.index_connection, *[lambda s=s: storage.run_connection(s) for s in shards]]:
        with connect() as conn:
            text += [row[0] for row in conn.execute(db.text("SELECT event FROM event_logs"))]
    return "\n".join(text)


def _check(instance: dg.DagsterInstance, run_id: str, canary: str) -> None:
    assert canary in _serialized_rows(instance) and VALUE in _serialized_rows(instance).lower()
    touched = scrub_dagster_records(instance, ids=["olwen-1"], values=[VALUE])
    assert touched["dagster_runs_touched"] == [run_id]
    # the warning, the step output and the materialization (both carry the metadata), the runless observation
    assert touched["dagster_events_rewritten"] == 4
    stored = _serialized_rows(instance)
    assert canary not in stored and VALUE not in stored.lower()

    metadata = instance.get_latest_materialization_event(dg.AssetKey("scored")).asset_materialization.metadata
    assert metadata["worst"].value == ERASED and metadata["asked_by"].value == ERASED and metadata["n"].value == 3
    assert f"low score for {ERASED}" in [e.user_message for e in instance.all_logs(run_id)]
    observed = [e for e in instance.all_logs("") if e.dagster_event and e.dagster_event.event_type_value == "ASSET_OBSERVATION"]
    assert observed[-1].dagster_event.event_specific_data.asset_observation.metadata["reviewed"].value == f"{ERASED} ok"
    assert scrub_dagster_records(instance, ids=["olwen-1"], values=[VALUE]) == {
        "dagster_runs_touched": [], "dagster_events_rewritten": 0, "compute_logs_rewritten": 0}


def test_sqlite_runs_runless_events_and_the_index(ft_home, tmp_path):
    canary = keyed_digest("olwen-1")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        _check(instance, _events(instance, canary), canary)


def test_postgres_storage_takes_the_same_path(ft_home, postgres_server, tmp_path, monkeypatch):  # noqa: F811
    from dagster_postgres import PostgresEventLogStorage

    home = tmp_path / "dh"
    home.mkdir()
    shutil.copy(REPO / "dagster.postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for var, value in {"HOST": "host", "PORT": "port", "USER": "user", "PASSWORD": "password", "DB": "dbname"}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{var}", str(postgres_server[value]))
    canary = keyed_digest("olwen-1")
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        _check(instance, _events(instance, canary), canary)


def test_compute_logs_kept_elsewhere_stop_the_request_in_one_line(tmp_path):
    """A compute log manager that keeps logs off the instance's folder (S3, Azure, GCS) is refused,
    not skipped in silence; one that keeps none has nothing to rewrite."""
    from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager

    class ElsewhereComputeLogManager:
        pass

    with pytest.raises(DagsterRecordsError, match="^compute logs in ElsewhereComputeLogManager are not local files"):
        scrub_compute_logs(ElsewhereComputeLogManager(), Mentions(["r-a"]))
    assert scrub_compute_logs(NoOpComputeLogManager(), Mentions(["r-a"])) == (set(), 0)
