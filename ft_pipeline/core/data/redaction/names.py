"""Names: the gazetteer of first and last names, and widening a found name to the whole name.

A partly redacted name is a leak ("<PERSON_1> Smith"), and the small NER model both misses
single first names and foreign names and cuts names short; the gazetteer finds the former,
`widen_person` fixes the latter.
"""
from __future__ import annotations

import functools
import hashlib
import re

from ft_pipeline.core.data.redaction.policy import place_names
from ft_pipeline.core.data.redaction.presidio_import import import_presidio
from ft_pipeline.core.jsonl import atomic_text
from ft_pipeline.core.paths import pipeline_home

# Capitalized words that follow a name often enough to matter but are not part of it.
NOT_NAME_WORDS = frozenset(
    "I I'm I'll I've I'd The A An And Or But So If Then Thanks Thank Hi Hello Hey Dear Please Yes No Ok "
    "Okay Sure Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April "
    "May June July August September October November December Mr Mrs Ms Miss Dr Prof Sir Madam "
    "Customer Support Agent Team Policy Claim Account Order Your My Our We You He She They It This "
    "That What When Where Why How Can Could Would Should Will Is Are Was Were Do Does Did Has Have Had "
    "Not Also Just Regards Best Sincerely Cheers From To For With At On In By Of About Name Good Morning "
    "Afternoon Evening Today Yesterday Tomorrow Bonjour Hola Bonsoir Buenos Kind Many Warm Here Re Fwd "
    "Mutual Insurance Bank Hospital Clinic Street Avenue Road English French Spanish German Address "
    "Personal Info Users User".split()
)
# Field labels ("Desk:", "Fax:") and chat roles: surnames in some locale, never names here.
LABEL_WORDS = frozenset(
    "Name Date Time Phone Fax Desk Mobile Cell Website Email E-mail Address Office Subject Note Notes Agent "
    "Customer User Assistant System Answer Question Title Company Tel Telephone Home Work Re Cc Bcc Summary "
    "Status Priority Intent Reason Account Card Policy Claim Member Patient Reference Order Ticket Case".split()
)
INITIAL = re.compile(r"[A-Z]\.?")
NAME_WORD = r"[^\W\d_][\w'’-]*"
_PARTICLE = r"(?:de|da|di|du|dos|das|del|della|van|von|der|den|le|la|bin|ibn|al|el|ter|ten)"
_TITLE = r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame)\.?"
_SUFFIX = r"(?:MD|DVM|DDS|PhD|Jr\.?|Sr\.?|II|III|IV|Esq\.?|RN)"
# An initial or particle only counts when a capitalized word follows it.
_NEXT_NAME = re.compile(r"[ \t]+(?:(?:[A-Z]\.?|" + _PARTICLE + r")(?=[ \t]+[^\W\d_a-z])|(" + NAME_WORD + r"))")
# \Z, not $: $ also matches before a final line break, and a name never crosses one.
_PREV_NAME = re.compile(r"(?<![\w'’.-])(?:(" + NAME_WORD + r")|[A-Z]\.|" + _PARTICLE + r")[ \t]+\Z")
_TITLE_BEFORE = re.compile(r"(?<![\w.])" + _TITLE + r"[ \t]+\Z")
_SUFFIX_AFTER = re.compile(r"[ \t]*,?[ \t]+" + _SUFFIX + r"\b\.?")


def is_name_word(word: str) -> bool:
    """Capitalized, not an all-caps acronym, not a greeting or weekday."""
    return word[:1].isupper() and not (word.isupper() and len(word) > 1) and word not in NOT_NAME_WORDS


def name_tokens(value: str) -> frozenset[str]:
    return frozenset(t.casefold() for t in re.findall(r"[A-Za-z][A-Za-z'’-]+", value) if t not in NOT_NAME_WORDS)


