"""Presidio recognizers beyond the stock ones: context by nearby text, phone numbers in any
national grouping, Luhn-checked cards, names from the gazetteer, and the task's own patterns.

Importing this module imports Presidio; engine.py imports it only when it builds an analyzer.
"""
from __future__ import annotations

import bisect
import re
import threading

from ft_pipeline.core import user_regex
from ft_pipeline.core.data.redaction.config import RedactionConfig
from ft_pipeline.core.data.redaction.names import INITIAL, NOT_NAME_WORDS, name_gazetteer
from ft_pipeline.core.data.redaction.patterns import (
    CARD_CONTEXT, CARD_DIGITS, NOT_A_PHONE, PHONE_CONTEXT, PHONE_GROUPINGS, PLACE, PLACEHOLDER, POSTCODE, RULES)
from ft_pipeline.core.data.redaction.policy import country_pattern
from ft_pipeline.core.data.redaction.presidio_import import import_presidio
from ft_pipeline.core.data.redaction.urls import LinearUrlRecognizer

import_presidio()
from presidio_analyzer import (  # noqa: E402
    AnalysisExplanation, LocalRecognizer, Pattern, PatternRecognizer, RecognizerResult)
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer  # noqa: E402

IGNORE_CASE = re.IGNORECASE | re.MULTILINE  # for codes: "mrn", "MRN"
CASE_SENSITIVE = re.MULTILINE  # for names and addresses, where capitalization is the signal


class CompiledPattern(Pattern):
    """A Presidio Pattern compiled once, with the flags its recognizer runs it with. Presidio
    compiles every pattern twice (to validate it, without flags, then with them on first use),
    and the address grammar is large enough for that to be a second of every worker's start-up."""

    def __init__(self, name: str, regex: str, score: float, flags: int, user_field: str | None = None):
        self.name, self.regex, self.score = name, regex, score
        # A user's pattern runs with a time limit and fails closed (user_regex.TimedPattern).
        self.compiled_regex = (user_regex.TimedPattern(regex, flags, user_field) if user_field
                               else user_regex.compiled(regex, flags))
        self.compiled_with_flags = flags


def _patterns(specs, flags: int, user_field: str | None = None) -> list[CompiledPattern]:
    return [CompiledPattern(name, regex, score, flags, user_field) for name, regex, score in specs]


