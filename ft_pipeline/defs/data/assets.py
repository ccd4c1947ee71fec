"""Data preparation: ingest to the raw zone, redact, audit labels and bias, export chat JSONL."""

import csv
from pathlib import Path

import dagster as dg

from ft_pipeline.core import answers
from ft_pipeline.core.data import bias, export, labels
from ft_pipeline.core.jsonl import atomic_text, iter_jsonl as read_jsonl
from ft_pipeline.core.data.source_names import safe_name, shown
from ft_pipeline.defs.common import file_metadata, log_progress, run_dir, shape_preview, task_config, task_metadata
from ft_pipeline.defs.data.partitions import RAW_FILES, by_partition, source_location
from ft_pipeline.defs.data.configs import (
    BiasAuditConfig,
    ExportRunConfig,
    RawDatasetConfig,
    RedactionRunConfig,
)
from ft_pipeline.defs.data.engine import RecordEngineResource
from ft_pipeline.defs.failures import user_failure

GROUP = "data_prep"


@dg.asset(group_name=GROUP, kinds={"jsonl"}, code_version="3", partitions_def=RAW_FILES)
def raw_dataset(context: dg.AssetExecutionContext, config: RawDatasetConfig, task: dict) -> dict:
    """Raw records of one source file (the partition key: JSONL, CSV or Parquet; a path or s3://
    URI), normalized to the record schema with the task's column mapping. The copy and its
    quarantine live in the raw zone."""
    from ft_pipeline.core.data.ingest import ingest

    source = source_location(context.partition_key)
    out = run_dir("raw", "raw_dataset", context.run_id)
    # the user's file or task (InputError, TaskError): one line, its file name masked, no traceback
    with user_failure(shown=lambda line: shown(line, context.partition_key)):
        summary = ingest(
            source,
            out / "records.jsonl",
            out / "quarantine.jsonl",
            max_record_bytes=config.max_record_bytes,
            progress=log_progress(context, "ingest"),
            task=task_config(task),
        )
    # File names leave the raw zone (metadata, the stored value) as aliases when they hold PII.
    summary["sha256"] = {safe_name(name): sha for name, sha in summary["sha256"].items()}
    summary["files"] = [safe_name(name) for name in summary["files"]]
    if not summary["records"]:  # nothing for the steps downstream: say why, once, here
        reasons = ", ".join(f"{reason} x{n}" for reason, n in sorted(summary["quarantine_reasons"].items()))
        raise dg.Failure(description=f"{context.partition_key}: no record left to prepare: {summary['quarantined']} "
                                     f"quarantined ({reasons or 'none'}), {summary.get('erased', 0)} erased; the "
                                     f"quarantine, with each record's line and reason, is {out / 'quarantine.jsonl'}")
    context.add_output_metadata({
        **file_metadata(out / "records.jsonl"),
        **task_metadata(task),
        "source": context.partition_key,
        "source_sha256": dg.MetadataValue.json(summary["sha256"]),
        "lines": summary["lines"],
        "records": summary["records"],
        "quarantined": summary["quarantined"],
        "erased": summary.get("erased", 0),
        "quarantine_reasons": dg.MetadataValue.json(summary["quarantine_reasons"]),
    })
    return {"path": str(out / "records.jsonl"), "quarantine": str(out / "quarantine.jsonl"), "summary": summary}


