"""Records through the redactor: chunks of records, worker processes, and the file path shared by
the asset and the CLI (read, screen, redact, write atomically, quarantine with a reason)."""
from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ft_pipeline.core.data.ingest import classify_row
from ft_pipeline.core.data.sources import InputError, read_jsonl_rows, resolve_local
from ft_pipeline.core.data.redaction import fields
from ft_pipeline.core.data.redaction.config import RedactionConfig
from ft_pipeline.core.data.redaction.pseudonyms import replace
from ft_pipeline.core.data.redaction.spans import analysis_view, analyze_texts, propagate
from ft_pipeline.core.data.screening import ScreeningConfig, screen_record
from ft_pipeline.core.data.suppression import erasure_lock
from ft_pipeline.core.jsonl import atomic_jsonl, count_lines, sha256_file
from ft_pipeline.core.paths import raw_zone
from ft_pipeline.core.records import text_fields, with_texts
from ft_pipeline.core.scale.ray_data import redact_on_ray

Redacted = tuple[dict, dict[str, int]]  # the redacted record, {entity: values replaced}
MAX_PASSES = 3  # redaction is re-run on its own output until it finds nothing more


class Redactor:
    """Redacts normalized records. Engines are cached per process, so constructing many
    Redactors is cheap; worker processes are started per redact_records call, and only when
    there is more than one chunk of records to share out."""

    def __init__(self, config: RedactionConfig | None = None, engine: str = "local"):
        self.config = config or RedactionConfig()
        self.engine = engine

    def redact_records(self, records: Iterable[dict]) -> Iterator[Redacted]:
        # Ids, annotators and declared values are digested here, in the process that holds the
        # home's key: workers (and nodes) elsewhere never need it.
        for record, counts in self._redacted(records):
            yield fields.pseudonymize(record, self.config.fields), counts

    def _redacted(self, records: Iterable[dict]) -> Iterator[Redacted]:
        if self.engine == "ray":  # the same redact_chunk on Ray Data actors (core/scale)
            yield from redact_on_ray(records, self.config, RedactBatch)
            return
        chunks = _chunks(records, self.config.chunk_records)
        workers = self.config.workers()
        head = list(itertools.islice(chunks, 2 if workers > 1 else 1))
        if workers > 1 and len(head) > 1:
            yield from self._parallel(itertools.chain(head, chunks), workers)
            return
        for chunk in itertools.chain(head, chunks):
            yield from redact_chunk(chunk, self.config)

    def _parallel(self, chunks: Iterator[list[dict]], workers: int) -> Iterator[Redacted]:
        import multiprocessing as mp
        from collections import deque

        # spawn, not fork: the parent may hold threads (Dagster, torch) that fork would copy
        # mid-state. A bounded window of futures keeps memory flat on large inputs.
        window = 2 * workers
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker) as pool:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.submit(redact_chunk, chunk, self.config))
                if len(pending) >= window:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()

    def find_pii(self, texts: list[str]) -> list[list[tuple[str, int, int, float]]]:
        """(entity, start, end, score) per text: what this config would still redact. Placeholders,
        surrogates, allowed strings and kept types are not PII."""
        return [[(s.entity, s.start, s.end, s.score) for s in spans] for spans in analyze_texts(list(texts), self.config)]


def redact_chunk(records: list[dict], config: RedactionConfig) -> list[Redacted]:
    """One spaCy batch over every text of the chunk, then record by record: values found in one
    field are redacted in all of them, with the record's consistent pseudonyms. The record's other
    fields are screened here with the texts, kept or dropped as the task's `fields:` says; ids and
    values to pseudonymize are digested by Redactor.redact_records.

    Redacted text is analyzed again, until nothing more is found (at most MAX_PASSES): a name
    replaced by a placeholder changes what NER sees around it ("Do you use <PERSON_1> or Visa?"
    makes "Visa" a person), and the residual-PII gate, which analyzes the redacted text with the
    same config, must find what redaction found. Only records changed by a pass are analyzed again.
    """
    texts = [[t for _, t in text_fields(r)] + fields.screened_values(r, config.fields) for r in records]
    texts, counts = redact_groups(texts, config)
    out = []
    for i, record in enumerate(records):  # the record's own texts, then its screened field values
        n = len(text_fields(record))
        out.append((fields.apply(with_texts(record, texts[i][:n]), texts[i][n:], config.fields), dict(counts[i])))
    return out


