"""From the registry to a listening server: which versions to serve, under which model ids, on
which base model and task; then the app on uvicorn (or the vLLM command).

Model ids: `<name>` is the version `current` points at when the server starts; each `--version V`
is also served as `<name>:V`, for clients that pin one. A new version goes live without a restart
through /v1/load_lora_adapter with `lora_path` a registry version folder (and `load_inplace` to
swap what `<name>` answers with). A version trained on records erased since is refused, as
`rollback` refuses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ft_pipeline.core.release import registry
from ft_pipeline.core.serving.engine import Adapter, AdapterError


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
