"""ft-pipeline: the command line. Thin: it parses, calls the same core code the assets call, and
turns a user's mistake into one line on stderr and exit code 2, never a traceback."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ft_pipeline.core import paths
from ft_pipeline.errors import UserError  # one class for every command's mistakes, the runner's included

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


DEMO_SOURCE = "data/demo/records.jsonl"
DEMO_TASK = "configs/tasks/demo-triage.yaml"




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
    from ft_pipeline.core.scale import EngineError, check_engine
    from ft_pipeline.core.user_regex import UserRegexTimeout

    config = RedactionConfig()
    if args.task:  # the task's own identifiers, allow list, deny terms, protected documents, fields
        from ft_pipeline.core.task import TaskConfig, TaskError

        try:
            task = TaskConfig.from_yaml(_from_cwd(args.task))
            config = task.sections.redaction  # built and checked with the task: a mistake is a TaskError
        except TaskError as exc:
            raise UserError(str(exc)) from None
    if args.workers < 0:
        raise UserError(f"--workers {args.workers}: must be >= 0 (0: one per core)")
    if args.workers:
        config.n_process = args.workers
    bar, update = _progress_bar("redact")
    try:
        summary = redact_file(args.input, args.output, args.quarantine, config=config, progress=update,
                              engine=check_engine(args.engine))
    except (InputError, FileNotFoundError, IsADirectoryError, PermissionError, UserRegexTimeout, EngineError) as exc:
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


def cmd_sources(args) -> int:
    """Registers source files as raw_files partitions (what the inbox and S3 sensors do), or lists them."""
    import glob

    from ft_pipeline.defs.data.partitions import RAW_FILES, partition_key_for, register_sources, source_location
    from ft_pipeline.defs.instance import open_instance

    for location in args.locations:
        if not location.startswith("s3://") and not glob.glob(source_location(location)):
            raise UserError(f"{location}: no such file (relative paths are read from {paths.REPO_ROOT})")
    with open_instance() as instance:
        keys = [partition_key_for(location) for location in args.locations] if args.action == "add" else []
        added = register_sources(instance, keys)
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
                                max_examples=args.max_examples or 0,
                                base_model=_from_cwd(args.base_model) if args.base_model else "",
                                override_reason=(args.override_fit or "").strip(), engine=args.engine or "")
    if args.override_fit is not None and not request.override_reason:
        raise UserError("--override-fit: give the reason training goes ahead against the fit assessment (it is recorded)")
    summary = runner.run(request)  # its UserError is ours: main prints it as one line
    out = summary.as_dict()
    if summary.deactivated_sources:
        print(f"note: {len(summary.deactivated_sources)} other registered source(s) left the active set "
              "(their history stays in the instance)", file=sys.stderr)
    if not summary.success:
        why = (f"gates failed: {', '.join(summary.failed_gates)}" if summary.failed_gates
               else f"step {summary.failed_step} failed: {summary.failure}")
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
    """`run` on the bundled demo: its records and its task file, with every other option of `run`
    at its default (parsed by run's own parser, so an option added to `run` is never missing here)."""
    run = build_parser().parse_args(["run", DEMO_SOURCE, "--task", DEMO_TASK])
    run.command = args.command
    return cmd_run(run)


def build_parser() -> argparse.ArgumentParser:
    from ft_pipeline import cli_evidence, cli_pii, cli_registry, cli_serve
    from ft_pipeline.core.scale.engines import ENGINES

    parser = argparse.ArgumentParser(prog="ft-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("redact", help="redact a raw JSONL file (same code as the redacted_dataset asset)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--quarantine", default=None, help="where quarantined records go (keep it in the raw zone)")
    p.add_argument("--task", help="a task file whose redaction section applies (identifiers, allow list, ...)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="where records are redacted: local processes or Ray Data (RAY_ADDRESS for a cluster)")
    p.add_argument("--workers", type=int, default=0,
                   help="worker processes or Ray actors, each with its own analyzer (default: one per core, as memory allows)")
    p.set_defaults(func=cmd_redact)

    p = sub.add_parser("train", help="the standalone trainer")
    p.add_argument("--config", required=True)
    p.add_argument("--output")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--data", help="export directory with train.jsonl / eval.jsonl")
    p.set_defaults(func=cmd_train)

    cli_registry.add_parsers(sub)
    cli_serve.add_parsers(sub)
    cli_pii.add_parsers(sub)
    cli_evidence.add_parsers(sub)

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
    p.add_argument("--engine", choices=ENGINES, help="where the record-level steps run (default: FT_PIPELINE_ENGINE or local)")
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
    # `python -m ft_pipeline.cli` runs this file as __main__: run the imported module's main, so the
    # UserError that cli_registry raises is the one main catches.
    from ft_pipeline.cli import main as imported_main

    sys.exit(imported_main())
