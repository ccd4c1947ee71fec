"""From Presidio's findings to the spans that get replaced: widened, typed by the policy, merged,
and propagated over the whole record.

Analysis runs on a view of each text in which the two-character escapes that CRM and CSV
exports leave between fields (`\\n`, `\\t`) are a space plus the real character: the same
length, so every offset holds in the original text too, while word boundaries, the tokenizer
and "the previous line" work as they do on real line breaks ("Phone:\\n9749 0982").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ft_pipeline.core.data.redaction.config import LANGUAGE, RedactionConfig
from ft_pipeline.core.data.redaction.names import (
    LABEL_WORDS, NAME_WORD, common_words, english_first_names, is_name_word, name_gazetteer, widen_person)
from ft_pipeline.core.data.redaction.patterns import PLACEHOLDER
from ft_pipeline.core.data.redaction.policy import place_type
from ft_pipeline.core.data.redaction.pseudonyms import surrogate_values

_ESCAPE = re.compile(r"\\([ntr])")
_REAL = {"n": "\n", "t": "\t", "r": "\r"}
# Every recognizer needs a capital letter (names, places), a digit (numbers, addresses) or an @
# (emails); texts without any, like JSON answers, skip spaCy altogether.
_MAYBE_PII = re.compile(r"[A-Z0-9@]")
# Equal spans: a recognizer's identifier beats a name, a name beats a place (the gazetteer knows
# "Chloe Dubois" where NER sees a place), and NER's NRP comes last (it calls unknown towns
# nationalities: "from CAIRNESS").
_TIE_RANK = {"NRP": 0, "LOCATION": 1, "PERSON": 2}
# spaCy's NER held about 4 KB per character of one document (1.4 GB for a 300 KB text), and its
# time grew faster than the text (5 s at 150 KB, 23 s at 300 KB); a 1 MB record is allowed in.
# Long texts are analyzed in windows instead, cut at a blank, each overlapping the one before by
# more than an entity plus its context words (CONTEXT_REACH is 64 tokens, ~400 characters), so
# an entity across a cut lies whole in the next window. A spaCy batch is bounded in characters
# as well as in texts: 64 windows at once would be the same 600 KB document again.
WINDOW_CHARS = 10_000
OVERLAP_CHARS = 1_000
BATCH_CHARS = 100_000
_BLANK_SEARCH = 200  # how far back from a window's end (or on from its start) to look for a blank


@dataclass
class Span:
    entity: str
    start: int
    end: int
    score: float
    recognizer: str = ""  # what found it (Presidio's recognizer name): the gate's report says so


def analysis_view(text: str) -> str:
    return _ESCAPE.sub(lambda m: " " + _REAL[m.group(1)], text) if "\\" in text else text


def analyze_texts(texts: list[str], config: RedactionConfig) -> list[list[Span]]:
    """The spans to replace in each text (kept types and the allow list already left out),
    Presidio over all texts batched through nlp.pipe."""
    from ft_pipeline.core.data.redaction.engine import analyzer_for

    analyzer = analyzer_for(config)
    views = [analysis_view(t) for t in texts]
    # User patterns and deny lists can match anything, so they turn the shortcut off.
    skip_ok = not (config.deny_list or config.patterns)
    # Each distinct text once: a system prompt repeated on every record is analyzed once per chunk.
    todo = [v for v in dict.fromkeys(views) if not skip_ok or _MAYBE_PII.search(v)]
    pieces = [(v, start, end) for v in todo for start, end in windows(v)]
    artifacts = _nlp_batches(analyzer, [v[start:end] for v, start, end in pieces], config.batch_size)
    entities = config.detected_entities
    allow = frozenset(config.allow_list) | surrogate_values(config)
    found: dict[str, list[Span]] = {}
    for (view, start, _), (piece, nlp_artifacts) in zip(pieces, artifacts):  # in order
        results = analyzer.analyze(piece, LANGUAGE, entities=entities, nlp_artifacts=nlp_artifacts,
                                   score_threshold=config.score_threshold)
        spans = to_spans(piece, results, config, allow)
        found.setdefault(view, []).extend(replace(s, start=s.start + start, end=s.end + start) for s in spans)
    # What two windows both saw (or one saw cut short at its end) becomes one span.
    return [merge(found.get(v, [])) if len(v) > WINDOW_CHARS else list(found.get(v, ())) for v in views]


def windows(text: str) -> list[tuple[int, int]]:
    """(start, end) of the overlapping windows a text is analyzed in; one for a short text."""
    out, start = [], 0
    while start + WINDOW_CHARS < len(text):
        end = start + WINDOW_CHARS
        blank = max(text.rfind(" ", end - _BLANK_SEARCH, end), text.rfind("\n", end - _BLANK_SEARCH, end))
        end = blank if blank > 0 else end
        out.append((start, end))
        start = end - OVERLAP_CHARS
        blank = min((i for i in (text.find(" ", start, start + _BLANK_SEARCH), text.find("\n", start, start + _BLANK_SEARCH)) if i >= 0),
                    default=start - 1)
        start = blank + 1
    out.append((start, len(text)))
    return out


def _nlp_batches(analyzer, texts: list[str], batch_size: int):
    """spaCy over `texts` in batches of at most batch_size texts and BATCH_CHARS characters."""
    group: list[str] = []
    size = 0
    for text in texts:
        if group and (len(group) == batch_size or size + len(text) > BATCH_CHARS):
            yield from analyzer.nlp_engine.process_batch(group, LANGUAGE, batch_size=batch_size)
            group, size = [], 0
        group.append(text)
        size += len(text)
    if group:
        yield from analyzer.nlp_engine.process_batch(group, LANGUAGE, batch_size=batch_size)


def to_spans(text: str, results, config: RedactionConfig, allow: frozenset[str]) -> list[Span]:
    spans = []
    for r in results:
        found = [_trim(text, Span(r.entity_type, r.start, r.end, r.score,
                                  (r.recognition_metadata or {}).get("recognizer_name", "")))]
        if r.entity_type in ("PERSON", "LOCATION", "STREET_ADDRESS"):
            found = _without_kept_places(text, found[0], config)
        if r.entity_type == "PERSON":
            found = [piece for s in found
                     for piece in ([_widened(text, line) for line in _lines(text, s)] if s.entity == "PERSON" else [s])]
        spans += [typed for s in found if s.end > s.start and (typed := _typed(text, s))]
    # Our own placeholders are not PII ("<PERSON_1>" is no person), nor are allowed strings or
    # what lies inside them ("example.org" in the surrogate "person1@example.org", "Northwind" in
    # "Northwind Mutual"); a longer span that only overlaps an allowed one stays.
    allowed = [(s.start, s.end) for s in spans if text[s.start:s.end] in allow]
    spans = [s for s in spans if not _overlaps(s, placeholder_spans(text))
             and not any(b <= s.start and s.end <= e for b, e in allowed)]
    # Kept types take part in the merge, so "UK" stays a country rather than part of something else.
    return [s for s in merge(spans) if config.action(s.entity) != "keep"]


def propagate(texts: list[str], spans: list[list[Span]]) -> list[list[Span]]:
    """Every value found anywhere in the record is redacted everywhere in it: NER misses a name
    in one turn that it caught in another, and a surname alone is still the person."""
    needles: dict[str, str] = {}
    for text, found in zip(texts, spans):
        for s in found:
            value = text[s.start:s.end]
            if len(value) >= 3:
                needles.setdefault(value, s.entity)
            if s.entity == "PERSON":
                for token in re.findall(NAME_WORD, value):
                    if len(token) > 2 and is_name_word(token):
                        needles.setdefault(token, "PERSON")
    if not needles:
        return spans
    out = []
    for text, found in zip(texts, spans):
        holes = placeholder_spans(text)
        extra = [Span(entity, start, end, 1.0, "propagated") for value, entity in needles.items() for start, end in _occurrences(text, value)]
        extra = [s for s in extra if not _overlaps(s, holes)]
        # "John Smith" and "John" found at the same place merge into the longer.
        out.append(merge(found + extra) if extra else found)
    return out


def _occurrences(text: str, value: str):
    """Where `value` stands as a whole token (not inside a word, an email or a number): str.find,
    not a regex per record, whose compilation cost more than the search."""
    start = text.find(value)
    while start != -1:
        end = start + len(value)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before in "_@.-") and not (after.isalnum() or after in "_@-"):
            yield start, end
        start = text.find(value, start + 1)


def merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans become one span over their union; it takes the entity of the longest
    member (an address that contains a LOCATION stays an address)."""
    out: list[Span] = []
    group: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if group and span.start < max(s.end for s in group):
            group.append(span)
            continue
        if group:
            out.append(_union(group))
        group = [span]
    if group:
        out.append(_union(group))
    return out


