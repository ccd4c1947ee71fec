"""A versioned model registry on the file system: $FT_PIPELINE_HOME/registry/<name>/<version>/.

Each version holds the adapter, the merged weights, MODEL_CARD.md, lineage.json and
training_ids.json (digests of the record ids it was trained on). `current` is a symlink to the
serving version, swapped atomically, so a rollback is a pointer move and never a copy. A version
trained on records erased since carries erasure.json, and rollback refuses to move back to it. A
version published beside `current` (make_current=False) waits for its online gate; each step of
its rollout is a line of its rollout.jsonl (appended, never rewritten), read into its audit trail.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

from ft_pipeline.core.task import NAME_RE

VERSION_RE = re.compile(r"^v(\d+)$")
MARKS = "erasure.json"
ROLLOUT_LOG = "rollout.jsonl"


class RegistryError(Exception):
    """A user-facing registry problem (unknown model or version); printed, never a traceback."""


def model_root(registry: Path, name: str) -> Path:
    # A name is a task's name (task.NAME_RE): no separator, no "..", nothing that leaves the registry.
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RegistryError(f"model name {name!r} is not a registry name: lower-case letters, digits, '.', '_' "
                            "and '-', starting with a letter or digit, at most 64")
    return Path(registry) / name


def _checked_version(version) -> str:
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise RegistryError(f"version {version!r} is not a registry version (v1, v2, ...)")
    return version


def model_names(registry: Path) -> list[str]:
    root = Path(registry)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def versions(registry: Path, name: str) -> list[str]:
    root = model_root(registry, name)
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and VERSION_RE.match(p.name)]
    return sorted(found, key=lambda v: int(VERSION_RE.match(v).group(1)))


def current_version(registry: Path, name: str) -> str | None:
    pointer = model_root(registry, name) / "current"
    return os.readlink(pointer) if pointer.is_symlink() else None


def next_version(registry: Path, name: str) -> str:
    existing = versions(registry, name)
    return f"v{int(existing[-1][1:]) + 1}" if existing else "v1"


def set_current(registry: Path, name: str, version: str) -> None:
    root = model_root(registry, name)
    if not (root / _checked_version(version)).is_dir() or (root / version).is_symlink():
        raise RegistryError(f"model {name!r} has no version {version!r} (have: {', '.join(versions(registry, name)) or 'none'})")
    tmp = root / f".current.tmp-{_OWNER}-{uuid.uuid4().hex[:8]}"  # two writers never share it
    tmp.symlink_to(version)
    os.replace(tmp, root / "current")  # rename over the old link: readers never see it missing


def publish(registry: Path, name: str, staging: Path, make_current: bool = True) -> str:
    """Moves a fully written staging directory in as the next version and points `current` at it
    (or, with make_current=False and a current version to keep, leaves it waiting for a rollout)."""
    root = model_root(registry, name)
    root.mkdir(parents=True, exist_ok=True)
    version = next_version(registry, name)
    os.replace(staging, root / version)
    if make_current or current_version(registry, name) is None:
        set_current(registry, name, version)
    return version


def record_rollout(version_dir: Path, event: dict) -> dict:
    """Appends one rollout step (started, gate, switched, rolled_back) to the version's log: one
    write() on an O_APPEND file, so two writers never interleave and a crash loses one line."""
    from datetime import datetime, timezone

    event = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **event}
    fd = os.open(Path(version_dir) / ROLLOUT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(event, sort_keys=True, default=str) + "\n").encode())
    finally:
        os.close(fd)
    return event


def rollout_events(version_dir: Path) -> list[dict]:
    path = Path(version_dir) / ROLLOUT_LOG
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


FINAL_STEPS = ("switched", "rolled_back")


def gate_rollback(version_dir: Path) -> dict | None:
    """The `rolled_back` step of a version its online gate failed (and no later rollout switched
    to), else None. A rollback because `current` moved meanwhile is not the version's fault."""
    final = [e for e in rollout_events(version_dir) if e.get("event") in FINAL_STEPS]
    return final[-1] if final and final[-1]["event"] == "rolled_back" and final[-1].get("failed_gates") else None