@dg.asset(group_name=GROUP, kinds={"presidio"}, code_version="2", partitions_def=RAW_FILES)
def redacted_dataset(
    context: dg.AssetExecutionContext, config: RedactionRunConfig, raw_dataset: dict, task: dict,
    record_engine: RecordEngineResource,
) -> dict:
    """One source file with PII/PHI replaced by consistent per-record pseudonyms (Presidio), with
    the task's own identifiers and allow list; confidential and proprietary records moved to the
    raw-zone quarantine with their reason."""
    from ft_pipeline.core.data.redaction import config_to_dict, redact_file
    from ft_pipeline.core.user_regex import UserRegexTimeout

    with user_failure(ValueError):
        core_config = config.to_core(task_config(task))
    out = run_dir("data", "redacted_dataset", context.run_id)
    quarantine = run_dir("raw", "redacted_dataset", context.run_id) / "quarantine.jsonl"
    # A raw copy with nothing in it (every record erased since: InputError), or a task pattern that
    # ran out of time (fails closed): one line.
    with user_failure(UserRegexTimeout):
        summary = redact_file(raw_dataset["path"], out / "redacted.jsonl", quarantine,
                              config=core_config, progress=log_progress(context, "redact"),
                              engine=record_engine.checked())
    context.add_output_metadata({
        **file_metadata(out / "redacted.jsonl"),
        **task_metadata(task),
        "records_in": summary["in"],
        "records_out": summary["out"],
        "quarantined": summary["quarantined"],
        "quarantine_reasons": dg.MetadataValue.json(summary["quarantine_reasons"]),
        "entities_redacted": dg.MetadataValue.json(summary["entities"]),
        # The checks and the leakage probe judge the data by the rules it was redacted under.
        "redaction_config": dg.MetadataValue.json(config_to_dict(core_config)),  # lists as counts and digests
        "preview": shape_preview(list(_head(out / "redacted.jsonl", 3))),
    })
    return {"path": str(out / "redacted.jsonl"), "quarantine": str(quarantine), "summary": summary,
            "redaction_config": core_config.to_dict()}


@dg.asset(group_name=GROUP, kinds={"csv"}, code_version="2")
def label_review_sample(context: dg.AssetExecutionContext, redacted_dataset: dict, task: dict) -> dict:
    """A stratified sample of redacted records (per label, as the task defines it, and per
    verification status) for human reviewers to re-check, as CSV."""
    spec = task_config(task)
    out = run_dir("data", "label_review_sample", context.run_id) / "review_sample.csv"
    rows = labels.review_sample(redacted_records(redacted_dataset),
                                label_of=lambda r: answers.answer_label(spec, answers.last_assistant(r)))
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=labels.REVIEW_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    strata = sorted({row["stratum"] for row in rows})
    context.add_output_metadata({**file_metadata(out), **task_metadata(task), "rows": len(rows), "strata": len(strata)})
    return {"path": str(out), "rows": len(rows)}


