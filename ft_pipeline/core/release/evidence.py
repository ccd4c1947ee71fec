"""The evidence bundle of one model version: one folder and a zip a regulator or auditor can take
away (`ft-pipeline evidence --name N --version V`).

    <name>-<version>/manifest.json       what the bundle holds: every file's sha256, the Annex IV
                                         sections, the compute verdict, the run log's head hash
                     datasheet.{json,md}  sources, redaction counts, quarantine, label gate, bias
                     model_card.md        the registry's card (gates, ε/δ, memorization results)
                     gates.md             every release gate's verdict with its interval
                     compute.json         6 · parameters · tokens and the EU AI Act fine-tuner verdict
                     erasure_ledger.jsonl the erasure requests that concern this version
                     run_log.jsonl        the lineage as events, hash-chained: each line carries the
                                          sha256 of the line before it (the first: 64 zeros)
    <name>-<version>.zip                  the same files, fixed timestamps, sorted entries

Everything is built from what the registry froze at promotion and from the erasure log, with
sorted keys and no clock reads, so regenerating gives byte-identical output. `verify` recomputes
the chain: an edited run-log line breaks the hash the next line (or, for the last, the manifest)
recorded for it, and is named by its line number.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from ft_pipeline.core.release import evidence_sections as sections

GENESIS = "0" * 64
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no build time leaks into the bytes
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ft-pipeline evidence bundle manifest",
    "type": "object",
    "required": ["bundle_format", "name", "version", "files", "annex_iv", "compute", "run_log"],
    "properties": {
        "bundle_format": {"const": 1},
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
        "version": {"type": "string", "pattern": "^v[0-9]+$"},
        "promoted_at": {"type": ["string", "null"]},
        "files": {"type": "object", "minProperties": 1,
                  "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        "annex_iv": {"type": "array", "minItems": 9, "maxItems": 9, "items": {"oneOf": [
            {"type": "object", "required": ["heading", "status", "files", "summary"],
             "properties": {"status": {"const": "filled"}, "files": {"type": "array", "minItems": 1}}},
            {"type": "object", "required": ["heading", "status", "reason"],
             "properties": {"status": {"const": "not_applicable"}, "reason": {"type": "string", "minLength": 10}}}]}},
        "compute": {"type": "object", "required": ["flops", "gpai_provider", "verdict"],
                    "properties": {"gpai_provider": {"enum": ["yes", "no", "unknown"]}}},
        "privacy": {"type": ["object", "null"]},
        "privacy_total": {"type": ["object", "null"], "required": ["epsilon", "delta", "bounded", "parts"]},
        "memorization": {"type": ["object", "null"]},
        "run_log": {"type": "object", "required": ["lines", "head_sha256"],
                    "properties": {"lines": {"type": "integer", "minimum": 1},
                                   "head_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}},
    },
}


class EvidenceError(Exception):
    """A bundle that fails verification: the message names the file and, for the run log, the line."""


def _json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def erasure_ledger(name: str, version: str, version_dir: Path, entries: list[dict]) -> list[dict]:
    """The erasure log's entries that marked or retired this version, or that its marks name."""
    from ft_pipeline.core.release import registry

    tag = f"{name}/{version}"
    marked = {r["request_id"] for r in (registry.erasure_marks(version_dir) or {}).get("requests", [])}
    return [e for e in entries if e.get("request_id") in marked or tag in e.get("models_marked", [])
            or tag in e.get("models_retired", [])]


def run_log_events(lineage: dict, ledger: list[dict]) -> list[dict]:
    """The release's history as events: every materialization and check it rests on, the promotion,
    then the erasures that concern it."""
    events = [{"event": "materialization", **{k: a.get(k) for k in ("asset", "partition", "run_id", "timestamp",
                                                                       "code_version", "sha256")}}
              for a in lineage.get("assets", []) if a.get("materialized")]
    events += [{"event": "check", **{k: c.get(k) for k in ("check", "asset", "partition", "passed", "run_id")}}
               for c in lineage.get("checks", [])]
    events.append({"event": "promotion", "name": lineage["name"], "version": lineage["version"],
                   "at": lineage.get("promoted_at"), "run_id": lineage.get("run_id"),
                   "code_version": lineage.get("code_version")})
    events += [{"event": "erasure", "request_id": e.get("request_id"), "at": e.get("at"),
                "records_erased": e.get("records_erased")} for e in ledger]
    return events


def chain(events: list[dict]) -> tuple[str, str]:
    """(jsonl text, sha256 of its last line): each line carries the sha256 of the line before it."""
    lines, previous = [], GENESIS
    for seq, event in enumerate(events, 1):
        line = json.dumps({"seq": seq, **event, "prev_sha256": previous}, sort_keys=True, ensure_ascii=False)
        lines.append(line)
        previous = _sha(line.encode("utf-8"))
    return "".join(line + "\n" for line in lines), previous


