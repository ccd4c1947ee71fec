"""Blocking compliance gates on the data assets. ERROR severity and blocking: a failure stops
everything downstream in the run, and adapter_weights re-verifies them before it trains.
The gates on redacted_dataset run per source partition: every file must pass on its own."""

import dagster as dg
from pydantic import Field

from ft_pipeline.core.data import export, labels
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.defs.data.assets import bias_report, jsonl_export, redacted_dataset
from ft_pipeline.defs.data.partitions import RAW_FILES


class LabelGateConfig(dg.Config):
    min_coverage: float = Field(default=0.95, description="smallest share of human-verified labels")
    min_kappa: float = Field(default=0.6, description="smallest Cohen's kappa where records carry two labels")


@dg.asset_check(asset=redacted_dataset, blocking=True, partitions_def=RAW_FILES, description="Share of human-verified labels is at least min_coverage (default 95%).")
def labels_are_verified(config: LabelGateConfig, redacted_dataset: dict) -> dg.AssetCheckResult:
    report = labels.verify_labels(iter_jsonl(redacted_dataset["path"]))
    return dg.AssetCheckResult(
        passed=report.total > 0 and report.coverage >= config.min_coverage,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{report.verified}/{report.total} labels verified ({report.coverage:.1%}; gate {config.min_coverage:.0%})",
        # No record ids, not even pseudonyms: the event log is the one copy erasure cannot rewrite
        # (core/erasure/inventory.py). The label review sample, a file it reaches, names records.
        metadata={**report.as_metadata(), "min_coverage": config.min_coverage},
    )


@dg.asset_check(asset=redacted_dataset, blocking=True, partitions_def=RAW_FILES, description="Annotators agree (Cohen's kappa ≥ min_kappa) where records carry two labels.")
def annotators_agree(config: LabelGateConfig, redacted_dataset: dict) -> dg.AssetCheckResult:
    report = labels.verify_labels(iter_jsonl(redacted_dataset["path"]))
    kappa = report.kappa
    return dg.AssetCheckResult(
        # No doubly-labelled records means nothing to disagree on: pass, and say so.
        passed=kappa is None or kappa >= config.min_kappa,
        severity=dg.AssetCheckSeverity.ERROR,
        description="no doubly-labelled records" if kappa is None else f"Cohen's kappa {kappa:.3f} over {len(report.pairs)} pairs (gate {config.min_kappa})",
        metadata={"cohens_kappa": kappa if kappa is not None else -1.0, "pairs": len(report.pairs),
                  "disagreements": report.disagreements, "min_kappa": config.min_kappa},
    )


@dg.asset_check(asset=redacted_dataset, blocking=True, partitions_def=RAW_FILES, description="No record left in the redacted data trips a confidential marker, secret detector or protected document.")
def redacted_dataset_has_no_confidential_content(redacted_dataset: dict) -> dg.AssetCheckResult:
    from ft_pipeline.core.data.export_checks import screen_file
    from ft_pipeline.core.data.redaction import recorded_config

    reasons, ids = screen_file(redacted_dataset["path"], recorded_config(redacted_dataset).screening)
    return dg.AssetCheckResult(
        passed=not ids,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(ids)} records with confidential content",
        metadata={"flagged": len(ids), "reasons": dg.MetadataValue.json(dict(reasons)), "ids": dg.MetadataValue.json(ids[:20])},
    )


@dg.asset_check(asset=bias_report, blocking=True, description="Every attribute's demographic parity of the task's outcome is within the configured bounds; what could not be judged is said.")
def bias_is_within_bounds(bias_report: dict) -> dg.AssetCheckResult:
    summary = bias_report["summary"]
    failed = sorted(a for a, s in summary["attributes"].items() if not s["passed"])
    judged = summary["judged"]
    if failed:
        description = f"out of bounds: {', '.join(failed)}"
    elif judged:
        description = "all judged attributes within bounds" + (
            f" (not judged: {summary['not_judged_reason']})" if summary["not_judged_reason"] else "")
    else:
        description = f"NOT JUDGED: {summary['not_judged_reason']}"
    return dg.AssetCheckResult(
        passed=not failed and (judged or not bias_report.get("require_judgement", False)),
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"verdict": summary["verdict"], "judged": judged,
                  "attributes": dg.MetadataValue.json(summary["attributes"]),
                  "bounds": dg.MetadataValue.json(bias_report["config"])},
    )


