"""Confidential-content screening: markers, deny terms, secrets, protected documents.

A record that trips any screen is quarantined whole rather than redacted: a leaked API key or a
paragraph of an internal playbook is not PII that a placeholder can neutralize, and training on
the rest of such a record still teaches the model the context around it.

Protected documents are matched by word shingles + MinHash (near_duplicates.py). A record is a few
sentences while a document is pages, so the document is cut into overlapping windows about the
size of an excerpt, and each window of the record is looked up among the documents' windows
(MinHashLSH, so the lookup does not grow with the number of documents): the Jaccard
similarity of two aligned ~40-word windows stays high under light edits (each edited word
breaks at most `shingle_size` shingles), while unrelated text shares almost no 3-word shingles.
"""
from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ft_pipeline.core.data.near_duplicates import NearDuplicateIndex, normalize, signature
from ft_pipeline.core.records import text_fields


DEFAULT_MARKERS = [
    r"\bCONFIDENTIAL\b",  # upper case only: "is my data kept confidential?" is not a marker
    r"(?i)\b(?:strictly|highly|company|proprietary (?:and|&)) confidential\b",
    r"(?i)\binternal(?: use)? only\b",
    r"(?i)\bdo not (?:distribute|redistribute|circulate)\b",
    r"(?i)\bnot for (?:external |public )?(?:distribution|release)\b",
    r"(?i)\b(?:attorney[- ]client )?privileged (?:and|&) confidential\b",
    r"(?i)\btrade secret\b",
]

DEFAULT_SECRETS = {
    "aws_access_key": r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",
    "aws_secret_key": r"(?i)aws.{0,20}(?:secret|key).{0,20}[:=]\s*['\"]?[A-Za-z0-9/+=]{40}\b",
    "private_key": r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
    "slack_token": r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b|https://hooks\.slack\.com/services/[A-Za-z0-9/]+",
    "bearer_token": r"(?i)\b(?:authorization:\s*)?bearer\s+[A-Za-z0-9\-._~+/]{20,}=*",
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    "api_key": r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b|\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}\b|\bAIza[0-9A-Za-z_-]{35}\b",
    # A value with a digit or symbol, so "password: forgotten" in a support chat is not a secret.
    "password_assignment": r"(?i)\b(?:password|passwd|pwd|passcode|secret|api[_-]?key|access[_-]?token)\b"
                           r"\s*(?:=|:|is\s*:?)\s*['\"]?(?=[^\s'\"]*[0-9!@#$%^&*_+=])[^\s'\"]{6,}",
}


@dataclass
class ScreeningConfig:
    deny_terms: list[str] = field(default_factory=list, metadata={
        "help": "Words or phrases (case-insensitive, whole words) that quarantine a record: "
                "project code names, unreleased product names."})
    markers: list[str] = field(default_factory=lambda: list(DEFAULT_MARKERS), metadata={
        "help": "Regexes of confidentiality markers (CONFIDENTIAL, internal only, do not distribute)."})
    secrets: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SECRETS), metadata={
        "help": "Secret detectors {name: regex}; the reason names the detector, never the secret."})
    protected_documents: list[str] = field(
        default_factory=list, metadata={
            "help": "Text files whose content must not enter training data (the task file's "
                    "redaction.protected_documents; none by default)."})
    near_dup_threshold: float = field(default=0.3, metadata={
        "help": "Estimated Jaccard similarity of shingle sets above which a record window matches "
                "a document window. Unrelated text scores < 0.05; a lightly edited excerpt > 0.4."})
    shingle_size: int = field(default=3, metadata={"help": "Words per shingle."})
    window_words: int = field(default=40, metadata={"help": "Words per comparison window."})
    window_stride: int = field(default=10, metadata={"help": "Words between window starts (documents)."})
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations (estimate error ~1/sqrt(n))."})

    def __post_init__(self):
        if not 0 < self.near_dup_threshold <= 1:
            raise ValueError("near_dup_threshold must be in (0, 1]")
        for path in self.protected_documents:
            if not Path(path).is_file():
                raise ValueError(f"protected document {path}: no such file")


