"""Atomic JSONL writing and streaming reads.

A crashed run must leave no half-written artifact, so every writer goes to a temp file in the
target's own directory (same filesystem, so os.replace is atomic) and is renamed on success.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, TextIO

from ft_pipeline.core.digest import sha256_file  # noqa: F401  (re-exported: the hash of a written file)


def dumps(obj: Any) -> str:
    """One compact JSON line; non-ASCII kept as is so files stay readable and small."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Yields a handle (`mode`, open's keywords) to a temp file that replaces `path` only if the
    block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict",
                newline: str | None = "\n") -> contextlib.AbstractContextManager[TextIO]:
    """A text handle to a temp file that replaces `path` only if the block succeeds (a file
    rewritten in place keeps its own encoding and line endings through the keywords)."""
    return atomic_open(path, "w", encoding=encoding, errors=errors, newline=newline)


class JsonlWriter:
    """Counts what it writes, so callers can assert their accounting against the file."""

    def __init__(self, fh: TextIO):
        self._fh = fh
        self.count = 0

    def write(self, obj: Any) -> None:
        self._fh.write(dumps(obj))
        self._fh.write("\n")
        self.count += 1


@contextlib.contextmanager
def atomic_jsonl(path: str | os.PathLike) -> Iterator[JsonlWriter]:
    with atomic_text(path) as fh:
        yield JsonlWriter(fh)


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Streams a trusted JSONL file (one written by the pipeline); a bad line is a bug upstream,
    so it raises with file and line instead of quarantining."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None


def count_lines(path: str | os.PathLike) -> int:
    """Non-blank lines, read in pieces of at most 1 MiB (a 50 MiB line is not read whole):
    cheap enough to size a progress bar."""
    n, blank = 0, True
    with open(path, "rb") as fh:
        while piece := fh.readline(1 << 20):
            blank = blank and not piece.strip()
            if piece.endswith(b"\n"):
                n, blank = n + (not blank), True
    return n + (not blank)
