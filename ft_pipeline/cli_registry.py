"""ft-pipeline audit, rollback, forget, erasures: the commands that read or change what the model
registry and the erasure log hold. Same contract as cli.py: a user's mistake is a UserError,
printed as one line with exit code 2."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ft_pipeline.core import paths
from ft_pipeline.errors import UserError


def add_parsers(sub) -> None:
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
    p.add_argument("--force", action="store_true",
                   help="roll back to a version its online gate rolled back (the override is recorded)")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("forget", help="right to erasure: remove records by id or identifying value from every copy, then retrain")
    p.add_argument("--id", action="append", default=[], help="record id (repeatable)")
    p.add_argument("--value", action="append", default=[], help="identifying value, e.g. an email (repeatable)")
    p.add_argument("--retire", action="store_true",
                   help="also delete the weights of every model version trained on the erased records (cards and lineage are kept)")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("erasures", help="every erasure request and what it reached (places scanned, copies changed, adapters and checkpoints deleted, model versions)")
    p.add_argument("--format", choices=["json", "md"], default="md")
    p.set_defaults(func=cmd_erasures)


def _registry() -> Path:
    return paths.pipeline_home() / "registry"


def _model_name(args) -> str:
    """--name, else the task's name (--task or $FT_PIPELINE_TASK), else the registry's only model."""
    if args.name:
        return args.name
    task = args.task or os.environ.get("FT_PIPELINE_TASK")
    if task:
        from ft_pipeline.core.task import TaskConfig, TaskError
        from ft_pipeline.core.task_file import task_path as task_file

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
    from ft_pipeline.core.data.suppression import erasure_log
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
    lineage["rollout"] = registry.rollout_events(version_dir)  # shadow/canary, online gate, switch or rollback
    print(audit.render(lineage, args.format), end="")
    return 0


def cmd_erasures(args) -> int:
    """Every erasure request and what it reached, from the erasure log (counts, digests and paths
    relative to the home only): the places scanned, the copies changed, the adapters and
    checkpoints deleted, the model versions marked or retired."""
    from ft_pipeline.core.data.suppression import erasure_log
    from ft_pipeline.core.erasure import inventory
    from ft_pipeline.core.release import audit

    entries = erasure_log()
    print(audit.render_erasures(entries, args.format), end="")
    if args.format == "md":  # json already holds these: they are keys of each entry
        print(inventory.render_md(entries), end="")
    return 0


def cmd_rollback(args) -> int:
    from ft_pipeline.core.release import registry

    try:
        name = _model_name(args)
        previous, now = registry.rollback(_registry(), name, args.to, args.force)
    except registry.RegistryError as exc:
        raise UserError(str(exc)) from None
    from ft_pipeline.core.tracking.models import mirror_alias  # MLflow's `champion` follows `current`

    mirror_alias(name, now, warn=lambda message: print(f"WARNING: {message}", file=sys.stderr))
    print(json.dumps({"model": name, "from": previous, "to": now}))
    return 0


def cmd_forget(args) -> int:
    """Erases records from every copy under $FT_PIPELINE_HOME, the stored asset values (local and
    S3) and the datasets cache; keeps them out of future ingests; marks the model versions trained
    on them; and marks every source partition it rewrote (so everything downstream) stale: the
    erasure sensor re-redacts those sources and sources_ready_sensor retrains."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ft_pipeline.core.erasure.requests import ErasureError, Stores, criteria, forget
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
    from ft_pipeline.defs.instance import dagster_home, open_instance

    if not dagster_home().is_dir():
        raise UserError(f"DAGSTER_HOME {dagster_home()} is not a directory")
    return open_instance()
