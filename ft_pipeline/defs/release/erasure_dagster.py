"""Dagster's own records of an erased record: the event log (materialization and observation
metadata, check results, log messages) and the compute logs (a step's captured stdout/stderr).

`ft-pipeline forget` calls this once the files are rewritten. Every stored event whose serialized
form mentions an erased id (as copies outside the raw zone hold it: core.erasure.copies.outside_ids)
or value is rewritten in place with each mention replaced by `[erased]` (core.erasure.mentions):
the run, its events and their metadata still load; only the mention is gone. It goes through the
event log storage's own SQLAlchemy connections, so SQLite (a database per run plus the index that
mirrors asset events) and PostgreSQL (dagster-postgres, one database) take the same path.

SQLite may keep a rewritten row's old bytes in free space and in its write-ahead log (whether it
zeroes freed space depends on how it was built), so the rewrite runs with secure_delete on, and
each SQLite database that changed is vacuumed and its log truncated: the files no longer hold them.
PostgreSQL keeps old row versions until its vacuum reclaims them; `VACUUM FULL event_logs` (an
operator's step: it locks the table) rewrites the table without them.

Safe to repeat: a second pass finds nothing and changes nothing. The summary says which runs were
touched and how many events and compute-log files were rewritten, never what they held.
"""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from ft_pipeline.core.erasure import copies
from ft_pipeline.core.erasure.copies import ErasureError
from ft_pipeline.core.erasure.mentions import Mentions, scrub_serialized, scrub_text_file

RUNLESS = ""  # the run id of events reported outside a run (report_runless_asset_event)
LOG_SUFFIXES = (".out", ".err", ".out.partial", ".err.partial")  # LocalComputeLogManager's files


def _columns() -> tuple:
    """Every column of the event log storage that holds an event or text taken from one:
    (table, text column, whether it is a whole serialized EventLogEntry). Imported here, not at
    the top: the storage schema pulls in SQLAlchemy and alembic, and loading the definitions
    must stay fast."""
    from dagster._core.storage.event_log.schema import (AssetCheckExecutionsTable, AssetEventTagsTable,
                                                        AssetKeyTable, SqlEventLogStorageTable)

    return (
        (SqlEventLogStorageTable, "event", True),
        (AssetCheckExecutionsTable, "evaluation_event", True),
        (AssetKeyTable, "last_materialization", False),
        (AssetKeyTable, "asset_details", False),
        (AssetKeyTable, "cached_status_data", False),
        (AssetEventTagsTable, "value", False),
    )


class DagsterRecordsError(ErasureError):
    """Records erasure cannot rewrite (a store it cannot reach, an event that would no longer load):
    `forget` stops with one line, and the next forget resumes the request from its journal."""


def scrub_dagster_records(instance: dg.DagsterInstance, ids, values) -> dict:
    """Rewrites every event and compute log of `instance` that mentions one of the erased `ids`
    (raw ids; their keyed digests are looked for too) or `values`; returns what it touched."""
    mentions = Mentions(copies.outside_ids(set(ids)) | set(values))
    runs, events = scrub_event_log(instance.event_log_storage, mentions)
    log_runs, logs = scrub_compute_logs(instance.compute_log_manager, mentions)
    return {"dagster_runs_touched": sorted((runs | log_runs) - {RUNLESS}),
            "dagster_events_rewritten": events, "compute_logs_rewritten": logs}


def scrub_event_log(storage, mentions: Mentions) -> tuple[set[str], int]:
    """(runs whose events changed, events rewritten). A SQLite index row mirrors a run's asset
    event: it is rewritten too, but the event counts once."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    if not isinstance(storage, SqlEventLogStorage):
        raise DagsterRecordsError(f"the event log storage {type(storage).__name__} is not SQL: "
                                  "erasure cannot reach its records")
    runs, events = set(), 0
    for shard, is_index in _shards(storage):
        connect = storage.index_connection if is_index else (lambda s=shard: storage.run_connection(s))
        # In one transaction per database (dagster-postgres's plain connections autocommit): a
        # database is rewritten whole or not at all, and its rows can stream through a cursor.
        transaction = storage.index_transaction if is_index else connect
        with transaction() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA secure_delete = ON")  # freed space is zeroed, whatever the build
            changed = _scrub_tables(conn, mentions, runs)
            vacuum = bool(changed) and conn.dialect.name == "sqlite"
        if vacuum:
            with connect() as conn:  # a fresh connection: SQLite cannot vacuum inside a transaction
                conn.exec_driver_sql("VACUUM")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        if not is_index or not storage.is_run_sharded:
            events += changed.get("event", 0)
    return runs, events


def _shards(storage):
    """(shard, is the index) of every database the storage keeps: one per run and the runless
    events (SQLite: get_all_run_ids lists neither hidden `.db`), then the index; or one database."""
    if storage.is_run_sharded:
        shards = list(storage.get_all_run_ids())
        if os.path.exists(storage.path_for_shard(RUNLESS)):
            shards.append(RUNLESS)
        yield from ((s, False) for s in shards)
    yield None, True


def _scrub_tables(conn, mentions: Mentions, runs: set[str]) -> dict:
    """Rewrites every column of _columns() on one connection; {column: rows changed}, and the run ids
    of the rows changed added to `runs`. All rows of a table are checked before any is written."""
    import sqlalchemy as db

    tables = set(db.inspect(conn).get_table_names())
    changed: dict[str, int] = {}
    for table, name, is_event in _columns():
        if table.name not in tables:
            continue
        column, run_id = table.c[name], table.c.get("run_id")
        selected = [table.c.id, column] + ([run_id] if run_id is not None else [])
        updates = []
        # yield_per streams the rows (a server-side cursor on PostgreSQL): memory stays flat
        for row in conn.execute(db.select(*selected).where(column.is_not(None)).execution_options(yield_per=500)):
            new = scrub_serialized(row[1], mentions)
            if new is None:
                continue
            if is_event:
                _must_load(new, table.name, row[0])
            updates.append({"row_id": row[0], "text": new})
            if run_id is not None:
                runs.add(row[2] or RUNLESS)
        if updates:
            statement = table.update().where(table.c.id == db.bindparam("row_id")).values({name: db.bindparam("text")})
            conn.execute(statement, updates)
            changed[name] = changed.get(name, 0) + len(updates)
    return changed


def _must_load(text: str, table: str, row_id: int) -> None:
    try:
        dg.deserialize_value(text, dg.EventLogEntry)
    except Exception as exc:
        raise DagsterRecordsError(f"{table} row {row_id}: the rewritten event would not load "
                                  f"({type(exc).__name__}); nothing was changed in that database") from None


def scrub_compute_logs(manager, mentions: Mentions) -> tuple[set[str], int]:
    """(runs whose compute logs changed, files rewritten). Files live at
    <base>/<run id>/compute_logs/<key>.out|.err; a log manager that keeps them elsewhere (S3,
    Azure, GCS) is not this instance's folder and is refused rather than skipped in silence."""
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
    from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager

    if manager is None or isinstance(manager, NoOpComputeLogManager):  # it keeps no logs
        return set(), 0
    if not isinstance(manager, LocalComputeLogManager):
        raise DagsterRecordsError(f"compute logs in {type(manager).__name__} are not local files: "
                                  "erasure cannot reach them")
    base = Path(manager.get_captured_local_path(["erasure-probe"], "out")).parent  # the manager's folder
    runs, files = set(), 0
    for folder, dirs, names in os.walk(base):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            if name.endswith(LOG_SUFFIXES) and scrub_text_file(path, mentions, write=True):
                runs.add(path.relative_to(base).parts[0])
                files += 1
    return runs, files
