"""PII/PHI redaction with Presidio: the package reads like its pipeline.

    config      RedactionConfig: what is detected, the entity policy, workers; to_dict/from_dict
    policy      per entity type redact | pseudonymize | keep (HIPAA Safe Harbor by default)
    patterns    the regexes: address grammar, identifier formats, phone groupings, cue words
    recognizers Presidio recognizers built from them, plus the name gazetteer's
    names       the gazetteer and widening a found name to the whole name
    engine      Presidio and spaCy set up once per process
    spans       findings -> spans: widened, typed by the policy, merged, propagated
    pseudonyms  consistent <TYPE_n> or surrogate values within a record
    stream      chunks of records, worker processes, redact_file (the asset's and the CLI's path)

Why not the stock AnalyzerEngine + AnonymizerEngine per text:
- pseudonyms must be consistent across all text fields of a record ("John Smith" in turn 1 and
  "Smith" in turn 3 are the same <PERSON_1>), which is a record-level decision;
- a partly redacted identifier is a leak ("<PERSON_1> Smith", "42 <LOCATION_1>"), so spans are
  widened to whole names and whole addresses and every detected value is searched for again in
  the rest of the record;
- names the small NER model misses are taken from a gazetteer, and places it finds are sorted
  into the redacted (cities) and the kept (countries, states, currencies);
- throughput: spaCy runs only the tokenizer and NER, in batches, presidio is imported without
  transformers/torch, and chunks of records are spread over one worker per core.
"""
from ft_pipeline.core.data.redaction.config import (
    LANGUAGE, SPACY_MODEL, RedactionConfig, default_n_process, recorded_config, strictest)
from ft_pipeline.core.data.redaction.names import name_gazetteer
from ft_pipeline.core.data.redaction.patterns import PLACEHOLDER
from ft_pipeline.core.data.redaction.policy import DEFAULT_POLICY, place_type
from ft_pipeline.core.data.redaction.spans import Span, analysis_view, analyze_texts, propagate
from ft_pipeline.core.data.redaction.stream import (
    Redactor, default_quarantine_path, redact_chunk, redact_documents, redact_file)
from ft_pipeline.core.digest import list_view

__all__ = [
    "DEFAULT_POLICY", "LANGUAGE", "PLACEHOLDER", "SPACY_MODEL", "RedactionConfig", "Redactor", "Span",
    "analysis_view", "analyze_texts", "config_to_dict", "default_n_process", "default_quarantine_path",
    "list_view", "name_gazetteer", "place_type", "propagate", "recorded_config", "redact_chunk", "redact_documents",
    "redact_file", "strictest",
    "vanilla_analyzer",
]


def config_to_dict(config: RedactionConfig) -> dict:
    """For asset metadata, which the event log keeps for good: the knobs, with the allow list, the
    deny list and the deny terms (names, code words) as a count and a keyed digest each, so a
    changed list is visible without its entries being shown."""
    data = config.to_dict()
    data["allow_list"], data["deny_list"] = list_view(config.allow_list), list_view(config.deny_list)
    data["screening"] = {**data["screening"], "deny_terms": list_view(config.screening.deny_terms)}
    return data


def vanilla_analyzer(model_name: str = SPACY_MODEL):
    """Presidio as it comes (the benchmark baseline); see engine.vanilla_analyzer."""
    from ft_pipeline.core.data.redaction.engine import vanilla_analyzer as build

    return build(model_name)
