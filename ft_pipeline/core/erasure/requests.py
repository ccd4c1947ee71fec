"""Right to erasure: a person's records removed from every copy, models trained on them marked.

- The suppression list (keyed digests of the ids and of each value's tokens) is what ingestion
  consults, so a retrain from the original source cannot bring an erased record back.
- Files are read by format (JSONL, CSV, Parquet, Markdown) in their own encoding; a value matches
  as whole tokens; a link is followed to its target inside the home, and one leading outside it
  refuses the whole request before anything changes.
- A request is planned first, read-only: the raw-zone lines that match its ids or values (which
  gives the ids of the records they identify), then every derived file, stored asset value (local
  and S3), datasets cache and model version that holds one of those ids. The plan goes to the
  request's journal (raw zone: it holds the ids and values) before anything changes; then each
  copy is rewritten atomically, file by file, and the models are marked.
- A forget killed half-way is finished by the next forget, from its journal: same request id,
  same counts. A request identical to a finished one finds nothing left and writes nothing.
- Outside the raw zone a record's id is its keyed digest (redaction pseudonymizes it), so copies
  there are found by the digests of the raw ids (`outside_ids`).
- The erasure log (outside the raw zone) is what auditors see: request id, time, counts per kind
  of artifact and keyed digests of the record ids, never the values that identified them.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ft_pipeline.core import paths
from ft_pipeline.core.data.suppression import (Suppression, add_entries, entries_for, erased_digests, erasure_dir,
                                               erasure_lock, erasure_log, log_path, suppression_entries, tokens)
from ft_pipeline.core.erasure import adapters, copies, formats, inventory, marks, stored_values
from ft_pipeline.core.erasure import s3 as erasure_s3
from ft_pipeline.core.erasure.copies import ErasureError
from ft_pipeline.core.jsonl import atomic_text

MIN_VALUE_CHARS = 4  # "li" or "an" would erase half the corpus; an email, phone or name is longer


def criteria(ids: Iterable[str] = (), values: Iterable[str] = ()) -> dict:
    """The request's criteria, normalised (so the same request spelled twice is the same request):
    a value as the tokens it is matched by, casefolded and joined by one space."""
    ids, given = [str(i).strip() for i in ids], [str(v).strip() for v in values]
    if any(not i for i in ids):
        raise ErasureError("--id must not be blank")
    if any(not v for v in given):
        raise ErasureError("--value must not be blank")
    values = [" ".join(tokens(v)) for v in given]
    if any(not v for v in values):
        raise ErasureError("--value must hold a letter or digit: it is matched as whole words")
    if any(len(v) < MIN_VALUE_CHARS for v in values):
        raise ErasureError(f"a --value under {MIN_VALUE_CHARS} characters would match unrelated records; "
                           "give a full email address, phone number or name")
    if not ids and not values:
        raise ErasureError("forget needs at least one record id (--id) or identifying value (--value)")
    return {"ids": sorted(set(ids)), "values": sorted(set(values))}


@dataclass
class Stores:
    """Where copies live besides $FT_PIPELINE_HOME: the IO manager's local directory and bucket."""
    value_dirs: list[str] = field(default_factory=list, metadata={"help": "directories of pickled asset values"})
    s3: erasure_s3.S3Store | None = field(default=None, metadata={"help": "the bucket of stored asset values"})


def forget(ids: Iterable[str] = (), values: Iterable[str] = (), *, stores: Stores | None = None, retire: bool = False,
           after: Callable[[dict], dict] | None = None) -> list[dict]:
    """Carries out an erasure request; returns one summary per request it finished: first any
    earlier request a crash left unfinished, then this one. `after(summary)` runs before a request
    is recorded as done (the CLI reports it to Dagster there); it must be safe to repeat."""
    wanted = criteria(ids, values)
    with erasure_lock():
        journals = _journals()
        unfinished = [j for j in journals if j["state"] != "done"]
        summaries = [_execute(j, "resumed", after) for j in unfinished if j["criteria"] != wanted]
        mine = next((j for j in unfinished if j["criteria"] == wanted), None)
        if mine is not None:
            return summaries + [_execute(mine, "resumed", after)]
        journal = _plan(wanted, stores or Stores(), retire)
        if journal is None:
            same = [j["request_id"] for j in journals if j["criteria"] == wanted]
            current = marks.tainted_current(_registry(), erased_digests())
            return summaries + [{"status": "nothing to do", "same_as": same, "criteria": _counts(wanted),
                                 "current_trained_on_erased_data": [f"{c['name']}/{c['version']}" for c in current]}]
        _write_journal(journal)
        return summaries + [_execute(journal, "done", after)]


