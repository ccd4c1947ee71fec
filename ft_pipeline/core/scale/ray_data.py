"""Record-level steps on Ray: a callable class (`mapper`), so the expensive object (spaCy and
Presidio's analyzer) is built once per actor and every batch after reuses it.

Up to IN_MEMORY_BYTES of records go from this process straight to a pool of plain Ray actors
(`ray.util.ActorPool`), a chunk of `chunk_records` at a time, results taken back in input order.
No Ray Data here: its streaming executor and the three helper actors it starts per run (a Python
process each) were about a third of a demo run's CPU on 2 cores, for inputs that need no streaming.
Larger inputs are staged as JSON lines in the raw zone and run through Ray Data (`read_text`, then
`map_batches` with an actor pool and `preserve_order`), so memory stays flat whatever the file's
size. Either way each batch is the same `redact_chunk` the local engine runs on the same number of
records, and the output lines come in the input's order. An actor that dies is restarted and its
batch retried (max_task_retries on the plain actors; Ray Data's default for its pools); a batch that
fails for its own reason fails the run, never drops its records.
"""
from __future__ import annotations

import itertools
import json
import os
import uuid
from contextlib import contextmanager
from typing import Iterable, Iterator

from ft_pipeline.core.paths import raw_zone
from ft_pipeline.core.scale.engines import cluster_cpus, connect

# 64 MB of JSON lines held in the driver at most: the demo's 600 records are 0.4 MB, 100,000 of
# bench/scale.py's about 60 MB. Past it the records are staged on disk instead.
IN_MEMORY_BYTES = 64 * 2**20


def _lines(records: Iterable[dict]) -> Iterator[str]:
    # ASCII escapes: no U+2028 or other line break inside a line that read_text splits
    return (json.dumps(record, ensure_ascii=True) for record in records)


@contextmanager
def _staged(lines: Iterable[str]) -> Iterator[tuple[str, int]]:
    """The records as one JSON line each, in the raw zone (they are not redacted yet)."""
    folder = raw_zone() / ".ray-staging"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.jsonl"
    count = 0
    try:
        with open(path, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
                count += 1
        yield str(path), count
    finally:
        path.unlink(missing_ok=True)


def _head(lines: Iterator[str], limit: int) -> tuple[list[str], bool]:
    """The first lines up to `limit` bytes, and whether that was all of them."""
    head, size = [], 0
    for line in lines:
        head.append(line)
        size += len(line) + 1
        if size > limit:
            return head, False
    return head, True


def redact_on_ray(records: Iterable[dict], config, mapper) -> Iterator[tuple[dict, dict[str, int]]]:
    """(redacted record, {entity: values replaced}) per record, in order, computed on Ray by `mapper`:
    the callable class built once per actor with `config` (core/data/redaction/stream.py RedactBatch,
    passed in so that this module does not import the redactor that calls it)."""
    import ray

    where = connect()
    workers = config.n_process or (config.workers() if where == "local" else cluster_cpus())
    lines = _lines(records)
    head, complete = _head(lines, IN_MEMORY_BYTES)
    if complete:
        if head:
            yield from _on_actors(head, config, workers, mapper)
        return
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    with _staged(itertools.chain(head, lines)) as (path, count):
        # Reading a staged file costs next to nothing: the read tasks ask for no CPU, or an actor
        # pool as large as the machine would leave them none and wait for them forever.
        dataset = ray.data.read_text(path, override_num_blocks=_blocks(count, config.chunk_records, workers),
                                     ray_remote_args={"num_cpus": 0})
        yield from _mapped(dataset, count, config, workers, mapper)


class MapActor:
    """A plain Ray actor around `mapper` (built once, in the actor's own process)."""

    def __init__(self, mapper, config):
        self.fn = mapper(config)

    def map(self, lines: list[str]) -> dict:
        return self.fn({"text": lines})


def _on_actors(lines: list[str], config, workers: int, mapper) -> Iterator[tuple[dict, dict[str, int]]]:
    import ray
    from ray.util import ActorPool

    chunks = [lines[i:i + config.chunk_records] for i in range(0, len(lines), config.chunk_records)]
    # A killed actor is restarted (max_restarts) and the call it held is run again on it
    # (max_task_retries): no batch is dropped. One CPU each, as the local engine's processes.
    actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(MapActor)
    actors = [actor.remote(mapper, config) for _ in range(max(1, min(workers, len(chunks))))]
    try:
        out = 0
        for batch in ActorPool(actors).map(lambda a, chunk: a.map.remote(chunk), chunks):
            for record, counts in zip(batch["record"], batch["counts"]):
                out += 1
                yield json.loads(record), json.loads(counts)
    finally:  # the CPUs go back to the cluster as soon as this input is done
        for a in actors:
            ray.kill(a)
    if out != len(lines):  # checked rather than trusted, as for Ray Data
        raise RuntimeError(f"ray engine: {len(lines)} records sent, {out} came back")


def _blocks(count: int, chunk_records: int, workers: int) -> int:
    return max(1, min(count // chunk_records, 4 * workers))


def _mapped(dataset, count: int, config, workers: int, mapper) -> Iterator[tuple[dict, dict[str, int]]]:
    import ray

    mapped = dataset.map_batches(
        mapper, fn_constructor_args=(config,), batch_size=config.chunk_records,
        batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1)
    out = 0
    for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
        for record, counts in zip(batch["record"], batch["counts"]):
            out += 1
            yield json.loads(record), json.loads(counts)
    if out != count:  # Ray Data's accounting, checked rather than trusted
        raise RuntimeError(f"ray engine: {count} records sent, {out} came back")


def shutdown() -> None:
    """Stops a Ray this process started (tests; a CLI process stops it on exit anyway)."""
    import ray

    if ray.is_initialized() and not os.environ.get("RAY_ADDRESS"):
        ray.shutdown()
