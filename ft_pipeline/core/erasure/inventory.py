"""Every place a record or something derived from it can live, and what erases it there.

One entry per place: where (a glob relative to $FT_PIPELINE_HOME, $DAGSTER_HOME or the values
bucket's prefix; `*` stays within a folder, `**` spans any number of them), what writes it, and the
eraser that reaches it — a function, or `none:` and why the place holds no record data. The first
entry that matches a file is its place (specific entries come before general ones). A test runs the
pipeline and fails on any file no entry lists, so a new writer must say how erasure reaches it; a
forget counts, per place, the files it scanned and the copies it changed (`ft-pipeline erasures`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ft_pipeline.core.erasure.stored_values import PICKLE_START

FT, DAGSTER, S3 = "FT_PIPELINE_HOME", "DAGSTER_HOME", "S3"
E = "ft_pipeline.core.erasure."
FILTER_JSONL, FILTER_CSV = E + "formats.filter_jsonl", E + "formats.filter_csv"
DAGSTER_RECORDS = "ft_pipeline.defs.release.erasure_dagster."


@dataclass(frozen=True)
class Place:
    name: str
    root: str  # FT, DAGSTER or S3
    pattern: str
    writer: str
    eraser: str  # a dotted function name, or "none: <why it holds no record data>"
    pickles_only: bool = False  # its eraser reads pickles only: any other file there is unlisted


PLACES = (
    # the raw zone: unredacted text, rewritten line by line (requests._plan finds the ids there)
    Place("raw copy", FT, "raw/raw_dataset/*/records.jsonl", "raw_dataset", FILTER_JSONL),
    Place("quarantine", FT, "raw/*/*/quarantine.jsonl", "raw_dataset, redacted_dataset", FILTER_JSONL),
    Place("redact quarantine", FT, "raw/quarantine/*.jsonl", "ft-pipeline redact", FILTER_JSONL),
    Place("inbox (JSONL)", FT, "raw/inbox/**/*.jsonl", "a user, for the inbox sensor", FILTER_JSONL),
    Place("inbox (CSV)", FT, "raw/inbox/**/*.csv", "a user, for the inbox sensor", FILTER_CSV),
    Place("erasure journal and suppression list", FT, "raw/erasure/**", "ft-pipeline forget",
          "none: the request itself; the suppression list keeps what it names out of every later ingest"),
    Place("digest key", FT, "raw/digest.key", "core/digest.py", "none: the HMAC key of the id digests"),
    Place("source aliases", FT, "raw/*source_aliases*", "core/data/source_names.py",
          "none: where sources named after people really are (the files themselves are the user's)"),
    # derived data: ids as keyed digests, text pseudonymized
    Place("redacted data", FT, "data/redacted_dataset/*/*.jsonl", "redacted_dataset", FILTER_JSONL),
    Place("export", FT, "data/jsonl_export/*/*.jsonl", "jsonl_export", FILTER_JSONL),
    Place("export task file", FT, "data/jsonl_export/*/task.yaml", "jsonl_export", "none: the task definition"),
    # attributes (per test record), splits and contamination: ids and facts beside the export
    Place("export sidecars", FT, "data/jsonl_export_sidecars/*/*.jsonl", "jsonl_export", FILTER_JSONL),
    Place("label review sample", FT, "data/label_review_sample/*/*.csv", "label_review_sample", FILTER_CSV),
    Place("trainer's export", FT, "export/*.jsonl", "a user, for ft-pipeline train", FILTER_JSONL),
    Place("report predictions", FT, "reports/*/*/*.jsonl", "eval_report, fit_assessment", FILTER_JSONL),
    Place("reports", FT, "reports/*/*/*.md", "bias_report, eval_report, fit_assessment",
          "none: counts, metrics and verdicts per group, never a record"),
    Place("report plots", FT, "reports/**/*.png", "bias_report, eval_report", "none: plots of counts and metrics"),
    Place("production traffic", FT, "traffic/**/*.jsonl", "production_traffic (ft-pipeline serve)", FILTER_JSONL),
    Place("live rollout evidence", FT, "rollouts/*/*.jsonl", "ft-pipeline serve (a live rollout)",
          "none: per request, each version's status, redacted answer, masked counts and latency; no record"),
    Place("server log", FT, "logs/*.log", "ServerResource", "none: start-up and errors only, never a request"),
    Place("evidence bundles", FT, "evidence/**", "ft-pipeline evidence",
          "none: lineage digests and counts, the card, the erasure log's digests"),
    # models: trained on records, so deleted (or marked and retired) rather than rewritten
    Place("checkpoints", FT, "models/adapter_weights/*/checkpoints/**", "the trainer", E + "adapters.delete"),
    Place("adapters", FT, "models/adapter_weights/*/**", "adapter_weights", E + "adapters.delete"),
    Place("preset checkpoints", FT, "adapters/*/checkpoints/**", "ft-pipeline train, a recipe stage", E + "adapters.delete"),
    Place("preset adapters", FT, "adapters/*/**", "ft-pipeline train, a recipe stage", E + "adapters.delete"),
    Place("registry adapter", FT, "registry/*/v*/adapter/**", "promoted_model", E + "marks.mark"),
    Place("registry merged weights", FT, "registry/*/v*/merged/**", "promoted_model", E + "marks.mark"),
    Place("registry lineage", FT, "registry/*/v*/lineage.json", "promoted_model", E + "marks.scrub_lineage"),
    Place("registry erasure marks", FT, "registry/*/v*/erasure.json", "ft-pipeline forget", E + "marks.mark"),
    Place("registry card", FT, "registry/*/v*/MODEL_CARD.md", "promoted_model", E + "marks.mark"),
    Place("registry training digests", FT, "registry/*/v*/training_ids.json", "promoted_model",
          "none: keyed digests kept as the evidence marks.plan reads (the key stays in the raw zone)"),
    Place("registry rollout log", FT, "registry/*/v*/rollout.jsonl", "ft-pipeline rollout, serve",
          "none: rollout steps and online metrics"),
    Place("registry pointers", FT, "registry/**", "promoted_model, rollback", "none: version names"),
    Place("MLflow store", FT, "mlflow/**", "MlflowResource", "ft_pipeline.core.tracking.models.mirror_erasure"),
    Place("datasets cache", FT, "cache/datasets/**", "the trainer (datasets library)", E + "copies.remove_tree"),
    Place("capability probe cache", FT, "cache/capability/*.json", "eval_report", "none: scores on public probe items"),
    Place("name gazetteer", FT, "cache/name_gazetteer-*.txt", "redacted_dataset", "none: Faker's name lists"),
    Place("instance lock", DAGSTER, ".instance.lock", "ft-pipeline (defs/instance.py)",
          "none: an empty file the CLI opens the instance under"),
    Place("erasure log", FT, "audit/erasures.jsonl", "ft-pipeline forget", "none: counts and id digests, for auditors"),
    # the Dagster instance
    Place("compute logs", DAGSTER, "storage/*/compute_logs/**", "every step (stdout, stderr)",
          DAGSTER_RECORDS + "scrub_compute_logs"),
    Place("stored values", DAGSTER, "storage/**", "the IO manager", E + "stored_values.scrub_stored_value", pickles_only=True),
    Place("event log", DAGSTER, "history/**", "Dagster", DAGSTER_RECORDS + "scrub_event_log"),
    Place("schedules and sensor ticks", DAGSTER, "schedules/**", "Dagster", "none: cursors and tick results"),
    Place("instance config", DAGSTER, "*.yaml", "the user", "none: dagster.yaml, workspace.yaml"),
    Place("daemon log", DAGSTER, "logs/**", "Dagster", "none: daemon and sensor messages, never a record"),
    Place("telemetry id", DAGSTER, ".telemetry/**", "Dagster", "none: an instance id"),
    Place("S3 stored values", S3, "**", "the S3 IO manager", E + "s3.scrub"),
)


@lru_cache(maxsize=None)
def _regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def place_of(root: str, relative: str, base: Path | None = None) -> Place | None:
    """The first place whose pattern matches a path (POSIX, relative to its root); with `base`
    (the root's folder), a place whose eraser reads pickles only takes only pickles."""
    return next((p for p in PLACES if p.root == root and _regex(p.pattern).match(relative)
                 and not (p.pickles_only and base is not None and not _pickled(base / relative))), None)


def _pickled(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(1) == PICKLE_START


def dagster_home() -> Path | None:
    env = os.environ.get("DAGSTER_HOME")
    return Path(env).expanduser().resolve() if env else None


def files(base: Path | None):
    if base is None or not base.is_dir():
        return
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder, name).relative_to(base).as_posix()


def unlisted(ft_home: Path, dh: Path | None) -> list[str]:
    """Every file under the two homes no place lists, as `<root>/<relative path>`."""
    return [f"{root}/{rel}" for root, base in ((FT, ft_home), (DAGSTER, dh))
            for rel in files(base) if place_of(root, rel, base) is None]


def scan(ft_home: Path, dh: Path | None) -> dict[str, int]:
    """Files per place under the two homes (every place named, 0 where none is)."""
    counts = {p.name: 0 for p in PLACES}
    for root, base in ((FT, ft_home), (DAGSTER, dh)):
        for rel in files(base):
            place = place_of(root, rel, base)
            if place is not None:
                counts[place.name] += 1
    return counts


def _place_of_path(path: str, ft_home: Path, dh: Path | None) -> str:
    for root, base in ((FT, ft_home), (DAGSTER, dh)):
        if base is not None and Path(path).is_relative_to(base):
            place = place_of(root, Path(path).relative_to(base).as_posix())
            if place is not None:
                return place.name
    return "elsewhere"  # a value directory outside $DAGSTER_HOME, or a place no entry lists


def reached(journal: dict, ft_home: Path, dh: Path | None) -> dict[str, dict]:
    """{place: {scanned, changed}} for a request's journal: the files the plan found per place and
    the copies the request rewrote, deleted or marked there (places with neither left out)."""
    changed: dict[str, int] = {}

    def add(name: str) -> None:
        changed[name] = changed.get(name, 0) + 1

    for item in journal["files"] + [v for v in journal["values"] if "key" not in v]:
        add(_place_of_path(item["path"], ft_home, dh))
    for _ in (v for v in journal["values"] if "key" in v):
        add("S3 stored values")
    for _ in journal["caches"]:
        add("datasets cache")
    runs = journal.get("runs", {"adapters": [], "checkpoints": []})
    for folder in [a["path"] for a in runs["adapters"]] + runs["checkpoints"]:
        add(_place_of_path(str(ft_home / folder / "training_ids.json"), ft_home, None))
    for _ in journal["models"]:
        add("registry erasure marks")
    for _ in journal.get("lineages", []):
        add("registry lineage")
    scanned = journal.get("places", {})
    return {name: {"scanned": scanned.get(name), "changed": changed.get(name, 0)}
            for name in [p.name for p in PLACES] + sorted(set(changed) - {p.name for p in PLACES})
            if scanned.get(name) or changed.get(name)}


def render_md(entries: list[dict]) -> str:
    """Per request: the places scanned (files per inventory entry, copies changed there), the
    adapters and checkpoints deleted, the model versions marked or retired, the lineages scrubbed."""
    where = {p.name: f"`{p.root}/{p.pattern}`" for p in PLACES}
    lines = []
    for e in entries:
        lines += ["", f"## `{e['request_id']}`: places scanned", "", "| place | where | files scanned | copies changed |",
                  "|---|---|---:|---:|"]
        lines += [f"| {name} | {where.get(name, '—')} | {c['scanned'] if c['scanned'] is not None else '—'} | {c['changed']} |"
                  for name, c in e.get("places", {}).items()] or ["| (not recorded for this request) | | | |"]
        models = [("marked", v) for v in e.get("models_marked", [])] + [("retired", v) for v in e.get("models_retired", [])]
        deleted = [("adapter", p) for p in e.get("adapters_deleted", [])] + [("checkpoint", p) for p in e.get("checkpoints_deleted", [])]
        lines += ["", f"## `{e['request_id']}`: models", "", "| what | path or version |", "|---|---|"]
        lines += [f"| {what} deleted | `{path}` |" for what, path in deleted]
        lines += [f"| version {what} | {version} |" for what, version in models]
        lines += [f"| lineage scrubbed | {version} |" for version in e.get("lineages_scrubbed", [])]
        if not (deleted or models or e.get("lineages_scrubbed")):
            lines.append("| none | — |")
        if "dagster_runs_touched" in e:  # requests from before Dagster's records were rewritten lack it
            runs = e["dagster_runs_touched"]
            lines += ["", f"## `{e['request_id']}`: Dagster's records", "",
                      f"{e.get('dagster_events_rewritten', 0)} events and {e.get('compute_logs_rewritten', 0)} compute "
                      f"logs rewritten, in {len(runs)} run(s)" + (": " + ", ".join(f"`{r}`" for r in runs) if runs else "")]
    return "\n".join(lines) + "\n" if lines else ""
