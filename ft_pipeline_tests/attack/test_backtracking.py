"""No text can stall redaction: every recognizer, and the whole analysis, costs time linear in
the text's length on texts built to make regexes backtrack (hostile_text.py).

A quadratic pattern costs 16x for 4x the text; a linear one 4x. The bound below (8x) sits
between them, and the floor ignores anything too fast to time reliably. Before the repetitions
were bounded, the street rule took 20 s on one 8 KB record of "a-a-a-", and Presidio's URL
regex 13 s on "a.a.a."."""
from __future__ import annotations

import os
import time

import pytest

from ft_pipeline.core.data.redaction.config import LANGUAGE, RedactionConfig
from ft_pipeline_tests.attack.hostile_text import FAMILIES

# ~2 KB and ~8 KB texts; `make attack` (FT_ATTACK_FULL=1) doubles both.
SMALL, LARGE = (2_000, 8_000) if os.environ.get("FT_ATTACK_FULL") else (1_000, 4_000)
MAX_GROWTH = 8.0
FLOOR_S = 0.05  # below this at the large size, too fast to time reliably on a busy machine


@pytest.fixture(scope="module")
def analyzer():
    from ft_pipeline.core.data.redaction.engine import analyzer_for

    return analyzer_for(RedactionConfig())


def _best_of(runs: int, call) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def _growth(cost) -> tuple[float, float]:
    """(cost at LARGE, LARGE/SMALL ratio); a second, best-of-three look before calling it superlinear,
    since the machine may be busy."""
    small, large = cost(SMALL, 1), cost(LARGE, 1)
    if large > FLOOR_S and large / small > MAX_GROWTH:
        small, large = cost(SMALL, 3), cost(LARGE, 3)
    return large, large / small


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_recognizer_is_linear(analyzer, family):
    make = FAMILIES[family]
    texts = {n: make(n) for n in (SMALL, LARGE)}
    artifacts = {n: analyzer.nlp_engine.process_text(t, LANGUAGE) for n, t in texts.items()}
    slow = []
    for recognizer in analyzer.registry.recognizers:
        def cost(n, runs, r=recognizer):
            return _best_of(runs, lambda: r.analyze(texts[n], r.supported_entities, artifacts[n]))
        large, ratio = _growth(cost)
        if large > FLOOR_S and ratio > MAX_GROWTH:
            slow.append(f"{recognizer.name}: {large:.2f} s at {len(texts[LARGE])} chars, x{ratio:.1f} for x4 the text")
    assert slow == []


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_whole_analysis_is_linear(family):
    """Presidio, spaCy and what turns findings into spans (widening names, places, merging)."""
    from ft_pipeline.core.data.redaction.spans import analyze_texts

    make, config = FAMILIES[family], RedactionConfig()
    analyze_texts(["warm-up: Jane Doe lives at 12 Main Street"], config)

    def cost(n, runs):
        text = make(n)
        return _best_of(runs, lambda: analyze_texts([text], config))
    large, ratio = _growth(cost)
    assert large <= FLOOR_S or ratio <= MAX_GROWTH, f"x{ratio:.1f} for x4 the text ({large:.2f} s)"
