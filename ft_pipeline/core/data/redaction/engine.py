"""Presidio set-up: imported without transformers and torch, spaCy running only what is read, one
AnalyzerEngine per recognizer-shaping config, cached per process."""
from __future__ import annotations

import functools
import json
from ft_pipeline.core.data.redaction.config import LANGUAGE, SPACY_MODEL, RedactionConfig
from ft_pipeline.core.data.redaction.presidio_import import import_presidio

# The parts of RedactionConfig that change which recognizers exist (the policy only changes
# which entities are asked for, per call).
_RECOGNIZER_KNOBS = ("deny_list", "patterns", "context_words", "spacy_model", "name_gazetteer")


def _offline_tldextract() -> None:
    # Presidio's email validator calls tldextract, which otherwise tries to download the public
    # suffix list on first use (and logs a traceback when it cannot). The bundled snapshot is enough.
    import tldextract.tldextract as tld

    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


@functools.lru_cache(maxsize=4)
def nlp_engine(model_name: str = SPACY_MODEL, fast: bool = True):
    """The spaCy NLP engine. `fast` keeps only the tokenizer and NER (which has its own tok2vec):
    the parser, tagger, attribute ruler and lemmatizer were half of spaCy's time, and nothing
    reads the parse or the POS tags. Presidio's context words match lemmas by substring, so the
    lower-cased word serves as the lemma ("card" is in "cards", "call" in "called")."""
    import_presidio()
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    _offline_tldextract()
    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": LANGUAGE, "model_name": model_name}]}
    if fast:
        conf["ner_model_configuration"] = {
            "labels_to_ignore": ["ORG", "ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY",
                                 "ORDINAL", "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART", "DATE", "TIME"],
        }
    engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
    nlp = engine.nlp[LANGUAGE]
    if fast:
        for name in ("parser", "tok2vec", "tagger", "attribute_ruler", "lemmatizer"):
            if name in nlp.pipe_names:
                nlp.disable_pipe(name)
        _register_lower_lemma()
        nlp.add_pipe("ft_lower_lemma", last=True)
    return engine


def _register_lower_lemma() -> None:
    from spacy.language import Language

    if "ft_lower_lemma" not in Language.factories:
        def lower_lemma(doc):
            for token in doc:
                token.lemma = token.lower  # hash ids: no string round trip
            return doc

        Language.component("ft_lower_lemma", func=lower_lemma)


def analyzer_for(config: RedactionConfig):
    """The cached AnalyzerEngine for the parts of `config` that shape recognizers."""
    return _analyzer(json.dumps({k: getattr(config, k) for k in _RECOGNIZER_KNOBS}, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _analyzer(key: str):
    import_presidio()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from ft_pipeline.core.data.redaction.recognizers import StockContextEnhancer, build_recognizers
    from ft_pipeline.core.data.screening import ScreeningConfig

    config = RedactionConfig(**json.loads(key), screening=ScreeningConfig(protected_documents=[]))
    engine = nlp_engine(config.spacy_model)
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(nlp_engine=engine, languages=[LANGUAGE])
    # Presidio's phonenumbers-based recognizer found nothing that the digit-group recognizers
    # miss (bench: 124/124 phones either way, with it restricted to US+GB) and cost a tenth of
    # the analysis time; with eight regions it was a sixth. It is left out.
    registry.remove_recognizer("PhoneRecognizer")
    registry.remove_recognizer("UrlRecognizer")  # replaced by urls.LinearUrlRecognizer: its regex backtracks
    for recognizer in build_recognizers(config):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[LANGUAGE],
                          context_aware_enhancer=StockContextEnhancer())


def vanilla_analyzer(model_name: str = SPACY_MODEL):
    """Presidio as it comes (default recognizers, full spaCy pipeline): the benchmark baseline."""
    import_presidio()
    from presidio_analyzer import AnalyzerEngine

    return AnalyzerEngine(nlp_engine=nlp_engine(model_name, fast=False), supported_languages=[LANGUAGE])