def refuse_rolled_back(registry: Path, name: str, version: str, command: str, force: bool = False) -> None:
    """RegistryError for a version its online gate rolled back, unless `force`: then the override
    is a step of its rollout log (and so of its audit trail)."""
    folder = model_root(registry, name) / _checked_version(version)
    event = gate_rollback(folder)
    if event is None:
        return
    if not force:
        raise RegistryError(f"refusing to {command} {name} {version}: its online gate rolled it back at {event['at']} "
                            f"({', '.join(event['failed_gates'])} failed); add --force to {command} it anyway (recorded)")
    record_rollout(folder, {"event": "forced", "version": version, "command": command,
                            "incumbent": current_version(registry, name), "overrides": event["at"]})


def staging_dir(registry: Path, name: str) -> Path:
    """A staging folder of this release's own: two runs promoting at once never write into, or
    remove, each other's. Folders (and pointer temp links) left by killed promotions on this host
    are removed first: they hold a model's weights, which nothing else would ever delete."""
    root = model_root(registry, name)
    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    return Path(tempfile.mkdtemp(prefix=f".staging-{_OWNER}-", dir=root))


_OWNER = f"{socket.gethostname()}-{os.getpid()}"


def _remove_leftovers(root: Path) -> None:
    host = socket.gethostname()
    for path in root.glob(".*"):
        parts = path.name.split("-")
        if path.name.startswith((".staging-", ".current.tmp-")) and len(parts) >= 4 and "-".join(parts[1:-2]) == host:
            if not _alive(parts[-2]):
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def rollback(registry: Path, name: str, to_version: str | None = None, force: bool = False) -> tuple[str | None, str]:
    """Points `current` at `to_version`, or at the version before the current one; never at one
    its online gate rolled back, unless `force` (recorded)."""
    available = versions(registry, name)
    if not available:
        raise RegistryError(f"no promoted versions of model {name!r} under {registry}")
    previous = current_version(registry, name)
    if to_version is None:
        if previous not in available or available.index(previous) == 0:
            raise RegistryError(f"model {name!r} is at {previous or 'none'}: there is no earlier version to roll back to")
        to_version = available[available.index(previous) - 1]
    marks = erasure_marks(model_root(registry, name) / _checked_version(to_version))
    if marks:
        requests = ", ".join(f"{r['request_id']} ({r['at']})" for r in marks["requests"])
        retired = "; its weights were retired" if marks.get("retired_at") else ""
        raise RegistryError(f"refusing to roll {name!r} back to {to_version}: it was trained on records erased by "
                            f"request {requests}{retired}; promote a retrain instead")
    refuse_rolled_back(registry, name, to_version, "roll back to", force)
    set_current(registry, name, to_version)
    return previous, to_version


def resolve(registry: Path, name: str, version: str | None = None) -> Path:
    """The directory of `version` (default: current)."""
    version = version or current_version(registry, name)
    if version is None:
        raise RegistryError(f"model {name!r} has no current version under {registry}")
    path = model_root(registry, name) / _checked_version(version)
    if not path.is_dir():
        raise RegistryError(f"model {name!r} has no version {version!r} (have: {', '.join(versions(registry, name)) or 'none'})")
    return path


def read_manifest(version_dir: Path) -> dict:
    return json.loads((Path(version_dir) / "lineage.json").read_text())


def erasure_marks(version_dir: Path) -> dict | None:
    """{requests: [{request_id, at, records, digests}], retired_at} when erased records were in the
    version's training data, else None."""
    path = Path(version_dir) / MARKS
    return json.loads(path.read_text()) if path.is_file() else None


def merge_adapter(base_model_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """Writes base + LoRA merged into plain weights, loadable without peft."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_model_dir)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(adapter_dir if (Path(adapter_dir) / "tokenizer_config.json").exists() else base_model_dir).save_pretrained(out_dir)