@dg.asset(group_name=GROUP, kinds={"fairlearn"}, code_version="2")
def bias_report(context: dg.AssetExecutionContext, config: BiasAuditConfig, redacted_dataset: dict, task: dict) -> dict:
    """Representation, label distribution and demographic parity of the task's outcome per
    attribute group (fairlearn). What could not be judged (no attributes, no outcome) is said."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.data.redaction.fields import audited

    spec = task_config(task)
    core_config = config.to_core(spec)
    outcome = spec.outcome
    # Only attributes the task declares `keep`: a group's name is shown in reports and metadata.
    records = ({**r, "attributes": audited(r.get("attributes"), spec.fields)} for r in redacted_records(redacted_dataset))
    report = bias.audit(
        records, core_config,
        label_of=lambda r: answers.answer_label(spec, answers.last_assistant(r)),
        outcome_of=lambda r: answers.answer_field(spec, answers.last_assistant(r), outcome.field) if outcome else None,
    )
    markdown = bias.render_markdown(report, core_config)
    if outcome:
        chart = plots.grouped_bars(bias.selection_rates(report), f"Share with {outcome.field} in "
                                   f"{', '.join(outcome.positive)}, by group")
    else:
        chart = plots.grouped_bars(bias.representation(report), "Share of records by group (no outcome declared)")
    figure = plots.png_to_markdown(chart, "bias chart")
    out = run_dir("reports", "bias_report", context.run_id) / "bias_report.md"
    with atomic_text(out) as fh:  # a killed run leaves no half report for a later step to read
        fh.write(markdown + "\n" + figure + "\n")
    summary = bias.summary(report)
    context.add_output_metadata({
        **file_metadata(out),
        **task_metadata(task),
        "verdict": summary["verdict"],
        "report": dg.MetadataValue.md(markdown),
        "chart": dg.MetadataValue.md(figure),
        "attributes": len(report.attributes),
        "failed_attributes": dg.MetadataValue.json([a for a, s in summary["attributes"].items() if not s["passed"]]),
    })
    return {"path": str(out), "summary": summary, "require_judgement": config.require_judgement,
            "config": core_config.__dict__ | {"positive_values": list(core_config.positive_values)}}


@dg.asset(group_name=GROUP, kinds={"jsonl"}, code_version="3", deps=[bias_report])
def jsonl_export(context: dg.AssetExecutionContext, config: ExportRunConfig, redacted_dataset: dict, task: dict) -> dict:
    """Chat JSONL train/eval/test (+ DPO preference pairs), the one format training reads, each
    conversation under the task's system prompt; the task file travels with it (task.yaml).
    Its sidecars (attributes, splits, contamination: no conversations) go to a sibling folder,
    `sidecars`, so the export folder holds only what a trainer reads.
    Depends on the bias audit so a dataset is exported only after it was audited."""
    from ft_pipeline.core.data.redaction import config_to_dict, recorded_config, strictest

    out = run_dir("data", "jsonl_export", context.run_id)
    sidecars = run_dir("data", "jsonl_export_sidecars", context.run_id)
    written = export.write_export(lambda: redacted_records(redacted_dataset), out, config.to_core(), task_config(task),
                                  sidecar_dir=sidecars)
    counts, splits = written["files"], written["splits"]
    redaction = strictest([recorded_config(part) for _, part in by_partition(redacted_dataset)])
    files = {
        f"{stem}.jsonl": {"rows": n, **{k: v.value for k, v in file_metadata(out / f"{stem}.jsonl").items()}}
        for stem, n in counts.items() if stem not in export.SIDECARS
    }
    sidecar_files = {f"{stem}.jsonl": {**({"rows": counts[stem]} if stem in counts else {}),
                                       **{k: v.value for k, v in file_metadata(sidecars / f"{stem}.jsonl").items()}}
                     for stem in export.SIDECARS}
    context.add_output_metadata({
        **file_metadata(out),
        **task_metadata(task),
        **{f"rows_{stem}": n for stem, n in counts.items()},
        "files": dg.MetadataValue.json(files),
        "sidecars": dg.MetadataValue.path(str(sidecars)),
        "sidecars_sha256": file_metadata(sidecars)["sha256"],  # the lineage's digest of the reports beside the data
        "sidecar_files": dg.MetadataValue.json(sidecar_files),
        "near_duplicates_found": splits["near_duplicates"],
        "near_duplicates_moved_to_train": splits["moved_to_train"],
        "near_duplicates_dropped": splits["dropped"],
        "split_plan": dg.MetadataValue.json(splits),
        "preview": shape_preview(list(_head(out / "train.jsonl", 2))),
        "source_partitions": len(by_partition(redacted_dataset)),
        "redaction_config": dg.MetadataValue.json(config_to_dict(redaction)),
        # The redacted data that went in, by source: sources_ready_sensor compares it with the
        # sources' latest redactions to tell whether a retrain would train on anything new.
        "redacted_sha256": dg.MetadataValue.json(_redacted_digests(context, redacted_dataset)),
    })
    return {"path": str(out), "sidecars": str(sidecars), "counts": counts, "splits": splits,
            "redaction_config": redaction.to_dict()}


def redacted_records(redacted_dataset: dict):
    """Every redacted record of every source partition, partition by partition."""
    for _, part in by_partition(redacted_dataset):
        yield from read_jsonl(part["path"])


def _redacted_digests(context: dg.AssetExecutionContext, redacted_dataset) -> dict[str, str]:
    """{source partition: sha256 of its redacted file}, for the partitions this run read."""
    from ft_pipeline.core.digest import sha256_file

    parts = by_partition(redacted_dataset)
    if [key for key, _ in parts] == [""]:  # one partition's value on its own: its key is the run's
        parts = [(context.asset_partition_keys_for_input("redacted_dataset")[0], parts[0][1])]
    return {key: sha256_file(Path(part["path"])) for key, part in parts}


def _head(path: Path, n: int):
    for i, record in enumerate(read_jsonl(path)):
        if i >= n:
            return
        yield record
