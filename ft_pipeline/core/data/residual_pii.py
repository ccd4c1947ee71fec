"""Where an export still holds PII: the residual-PII gate's scan and `ft-pipeline pii-report`.

Only text that came from records is judged. The task's own system prompt, which the export puts
first in every conversation, is the task file's text: it was checked once when the task loaded
(task_text.py), the redactor never touches it, and NER's false positives on instructions ("Speaker
B." as a person) would otherwise stop every record of a clean export.

A finding says where, never what: file, record id (as exported), turn, character span, entity
type, recognizer and score. A person who may read the export opens the file there; `context`
gives them the words around the span, with the span itself (and any other finding nearby) masked.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import re

from ft_pipeline.core.data.export import NOT_CHAT
from ft_pipeline.core.jsonl import iter_jsonl

BATCH_ROWS = 256  # one analyzer call per batch of rows: spaCy's nlp.pipe is what makes the scan affordable
CONTEXT_WORDS = 6


@dataclass(frozen=True)
class Finding:
    file: str
    id: str
    turn: str  # "messages[2]", "prompt[0]", "chosen[0]", "rejected[0]"
    start: int
    end: int
    entity: str
    recognizer: str
    score: float


@dataclass
class Scan:
    findings: list[Finding] = field(default_factory=list)
    rows: int = 0
    task_texts: int = 0  # the task's own texts left out (checked when the task loaded)

    @property
    def records(self) -> list[str]:
        """file:id of every record with a finding, in order."""
        return list(dict.fromkeys(f"{f.file}:{f.id}" for f in self.findings))

    @property
    def by_entity(self) -> dict[str, int]:
        return dict(Counter(f.entity for f in self.findings))

    def table(self, limit: int = 50) -> list[dict]:
        """The first `limit` findings as rows (no text): what the gate's metadata shows."""
        return [{**asdict(f), "score": round(f.score, 3)} for f in self.findings[:limit]]


def task_texts(export_dir: Path | str) -> frozenset[str]:
    """The texts the export's task file put into conversations (its system prompt)."""
    from ft_pipeline.core import safe_yaml

    path = Path(export_dir) / "task.yaml"
    if not path.is_file():
        return frozenset()
    data, _ = safe_yaml.load(path.read_text(encoding="utf-8"))
    prompt = (data or {}).get("system_prompt") if isinstance(data, dict) else None
    return frozenset([prompt]) if isinstance(prompt, str) and prompt.strip() else frozenset()


def record_turns(export_dir: Path | str, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, str, list[tuple[str, str]]]]:
    """(file, id, [(turn, text)]) for every row of every conversation file; a system turn that is
    one of `skip` (the task's own text) is left out. Rows are kept even when nothing is left."""
    for path in sorted(Path(export_dir).glob("*.jsonl")):
        if path.stem in NOT_CHAT:
            continue
        for row in iter_jsonl(path):
            turns = [(f"{key}[{i}]", t) for key in ("messages", "prompt", "chosen", "rejected")
                     for i, t in enumerate(row.get(key) or [])]
            yield path.name, str(row.get("id")), [
                (where, t["content"]) for where, t in turns
                if not (t.get("role") == "system" and t.get("content") in skip)]


def scan_export(export_dir: Path | str, config) -> Scan:
    """Every residual-PII finding in the export's record text, with `config` (the RedactionConfig
    the data was redacted with: its allow list, kept types and own patterns)."""
    from ft_pipeline.core.data.redaction import analyze_texts

    skip = task_texts(export_dir)
    scan = Scan(task_texts=len(skip))
    for batch in _batches(record_turns(export_dir, skip), BATCH_ROWS):
        spans = iter(analyze_texts([text for _, _, turns in batch for _, text in turns], config))
        for name, ident, turns in batch:
            scan.rows += 1
            for where, _ in turns:
                scan.findings += [Finding(name, ident, where, s.start, s.end, s.entity, s.recognizer or "unknown", s.score)
                                  for s in next(spans)]
    return scan


def report(export_dir: Path | str, scan: Scan) -> Iterator[tuple[Finding, str]]:
    """(finding, its masked context) for every finding of `scan`, read again from the export."""
    at: dict[tuple[str, str], list[Finding]] = {}
    for f in scan.findings:
        at.setdefault((f.file, f.id), []).append(f)
    for name, ident, turns in record_turns(export_dir, task_texts(export_dir)):
        for where, text in turns:
            here = [f for f in at.get((name, ident), ()) if f.turn == where]
            yield from ((f, context(text, f, here)) for f in here)


def context(text: str, finding: Finding, others: Iterable[Finding] = (), words: int = CONTEXT_WORDS) -> str:
    """`words` words either side of the finding, with the finding and any other finding in the
    window masked as <<ENTITY>> (doubled brackets: the export's own placeholders are <PERSON_1>):
    enough to see why it was flagged, without printing it."""
    tokens = [m.span() for m in re.finditer(r"\S+", text)]
    before = [a for a, b in tokens if b <= finding.start][-words:]
    after = [b for a, b in tokens if a >= finding.end][:words]
    left, right = (before[0] if before else finding.start), (after[-1] if after else finding.end)
    masks = {(finding.start, finding.end, finding.entity)} | {
        (max(o.start, left), min(o.end, right), o.entity) for o in others if o.start < right and o.end > left}
    window = text[left:right]
    for start, end, entity in sorted(masks, reverse=True):
        window = window[:start - left] + f"<<{entity}>>" + window[end - left:]
    return ("…" if left else "") + " ".join(window.split()) + ("…" if right < len(text) else "")


def _batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
