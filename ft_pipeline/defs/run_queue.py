"""`ft-pipeline run` takes its turn in the instance's run queue, beside the runs the UI and the
sensors submit, under the same tag concurrency limits (dagster.yaml `concurrency: runs:`).

One `ft-pipeline run` is several Dagster runs (task, one ingest per source, retrain), and all of
them read home-wide state: the registered raw_files partitions (what the retrain trains on and the
gates check) and the task in force. A second invocation interleaved with the first would change
both under it, so the unit that takes turns is the invocation, not each run:

- The invocation is a run of its own in the instance (job `ft_pipeline_cli_run`, no ops), tagged
  with its home and model. It is created NOT_STARTED: the UI lists it while it waits, and the
  daemon neither launches nor counts it. Invocations of one home go first come, first served
  (storage id order).
- It ends as a success once the invocation ran to its end (a gate that stopped a run is that
  run's failure), failed or canceled when the process stopped on an error or an interrupt.
- Its turn comes when no earlier invocation of the home waits or holds, and the configured tag
  limits let a run with its tags start: the very counter the daemon's QueuedRunCoordinator uses,
  over the same in-progress runs. It then becomes STARTED, so the daemon holds back queued UI and
  sensor runs of the home (`ft_pipeline/home`, one per unique value) until it ends, gaps between
  its own runs included.
- Each of its runs carries the turn's id, and waits for the limits before it starts (its own
  runs do not count against it), so a `retrain` in another home still waits for the instance-wide
  one-retrain limit.

Why not `instance.submit_run`: a queued run is launched by the daemon from a code location (the
run's remote origin), and nothing public builds one in the CLI's process; executing in process
with the queue's own limits keeps the CLI working without a daemon. The one window left is the
daemon dequeuing a UI run in the same instant a turn starts (two processes reading the same
records); the invocation's next run then waits for that run to end.

A dead invocation does not hold its home: a STARTED turn whose process is gone is failed by the
stale-run sweep (defs/pools.py, host and pid tags), and a waiting one is canceled here.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import socket
import time
from collections.abc import Iterator

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.defs.pools import HOST_TAG, PID_TAG, in_process_run_tags, process_alive, sweep_stale_runs

HOME_TAG = "ft_pipeline/home"  # which FT_PIPELINE_HOME a run reads and writes: a digest, paths may name people
MODEL_TAG = "ft_pipeline/model"  # the task's name: the registry model the invocation may promote
TURN_TAG = "ft_pipeline/turn"  # on every run of one invocation: its turn run's id
TURN_JOB = "ft_pipeline_cli_run"
PARTITION_TAG = "dagster/partition"

ACTIVE = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


def home_tag_value() -> str:
    return hashlib.sha256(str(paths.pipeline_home()).encode()).hexdigest()[:16]


@functools.cache
def _turn_job() -> dg.JobDefinition:
    """Built on first use, not at import: a module-level job would join the definitions."""

    @dg.op
    def holds_the_home():
        """Never executed: the turn's run record is the point."""

    @dg.job(name=TURN_JOB, description="The turn of one `ft-pipeline run` in its home.")
    def cli_run():
        holds_the_home()

    return cli_run


class Turn:
    """One invocation's place in the queue: `tags` go on each of its runs, `wait(job)` before each."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, tags: dict[str, str], poll: float):
        self.instance, self.run_id, self.tags, self.poll = instance, run_id, tags, poll

    def run_tags(self, job: dg.JobDefinition) -> dict[str, str]:
        return {**job.tags, **self.tags}

    def wait(self, job: dg.JobDefinition) -> dict[str, str]:
        """Blocks until the configured tag limits let a run of `job` with this turn's tags start;
        returns those tags."""
        tags = self.run_tags(job)
        _wait_until(self.instance, lambda: not limits_block(self.instance, tags, self.run_id), self.poll)
        return tags


@contextlib.contextmanager
def home_turn(instance: dg.DagsterInstance, model: str, poll: float = 1.0) -> Iterator[Turn]:
    """Creates the invocation's turn run, waits for its turn, and ends the run when the block does."""
    tags = {HOME_TAG: home_tag_value(), MODEL_TAG: model, "ft_pipeline/trigger": "cli_run",
            **in_process_run_tags(instance)}
    run = instance.create_run_for_job(_turn_job(), tags=tags, status=dg.DagsterRunStatus.NOT_STARTED)
    turn = Turn(instance, run.run_id, {**tags, TURN_TAG: run.run_id}, poll)
    try:
        _wait_until(instance, lambda: not _turn_blocked(instance, run.run_id, tags), poll)
        _report(instance, run.run_id, dg.DagsterEventType.RUN_START)
        yield turn
    except BaseException as exc:
        ended = instance.get_run_by_id(run.run_id)
        if isinstance(exc, KeyboardInterrupt):
            instance.report_run_canceled(ended, message="`ft-pipeline run` was interrupted")
        else:
            instance.report_run_failed(ended, message=f"`ft-pipeline run` stopped on {type(exc).__name__}")
        raise
    _report(instance, run.run_id, dg.DagsterEventType.RUN_SUCCESS)


