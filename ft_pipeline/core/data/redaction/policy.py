"""The entity policy: per entity type, redact (placeholder), pseudonymize (surrogate) or keep.

The default follows HIPAA Safe Harbor (45 CFR 164.514(b)(2)): names, geographic units smaller
than a state (street, city, postcode), dates tied to a person, contact details and every account
or document number go; a country, a state, a nationality or a currency identifies nobody and
carries the meaning of a bank's or an insurer's data ("I changed over Russian Ruble to UK pounds"),
so it stays. The NER model calls all places LOCATION; `place_type` sorts out the kept ones.
"""
from __future__ import annotations

import functools
import re

ACTIONS = ("redact", "pseudonymize", "keep")
SURROGATE_ENTITIES = frozenset({"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"})
KEPT_PLACES = ("COUNTRY", "STATE", "NRP", "CURRENCY")
RETYPED_PLACES = ("COUNTRY", "STATE", "CURRENCY")  # no recognizer: what place_type makes of a LOCATION

DEFAULT_POLICY = {
    # Direct identifiers (Safe Harbor items A, D-R).
    **dict.fromkeys([
        "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
        "MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID", "POLICY_NUMBER", "CLAIM_NUMBER", "EMPLOYEE_ID",
        "US_PASSPORT", "PASSPORT_NUMBER", "US_DRIVER_LICENSE", "DRIVER_LICENSE", "US_ITIN", "US_BANK_NUMBER",
        "UK_NHS", "MEDICAL_LICENSE", "CRYPTO", "DATE_OF_BIRTH", "URL",
    ], "redact"),
    # Geography below a state (item B): streets, cities and other places, postcodes.
    "STREET_ADDRESS": "redact", "LOCATION": "redact", "ZIP_CODE": "redact",
    # Identify nobody; removing them destroys the data's meaning.
    **dict.fromkeys(KEPT_PLACES, "keep"),
}

# Names that the lists below do not spell the way people write them.
_ALIASES = {
    "COUNTRY": ["UK", "U.K.", "Britain", "Great Britain", "US", "U.S.", "USA", "U.S.A.", "America",
                "the States", "Russia", "South Korea", "North Korea", "Czech Republic", "Holland", "UAE",
                "Vatican", "Ivory Coast", "Burma", "Macedonia", "Swaziland", "EU", "European Union",
                "Europe", "Asia", "Africa", "North America", "South America", "Latin America", "Oceania",
                "Antarctica", "Middle East", "Scandinavia"],
    "CURRENCY": ["pound", "pounds", "sterling", "dollar", "dollars", "euro", "euros", "yen", "franc", "francs",
                 "Bitcoin", "Ethereum", "Litecoin", "Tether"],
}
# States, provinces and the UK's nations of the countries whose first-level units English text
# names as such ("Ontario", "NSW", "Scotland"). Elsewhere the unit is usually named after its
# capital (Utrecht, Groningen, São Paulo, Salzburg), and in text that name is the city.
_STATE_COUNTRIES = {"US", "CA", "AU", "IN", "GB"}
_STATE_TYPES = {"State", "Province", "Territory", "Country", "Nation"}
# State names that are at least as often the city, which Safe Harbor removes.
_CITY_FIRST = {"new york", "washington", "quebec"}


def place_type(value: str) -> str | None:
    """COUNTRY, STATE, CURRENCY or NRP when `value` is one (case and dots ignored), else None."""
    key = _key(value)
    if key.endswith("'s") or key.endswith("’s"):
        key = key[:-2]
    return place_names().get(key) or place_names().get(key.removeprefix("the "))


def country_pattern() -> str:
    """A regex of every country and state name (not abbreviations), case-insensitive: what
    follows a city in "Springfield, Illinois" or "La Sagne\\nSwitzerland"."""
    names = [n for n, kind in place_names().items() if kind in ("COUNTRY", "STATE") and len(n) > 3]
    return r"(?i:" + "|".join(re.escape(n).replace(r"\ ", r"[ \t]+") for n in sorted(names, key=len, reverse=True)) + r")"


def _key(value: str) -> str:
    return " ".join(value.replace(".", "").casefold().split())


@functools.lru_cache(maxsize=1)
def place_names() -> dict[str, str]:
    """ISO 3166 countries and state-level subdivisions, ISO 4217 currencies and ISO 639-1
    language names (which are the nationality adjectives: German, Russian, Japanese), from
    pycountry; read on first use."""
    import pycountry

    places: dict[str, str] = {}

    def add(kind: str, *names: str | None) -> None:
        for name in names:
            if name:
                places.setdefault(_key(name), kind)

    for country in pycountry.countries:
        add("COUNTRY", country.name, getattr(country, "common_name", None), getattr(country, "official_name", None))
    add("COUNTRY", *_ALIASES["COUNTRY"])
    for country in _STATE_COUNTRIES:
        for sub in pycountry.subdivisions.get(country_code=country):
            if sub.parent_code is None and sub.type in _STATE_TYPES and _key(sub.name) not in _CITY_FIRST:
                add("STATE", sub.name)
                if country != "GB":
                    add("STATE", sub.code.split("-")[1])  # "CA", "ON", "NSW" written alone
    for currency in pycountry.currencies:
        add("CURRENCY", currency.name, currency.alpha_3)
        words = currency.name.split()
        if len(words) > 1 and re.search(r"(?:an|ese|ish|i)$", words[0]):
            add("NRP", words[0])  # "Swiss Franc" -> Swiss, "Mexican Peso" -> Mexican
    add("CURRENCY", *_ALIASES["CURRENCY"])
    for language in pycountry.languages:
        if hasattr(language, "alpha_2"):
            add("NRP", language.name.split(" (")[0].split(";")[0])
    return places
