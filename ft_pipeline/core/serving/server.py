"""From the registry to a listening server: which versions to serve, under which model ids, on
which base model and task; then the app on uvicorn (or the vLLM command).

Model ids: `<name>` is the version `current` points at when the server starts; each `--version V`
is also served as `<name>:V`, for clients that pin one. A new version goes live without a restart
through /v1/load_lora_adapter with `lora_path` a registry version folder (and `load_inplace` to
swap what `<name>` answers with). A version trained on records erased since is refused, as
`rollback` refuses it.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from ft_pipeline.core.release import registry
from ft_pipeline.core.serving.engine import Adapter, AdapterError

log = logging.getLogger("ft_pipeline.serve")

class ServeError(Exception):
    """What the user asked to serve cannot be served (unknown model or version, erased data, a
    changed task file); printed as one line."""


@dataclass
class Plan:
    name: str
    adapters: list[Adapter]
    base_model: str  # as lineage.json names it (a bundled name, a folder or a hub id)
    task_path: str


def version_adapter(root: Path, name: str, version: str, model_id: str) -> Adapter:
    """The adapter of one registry version, refused when erased records trained it."""
    folder = registry.resolve(root, name, version)
    marks = registry.erasure_marks(folder)
    if marks:
        requests = ", ".join(r["request_id"] for r in marks["requests"])
        raise ServeError(f"refusing to serve {name} {folder.name}: it was trained on records erased by request "
                         f"{requests}; promote a retrain or roll back (ft-pipeline rollback)")
    if not (folder / "adapter" / "adapter_config.json").is_file():
        raise ServeError(f"{folder}/adapter: no LoRA adapter in this version (its weights were retired?)")
    return Adapter(model_id, folder / "adapter", f"{name}/{folder.name}")


def plan(root: Path, name: str, versions: list[str] = ()) -> Plan:
    try:
        current = registry.current_version(root, name)
        if current is None:
            raise ServeError(f"model {name!r} has no current version under {root}: promote one first")
        adapters = [version_adapter(root, name, current, name)]
        adapters += [version_adapter(root, name, v, f"{name}:{v}") for v in dict.fromkeys(versions)]
    except registry.RegistryError as exc:
        raise ServeError(str(exc)) from None
    lineage = registry.read_manifest(adapters[0].path.parent)
    bases = {str((registry.read_manifest(a.path.parent).get("training") or {}).get("base_model")) for a in adapters}
    if len(bases) > 1:
        raise ServeError(f"the versions to serve were trained on different base models ({', '.join(sorted(bases))}); "
                         "serve them from separate servers")
    return Plan(name, adapters, bases.pop(), (lineage.get("task") or {}).get("path") or "")


def load_task(plan_: Plan, task_file: str | None, root: Path):
    """The task the answers are checked against: --task, else the one the version was trained
    for, which must still be the file it was (same sha256), or the checks would judge by rules the
    model never learned."""
    from ft_pipeline.core.task import TaskConfig, TaskError, file_sha256

    path = task_file or plan_.task_path
    try:
        task = TaskConfig.from_yaml(path)
    except (TaskError, FileNotFoundError, OSError) as exc:
        raise ServeError(f"task file {path or '(none recorded)'}: {exc}; name one with --task") from None
    recorded = (registry.read_manifest(plan_.adapters[0].path.parent).get("task") or {}).get("sha256")
    if not task_file and recorded and file_sha256(path) != recorded:
        raise ServeError(f"task file {path} changed since {plan_.adapters[0].version} was trained; "
                         "name the task file to check answers against with --task")
    return task


def registry_resolver(root: Path):
    """For /v1/load_lora_adapter: a lora_path must be a version folder of the registry (or its
    adapter/), so the server only ever loads what was promoted."""
    root = Path(root).resolve()

    def resolve(lora_name: str, lora_path: str) -> Adapter:
        path = Path(lora_path).expanduser().resolve()
        folder = path.parent if path.name == "adapter" else path
        if folder.parent.parent != root or not registry.VERSION_RE.match(folder.name):
            raise AdapterError(f"lora_path must be a version folder of the model registry ({root}/<name>/<version>)")
        try:
            return version_adapter(root, folder.parent.name, folder.name, lora_name)
        except (ServeError, registry.RegistryError) as exc:
            raise AdapterError(str(exc)) from None

    return resolve


def load_engine(plan_: Plan):
    """The base model with every adapter of the plan loaded on it."""
    from ft_pipeline.core.serving.engine import Engine
    from ft_pipeline.core.training.base_model import ensure_base_model

    try:
        base_dir = ensure_base_model(plan_.base_model)
    except FileNotFoundError as exc:
        raise ServeError(str(exc)) from None
    engine = Engine(base_dir, plan_.base_model)
    for adapter in plan_.adapters:
        engine.load(adapter)
    return engine


def live_rollouts(state, root: Path, name: str, task, every_s: float = 5.0):
    """The server's watch for a version in rollout (live.py): loads it as `<name>:<version>`, and
    once its gate decided, serves the outcome."""
    from dataclasses import replace

    from ft_pipeline.core.release.rollout_config import RolloutConfig
    from ft_pipeline.core.serving import live

    def begin(version: str, started: dict, stage: int):
        try:
            if started["event"] == "held":  # promotion held it back: its rollout starts with this server
                started = live.start(root, name, version, task)
            config = RolloutConfig.from_dict(task.rollout, task.source_path or "task")
            # as it was started (--mode, --share), whatever the task file says now
            config = replace(config, mode=started.get("mode") or config.mode, share=started.get("share") or config.share,
                             steps=started.get("steps") or [])
            candidate_id = f"{name}:{version}"
            adapter = version_adapter(root, name, version, candidate_id)
            loaded_here = candidate_id not in state.engine.adapters
            if loaded_here:
                state.engine.load(adapter)
        except Exception as exc:  # noqa: BLE001 - a rollout that cannot start never stops the serving
            log.error("cannot roll %s %s out: %s", name, version, str(exc)[:300])
            return None

        def done(summary: dict) -> None:
            if summary["passed"]:  # `<name>` answers with the candidate from now on, without a gap
                state.engine.load(Adapter(name, adapter.path, adapter.version), replace=True)
            if loaded_here:  # a rolled-back version is not served under any id
                state.engine.unload(candidate_id)
            print(f"rollout of {name} {version}: {'switched' if summary['passed'] else 'rolled back'}; "
                  f"current is {summary['current']}", file=sys.stderr, flush=True)

        resumed = f", resumed at step {stage + 1} of {len(config.shares())}" if stage else ""
        print(f"rolling {name} {version} out live ({config.mode}{resumed}) against {registry.current_version(root, name)}",
              file=sys.stderr, flush=True)
        return live.LiveRollout(root, name, version, registry.current_version(root, name), task, config, candidate_id, done,
                                started_at=started.get("at", ""), stage=stage)

    return live.Watcher(root, name, begin, every_s)


def serve(plan_: Plan, task, root: Path, host: str, port: int, limits=None) -> None:
    """Loads the base model and the adapters, warms the guard up, and serves until stopped."""
    import uvicorn

    from ft_pipeline.core.serving.app import ServeState, create_app
    from ft_pipeline.core.serving.guard import Limits, Redaction

    engine = load_engine(plan_)
    redaction = Redaction(task)
    redaction.warm_up()
    engine.vocabulary()
    state = ServeState(engine, task, redaction, registry_resolver(root), limits or Limits())
    state.rollout = live_rollouts(state, root, plan_.name, task)
    state.rollout()  # a version already in rollout starts with the server
    served = ", ".join(f"{a.name} ({a.version})" for a in plan_.adapters)
    print(f"serving {served} on http://{host}:{port}/v1", file=sys.stderr, flush=True)
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
