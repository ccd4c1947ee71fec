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


DEMO_SOURCE = "data/demo/records.jsonl"
DEMO_TASK = "configs/tasks/demo-triage.yaml"


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

    config = RedactionConfig()
    if args.task:  # the task's own identifiers, allow list, deny terms and protected documents
        from ft_pipeline.core.task import TaskConfig, TaskError

        try:
            task = TaskConfig.from_yaml(_from_cwd(args.task))
            config = RedactionConfig.from_task_section(task.redaction)
        except TaskError as exc:
            raise UserError(str(exc)) from None
        except ValueError as exc:
            raise UserError(f"{task.source_path}: field {exc}") from None
    bar, update = _progress_bar("redact")
    try:
        summary = redact_file(args.input, args.output, args.quarantine, config=config, progress=update)
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


def _model_name(args) -> str:
    """--name, else the task's name (--task or $FT_PIPELINE_TASK), else the registry's only model."""
    if args.name:
        return args.name
    task = args.task or os.environ.get("FT_PIPELINE_TASK")
    if task:
        from ft_pipeline.core.task import TaskConfig, TaskError
        from ft_pipeline.defs.task import task_file

        try:
            return TaskConfig.from_yaml(task_file(task)).name
        except TaskError as exc:
            raise UserError(str(exc)) from None
    models = sorted(p.name for p in _registry().iterdir() if p.is_dir()) if _registry().is_dir() else []
    if len(models) == 1:
        return models[0]
    raise UserError("no promoted model yet" if not models else
                    f"the registry holds several models ({', '.join(models)}): name one with --name or --task")


def cmd_audit(args) -> int:
    from ft_pipeline.core.data.erasure import erasure_log
    from ft_pipeline.core.release import audit, registry

    try:
        version_dir = registry.resolve(_registry(), _model_name(args), args.version)
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
        name = _model_name(args)
        previous, now = registry.rollback(_registry(), name, args.to)
    except registry.RegistryError as exc:
        raise UserError(str(exc)) from None
    print(json.dumps({"model": name, "from": previous, "to": now}))
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


def cmd_run(args) -> int:
    """Registers the sources and materializes the whole graph for the task; the summary is the
    last line on stdout, one JSON object."""
    from ft_pipeline import runner

    sources = [s if s.startswith("s3://") else _from_cwd(s) for s in args.sources]
    request = runner.RunRequest(sources=sources, task=_from_cwd(args.task), method=args.method or "",
                                preset=_from_cwd(args.preset) if args.preset else "", max_steps=args.max_steps or 0,
                                max_examples=args.max_examples or 0, base_model=args.base_model or "",
                                override_reason=(args.override_fit or "").strip())
    if args.override_fit is not None and not request.override_reason:
        raise UserError("--override-fit: give the reason training goes ahead against the fit assessment (it is recorded)")
    try:
        summary = runner.run(request)
    except runner.UserError as exc:
        raise UserError(str(exc)) from None
    out = summary.as_dict()
    if summary.deactivated_sources:
        print(f"note: {len(summary.deactivated_sources)} other registered source(s) left the active set "
              "(their history stays in the instance)", file=sys.stderr)
    if not summary.success:
        why = f"gates failed: {', '.join(summary.failed_gates)}" if summary.failed_gates else f"step {summary.failed_step} failed"
        print(f"run {summary.run_id} stopped: {why}; open the UI for details: make ui", file=sys.stderr)
    elif summary.eval_report:
        print(f"eval report: {summary.eval_report}", file=sys.stderr)
    print(json.dumps(out, sort_keys=True))
    return 0 if summary.success else 1


def _from_cwd(path: str) -> str:
    """A path on the command line means the current directory's, as in any command; a name the
    current directory lacks is left for the repo root (the demo's configs/tasks/...)."""
    here = Path(path).expanduser()
    return str(here.resolve()) if here.exists() else path


def cmd_demo(args) -> int:
    """`run` on the bundled demo: its records and its task file."""
    args.sources, args.task = [DEMO_SOURCE], DEMO_TASK
    for name in ("method", "preset", "max_steps", "max_examples", "base_model", "override_fit"):
        setattr(args, name, getattr(args, name, None))
    return cmd_run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ft-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("redact", help="redact a raw JSONL file (same code as the redacted_dataset asset)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--quarantine", default=None, help="where quarantined records go (keep it in the raw zone)")
    p.add_argument("--task", help="a task file whose redaction section applies (identifiers, allow list, ...)")
    p.set_defaults(func=cmd_redact)

    p = sub.add_parser("train", help="the standalone trainer")
    p.add_argument("--config", required=True)
    p.add_argument("--output")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--data", help="export directory with train.jsonl / eval.jsonl")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("audit", help="the lineage trail of a promoted model")
    p.add_argument("--name", help="registry name (default: the task's name, or the only model)")
    p.add_argument("--task", help="task file whose model to audit")
    p.add_argument("--version", default=None, help="default: the current version")
    p.add_argument("--format", choices=["json", "md"], default="md")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("rollback", help="point the model's `current` at an earlier version")
    p.add_argument("--name", help="registry name (default: the task's name, or the only model)")
    p.add_argument("--task", help="task file whose model to roll back")
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

    p = sub.add_parser("run", help="register your sources and run the whole pipeline for your task")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="JSONL / CSV / Parquet: a path, a glob or an s3:// URI")
    p.add_argument("--task", required=True, help="the task file (configs/tasks/<name>.yaml)")
    p.add_argument("--method", choices=["sft", "dpo", "grpo"], help="training method (default: the task's)")
    p.add_argument("--preset", help="training preset YAML (default: configs/presets/smollm2-cpu-<method>.yaml)")
    p.add_argument("--max-steps", type=int, help="cap the training steps")
    p.add_argument("--max-examples", type=int, help="cap the held-out examples evaluated")
    p.add_argument("--base-model", help="bundled name, local directory or hub id (default: the preset's base_model)")
    p.add_argument("--override-fit", metavar="REASON",
                   help="train even when the fit assessment recommends something cheaper; the reason is recorded")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="`run` on the bundled demo (data/demo/records.jsonl, configs/tasks/demo-triage.yaml)")
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