class ContextPatternRecognizer(PatternRecognizer):
    """Context by nearby text rather than Presidio's lemma window: that window skips spaCy
    stop words, and "call", "at", "to", "me" are stop words ("call me on 76 177 296"). A label
    on the line before counts ("Phone:\\n9749 0982"): the window is characters, not tokens."""

    BEFORE, AFTER = 48, 16

    def __init__(self, *args, gate: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        words = sorted(self.context or [], key=len, reverse=True)
        self._near = re.compile(r"(?i)\b(?:" + "|".join(map(re.escape, words)) + r")") if words else None
        # Skipping a text without any cue or context word saves most of these rules' regex time.
        alternatives = [f"(?:{gate})"] * bool(gate) + [rf"\b(?:{'|'.join(map(re.escape, words))})"] * bool(words)
        self._gate = re.compile("(?i)" + "|".join(alternatives)) if gate is not None else None

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
        if self._gate is not None and not self._gate.search(text):
            return []
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        for r in results:
            if self._near and r.score < 1.0 and (self._near_in(text[max(0, r.start - self.BEFORE):r.start])
                                                 or self._near_in(text[r.end:r.end + self.AFTER])):
                r.score = min(1.0, max(r.score + 0.35, 0.4))
            # Presidio's own lemma-based enhancer must not add to it a second time.
            r.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
        return results

    def _near_in(self, window: str) -> bool:
        # "<POLICY_NUMBER_1>" is not the context word "number".
        return bool(self._near.search(PLACEHOLDER.sub(" ", window) if "<" in window else window))


class StockContextEnhancer(LemmaContextAwareEnhancer):
    """Presidio's lemma context, for the stock recognizers' results only: ours weigh their own
    context, and the enhancer deep-copies every result it is given (a tenth of analysis time).

    In linear time: Presidio finds each result's token by walking the document from its start
    and looks each neighbour up in a list of the document's keywords, both once per result, and
    walks as far as it takes to find its context words. On 8 KB of "A1-A1-A1" after a cue word
    that was 50 s; here a token is found by bisection, keywords are a set, and the walk stops
    after CONTEXT_REACH tokens (a word further off is not context)."""

    CONTEXT_REACH = 64
    _call = threading.local()  # the document being enhanced, per thread: one analyzer serves them all

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
        with_context = {r.id for r in recognizers if r.context}
        todo = [r for r in raw_results if r.recognition_metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY) in with_context
                and not r.recognition_metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY)]
        if not todo:
            return raw_results
        chosen = {id(r) for r in todo}
        rest = [r for r in raw_results if id(r) not in chosen]
        if nlp_artifacts is not None and nlp_artifacts.tokens is not None:
            self._call.token_ends = [i + len(t) for i, t in zip(nlp_artifacts.tokens_indices, nlp_artifacts.tokens)]
            self._call.keywords = frozenset(nlp_artifacts.keywords or ())
        return rest + super().enhance_using_context(text, todo, nlp_artifacts, recognizers, context)

    def _find_index_of_match_token(self, word, start, tokens, tokens_indices):
        # Presidio's rule: the first token that starts at `start` or ends after it.
        ends = self._call.token_ends
        i = bisect.bisect_right(ends, start)
        if i == len(ends):
            raise ValueError("a result lies past the last token")
        return i

    def _add_n_words(self, index, n_words, lemmas, lemmatized_filtered_keywords, is_backward):
        step, words = (-1 if is_backward else 1), []
        stop = max(-1, index - self.CONTEXT_REACH) if is_backward else min(len(lemmas), index + self.CONTEXT_REACH)
        for i in range(index, stop, step):
            lemma = lemmas[i].lower()
            if lemma in self._call.keywords:
                words.append(lemma)
                if len(words) > n_words:  # the entity's own token counts, as in Presidio
                    break
        return words


class DigitsRecognizer(ContextPatternRecognizer):
    """Phone numbers in any national format: a loose pattern, kept only with 6-15 digits."""

    def __init__(self, min_digits: int = 6, max_digits: int = 15):
        super().__init__(supported_entity="PHONE_NUMBER", name="ft_phone_number_digits",
                         patterns=_patterns(PHONE_GROUPINGS, IGNORE_CASE),
                         context=PHONE_CONTEXT, global_regex_flags=IGNORE_CASE)
        self.min_digits, self.max_digits = min_digits, max_digits

    def invalidate_result(self, pattern_text):
        if any(p.fullmatch(pattern_text) for p in NOT_A_PHONE):
            return True
        digits = sum(c.isdigit() for c in pattern_text.split("x")[0].split("ext")[0])
        return not self.min_digits <= digits <= self.max_digits


class LuhnRecognizer(ContextPatternRecognizer):
    """Card numbers of 12-19 digits (Maestro, 19-digit Visa, Mastercard 2-series) that pass Luhn."""

    def __init__(self):
        super().__init__(supported_entity="CREDIT_CARD", name="ft_credit_card_luhn",
                         patterns=_patterns([("digits", CARD_DIGITS, 0.3)], CASE_SENSITIVE), context=CARD_CONTEXT,
                         global_regex_flags=CASE_SENSITIVE)

    def validate_result(self, pattern_text):
        digits = [int(c) for c in pattern_text if c.isdigit()][::-1]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
        return total % 10 == 0