def _plan(wanted: dict, stores: Stores, retire: bool) -> dict | None:
    """Every copy the request must reach, found without changing anything; None if none is left."""
    home, raw = paths.pipeline_home(), paths.raw_zone()
    present = {(e["kind"], e["digest"]) for e in suppression_entries()}
    new_suppression = [e for e in entries_for(wanted["ids"], wanted["values"], "") if (e["kind"], e["digest"]) not in present]
    request = Suppression.request(wanted["ids"], wanted["values"])
    files, ids = [], set(wanted["ids"])
    # Raw-zone files first: their matches give the ids every derived copy is then found by. A
    # file reached through a link counts once, under its own path, which is what is rewritten.
    found = copies.record_files(home, skip=(erasure_dir(), home / "audit", home / "registry", paths.datasets_cache()))
    in_raw = [p for p in found if raw in p.parents]
    for path in in_raw:
        n, hit = _filter(path, request, ids, raw=True, write=False)
        if n:  # Markdown keeps its text with each value replaced: occurrences, not records
            unit = "occurrences" if path.suffix.lower() == ".md" else "records"
            files.append({"path": str(path), "kind": copies.kind_of(path, home), "records": 0, unit: n, "raw": True})
            ids.update(i for i in hit if i)
    derived = copies.outside_ids(ids)
    for path in (p for p in found if raw not in p.parents):
        n, _ = _filter(path, request, derived, raw=False, write=False)
        if n:
            files.append({"path": str(path), "kind": copies.kind_of(path, home), "records": n, "raw": False})
    values = []
    for root in map(Path, stores.value_dirs):
        for path in stored_values.stored_values(root) if root.is_dir() else ():
            n = stored_values.scrub_stored_value(path, derived, root=root)
            if n:
                values.append({"path": str(path), "kind": copies.value_kind(path, root), "records": n})
    if stores.s3 is not None:
        values += erasure_s3.scan(stores.s3, derived)
    models, unknown = marks.plan(_registry(), copies.trained_digests(ids), retire)
    runs = adapters.plan(home, copies.trained_digests(ids))  # adapters and checkpoints: deleted
    lineages = marks.lineage_plan(_registry(), derived | copies.trained_digests(ids))
    if not (new_suppression or files or values or models or runs["adapters"] or runs["checkpoints"] or lineages):
        return None
    cache = paths.datasets_cache()
    return {
        "request_id": uuid.uuid4().hex[:12], "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "state": "planned", "criteria": wanted, "ids": sorted(ids), "retire": retire,
        "files": files, "values": values, "caches": [str(cache)] if cache.exists() else [], "models": models,
        "models_unverifiable": unknown, "s3": asdict(stores.s3) if stores.s3 else None,
        "runs": runs, "lineages": lineages, "places": inventory.scan(home, inventory.dagster_home()),
    }


def _execute(journal: dict, status: str, after) -> dict:
    """Brings every planned copy to its erased state. Each step leaves a copy either as it was or
    fully rewritten, and skips a copy already rewritten, so a rerun after a crash completes it."""
    ids = set(journal["ids"])
    derived = copies.outside_ids(ids)
    request = Suppression.request(ids, journal["criteria"]["values"])
    _add_suppression(journal)
    for f in journal["files"]:
        if Path(f["path"]).exists():  # a run folder deleted since holds nothing any more
            _filter(Path(f["path"]), request, ids if f["raw"] else derived, raw=f["raw"], write=True)
    store = erasure_s3.S3Store(**journal["s3"]) if journal.get("s3") else None
    for v in journal["values"]:
        if "key" in v:
            erasure_s3.scrub(store, v["key"], derived)
        elif Path(v["path"]).exists():
            stored_values.scrub_stored_value(Path(v["path"]), derived, write=True)
    for cache in journal["caches"]:
        copies.remove_tree(Path(cache))
    for model in journal["models"]:
        marks.mark(_registry(), model, journal["request_id"], journal["at"], journal["retire"])
    adapters.delete(paths.pipeline_home(), journal.get("runs", {"adapters": [], "checkpoints": []}))
    for lineage in journal.get("lineages", []):
        marks.scrub_lineage(_registry(), lineage, derived | copies.trained_digests(ids))
    summary = _summary(journal)
    from ft_pipeline.core.tracking.models import mirror_erasure  # MLflow's copies: tagged, retired weights deleted

    mirror_erasure(journal, summary["removed_id_digests"])
    current = marks.tainted_current(_registry(), set(summary["removed_id_digests"]))
    summary["current_trained_on_erased_data"] = [f"{c['name']}/{c['version']}" for c in current]
    if after is not None:
        rewritten = [f["path"] for f in journal["files"] if f["raw"]]  # raw-zone paths: never logged
        # ids and values let `after` find them in Dagster's own records; only what it returns is kept
        found = {"ids": journal["ids"], "values": journal["criteria"]["values"]}
        summary.update(after({**summary, **found, "rewritten_paths": rewritten, "tainted": current}) or {})
    _record(summary)
    journal["state"] = "done"
    _write_journal(journal)
    return {**summary, "status": status}