def _report(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> None:
    instance.report_dagster_event(dg.DagsterEvent(event_type_value=kind.value, job_name=TURN_JOB), run_id=run_id)


def _wait_until(instance: dg.DagsterInstance, ready, poll: float) -> None:
    while not ready():
        time.sleep(poll)
        sweep_stale_runs(instance)  # a killed holder must not keep everyone waiting


def _turn_blocked(instance: dg.DagsterInstance, run_id: str, tags: dict[str, str]) -> bool:
    """An earlier invocation of this home waits or holds, or the limits hold this one back."""
    mine = instance.get_run_record_by_id(run_id)
    earlier = instance.get_run_records(filters=dg.RunsFilter(
        job_name=TURN_JOB, tags={HOME_TAG: tags[HOME_TAG]}, statuses=[*WAITING, *ACTIVE]))
    for record in earlier:
        if record.storage_id >= mine.storage_id:
            continue
        run = record.dagster_run
        if run.status in WAITING and _dead_waiter(run):
            instance.report_run_canceled(run, message="its `ft-pipeline run` process is gone")
            continue
        return True
    return limits_block(instance, tags, run_id)


def _dead_waiter(run: dg.DagsterRun) -> bool:
    """A waiting turn of this host whose process is gone (other hosts' pids mean nothing here)."""
    pid = run.tags.get(PID_TAG, "")
    return run.tags.get(HOST_TAG) == socket.gethostname() and pid.isdigit() and not process_alive(int(pid), None)


def limits_block(instance: dg.DagsterInstance, tags: dict[str, str], turn_id: str) -> bool:
    """True when the instance's run queue limits (max_concurrent_runs, tag_concurrency_limits)
    would hold a queued run with `tags` back, counting the in-progress runs of everyone but this
    invocation: the daemon's own counter over the daemon's own set of runs."""
    config = instance.get_concurrency_config().run_queue_config
    if config is None:
        return False
    others = [r.dagster_run for r in instance.get_run_records(filters=dg.RunsFilter(statuses=ACTIVE))
              if r.dagster_run.run_id != turn_id and r.dagster_run.tags.get(TURN_TAG) != turn_id]
    if 0 <= config.max_concurrent_runs <= len(others):
        return True
    return held_back(list(config.tag_concurrency_limits or []), [run.tags for run in others], tags)


def held_back(limits: list[dict], others: list[dict[str, str]], tags: dict[str, str]) -> bool:
    """The run queue's `tag_concurrency_limits` rule, as the daemon applies it (Dagster has no public
    call for it): a limit on a key counts the in-progress runs carrying the key; on a key and value,
    those with that value; per unique value, those with this run's value."""
    for limit in limits:
        key, value, most = limit["key"], limit.get("value"), limit["limit"]
        if key not in tags:
            continue
        if isinstance(value, str):
            if tags[key] != value:
                continue
            count = sum(1 for other in others if other.get(key) == value)
        elif value and value.get("applyLimitPerUniqueValue"):
            count = sum(1 for other in others if other.get(key) == tags[key])
        else:
            count = sum(1 for other in others if key in other)
        if count >= most:
            return True
    return False


def partitions_in_use(instance: dg.DagsterInstance) -> set[str]:
    """The raw_files partitions that queued or in-progress runs were started for: removing one of
    them would fail that run on an unknown partition."""
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=[*WAITING, *ACTIVE]))
    return {r.dagster_run.tags[PARTITION_TAG] for r in records if PARTITION_TAG in r.dagster_run.tags}