def redact_groups(texts: list[list[str]], config: RedactionConfig) -> tuple[list[list[str]], list[Counter]]:
    """Each group of texts (a record's) redacted with one set of consistent pseudonyms, the
    analysis repeated on what changed (see redact_chunk); ({entity: values replaced} per group)."""
    texts = [list(group) for group in texts]
    counts = [Counter() for _ in texts]
    pending = list(range(len(texts)))
    for _ in range(MAX_PASSES):
        flat = analyze_texts([t for i in pending for t in texts[i]], config)
        changed, at = [], 0
        for i in pending:
            found = flat[at:at + len(texts[i])]
            at += len(texts[i])
            if not any(found):
                continue
            views = [analysis_view(t) for t in texts[i]]
            texts[i], replaced = replace(texts[i], views, propagate(views, found), config)
            counts[i].update(replaced)
            changed.append(i)
        pending = changed
        if not pending:
            break
    return texts, counts


def redact_documents(documents: list[str], config: RedactionConfig) -> list[str]:
    """Documents that are not records (the fit assessment's knowledge chunks), each redacted on its
    own by the same engine before any of it reaches a prompt."""
    return [group[0] for group in redact_groups([[d] for d in documents], config)[0]]


def _init_worker() -> None:
    # One BLAS thread per worker: n workers x n BLAS threads each oversubscribe the cores and
    # made two workers slower than one.
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def default_quarantine_path(output_path: str | os.PathLike) -> Path:
    return raw_zone() / "quarantine" / f"{Path(output_path).stem}.quarantine.jsonl"


def redact_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    quarantine_path: str | os.PathLike | None = None,
    config: RedactionConfig | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    max_record_bytes: int = 1_000_000,
    engine: str = "local",
) -> dict:
    """Raw or normalized JSONL in, redacted normalized JSONL out (order preserved; ids as keyed digests).
    Unparseable, oversized, duplicate and confidential records go to the quarantine (raw zone)
    with a reason. `engine` is where the records are redacted ('local' or 'ray'): the output is
    the same bytes either way."""
    with erasure_lock(shared=True):  # a forget waits for the redacted file, which it then finds
        return _redact_file(input_path, output_path, quarantine_path, config, progress, max_record_bytes, engine)


def _redact_file(input_path, output_path, quarantine_path, config, progress, max_record_bytes, engine) -> dict:
    config = config or RedactionConfig()
    (path,) = resolve_local(str(input_path))
    total = count_lines(path)
    if total == 0:
        raise InputError(f"{path}: the file is empty (no records)")
    quarantine_path = Path(quarantine_path) if quarantine_path else default_quarantine_path(output_path)
    reasons: Counter = Counter()
    entities: Counter = Counter()
    seen: set[bytes] = set()
    state = {"in": 0, "done": 0}

    def admitted(quarantine) -> Iterator[dict]:
        for row in read_jsonl_rows(path, max_record_bytes):
            state["in"] += 1
            reason, field_name, record = _admit(row, seen, config.screening)
            if record is not None:
                yield record
                continue
            quarantine.write({"source_file": str(path), "line": row.line, "reason": reason,
                              "field": field_name, "raw": row.raw})
            reasons[reason] += 1
            state["done"] += 1

    with atomic_jsonl(output_path) as out, atomic_jsonl(quarantine_path) as quarantine:
        for record, counts in Redactor(config, engine).redact_records(admitted(quarantine)):
            out.write(record)
            entities.update(counts)
            state["done"] += 1
            if progress and state["done"] % 100 == 0:
                progress(state["done"], total)
        assert state["in"] == out.count + quarantine.count, "redaction accounting: in != out + quarantined"
    if progress:
        progress(state["in"], total)
    return {"in": state["in"], "out": out.count, "quarantined": quarantine.count,
            "entities": dict(sorted(entities.items())), "quarantine_reasons": dict(sorted(reasons.items())),
            "output": str(output_path), "quarantine": str(quarantine_path), "sha256": sha256_file(output_path)}


def _admit(row, seen: set[bytes], screening: ScreeningConfig) -> tuple[str | None, str | None, dict | None]:
    """Ingestion's parse-and-deduplicate, then confidential-content screening."""
    reason, field_name, record = classify_row(row, seen)
    if record is None:
        return reason, field_name, None
    reason = screen_record(record, screening)
    if reason:
        return reason, None, None
    return None, None, record


class RedactBatch:
    """The Ray engine's step (core/scale/ray_data.py): built once per actor, called with a batch of
    JSON lines, returns them redacted by the same redact_chunk the local engine runs."""

    def __init__(self, config):
        from ft_pipeline.core.data.redaction.engine import analyzer_for

        _init_worker()
        self.config = config
        analyzer_for(config)  # spaCy and Presidio load here, while the driver still sends batches

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        done = redact_chunk([json.loads(line) for line in batch["text"]], self.config)
        return {"record": np.array([json.dumps(r, ensure_ascii=False) for r, _ in done], dtype=object),
                "counts": np.array([json.dumps(c) for _, c in done], dtype=object)}