# --- protected documents -------------------------------------------------------------------


def _windows(words: list[str], size: int, stride: int) -> list[list[str]]:
    if len(words) <= size:
        return [words]
    starts = list(range(0, len(words) - size + 1, stride))
    if starts[-1] != len(words) - size:
        starts.append(len(words) - size)
    return [words[s:s + size] for s in starts]


@functools.lru_cache(maxsize=8)
def _document_index(docs: tuple[tuple[str, float, int], ...], k: int, size: int, stride: int, num_perm: int,
                    threshold: float):
    """MinHashLSH over every window of every protected document, keyed (file name, window number);
    keyed by (path, mtime, size) so an edited document is re-read."""
    index = NearDuplicateIndex(threshold, num_perm)
    for path, _, _ in docs:
        words = normalize(Path(path).read_text(encoding="utf-8", errors="replace"))
        for number, window in enumerate(_windows(words, size, stride)):
            if len(window) >= k:
                index.add((Path(path).name, number), signature(window, k=k, num_perm=num_perm))
    return index


_STAMPS: dict[tuple[str, ...], tuple[float, tuple]] = {}
STAMP_TTL_S = 2.0


def _stamps(paths: tuple[str, ...]) -> tuple[tuple[str, float, int], ...]:
    """(path, mtime, size) of each document, looked up at most every STAMP_TTL_S seconds: with
    1,000 documents, two stats per document per record cost more than the whole lookup."""
    now = time.monotonic()
    seen = _STAMPS.get(paths)
    if seen is None or now - seen[0] > STAMP_TTL_S:
        seen = _STAMPS[paths] = (now, tuple((p, os.path.getmtime(p), os.path.getsize(p)) for p in paths))
    return seen[1]


def protected_match(text: str, config: ScreeningConfig) -> tuple[str, float] | None:
    """(document file name, estimated Jaccard) of the best-matching protected window, if any
    window of `text` reaches the threshold."""
    if not config.protected_documents:
        return None
    index = _document_index(_stamps(tuple(config.protected_documents)), config.shingle_size, config.window_words, config.window_stride,
                            config.num_perm, config.near_dup_threshold)
    words = normalize(text)
    if len(words) < max(config.shingle_size, 8) or not len(index):
        return None  # a few words cannot identify a document
    # Record windows overlap by half: an excerpt anywhere in a long message lines up with one.
    best = None
    for window in _windows(words, config.window_words, max(1, config.window_words // 2)):
        found = index.best(signature(window, k=config.shingle_size, num_perm=config.num_perm))
        if found and (best is None or found[1] > best[1]):
            best = (found[0][0], found[1])
    return best


# --- screening ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> list[re.Pattern]:
    return [re.compile(p) for p in patterns]


def screen_text(text: str, config: ScreeningConfig) -> str | None:
    for name, pattern in config.secrets.items():
        if _compiled((pattern,))[0].search(text):
            return f"secret:{name}"
    match = protected_match(text, config)
    if match:
        return f"protected_document:{match[0]}"
    if any(p.search(text) for p in _compiled(tuple(config.markers))):
        return "confidential_marker"
    if config.deny_terms:
        terms = "|".join(re.escape(t) for t in sorted(config.deny_terms, key=len, reverse=True))
        if _compiled((rf"(?i)(?<!\w)(?:{terms})(?!\w)",))[0].search(text):
            return "deny_term"
    return None


def screen_record(record: dict, config: ScreeningConfig | None = None) -> str | None:
    """The first reason to quarantine `record`, or None. Reasons name the detector or the
    protected file, never the matched text."""
    config = config or ScreeningConfig()
    texts = [t for _, t in text_fields(record)]
    # Screen fields one by one (secrets, markers) and the whole record joined (an excerpt split
    # across turns still matches a protected document).
    for text in texts:
        reason = screen_text(text, config)
        if reason:
            return reason
    if len(texts) > 1:
        match = protected_match("\n".join(texts), config)
        if match:
            return f"protected_document:{match[0]}"
    return None
