"""The erasure state the lower layers consult: the suppression list (keyed digests of the ids and
values people asked to be forgotten by, never the values) that ingestion filters by, the lock that orders data-writing steps against
a forget, and the erasure log's digests that promotion checks a model's training data against.
`core/erasure/` writes all three; nothing here knows how a request is carried out."""
from __future__ import annotations

import fcntl
import functools
import json
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ft_pipeline.core import paths


def erasure_dir() -> Path:
    return paths.raw_zone() / "erasure"


def suppression_path() -> Path:
    return erasure_dir() / "suppressed.jsonl"


def log_path() -> Path:
    return paths.pipeline_home() / "audit" / "erasures.jsonl"


def _strings(obj) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def record_id(obj) -> str | None:
    """The id of a record, or of the line a quarantine entry kept as it came (`raw`)."""
    if not isinstance(obj, dict):
        return None
    if obj.get("id") is not None:
        return str(obj["id"])
    raw = obj.get("raw")
    if isinstance(raw, str) and raw.lstrip().startswith("{"):
        try:
            inner = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return str(inner["id"]) if isinstance(inner, dict) and inner.get("id") is not None else None
    return None


# --- whole-token matching -------------------------------------------------------------------
# A value matches where its tokens appear, in order, as whole tokens of the text: "Anna" matches
# "anna." and "Anna's" but not "Savannah". Word runs joined by one of . @ + - stay one token, so
# an email address or a phone number matches only as a whole ("jane.roe@example.com" is not
# found inside "bob.jane.roe@example.com", nor "Anna" inside "anna@example.com").
TOKEN = re.compile(r"\w+(?:[.@+\-]\w+)*")
ID_PURPOSE, VALUE_PURPOSE, FIRST_PURPOSE = "suppressed id", "suppressed value", "suppressed value's first token"


def _norm(token: str) -> str:
    return unicodedata.normalize("NFKC", token).casefold()


def tokens(text: str) -> list[str]:
    """The normalised tokens of a text (a request's value as it is compared and digested)."""
    if text.isascii():  # the same tokens, found in one pass (NFKC and casefold are lower() there)
        return TOKEN.findall(text.lower())
    return [_norm(t) for t in TOKEN.findall(text)]


@dataclass
class Suppression:
    """Ids and values to match, as keys: the clear ids and token strings of a request (erasure
    scanning its own copies), or their keyed digests (the list ingestion loads)."""
    ids: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)  # " ".join(tokens) of each value, or its digest
    lengths: set[int] = field(default_factory=set)  # token counts of the values: the windows to try
    firsts: set[str] = field(default_factory=set)  # each value's first token, or its digest
    id_key: Callable[[str], str] = str
    value_key: Callable[[str], str] = str
    first_key: Callable[[str], str] = str

    @classmethod
    def request(cls, ids: Iterable[str] = (), values: Iterable[str] = ()) -> "Suppression":
        seqs = [tokens(v) for v in values]
        return cls(set(ids), {" ".join(t) for t in seqs if t}, {len(t) for t in seqs if t}, {t[0] for t in seqs if t})

    @classmethod
    def load(cls) -> "Suppression":
        from ft_pipeline.core.digest import keyed_digester

        entries = suppression_entries()
        if not entries:
            return cls()
        values = [e for e in entries if e["kind"] == "value"]
        # A record's words repeat across records ("the", "my", names): each token's digest is
        # computed once per ingest, and only a window opening on a value's first token is digested
        # whole, so the list costs about one dictionary lookup per token.
        return cls({e["digest"] for e in entries if e["kind"] == "id"}, {e["digest"] for e in values},
                   {e["tokens"] for e in values}, {e["first"] for e in values}, keyed_digester(ID_PURPOSE),
                   keyed_digester(VALUE_PURPOSE), functools.lru_cache(maxsize=1 << 18)(keyed_digester(FIRST_PURPOSE)))

    def __bool__(self) -> bool:
        return bool(self.ids or self.values)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every whole-token occurrence of a value in `text`, in order."""
        if not self.values:
            return []
        found = [(m.start(), m.end()) for m in TOKEN.finditer(text)]
        return [(found[i][0], found[i + n - 1][1]) for i, n in self._hits(tokens(text))]

    def _hits(self, seq: list[str]) -> Iterator[tuple[int, int]]:
        """(index, token count) of each value's occurrence in a token sequence."""
        for i, first in enumerate(seq):
            if self.first_key(first) not in self.firsts:
                continue
            for n in sorted(self.lengths):
                if i + n <= len(seq) and self.value_key(" ".join(seq[i:i + n])) in self.values:
                    yield i, n

    def matches(self, obj) -> bool:
        """A record (or a quarantine entry, or a raw line) that names a suppressed id or value."""
        rid = record_id(obj)
        if rid is not None and self.id_key(rid) in self.ids:
            return True
        return bool(self.values) and any(next(self._hits(tokens(text)), None) for text in _strings(obj))


def entries_for(ids: Iterable[str], values: Iterable[str], request_id: str) -> list[dict]:
    """What the list keeps of a request: keyed digests of its ids and of its values' token strings
    (with the token count, the window ingestion digests), never a value itself."""
    from ft_pipeline.core.digest import keyed_digest

    out = [{"request_id": request_id, "kind": "id", "digest": keyed_digest(i, ID_PURPOSE)} for i in ids]
    for value in values:
        seq = tokens(value)
        if seq:
            out.append({"request_id": request_id, "kind": "value", "tokens": len(seq),
                        "digest": keyed_digest(" ".join(seq), VALUE_PURPOSE), "first": keyed_digest(seq[0], FIRST_PURPOSE)})
    return out


def add_entries(new: list[dict]) -> list[dict]:
    """Appends the entries the list does not hold yet; returns those it added."""
    entries = suppression_entries()
    present = {(e["kind"], e["digest"]) for e in entries}
    added = list({(e["kind"], e["digest"]): e for e in new if (e["kind"], e["digest"]) not in present}.values())
    if added:
        _write(entries + added)
    return added


def suppression_entries() -> list[dict]:
    """The list's entries. A list from before digests (values and ids in clear) is rewritten as
    digests the first time it is read, so a clear value does not outlive the upgrade."""
    path = suppression_path()
    entries = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()] if path.exists() else []
    if any("value" in e for e in entries):
        migrated: dict = {}
        for e in entries:
            ids, values = ([e["value"]], []) if e.get("kind") == "id" else ([], [e["value"]])
            for d in entries_for(ids, values, e.get("request_id", "")) if "value" in e else [e]:
                migrated.setdefault((d["kind"], d["digest"]), d)
        entries = list(migrated.values())
        _write(entries)
    return entries


def _write(entries: list[dict]) -> None:
    from ft_pipeline.core.jsonl import atomic_text

    with atomic_text(suppression_path()) as fh:
        fh.writelines(json.dumps(e, sort_keys=True) + "\n" for e in entries)


@contextmanager
def erasure_lock(shared: bool = False):
    """A forget holds it alone; the steps that write record data (ingest, redaction, export) hold
    it shared, so a forget waits for them and they wait for it: an ingest that read the
    suppression list before a forget began can no longer write the records it erased after the
    forget has scanned for copies. Promotion holds it alone while it checks its training data
    against the erasures. The kernel drops it when a killed process dies."""
    erasure_dir().mkdir(parents=True, exist_ok=True)
    with open(erasure_dir() / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def erasure_log() -> list[dict]:
    path = log_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def erased_digests() -> set[str]:
    """Digests of every record id any erasure request covered."""
    return {d for entry in erasure_log() for d in entry.get("removed_id_digests", [])}
