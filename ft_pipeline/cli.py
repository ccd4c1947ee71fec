"""ft-pipeline: the command line. Thin: it parses, calls the same core code the assets call, and
turns a user's mistake into one line on stderr and exit code 2, never a traceback."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ft_pipeline.core import paths

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class UserError(Exception):
    """A problem with what the user asked for; printed as one line."""


def _progress_bar(desc: str):
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="rec", file=sys.stderr, disable=not sys.stderr.isatty() and None)

    def update(done: int, total: int | None = None) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def cmd_redact(args) -> int:
    from ft_pipeline.core.data.ingest import InputError
    from ft_pipeline.core.data.redaction import RedactionConfig, redact_file

    bar, update = _progress_bar("redact")
    try:
        summary = redact_file(args.input, args.output, args.quarantine, config=RedactionConfig(), progress=update)
    except (InputError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise UserError(str(exc)) from None
    finally:
        bar.close()
    print(json.dumps(summary, sort_keys=True))
    return 0


def cmd_train(args) -> int:
    from ft_pipeline.core.training.train import main as train_main

    argv = ["--config", args.config]
    if args.output:
        argv += ["--output", args.output]
    if args.max_steps is not None:
        argv += ["--max-steps", str(args.max_steps)]
    if args.data:
        argv += ["--data", args.data]
    return train_main(argv)


def _registry() -> Path:
    return paths.pipeline_home() / "registry"


def cmd_audit(args) -> int:
    from ft_pipeline.core.data.erasure import erasure_log
    from ft_pipeline.core.release import audit, registry

    try:
        version_dir = registry.resolve(_registry(), args.name, args.version)
    except registry.RegistryError as exc:
        raise UserError(str(exc)) from None
    lineage = registry.read_manifest(version_dir)
    # The erasures that reached this version: its training data held a record they erased.
    marks = registry.erasure_marks(version_dir) or {"requests": []}
    requests = {e["request_id"]: e for e in erasure_log()}
    lineage["erasures"] = [
        {"request_id": r["request_id"], "at": r["at"], "training_records_erased": r["records"],
         "retired_at": marks.get("retired_at"), **audit.reach(requests.get(r["request_id"], {}))}
        for r in marks["requests"]
    ]
    print(audit.render(lineage, args.format), end="")
    return 0


def cmd_erasures(args) -> int:
    """Every erasure request and what it reached, from the erasure log (counts and digests only)."""
    from ft_pipeline.core.data.erasure import erasure_log
    from ft_pipeline.core.release import audit

    print(audit.render_erasures(erasure_log(), args.format), end="")
    return 0


def cmd_rollback(args) -> int:
    from ft_pipeline.core.release import registry

    try:
        previous, now = registry.rollback(_registry(), args.name, args.to)
    except registry.RegistryError as exc:
        raise UserError(str(exc)) from None
    print(json.dumps({"model": args.name, "from": previous, "to": now}))
    return 0


def cmd_forget(args) -> int:
    """Erases records from every copy under $FT_PIPELINE_HOME, the stored asset values (local and
    S3) and the datasets cache; keeps them out of future ingests; marks the model versions trained
    on them; and marks every source partition it rewrote (so everything downstream) stale: the
    erasure sensor re-redacts those sources and sources_ready_sensor retrains."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ft_pipeline.core.data.erasure import ErasureError, Stores, criteria, forget
    from ft_pipeline.defs.release.erasure_events import report_erasure
    from ft_pipeline.defs.resources import s3_value_store

    try:
        criteria(args.id, args.value)  # a mistake in the request is reported before anything starts
    except ErasureError as exc:
        raise UserError(str(exc)) from None
    with _instance() as instance:
        stores = Stores(value_dirs=[instance.storage_directory()], s3=s3_value_store())
        try:
            summaries = forget(args.id, args.value, stores=stores, retire=args.retire,
                               after=lambda summary: report_erasure(instance, summary))
        except ErasureError as exc:
            raise UserError(str(exc)) from None
        except (BotoCoreError, ClientError) as exc:
            raise UserError(f"S3 bucket {stores.s3.bucket}: {exc}") from None
    for summary in summaries:
        for version in summary.get("current_trained_on_erased_data", []):
            print(f"WARNING: the current model {version} was trained on erased records; it stays current until a "
                  "retrain promotes a clean version (or roll back to a clean one). ft-pipeline erasures lists them.",
                  file=sys.stderr)
        print(json.dumps({k: v for k, v in summary.items() if k != "removed_id_digests"}, sort_keys=True))
    return 0


