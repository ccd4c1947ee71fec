"""Consistent pseudonyms within a record: the same value gets the same <TYPE_n> or surrogate in
every turn and field ("John Smith" in turn 1 and "Smith" in turn 3 are one <PERSON_1>)."""
from __future__ import annotations

import re
from collections import Counter

from ft_pipeline.core.data.redaction.config import RedactionConfig
from ft_pipeline.core.data.redaction.names import name_tokens
from ft_pipeline.core.data.redaction.patterns import PLACEHOLDER
from ft_pipeline.core.data.redaction.policy import SURROGATE_ENTITIES

SURROGATE_NAMES = [
    "Alex Morgan", "Jordan Reyes", "Taylor Quinn", "Casey Brooks", "Riley Hart", "Morgan Ellis",
    "Avery Lane", "Jamie Cole", "Drew Parker", "Skyler Grant",
]
_DIGITS_ONLY = {"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "UK_NHS"}


class Pseudonyms:
    """Numbers values per entity type within one record: same value, same number."""

    def __init__(self, texts: list[str]):
        # Numbering continues after placeholders already present (a record redacted before).
        self.next: Counter = Counter()
        for text in texts:
            for m in PLACEHOLDER.finditer(text):
                self.next[m.group(1)] = max(self.next[m.group(1)], int(m.group(2)))
        self.values: dict[str, list[tuple[object, int]]] = {}

    def number(self, entity: str, value: str) -> int:
        known = self.values.setdefault(entity, [])
        if entity == "PERSON":
            # "John", "Smith" and "John Smith" are one person; "Mary Smith" is another.
            key: object = name_tokens(value) or frozenset([value.casefold()])
            for other, n in known:
                if key <= other or other <= key:
                    return n
        else:
            key = _canonical(entity, value)
            for other, n in known:
                if other == key:
                    return n
        self.next[entity] += 1
        known.append((key, self.next[entity]))
        return self.next[entity]


def replace(texts: list[str], views: list[str], spans: list[list], config: RedactionConfig) -> tuple[list[str], Counter]:
    """The record's texts with every span replaced as the policy says. Values are read from the
    analysis views (escapes as whitespace), so "a\\nb" and "a\nb" are one value; the original
    texts are what gets cut, so escapes outside the spans stay as they were."""
    names = Pseudonyms(texts)
    counts: Counter = Counter()
    out = []
    for text, view, found in zip(texts, views, spans):
        pieces, pos = [], 0
        for s in sorted(found, key=lambda s: s.start):
            n = names.number(s.entity, view[s.start:s.end])
            replacement = surrogate(s.entity, n) if config.action(s.entity) == "pseudonymize" else f"<{s.entity}_{n}>"
            pieces += [text[pos:s.start], replacement]
            pos = s.end
            counts[s.entity] += 1
        pieces.append(text[pos:])
        out.append("".join(pieces))
    return out, counts


def surrogate(entity: str, n: int) -> str:
    if entity == "PERSON":
        return SURROGATE_NAMES[(n - 1) % len(SURROGATE_NAMES)]
    if entity == "EMAIL_ADDRESS":
        return f"person{n}@example.org"
    if entity == "PHONE_NUMBER":
        return f"555-01{n % 100:02d}"  # 555-0100..0199 is reserved for fiction
    return f"<{entity}_{n}>"


def surrogate_values(config: RedactionConfig) -> frozenset[str]:
    """What pseudonymization writes, so the residual-PII finder does not report it back."""
    if not any(config.action(e) == "pseudonymize" for e in SURROGATE_ENTITIES):
        return frozenset()
    n = range(1, 100)
    return frozenset(SURROGATE_NAMES) | {f"person{i}@example.org" for i in n} | {f"555-01{i:02d}" for i in n}


def _canonical(entity: str, value: str) -> str:
    if entity in _DIGITS_ONLY:
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    return " ".join(value.casefold().split())
