"""URLs in linear time: Presidio's URL rule (an optional scheme, a host of up to 253 characters
ending in a known top-level domain, an optional path), found without its regex.

Presidio's pattern `[a-z0-9.\\-]{1,253}[.](?:com|edu|...)` backtracks over up to 253 characters
and tries ~500 top-level domains at every dot, from every start: an 8 KB run of "a.a.a." took
13 s to scan. Here each run of host characters is read once, its labels looked up in a set.
Unlike Presidio, a top-level domain must be a whole label ("a.comedy" is no URL).

Importing this module imports Presidio.
"""
from __future__ import annotations

import re
from bisect import bisect_right

from ft_pipeline.core.data.redaction.presidio_import import import_presidio

import_presidio()
from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult  # noqa: E402
from presidio_analyzer.predefined_recognizers import UrlRecognizer  # noqa: E402

TLDS = frozenset(re.findall(r"\(\?:([a-z]+)\)", UrlRecognizer.BASE_URL_REGEX))
MAX_HOST = 253  # Presidio's bound on what precedes the last dot, as in DNS
_RUN = re.compile(r"(?i)(https?://)?([a-z0-9.\-]+)")
_PATH = re.compile(r"/[^\s()<>\"']*")


def find_urls(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, has_scheme) of each URL, left to right, not overlapping."""
    found, done = [], 0
    for run in _RUN.finditer(text):
        host_start, host_end = run.span(2)
        if host_start < done:  # inside the path of the URL before
            continue
        # Dots whose following label is a whole top-level domain: where a host may end.
        ends, dots = [], []
        for dot in (m.start() for m in re.finditer(r"\.", text[host_start:host_end])):
            dot += host_start
            label_end = text.find(".", dot + 1, host_end)
            label_end = host_end if label_end < 0 else label_end
            if text[dot + 1:label_end].lower() in TLDS:
                dots.append(dot)
                ends.append(label_end)
        start = host_start
        while True:
            # The host takes at least one character before the dot and at most MAX_HOST.
            first = bisect_right(dots, start)
            if first == len(dots):
                break
            if dots[first] - start > MAX_HOST:  # nothing reachable: start later, as a regex scan would
                start = dots[first] - MAX_HOST
                continue
            last = bisect_right(dots, start + MAX_HOST) - 1  # greedy: the farthest reachable end
            end = ends[last]
            path = _PATH.match(text, end) if end == host_end else None
            scheme = run.group(1) is not None and start == host_start
            found.append((run.start() if scheme else start, path.end() if path else end, scheme))
            done = start = found[-1][1]
            if path:
                break
    return found


class LinearUrlRecognizer(LocalRecognizer):
    """Presidio's URL recognizer (entity URL, scores 0.6 with a scheme and 0.5 without, its
    context words), on find_urls."""

    def __init__(self):
        super().__init__(supported_entities=["URL"], name="ft_url", context=list(UrlRecognizer.CONTEXT))

    def load(self):
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        results = []
        for start, end, scheme in find_urls(text) if "." in text else []:
            score = 0.6 if scheme else 0.5
            explanation = AnalysisExplanation(recognizer=self.name, original_score=score,
                                              textual_explanation="host ending in a known top-level domain")
            results.append(RecognizerResult("URL", start, end, score, analysis_explanation=explanation,
                                            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                                                  RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
        return results