def _instance():
    import dagster as dg

    os.environ.setdefault("DAGSTER_HOME", str(paths.REPO_ROOT))
    if not Path(os.environ["DAGSTER_HOME"]).is_dir():
        raise UserError(f"DAGSTER_HOME {os.environ['DAGSTER_HOME']} is not a directory")
    return dg.DagsterInstance.get()


def cmd_sources(args) -> int:
    """Registers source files as raw_files partitions (what the inbox and S3 sensors do), or lists them."""
    import glob

    import dagster as dg

    from ft_pipeline.defs.data.partitions import RAW_FILES, register_sources, source_location

    for location in args.locations:
        if not location.startswith("s3://") and not glob.glob(source_location(location)):
            raise UserError(f"{location}: no such file (relative paths are read from {paths.REPO_ROOT})")
    os.environ.setdefault("DAGSTER_HOME", str(paths.REPO_ROOT))
    with dg.DagsterInstance.get() as instance:
        added = register_sources(instance, args.locations) if args.action == "add" else []
        known = instance.get_dynamic_partitions(RAW_FILES.name)
    print(json.dumps({"added": added, "sources": list(known)}))
    return 0


def cmd_demo(args) -> int:
    """Materializes every asset on the bundled demo into the instance at DAGSTER_HOME."""
    import dagster as dg

    from ft_pipeline.definitions import defs

    from ft_pipeline.defs.data.partitions import DEMO_SOURCE, register_sources

    os.environ.setdefault("DAGSTER_HOME", str(paths.REPO_ROOT))
    instance = dg.DagsterInstance.get()
    register_sources(instance, [DEMO_SOURCE])  # the bundled demo file is one raw_files partition
    job = defs.resolve_implicit_global_asset_job_def()
    # INFO, not DEBUG: progress lines (counts, rates, losses) without Dagster's step bookkeeping.
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    # One run: the demo partition's ingest and redaction, then everything downstream of all partitions.
    result = job.execute_in_process(instance=instance, run_config=quiet, partition_key=DEMO_SOURCE, raise_on_error=False)
    home = paths.pipeline_home()
    reports = sorted((home / "reports" / "eval_report").glob("*/eval_report.md"), key=lambda p: p.stat().st_mtime)
    print()
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        print(f"demo run {result.run_id} FAILED at: {', '.join(failed) or 'a check'}; open the UI for details: make ui")
        return 1
    if reports:
        print(f"eval report: {reports[-1]}")
    print(f"registry:    {home / 'registry'}")
    print("open the UI: make ui   (then http://127.0.0.1:3000)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ft-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("redact", help="redact a raw JSONL file (same code as the redacted_dataset asset)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--quarantine", default=None, help="where quarantined records go (keep it in the raw zone)")
    p.set_defaults(func=cmd_redact)

    p = sub.add_parser("train", help="the standalone trainer")
    p.add_argument("--config", required=True)
    p.add_argument("--output")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--data", help="export directory with train.jsonl / eval.jsonl")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("audit", help="the lineage trail of a promoted model")
    p.add_argument("--name", default="northwind-triage")
    p.add_argument("--version", default=None, help="default: the current version")
    p.add_argument("--format", choices=["json", "md"], default="md")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("rollback", help="point the model's `current` at an earlier version")
    p.add_argument("--name", default="northwind-triage")
    p.add_argument("--to", default=None, help="default: the version before the current one")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("forget", help="right to erasure: remove records by id or identifying value from every copy, then retrain")
    p.add_argument("--id", action="append", default=[], help="record id (repeatable)")
    p.add_argument("--value", action="append", default=[], help="identifying value, e.g. an email (repeatable)")
    p.add_argument("--retire", action="store_true",
                   help="also delete the weights of every model version trained on the erased records (cards and lineage are kept)")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("erasures", help="every erasure request and what it reached (files, records, model versions)")
    p.add_argument("--format", choices=["json", "md"], default="md")
    p.set_defaults(func=cmd_erasures)

    p = sub.add_parser("sources", help="register source files (raw_files partitions) or list them")
    p.add_argument("action", choices=["add", "list"])
    p.add_argument("locations", nargs="*", help="paths (relative to the repo root) or s3:// URIs")
    p.set_defaults(func=cmd_sources)

    p = sub.add_parser("demo", help="materialize every asset on the bundled demo")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"ft-pipeline {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
