"""ft-pipeline pii-report EXPORT_DIR: what the residual-PII gate found, and where, for the person
who may read the export. Same scan as export_has_no_residual_pii; each finding with a few words
of the (already redacted) text around it, the finding itself masked as <<ENTITY>>. Exit 0 when
clean, 1 when something was found, 2 for a user's mistake."""
from __future__ import annotations

import json
from pathlib import Path

from ft_pipeline.errors import UserError


def add_parsers(sub) -> None:
    p = sub.add_parser("pii-report", help="where an export still holds PII (the residual-PII gate's findings, in context)")
    p.add_argument("export_dir", metavar="EXPORT_DIR", help="an export directory (train.jsonl, eval.jsonl, ..., task.yaml)")
    p.set_defaults(func=cmd_pii_report)


def cmd_pii_report(args) -> int:
    from ft_pipeline.core.data import residual_pii
    from ft_pipeline.core.data.export import NOT_CHAT

    export_dir = Path(args.export_dir).expanduser()
    if not export_dir.is_dir():
        raise UserError(f"{args.export_dir}: no such export directory")
    if not any(p.stem not in NOT_CHAT for p in export_dir.glob("*.jsonl")):
        raise UserError(f"{args.export_dir}: no export files (train.jsonl, eval.jsonl, ...) in it")
    config = _config(export_dir)
    try:
        scan = residual_pii.scan_export(export_dir, config)
        for f, text in residual_pii.report(export_dir, scan):
            print(f"{f.file} id={f.id} {f.turn} [{f.start}:{f.end}] {f.entity} {f.recognizer} {f.score:.2f}: {text}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a hand-edited file: name it, no traceback
        raise UserError(f"{args.export_dir}: not an export the pipeline wrote ({exc})") from None
    print(json.dumps({"export": str(export_dir), "rows": scan.rows, "findings": len(scan.findings),
                      "records": len(scan.records), "entities": scan.by_entity,
                      "task_texts_not_scanned": scan.task_texts}, sort_keys=True))
    return 1 if scan.findings else 0


def _config(export_dir: Path):
    """The redaction settings of the export's task (its allow list, patterns, kept types): read
    from its task.yaml as written, since the folders it names may not exist where the export is read."""
    import yaml

    from ft_pipeline.core import safe_yaml
    from ft_pipeline.core.data.redaction import RedactionConfig

    path = export_dir / "task.yaml"
    try:
        data = safe_yaml.load(path.read_text(encoding="utf-8"))[0] if path.is_file() else {}
        section = dict((data or {}).get("redaction") or {})
        for screening_only in ("deny_terms", "protected_documents"):
            section.pop(screening_only, None)
        return RedactionConfig.from_task_section(section)
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: redaction: {exc}") from None
