"""The engine choice and Ray's connection.

`local` runs the record-level steps in this process and its worker processes. `ray` runs them on
Ray Data: on the cluster at RAY_ADDRESS when it is set (`ray://head:10001`, or `auto` on a node of
the cluster), otherwise on a Ray started here and stopped with this process. A Ray started here
spills its object store into the raw zone (the blocks it spills hold raw records) and keeps its
session folder (logs, worker output) there too.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ft_pipeline.errors import UserError

ENGINES = ("local", "ray")


class EngineError(UserError, ValueError):
    """An engine that is not one of ENGINES, or Ray asked for where it is not installed."""


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise EngineError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EngineError("engine 'ray' needs Ray: pip install -e '.[ray]'") from None
    return engine


def connect() -> str:
    """Connects this process to Ray once (later calls reuse the connection); returns where."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a data pipeline
    import logging

    import ray

    # The pipeline reports its own progress; Ray Data's per-dataset INFO lines would bury it.
    logging.getLogger("ray.data").setLevel(logging.ERROR)

    address = os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return address or "local"
    if address:
        # A cluster's workers import the package from the driver's copy, not from their image.
        package = Path(__file__).resolve().parents[2]
        try:
            ray.init(address=address, runtime_env={"py_modules": [str(package)]}, log_to_driver=False)
        except ConnectionError:  # a wrong address is the user's: one line, not Ray's traceback
            raise EngineError(f"RAY_ADDRESS={address}: no Ray cluster there accepted this driver (a token-auth "
                              "cluster also needs RAY_AUTH_MODE=token); unset it to run Ray on this machine") from None
        return address
    from ft_pipeline.core.paths import raw_zone

    spill = raw_zone() / "ray-spill"
    spill.mkdir(parents=True, exist_ok=True)
    # address="local": a new Ray of our own. With no address, ray.init joins any Ray it finds
    # running on this machine (`ray start`, another user's), whose spill folder is not our raw zone.
    ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False,
             _temp_dir=session_root(), _system_config={"object_spilling_config": json.dumps(
                 {"type": "filesystem", "params": {"directory_path": str(spill)}})})
    return "local"


# Ray puts its sockets under the session folder; a Unix socket path holds 107 bytes at most, and
# Ray's own part of it ("/session_2026-12-08_01-58-42_180720_10755/sockets/plasma_store") is ~64.
_SOCKET_ROOM = 107 - 64


def session_root() -> str:
    """Where a Ray started here keeps its session (logs, worker output, sockets): the raw zone, not
    /tmp/ray, since a worker's log can hold what it was mapping. A home whose path leaves too little
    room for Ray's sockets gets a short link in the system temp folder pointing there."""
    import hashlib
    import tempfile

    from ft_pipeline.core.paths import raw_zone

    folder = raw_zone() / "ray"
    folder.mkdir(parents=True, exist_ok=True)
    if len(str(folder)) <= _SOCKET_ROOM:
        return str(folder)
    link = Path(tempfile.gettempdir()) / f"ftp-ray-{hashlib.sha256(str(folder).encode()).hexdigest()[:10]}"
    if not (link.is_symlink() and link.resolve() == folder.resolve()):
        link.unlink(missing_ok=True)
        try:
            link.symlink_to(folder, target_is_directory=True)
        except FileExistsError:  # another process of this home made it first
            pass
    return str(link)


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))