def widen_person(text: str, start: int, end: int) -> tuple[int, int]:
    """NER often catches only part of a name; a first name or surname left behind is a leak.
    Extend over adjacent capitalized words, initials ("Helena C. Carlsen") and particles
    ("Christiane S de Vaan") on the same line, over a hyphenated first part ("Amy-leigh"), a
    title and a credential ("Ms. Aimee McGregor DVM"); drop a trailing possessive."""
    # NER takes a sentence's first word along ("Call John Smith"); a common word is not the name.
    while (m := re.match(r"(" + NAME_WORD + r")[ \t]+(?=\w)", text[start:end])) and m.group(1).casefold() in common_words():
        start += m.end()
    while start > 0 and (text[start - 1].isalnum() or (text[start - 1] in "-'’" and start > 1 and text[start - 2].isalnum())):
        start -= 1
    while end < len(text) and (text[end].isalnum() or (text[end] == "-" and end + 1 < len(text) and text[end + 1].isalnum())):
        end += 1
    while (m := _NEXT_NAME.match(text, end)) and (m.group(1) is None or is_name_word(m.group(1).rstrip("'’"))):
        end = m.end()
    # Backwards, a common word is the sentence around the name: "Call John Smith", "Ask Mary".
    while (m := _PREV_NAME.search(text[max(0, start - 40):start])) and (
            m.group(1) is None or (is_name_word(m.group(1)) and m.group(1).casefold() not in common_words())):
        start -= len(m.group(0))
    if m := _TITLE_BEFORE.search(text[max(0, start - 8):start]):
        start -= len(m.group(0))
    if m := _SUFFIX_AFTER.match(text, end):
        end = m.end()
    for suffix in ("'s", "’s"):
        if text[start:end].endswith(suffix):
            end -= len(suffix)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not (text[end - 1].isalnum() or text[end - 1] in ".'’"):
        end -= 1
    if text[start:end].endswith(".") and not re.search(r"\b(?:[A-Z]|Jr|Sr|Esq)\.$", text[start:end]):
        end -= 1
    return start, end


@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Words that are names in some locale but mostly something else in English text: Faker's
    lorem words ("Will", "May", "Summer", "Page"), spaCy's stop words, field labels, nationalities."""
    import_presidio()  # first: it imports spaCy with torch hidden (thinc would import it: ~4 s)
    from faker.providers.lorem.en_US import Provider as Lorem
    from spacy.lang.en.stop_words import STOP_WORDS

    nationalities = [word for word, kind in place_names().items() if kind == "NRP"]
    return frozenset(w.casefold() for w in [*Lorem.word_list, *STOP_WORDS, *NOT_NAME_WORDS, *LABEL_WORDS, *nationalities])


@functools.lru_cache(maxsize=1)
def name_gazetteer() -> frozenset[str]:
    """First and last names of every Faker locale (~44k, offline data shipped with Faker), minus
    common words, so that a capitalized word at the start of a sentence is not taken for a name.
    Reading the 86 locales takes ~2.5 s, paid by every worker process, so the list is kept in
    $FT_PIPELINE_HOME/cache, keyed by the Faker version and the excluded words."""
    import faker

    common = common_words()
    digest = hashlib.sha256("\n".join([faker.VERSION, *sorted(common)]).encode()).hexdigest()[:16]
    cache = pipeline_home() / "cache" / f"name_gazetteer-{digest}.txt"
    try:
        return frozenset(cache.read_text(encoding="utf-8").split("\n"))
    except OSError:
        pass
    names = frozenset(n for n in _faker_names() if len(n) >= 3 and n[:1].isupper() and n.casefold() not in common
                      and n.replace("-", "").replace("'", "").isalpha())
    try:
        with atomic_text(cache) as fh:
            fh.write("\n".join(sorted(names)))
    except OSError:
        pass  # a read-only home: the list is rebuilt per process, nothing else changes
    return names


@functools.lru_cache(maxsize=1)
def english_first_names() -> frozenset[str]:
    from faker.providers.person.en_US import Provider

    return frozenset(Provider.first_names)


def _faker_names() -> set[str]:
    import importlib
    import pkgutil

    import faker.providers.person as person

    names: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = getattr(importlib.import_module(f"{person.__name__}.{module.name}"), "Provider", None)
        for attr in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary", "last_names"):
            value = vars(provider).get(attr) if provider is not None else None
            if isinstance(value, (list, tuple, set, frozenset, dict)):  # weighted lists are dicts
                names.update(v for v in value if isinstance(v, str))
    return names