def placeholder_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in PLACEHOLDER.finditer(text)] if "<" in text else []


def _typed(text: str, span: Span) -> Span | None:
    """A place the policy keeps is typed as such: "UK" is a COUNTRY. NER calls some first names
    places ("Hannah, Chad and Danny"), so a place that is also an English first name stays
    redacted; it also calls a country alone on its line a PERSON, which any known name vetoes.
    A common word is no place ("I am from Support"): None."""
    if span.entity in ("LOCATION", "PERSON"):
        value = text[span.start:span.end]
        if span.entity == "LOCATION" and value.casefold() in common_words():
            return None
        kind = place_type(value)
        if kind and value not in (english_first_names() if span.entity == "LOCATION" else name_gazetteer()):
            return replace(span, entity=kind)
    return span


# An address or place list splits at commas and line breaks; bullets and quotes lead a line.
_PART = re.compile(r"[^,\n]+")
_LEAD = re.compile(r"[\s?}>*•]*")
_WITH_CODE = re.compile(r"(.+?)[ \t]+(\d[\dA-Z -]{1,9})")


def _without_kept_places(text: str, span: Span, config: RedactionConfig) -> list[Span]:
    """An address or a place list keeps its country and state ("...\n Svratka\n Czech Republic
    45098" -> the street, the city and the postcode go, the country stays, as the policy says)."""
    if "," not in text[span.start:span.end] and "\n" not in text[span.start:span.end]:
        return [span]
    pieces, start = [], span.start
    for m in _PART.finditer(text, span.start, span.end):
        lead = _LEAD.match(text, m.start(), m.end()).end()
        body = text[lead:m.end()].rstrip()
        coded = _WITH_CODE.fullmatch(body)
        name = coded.group(1) if coded else body
        kind = place_type(name)
        if not kind or config.action(kind) != "keep":
            continue
        pieces.append(replace(span, start=start, end=lead))
        if coded:  # the postcode after the country is still a postcode
            pieces.append(replace(span, entity="ZIP_CODE", start=lead + coded.start(2), end=lead + coded.end(2)))
        start = lead + len(body)
    pieces.append(replace(span, start=start))
    return [p for p in (_trim_to_word(text, p) for p in pieces) if p.end > p.start]