@dg.asset_check(asset=jsonl_export, blocking=True, description="Every export file passes the great-expectations suite: ids unique, roles valid, answer last, and every answer fits the task's type (a known label, schema-valid JSON, an extractable final answer).")
def export_schema_is_valid(jsonl_export: dict) -> dg.AssetCheckResult:
    from pathlib import Path

    from ft_pipeline.core import answers
    from ft_pipeline.core.task import TaskConfig

    spec = TaskConfig.from_yaml(Path(jsonl_export["path"]) / "task.yaml")
    results = export.validate_export(jsonl_export["path"],
                                     answer_check=lambda text: answers.check_answer(spec, text, spec.labels))
    failed = {name: r["failures"] for name, r in results.items() if not r["success"]}
    return dg.AssetCheckResult(
        passed=bool(results) and not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="all files valid" if not failed else f"invalid: {', '.join(sorted(failed))}",
        metadata={"files": dg.MetadataValue.json(results), "task_type": spec.type},
    )


@dg.asset_check(asset=jsonl_export, blocking=True, description="A second Presidio pass over every exported text that came from records (not the task's own system prompt, checked when the task loaded) finds no PII the redaction missed; a failure says where: file, id, turn, span, entity, recognizer, score.")
def export_has_no_residual_pii(jsonl_export: dict) -> dg.AssetCheckResult:
    from ft_pipeline.core.data.redaction import recorded_config
    from ft_pipeline.core.data.residual_pii import scan_export

    # The config the data was redacted with: its allow list, kept types and own patterns.
    scan = scan_export(jsonl_export["path"], recorded_config(jsonl_export))
    records = scan.records
    return dg.AssetCheckResult(
        passed=not scan.findings,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(records)} records with residual PII ({len(scan.findings)} findings)"
                    + (f"; see the first in {scan.findings[0].file}, id {scan.findings[0].id}, {scan.findings[0].turn} "
                       f"[{scan.findings[0].start}:{scan.findings[0].end}]; ft-pipeline pii-report {jsonl_export['path']}"
                       if scan.findings else ""),
        # Where, never what: the matched text itself is PII.
        metadata={"records_with_pii": len(records), "findings": len(scan.findings),
                  "entities": dg.MetadataValue.json(scan.by_entity),
                  "where": dg.MetadataValue.json(records[:20]),
                  "locations": _findings_table(scan.table(50)),
                  "task_texts_not_scanned": scan.task_texts},
    )


@dg.asset_check(asset=jsonl_export, blocking=True, description="No exported record trips a confidential marker, secret detector or protected document.")
def export_has_no_confidential_content(jsonl_export: dict) -> dg.AssetCheckResult:
    from ft_pipeline.core.data.export_checks import screen_export
    from ft_pipeline.core.data.redaction import recorded_config

    flagged = screen_export(jsonl_export["path"], recorded_config(jsonl_export).screening)
    return dg.AssetCheckResult(
        passed=not flagged,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(flagged)} exported records with confidential content",
        metadata={"flagged": len(flagged), "where": dg.MetadataValue.json(flagged[:20])},
    )


@dg.asset_check(asset=jsonl_export, blocking=True, description="No eval/test record near-copies a train record (MinHash LSH), and no group (the task's group_key: a conversation, a customer) straddles splits.")
def export_has_no_train_test_overlap(jsonl_export: dict) -> dg.AssetCheckResult:
    from ft_pipeline.core.data.export_checks import cross_split_overlap

    plan = jsonl_export.get("splits") or {}
    threshold = plan.get("threshold", 0.6)
    overlap, straddling = cross_split_overlap(jsonl_export["path"], jsonl_export["sidecars"], threshold)
    problems = [f"{len(overlap)} held-out records near-copy a train record"] if overlap else []
    problems += [f"{len(straddling)} groups straddle splits"] if straddling else []
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or (
            f"no overlap at similarity {threshold}: {plan.get('moved_to_train', 0)} near-copies moved to train and "
            f"{plan.get('dropped', 0)} dropped before export; {plan.get('groups', 0)} groups kept whole"),
        metadata={"near_copies_left": len(overlap), "straddling_groups": len(straddling), "threshold": threshold,
                  "examples": dg.MetadataValue.json([vars(m) for m in overlap[:10]]),
                  "fixed_before_export": dg.MetadataValue.json(plan)},
    )


def _findings_table(rows: list[dict]) -> dg.MetadataValue:
    """The residual-PII gate's findings as a table (first rows only; the total is beside it)."""
    columns = [dg.TableColumn(name, kind) for name, kind in (
        ("file", "string"), ("id", "string"), ("turn", "string"), ("start", "int"), ("end", "int"),
        ("entity", "string"), ("recognizer", "string"), ("score", "float"))]
    return dg.MetadataValue.table([dg.TableRecord(row) for row in rows], schema=dg.TableSchema(columns))
