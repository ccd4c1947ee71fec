"""Concurrency pools: the steps that must not overlap, whoever started the run.

`ft-pipeline run` executes its jobs in process, outside the run queue and its tag limits, but every
step still claims its pool's slot in the instance's event log, so CLI runs (in any number of
processes) and the daemon's runs are ordered by the same pools. dagster.yaml gives each pool one
slot (`concurrency: pools: default_limit: 1`).

A run whose process was SIGKILLed keeps its slot: no run worker is left to free it, and the
daemon's run monitoring does not watch in-process runs, so the next run would wait forever.
`sweep_stale_runs` frees those slots: each in-process run is tagged with its host and pid, and a
run still STARTED whose pid is gone from this host is marked failed and its slots freed. Runs of
other hosts are never touched: their pids mean nothing here.
"""
from __future__ import annotations

import os
import socket

import dagster as dg

TRAINING_POOL = "training"  # adapter_weights: one GPU job at a time, one writer of checkpoints
REGISTRY_POOL = "registry"  # promoted_model: one writer of the registry's versions and `current`

HOST_TAG = "ft_pipeline/host"
PID_TAG = "ft_pipeline/pid"


def in_process_run_tags(instance: dg.DagsterInstance) -> dict[str, str]:
    """Call before executing runs in this process: frees the slots that dead runs hold (else this
    run could wait on them forever), and returns the tags that let a later sweep find this
    process's runs if it dies."""
    sweep_stale_runs(instance)
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_alive(pid: int, run_started: float | None) -> bool:
    """True when `pid` still runs here and is the process that started the run: a pid reused by a
    process born after the run started is not the run's."""
    import psutil

    try:
        created = psutil.Process(pid).create_time()
        zombie = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    # create_time is rounded; a second of slack keeps the run's own process alive.
    return not zombie and (run_started is None or created <= run_started + 1)


def sweep_stale_runs(instance: dg.DagsterInstance) -> list[str]:
    """Marks failed the STARTED runs this host ran in process whose process is gone, frees their
    pool slots, and returns their run ids."""
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host}))
    swept = []
    for record in records:
        run = record.dagster_run
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid), record.start_time):
            continue
        instance.report_run_failed(run, message=f"the process that ran it (pid {pid} on {host}) is gone; "
                                                "its pool slots were freed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        swept.append(run.run_id)
    return swept


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def stale_pool_slots_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Frees the pool slots of dead in-process runs, so the daemon's runs do not wait on them
    until the next `ft-pipeline run`."""
    swept = sweep_stale_runs(context.instance)
    return dg.SkipReason(f"freed the slots of {len(swept)} dead run(s): {', '.join(swept)}" if swept
                         else "no dead runs hold pool slots")
