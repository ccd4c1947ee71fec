"""Mentions of an erased record in text that is not a record: Dagster's event log (metadata, log
messages, check results) and compute logs. There a record is not a row to drop but a string inside
a description, a JSON metadata value or a printed line, so each mention is replaced by ERASED and
the rest is kept: the run, its events and their structure still load.

What is looked for: the record ids as copies outside the raw zone hold them (keyed digests, and
the ids themselves), and the request's identifying values, case-insensitively (values are compared
casefolded everywhere in erasure). A mention is a whole token: `r-a` is not found inside `r-ab`.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

ERASED = "[erased]"


class Mentions:
    """The needles of one request, compiled: `exact` finds whole-token mentions (the longest needle
    first, so a value that contains an id is replaced whole); `loose` is the cheap test a stored
    JSON text passes before it is parsed (a substring search: in JSON text a token's neighbour may
    be an escape, `\\n` before it); a needle JSON would escape (a quote, a non-ASCII letter written
    as \\uXXXX) cannot be seen in the text at all, so then every document is parsed."""

    def __init__(self, needles: Iterable[str]):
        found = sorted({n for n in needles if n}, key=lambda n: (-len(n), n))
        if not found:
            raise ValueError("Mentions needs at least one needle")
        alternatives = "|".join(map(re.escape, found))
        self.exact = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)
        self.loose = re.compile(alternatives, re.IGNORECASE)
        self.escaped = any(json.dumps(n)[1:-1] != n for n in found)

    def may_be_in(self, serialized: str) -> bool:
        return self.escaped or bool(self.loose.search(serialized))


def scrub_text(text: str, mentions: Mentions) -> tuple[str, int]:
    """(text with every mention replaced by ERASED, how many)."""
    return mentions.exact.subn(ERASED, text)


TYPE_KEYS = ("__class__", "__enum__")  # how Dagster's serdes names an object's type in JSON


def scrub_json(obj, mentions: Mentions) -> tuple[object, int]:
    """A parsed JSON document with every mention replaced, in keys and in strings at any depth.
    An object that names its type keeps its type and its keys (they are field names: a --value
    that happens to spell one must not make the event unreadable); plain dicts (metadata, JSON
    values) lose mentions in their keys too."""
    if isinstance(obj, str):
        return scrub_text(obj, mentions)
    if isinstance(obj, list):
        out, total = [], 0
        for item in obj:
            new, n = scrub_json(item, mentions)
            out.append(new)
            total += n
        return out, total
    if isinstance(obj, dict):
        out, total, typed = {}, 0, any(k in obj for k in TYPE_KEYS)
        for key, value in obj.items():
            if key in TYPE_KEYS:
                out[key] = value
                continue
            new_key, k = (key, 0) if typed else scrub_text(key, mentions)
            out[new_key], n = scrub_json(value, mentions)
            total += k + n
        return out, total
    return obj, 0


def scrub_serialized(text: str, mentions: Mentions) -> str | None:
    """Serialized JSON (a Dagster event as its storage holds it) with every mention replaced, or
    None when it holds none. The document is rewritten where it is parsed, not as raw text, so a
    needle written with JSON escapes is found too and the result is still the same document."""
    if not text or not mentions.may_be_in(text):
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:  # not JSON (a tag value): plain text
        new, n = scrub_text(text, mentions)
        return new if n else None
    new, n = scrub_json(parsed, mentions)
    return json.dumps(new, sort_keys=True) if n else None  # as Dagster's serdes writes it


def scrub_text_file(path: Path, mentions: Mentions, write: bool = False) -> int:
    """Mentions in a text file (a compute log); with `write`, it is replaced atomically without them.
    Bytes that are not UTF-8 are kept as they are."""
    text = Path(path).read_bytes().decode("utf-8", errors="surrogateescape")
    new, n = scrub_text(text, mentions)
    if write and n:
        tmp = Path(path).with_name(f".{Path(path).name}.erasure.tmp")
        with open(tmp, "wb") as fh:
            fh.write(new.encode("utf-8", errors="surrogateescape"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return n