def _trim_to_word(text: str, span: Span) -> Span:
    start, end = span.start, span.end
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not (text[end - 1].isalnum() or text[end - 1] == "."):
        end -= 1
    return replace(span, start=start, end=end)


def _lines(text: str, span: Span) -> list[Span]:
    """A name never crosses a line break: NER reads "Bernd Frey\nPhone" as one name."""
    if "\n" not in text[span.start:span.end]:
        return [span]
    out, start = [], span.start
    for line in text[span.start:span.end].split("\n"):
        if any(is_name_word(w) and w not in LABEL_WORDS for w in re.findall(NAME_WORD, line)):
            out.append(_trim(text, replace(span, start=start, end=start + len(line))))
        start += len(line) + 1
    return out


def _widened(text: str, span: Span) -> Span:
    start, end = widen_person(text, span.start, span.end)
    return replace(span, start=start, end=end)


def _union(group: list[Span]) -> Span:
    best = max(group, key=lambda s: (s.end - s.start, _TIE_RANK.get(s.entity, 3), s.score))
    return replace(best, start=min(s.start for s in group), end=max(s.end for s in group),
                   score=max(s.score for s in group))


def _trim(text: str, span: Span) -> Span:
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return replace(span, start=start, end=end)


def _overlaps(span: Span, holes: list[tuple[int, int]]) -> bool:
    return any(span.start < e and b < span.end for b, e in holes)