class KnownNameRecognizer(LocalRecognizer):
    """Names the small NER model misses (single first names, foreign names, names it calls
    ORG): runs of capitalized words with at least one in the name gazetteer. Works on spaCy's
    tokens only, so no tagger is needed; widening then takes in the rest of the name."""

    SCORE = 0.6

    def __init__(self, gazetteer: frozenset[str]):
        super().__init__(supported_entities=["PERSON"], name="ft_known_names")
        self.gazetteer = gazetteer

    def load(self):
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        if nlp_artifacts is None or nlp_artifacts.tokens is None:
            return []
        results, run = [], []
        for token in list(nlp_artifacts.tokens) + [None]:
            if token is not None and (self._capitalized(token.text) or (run and INITIAL.fullmatch(token.text))):
                run.append(token)
                continue
            while run and INITIAL.fullmatch(run[-1].text):
                run.pop()
            if any(t.text in self.gazetteer for t in run):
                results.append(self._result(run))
            run = []
        return results

    @staticmethod
    def _capitalized(text):
        return (text[:1].isupper() and not text.isupper() and text not in NOT_NAME_WORDS
                and text.replace("-", "").replace("'", "").replace("’", "").isalpha())

    def _result(self, run):
        start, end = run[0].idx, run[-1].idx + len(run[-1].text)
        explanation = AnalysisExplanation(recognizer=self.name, original_score=self.SCORE,
                                          textual_explanation="capitalized words with a known name")
        return RecognizerResult("PERSON", start, end, self.SCORE, analysis_explanation=explanation,
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})


def _place_before_country():
    """A place named at the start of a line, after "in"/"from" or after a comma, followed by a
    country or state: "Leigha Mackay\\n\\nLa Sagne\\nSwitzerland", "in Springfield, Illinois"."""
    before = r"(?<=(?:^|\n)[ \t]*(?:[?}>*•]+[ \t]*)?|\b(?:in|at|from|to|near|of)[ \t]+|,[ \t]*)"
    after = (r"(?=[ \t]*(?:,[ \t]*|\n[ \t]*(?:[?}>*•]+[ \t]*)?)" + country_pattern()
             + r"(?:[ \t]+" + POSTCODE + r")?[ \t]*(?:$|[.,;:!?)\n]))")
    return ContextPatternRecognizer(supported_entity="LOCATION", name="ft_place_before_country",
                                    patterns=_patterns([("before_country", before + PLACE + after, 0.6)], CASE_SENSITIVE),
                                    global_regex_flags=CASE_SENSITIVE, gate=r",|\n")


def build_recognizers(config: RedactionConfig) -> list:
    """Every recognizer we add to Presidio's predefined ones, for this config."""
    def rule(entity, patterns, context=(), case_sensitive=False, gate=None, name=None, user_field=None):
        context = list(context) + config.context_words.get(entity, [])
        flags = CASE_SENSITIVE if case_sensitive else IGNORE_CASE
        return ContextPatternRecognizer(
            supported_entity=entity, name=name or f"ft_{entity.lower()}", patterns=_patterns(patterns, flags, user_field),
            context=context or None, global_regex_flags=flags, gate=gate)

    out = [rule(*spec) for spec in RULES] + [DigitsRecognizer(), LuhnRecognizer(), _place_before_country(),
                                             LinearUrlRecognizer()]
    if config.name_gazetteer:
        out.append(KnownNameRecognizer(name_gazetteer()))
    for entity, regexes in config.patterns.items():
        # Case as the user wrote it: "NW-POL-" is a format, and (?i) turns it off where wanted.
        out.append(rule(entity, [(f"task_{i}", regex, 0.85) for i, regex in enumerate(regexes)],
                        case_sensitive=True, name=f"ft_task_{entity.lower()}", user_field=f"redaction.patterns.{entity}"))
    if config.deny_list:
        out.append(PatternRecognizer(supported_entity="DENY_LIST", name="ft_deny_list", deny_list=list(config.deny_list)))
    return out
