"""Content hashes (the sha256 every file-backed asset records, so an auditor can match bytes) and
keyed digests (how record ids and other pseudonymized values leave the raw zone)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ft_pipeline.core.paths import raw_zone


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_dir(path: Path) -> str:
    """One hash over every file's relative name and content hash, in sorted order."""
    digest = hashlib.sha256()
    root = Path(path)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(root).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


# --- keyed digests: how ids and annotators leave the raw zone ---------------------------------
# An unsalted sha256 of an id is reversible by enumeration (every "nw-000001".."nw-999999" hashes
# in seconds). An HMAC under a secret that only this home holds is not: the same id still maps to
# the same digest (joins, erasure, training manifests), and nobody without the raw zone can test a
# guess. The secret is created once per home, in the raw zone, and never leaves it or gets logged.
KEY_FILE = "digest.key"
KEY_BYTES = 32
# What a training manifest (and the erasure log) keeps of an id: digested for that purpose, so it
# never equals the pseudonym the record carried in the data, and erasing the data leaves no trace
# of the pseudonym either.
TRAINED = "trained"


def keyed_digest(value: str, purpose: str = "") -> str:
    """HMAC-SHA256 of `value` (with `purpose`, of "purpose NUL value") under this home's secret,
    hex: the one way an id, an annotator or a pseudonymized field value is written outside the raw
    zone."""
    import hmac

    message = f"{purpose}\0{value}" if purpose else str(value)
    return hmac.new(_home_key(_key_path()), message.encode("utf-8"), hashlib.sha256).hexdigest()


def keyed_digester(purpose: str = ""):
    """`keyed_digest` for many values under one purpose: the key is read once and the HMAC state
    copied per value (ingestion digests every n-gram window of every record: ~1 µs each, not the
    ~100 µs of finding the key again per call)."""
    import hmac

    state = hmac.new(_home_key(_key_path()), (f"{purpose}\0" if purpose else "").encode("utf-8"), hashlib.sha256)

    def digest(value: str) -> str:
        h = state.copy()
        h.update(str(value).encode("utf-8"))
        return h.hexdigest()

    return digest


def _key_path() -> Path:
    return raw_zone() / KEY_FILE


_KEYS: dict[Path, bytes] = {}


def _home_key(path: Path) -> bytes:
    """The home's secret, created on first use: written to a private temp file, then hard-linked
    into place, which fails when another process got there first (both then read the one winner)."""
    if path in _KEYS:
        return _KEYS[path]
    import os

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise RuntimeError(f"{path}: the digest key is damaged ({len(key)} bytes, expected {KEY_BYTES}); "
                           "restore it from backup: every pseudonymized id depends on it")
    _KEYS[path] = key
    return key


def list_view(items: list[str]) -> dict:
    """{count, digest} of a list of strings that may name people or secrets."""
    import json

    return {"count": len(items), "digest": keyed_digest(json.dumps(sorted(items), ensure_ascii=False))}
