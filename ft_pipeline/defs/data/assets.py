"""Data preparation: ingest to the raw zone, redact, audit labels and bias, export chat JSONL."""

import csv
from pathlib import Path

import dagster as dg

from ft_pipeline.core.data import bias, export, labels
from ft_pipeline.core.jsonl import iter_jsonl as read_jsonl
from ft_pipeline.defs.common import file_metadata, json_preview, log_progress, run_dir
from ft_pipeline.defs.data.partitions import RAW_FILES, by_partition, source_location
from ft_pipeline.defs.data.configs import (
    BiasAuditConfig,
    ExportRunConfig,
    RawDatasetConfig,
    RedactionRunConfig,
)

GROUP = "data_prep"


@dg.asset(group_name=GROUP, kinds={"jsonl"}, code_version="2", partitions_def=RAW_FILES)
def raw_dataset(context: dg.AssetExecutionContext, config: RawDatasetConfig) -> dict:
    """Raw records of one source file (the partition key: JSONL, CSV or Parquet; a path or s3://
    URI), normalized to the record schema. The copy and its quarantine live in the raw zone."""
    from ft_pipeline.core.data.ingest import ingest

    source = source_location(context.partition_key)
    out = run_dir("raw", "raw_dataset", context.run_id)
    summary = ingest(
        source,
        out / "records.jsonl",
        out / "quarantine.jsonl",
        max_record_bytes=config.max_record_bytes,
        progress=log_progress(context, "ingest"),
    )
    context.add_output_metadata({
        **file_metadata(out / "records.jsonl"),
        "source": context.partition_key,
        "source_sha256": dg.MetadataValue.json(summary["sha256"]),
        "lines": summary["lines"],
        "records": summary["records"],
        "quarantined": summary["quarantined"],
        "erased": summary.get("erased", 0),
        "quarantine_reasons": dg.MetadataValue.json(summary["quarantine_reasons"]),
    })
    return {"path": str(out / "records.jsonl"), "quarantine": str(out / "quarantine.jsonl"), "summary": summary}


@dg.asset(group_name=GROUP, kinds={"presidio"}, code_version="1", partitions_def=RAW_FILES)
def redacted_dataset(context: dg.AssetExecutionContext, config: RedactionRunConfig, raw_dataset: dict) -> dict:
    """One source file with PII/PHI replaced by consistent per-record pseudonyms (Presidio);
    confidential and proprietary records moved to the raw-zone quarantine with their reason."""
    from ft_pipeline.core.data.redaction import redact_file

    out = run_dir("data", "redacted_dataset", context.run_id)
    quarantine = run_dir("raw", "redacted_dataset", context.run_id) / "quarantine.jsonl"
    core_config = config.to_core()
    summary = redact_file(
        raw_dataset["path"], out / "redacted.jsonl", quarantine,
        config=core_config, progress=log_progress(context, "redact"),
    )
    context.add_output_metadata({
        **file_metadata(out / "redacted.jsonl"),
        "records_in": summary["in"],
        "records_out": summary["out"],
        "quarantined": summary["quarantined"],
        "quarantine_reasons": dg.MetadataValue.json(summary["quarantine_reasons"]),
        "entities_redacted": dg.MetadataValue.json(summary["entities"]),
        # The checks and the leakage probe judge the data by the rules it was redacted under.
        "redaction_config": dg.MetadataValue.json(core_config.to_dict()),
        "preview": json_preview(list(_head(out / "redacted.jsonl", 3))),
    })
    return {"path": str(out / "redacted.jsonl"), "quarantine": str(quarantine), "summary": summary,
            "redaction_config": core_config.to_dict()}


@dg.asset(group_name=GROUP, kinds={"csv"}, code_version="1")
def label_review_sample(context: dg.AssetExecutionContext, redacted_dataset: dict) -> dict:
    """A stratified sample of redacted records (per label and verification status) for human
    reviewers to re-check, as CSV."""
    out = run_dir("data", "label_review_sample", context.run_id) / "review_sample.csv"
    rows = labels.review_sample(redacted_records(redacted_dataset))
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=labels.REVIEW_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    strata = sorted({row["stratum"] for row in rows})
    context.add_output_metadata({**file_metadata(out), "rows": len(rows), "strata": len(strata)})
    return {"path": str(out), "rows": len(rows)}


@dg.asset(group_name=GROUP, kinds={"fairlearn"}, code_version="1")
def bias_report(context: dg.AssetExecutionContext, config: BiasAuditConfig, redacted_dataset: dict) -> dict:
    """Representation, label distribution and demographic parity per attribute group (fairlearn)."""
    from ft_pipeline.core import plots

    core_config = config.to_core()
    results = bias.audit(redacted_records(redacted_dataset), core_config)
    markdown = bias.render_markdown(results, core_config)
    chart = plots.grouped_bars(bias.selection_rates(results), "Selection rate (priority high/urgent) by group")
    out = run_dir("reports", "bias_report", context.run_id) / "bias_report.md"
    out.write_text(markdown + "\n" + plots.png_to_markdown(chart, "selection rates") + "\n")
    summary = bias.summary(results)
    context.add_output_metadata({
        **file_metadata(out),
        "report": dg.MetadataValue.md(markdown),
        "selection_rates": dg.MetadataValue.md(plots.png_to_markdown(chart, "selection rates")),
        "attributes": len(results),
        "failed_attributes": dg.MetadataValue.json([a for a, s in summary.items() if not s["passed"]]),
    })
    return {"path": str(out), "summary": summary, "config": core_config.__dict__ | {"positive_values": list(core_config.positive_values)}}


@dg.asset(group_name=GROUP, kinds={"jsonl"}, code_version="1", deps=[bias_report])
def jsonl_export(context: dg.AssetExecutionContext, config: ExportRunConfig, redacted_dataset: dict) -> dict:
    """Chat JSONL train/eval/test (+ DPO preference pairs), the one format training reads.
    Depends on the bias audit so a dataset is exported only after it was audited."""
    from ft_pipeline.core.data.redaction import recorded_config, strictest

    out = run_dir("data", "jsonl_export", context.run_id)
    counts = export.write_export(redacted_records(redacted_dataset), out, config.to_core())
    redaction = strictest([recorded_config(part) for _, part in by_partition(redacted_dataset)])
    files = {
        f"{stem}.jsonl": {"rows": n, **{k: v.value for k, v in file_metadata(out / f"{stem}.jsonl").items()}}
        for stem, n in counts.items()
    }
    context.add_output_metadata({
        **file_metadata(out),
        **{f"rows_{stem}": n for stem, n in counts.items()},
        "files": dg.MetadataValue.json(files),
        "preview": json_preview(list(_head(out / "train.jsonl", 2))),
        "source_partitions": len(by_partition(redacted_dataset)),
        "redaction_config": dg.MetadataValue.json(redaction.to_dict()),
    })
    return {"path": str(out), "counts": counts, "redaction_config": redaction.to_dict()}


def redacted_records(redacted_dataset: dict):
    """Every redacted record of every source partition, partition by partition."""
    for _, part in by_partition(redacted_dataset):
        yield from read_jsonl(part["path"])


def _head(path: Path, n: int):
    for i, record in enumerate(read_jsonl(path)):
        if i >= n:
            return
        yield record