def _summary(journal: dict) -> dict:
    """The request as the erasure log keeps it: counts per kind of artifact and digests only."""
    def per_kind(items: list[dict], unit: str) -> dict:
        out: dict = defaultdict(lambda: {unit: 0, "records": 0})
        for item in items:
            out[item["kind"]][unit] += 1
            out[item["kind"]]["records"] += item["records"]
        return dict(sorted(out.items()))

    raw = [f for f in journal["files"] if f["raw"]]
    return {
        "request_id": journal["request_id"], "at": journal["at"], "criteria": _counts(journal["criteria"]),
        "records_removed": sum(f["records"] for f in raw), "records_erased": len(journal["ids"]),
        "occurrences_redacted": sum(f.get("occurrences", 0) for f in raw),
        "files_rewritten": len(journal["files"]), "files": per_kind(journal["files"], "files"),
        "stored_values": per_kind(journal["values"], "objects"), "caches_cleared": len(journal["caches"]),
        "models_marked": [f"{m['name']}/{m['version']}" for m in journal["models"] if m["hits"]],
        "models_retired": [f"{m['name']}/{m['version']}" for m in journal["models"]] if journal["retire"] else [],
        "models_unverifiable": journal["models_unverifiable"],
        "removed_id_digests": sorted(copies.trained_digests(set(journal["ids"]))),
        **adapters.summary(journal.get("runs", {"adapters": [], "checkpoints": []})),
        "lineages_scrubbed": [f"{m['name']}/{m['version']}" for m in journal.get("lineages", [])],
        "places": inventory.reached(journal, paths.pipeline_home(), inventory.dagster_home()),
    }



def _counts(wanted: dict) -> dict:
    return {"ids": len(wanted["ids"]), "values": len(wanted["values"])}


def _has_id(ids: set[str]):
    return lambda obj: isinstance(obj, dict) and str(obj.get("id")) in ids


def _filter(path: Path, request: Suppression, ids: set[str], raw: bool, write: bool) -> tuple[int, list[str]]:
    """What one file holds of the request, by its format; rewritten with `write`. In the raw zone
    a row goes when it names an id or a value (Markdown: each value becomes `[erased]`); outside
    it, when it carries one of the records' ids as copies there hold them (`ids`)."""
    suffix = path.suffix.lower()
    if suffix == ".md":
        if raw:
            return formats.redact_markdown(path, request.spans, write), []
        return formats.drop_markdown_lines(path, formats.id_lines(ids), write), []
    matches = request.matches if raw else _has_id(ids)
    reader = {".csv": formats.filter_csv, ".parquet": formats.filter_parquet}.get(suffix, formats.filter_jsonl)
    try:
        return reader(path, matches, write)
    except (OSError, ValueError, csv.Error) as exc:  # pyarrow's errors are OSError / ValueError subclasses
        home = paths.pipeline_home()
        raise ErasureError(f"{path.relative_to(home) if home in path.parents else path.name}: "
                           f"cannot be read as {suffix[1:]} ({type(exc).__name__})") from None


def _registry() -> Path:
    return paths.pipeline_home() / "registry"


def _add_suppression(journal: dict) -> None:
    """Keyed digests of the request's ids and values join the list ingestion consults (the values
    themselves stay in the request's journal only)."""
    add_entries(entries_for(journal["criteria"]["ids"], journal["criteria"]["values"], journal["request_id"]))


def _journal_path(request_id: str) -> Path:
    return erasure_dir() / "requests" / f"{request_id}.json"


def _journals() -> list[dict]:
    folder = erasure_dir() / "requests"
    found = [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []
    return sorted(found, key=lambda j: (j["at"], j["request_id"]))


def _write_journal(journal: dict) -> None:
    with atomic_text(_journal_path(journal["request_id"])) as fh:
        json.dump(journal, fh)


def _record(summary: dict) -> None:
    """Adds the request to the erasure log, or replaces its entry: a resumed request appears once."""
    entries = [e for e in erasure_log() if e["request_id"] != summary["request_id"]] + [summary]
    with atomic_text(log_path()) as fh:
        fh.writelines(json.dumps(e, sort_keys=True) + "\n" for e in sorted(entries, key=lambda e: e["at"]))