def build(version_dir: Path, erasure_entries: list[dict]) -> dict[str, bytes]:
    """Every file of the bundle (name -> bytes), manifest.json included."""
    from ft_pipeline.core.release import registry

    lineage = registry.read_manifest(version_dir)
    name, version = lineage["name"], lineage["version"]
    sheet = sections.datasheet(lineage)
    compute = sections.compute(lineage, version_dir)
    ledger = erasure_ledger(name, version, version_dir, erasure_entries)
    log, head = chain(run_log_events(lineage, ledger))
    card = Path(version_dir) / "MODEL_CARD.md"
    files = {
        "datasheet.json": _json(sheet), "datasheet.md": sections.datasheet_markdown(sheet),
        "model_card.md": card.read_text(encoding="utf-8") if card.is_file() else "(no model card in the registry)\n",
        "gates.md": "# Release gates\n\n" + sections.gates_table(lineage),
        "compute.json": _json(compute),
        "erasure_ledger.jsonl": "".join(json.dumps(e, sort_keys=True) + "\n" for e in ledger),
        "run_log.jsonl": log,
    }
    blobs = {k: v.encode("utf-8") for k, v in files.items()}
    verdicts = (lineage.get("evaluation") or {}).get("verdicts") or {}
    manifest = {
        "bundle_format": 1, "name": name, "version": version, "promoted_at": lineage.get("promoted_at"),
        "files": {k: _sha(v) for k, v in sorted(blobs.items())},
        "annex_iv": sections.annex_iv(lineage, sheet, compute, ledger),
        "compute": compute, "privacy": (lineage.get("training") or {}).get("privacy"),
        "privacy_total": (lineage.get("training") or {}).get("privacy_total"),
        "memorization": verdicts.get("no_canary_memorization"),
        "run_log": {"lines": log.count("\n"), "head_sha256": head},
    }
    validate_manifest(manifest)
    return {**blobs, "manifest.json": _json(manifest).encode("utf-8")}


def validate_manifest(manifest: dict) -> None:
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(top level)"
        raise EvidenceError(f"manifest.json: {where}: {errors[0].message}")


def write(files: dict[str, bytes], out: Path, stem: str) -> tuple[Path, Path]:
    """<out>/<stem>/ and <out>/<stem>.zip, each replaced whole (a failed write leaves the old one)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=out))
    try:
        folder = tmp / stem
        folder.mkdir()
        for rel, data in files.items():
            (folder / rel).write_bytes(data)
        with zipfile.ZipFile(tmp / f"{stem}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for rel in sorted(files):
                info = zipfile.ZipInfo(f"{stem}/{rel}", date_time=ZIP_TIME)
                info.external_attr, info.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
                zf.writestr(info, files[rel])
        shutil.rmtree(out / stem, ignore_errors=True)
        folder.replace(out / stem)
        (tmp / f"{stem}.zip").replace(out / f"{stem}.zip")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / stem, out / f"{stem}.zip"


def verify(folder: Path) -> dict:
    """The manifest against its schema, every file against its digest, and the run log's chain;
    EvidenceError names the first problem (for the run log: the line that was edited)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"{folder / 'manifest.json'}: not a readable manifest ({exc.__class__.__name__})") from None
    validate_manifest(manifest)
    lines = (folder / "run_log.jsonl").read_bytes().split(b"\n")
    lines = lines[:-1] if lines and lines[-1] == b"" else lines
    recorded = []  # the hash each line carries for the line before it
    for i, line in enumerate(lines, 1):
        try:
            recorded.append(json.loads(line)["prev_sha256"])
        except (ValueError, KeyError, TypeError):
            raise EvidenceError(f"run_log.jsonl line {i}: edited (not a run-log entry)") from None
    if not lines or recorded[0] != GENESIS:
        raise EvidenceError("run_log.jsonl line 1: edited (the chain does not start at the genesis hash)")
    # Line j's hash is recorded by line j + 1, the last line's by the manifest: the first line whose
    # bytes no longer hash to what was recorded for it is the edited one.
    for j, line in enumerate(lines, 1):
        expected = recorded[j] if j < len(lines) else manifest["run_log"]["head_sha256"]
        if _sha(line) != expected:
            raise EvidenceError(f"run_log.jsonl line {j}: edited (its sha256 is not the one recorded after it)")
    if len(lines) != manifest["run_log"]["lines"]:
        raise EvidenceError(f"run_log.jsonl line {len(lines)}: lines added or cut (the manifest records "
                            f"{manifest['run_log']['lines']})")
    for rel, digest in manifest["files"].items():
        path = folder / rel
        if not path.is_file() or _sha(path.read_bytes()) != digest:
            raise EvidenceError(f"{rel}: missing or changed since the bundle was written")
    return manifest
