"""Concurrency pools: the steps that must not overlap, whoever started the run.

`ft-pipeline run` executes its jobs in process (it takes its turn in the run queue first:
defs/run_queue.py), and every step still claims its pool's slot in the instance's event log, so CLI
runs (in any number of processes) and the daemon's runs are ordered by the same pools. dagster.yaml gives each pool one
slot (`concurrency: pools: default_limit: 1`).

A run whose process was SIGKILLed keeps its slot: no run worker is left to free it, and the
daemon's run monitoring does not watch in-process runs, so the next run would wait forever.
`sweep_stale_runs` frees those slots: each in-process run is tagged with its host and pid, and a
run still STARTED whose processes are all gone from this host is marked failed and its slots
freed. Runs of other hosts are never touched: their pids mean nothing here.

Runs the daemon or the UI launch die the same way (a SIGKILLed `dagster api execute_run` worker),
and run monitoring does not see that either: DefaultRunLauncher cannot check a worker's health
(`supports_check_run_worker_health` is False), so monitoring only ever times out STARTING runs.
dagster.yaml therefore names HostTaggedRunLauncher, which tags each run with the host its worker
runs on; the pids of the worker and of its step processes are in the run's own events (each
event names the process that wrote it), so the same sweep covers those runs.
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
    """Marks failed the STARTED runs of this host whose processes are all gone, frees their pool
    slots, and returns their run ids."""
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host}))
    swept = []
    for record in records:
        run = record.dagster_run
        pids = run_pids(instance, run.run_id, run.tags, record.start_time)
        if not pids or any(process_alive(pid, born_by) for pid, born_by in pids):
            continue
        gone = ", ".join(str(pid) for pid, _ in pids)
        instance.report_run_failed(run, message=f"the processes that ran it (pid {gone} on {host}) are gone; "
                                                "its pool slots were freed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        swept.append(run.run_id)
    return swept


def run_pids(instance: dg.DagsterInstance, run_id: str, tags, run_started: float | None) -> list[tuple[int, float | None]]:
    """(pid, latest start time that is still that process) of every process a run ran in: the
    in-process runner's (PID_TAG), the run worker's (which writes RUN_START) and each step
    process's (STEP_WORKER_STARTED); an event names the pid that wrote it, and that process was
    born before it wrote it.
    A step process can outlive a killed run worker and still hold the slot, so the run is dead
    only when all are."""
    pids = {int(tags[PID_TAG]): run_started} if tags.get(PID_TAG, "").isdigit() else {}
    # Only events the run's own processes write: the daemon writes others (dequeued, launched),
    # and its pid, alive as long as it is, would keep every dead run "alive".
    kinds = {dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_WORKER_STARTED}
    for entry in instance.all_logs(run_id, of_type=kinds):
        pid = entry.dagster_event.pid
        if pid is not None and pid not in pids:
            pids[pid] = entry.timestamp
    return list(pids.items())


class HostTaggedRunLauncher(dg.DefaultRunLauncher):
    """Dagster's DefaultRunLauncher, which also tags each run with the host its worker runs on: the
    code server's host, which is this one when the server is local (a socket, or a loopback
    address, as the daemon and the UI start it)."""

    def launch_run(self, context) -> None:
        run = context.dagster_run
        host = socket.gethostname()
        if context.workspace is not None and run.remote_job_origin is not None:
            name = run.remote_job_origin.repository_origin.code_location_origin.location_name
            client = getattr(context.workspace.get_code_location(name), "client", None)
            if client is not None and not client.socket and client.host not in ("localhost", "127.0.0.1", "::1"):
                host = client.host
        self._instance.add_run_tags(run.run_id, {HOST_TAG: host})
        super().launch_run(context)


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def stale_pool_slots_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Frees the pool slots of dead runs, in-process or launched, so the next run does not wait
    on them until the next `ft-pipeline run`."""
    swept = sweep_stale_runs(context.instance)
    return dg.SkipReason(f"freed the slots of {len(swept)} dead run(s): {', '.join(swept)}" if swept
                         else "no dead runs hold pool slots")
