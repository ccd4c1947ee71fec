"""Regexes, as data: the address grammar, person cues, identifier formats, phone digit groupings
and the cue words before identifiers. recognizers.py turns each rule into a Presidio recognizer.

They run inside Presidio, which uses the `regex` module: \\p{Lu} covers "Ágnes" and "Κυλλήνη",
and lookbehinds may vary in width ("driver's license number is ").
"""
from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]{0,40})_(\d+)>")
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
_CAP = r"\p{Lu}[\p{L}'’.-]{0,40}"
# Lowercase particles inside street names: "Rua Cidade de Maracajá", "Rue du Niger", "Treinta y Tres".
_PARTICLE = r"(?:de|del|della|di|da|do|dos|das|du|des|la|le|les|van|von|der|den|y|e|et|am|an|im|zu)"
_WORDS = r"(?:(?:" + _CAP + r"|" + _PARTICLE + r")[ \t]{1,8}){0,4}?"
_NUM = r"\d{1,6}[A-Za-z]?(?:-\d{1,4})?"
_HOUSE = r"\b(?:" + _NUM + r"[ \t]{1,8}){1,2}(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?[ \t]{1,8})?"
_POST_DIRECTION = r"(?:[ \t]{1,8}(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?"
_UNIT = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Fl|Floor|Room|Rm|Bldg|Box|PSC|#)\.?[ \t]{0,8}#?\d{1,6}[A-Za-z]?\b"
_MILITARY = r"(?:(?:APO|FPO|DPO)[ \t]{1,8}(?:AA|AE|AP)[ \t]{1,8}\d{5}|(?:USNS|USNV|USS|USCGC)[ \t]{1,8}" + _CAP + r")"
_STREET_WORDS = (r"[\p{L}-]{0,40}(?:strasse|straße|str\.|gasse|weg|vei|veien|vegen|vägen|gatan|gata|gade|vej|tie|tee|"
                 r"platz|allee|laan|straat|plein|braut|stígur|utca|ulica|chaussee|katu|kuja|stredet|steenweg|"
                 r"polku|väg|gränd|ringen|plassen|bakken)")
# Street types written as a separate word after the name: "Koepenicker Str. 38", "Dózsa György út 78.".
_STREET_TYPE_WORD = (r"(?:(?i:str\.|straße|strasse|gate|veg|vei|vej|gade|gatan|utca|u\.|út|útja|körút|tér|rakpart|kapu|"
                     r"sor|köz|sétány|fasor|ulica|weg|laan|tee|põik|tn\.?|maantee|puiestee)(?=[ \t]))")
_STREET_PREFIX = (r"(?:Rua|R\.|R(?=[ \t]{1,8}\p{Lu})|Ctra\.|Al\.|Via|Viale|Vicolo|Calle|C/|Carrer|Rue|Avenida|Av\.|Avda\.|Piazza|Praça|Largo|Plaza|"
                  r"Paseo|ul\.|Republica|Travessa|Estrada|Camino|Carrera|Strada|Chemin|Quai|Impasse|Allée)")
# A US street (number first, suffix last), a continental one (name first, number last), a French
# one (number, "rue"/"avenue", then a name with lowercase words in it), a unit or a military
# address. Each is a "core"; what follows on the same line or the next ones (unit, city, state,
# ZIP, country) is swallowed into the same span.
_US_STREET = _HOUSE + r"(?:(?:" + _CAP + r"|" + _PARTICLE + r")[ \t]{1,8}){0,3}?(?:" + STREET_SUFFIXES + r")s?\b\.?" + _POST_DIRECTION
_ORDINAL_STREET = _HOUSE + r"\d{1,3}(?:st|nd|rd|th)[ \t]{1,8}(?:" + STREET_SUFFIXES + r")\b\.?"
_INTL_STREET = (r"(?:\b(?:" + _NUM + r"[ \t]{1,8}){0,2})(?:" + _STREET_PREFIX + r"[ \t]{1,8}" + _WORDS + r"[\p{L}'’.-]{1,40}|"
                + _WORDS + _STREET_WORDS + r"|" + _WORDS + _CAP + r"(?:[ \t]{1,8}\p{Ll}[\p{L}-]{0,40}){0,2}?[ \t]{1,8}" + _STREET_TYPE_WORD + r")[ \t]{1,8}\d{1,5}[A-Za-z]?\b\.?")
_FR_STREET = (r"\b(?:" + _NUM + r"[ \t]{1,8}){1,2}(?i:rue|avenue|av\.|boulevard|bd|chemin|allée|impasse|place|quai|"
              r"route|cours)[ \t]{1,8}(?:(?:" + _CAP + r"|[\p{Ll}'’-]{1,8})[ \t]{1,8}){0,4}" + _CAP)
# French before US: "87 Rue du Niger" is not the US street "87 Rue".
_STRONG = r"(?:" + "|".join([_INTL_STREET, _FR_STREET, _US_STREET, _ORDINAL_STREET, r"\b" + _UNIT, r"\b" + _MILITARY,
                               r"\b(?i:P\.?[ \t]?O\.?[ \t]{1,8}Box|Postbox)[ \t]{1,8}\d{1,6}\b"]) + r")"
# House number + capitalized words, or capitalized words + number: an address only in context.
_WEAK = r"(?:" + _HOUSE + _CAP + r"(?:[ \t]{1,8}" + _CAP + r"){0,3}|\b(?:" + _NUM + r"[ \t]{1,8}){0,2}(?:" + _CAP + r"[ \t]{1,8}){1,3}\d{1,5}\b)"
# A named street without a number ("Mstislav Radial", "Sille Ranch Street"): an address only in context.
_NAMED = r"\b(?:" + _CAP + r"[ \t]{1,8}){1,3}(?:" + STREET_SUFFIXES + r")s?\b\.?(?:[ \t]{1,8}(?:St\.|Street)\b)?"
# Lines of an address block can start with quoting or bullets ("> ", "}} ", "??? ", "* ").
_SEP = r"(?:[ \t]{0,8}(?:,|\n)(?:[ \t,\n]|(?<=\n[ \t]{0,8})[?}>*•]{1,8}|[?}>*•](?=[?}>*•]{0,8}[ \t])){0,8}|[ \t]{1,8})"
# Postcodes: 5-digit and 4-digit ones ("82704", "2680-043"), "860 13", "81-521", UK "PH36 9QH",
# Dutch "7736 PJ", Canadian "K1A 0B1".
POSTCODE = (r"(?:[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}|[A-Z]\d[A-Z][ ]?\d[A-Z]\d|\d{4}[ ]?[A-Z]{2}|\d{4,6}(?:-\d{3,4})?"
            r"|\d{3}[ ]\d{2}|\d{2}-\d{3})\b")
# "nan": exported spreadsheets write a missing state as nan, and the ZIP after it is still PII.
_PART = (r"(?:" + _UNIT + r"|" + _MILITARY + r"|" + POSTCODE + r"|[A-Z]{2}\b(?:[ \t]{1,8}" + POSTCODE + r")?|nan\b(?:[ \t]{1,8}" + POSTCODE
         + r")?|\p{Lu}[\p{L}'’.-]{1,40}(?:[ \t]{1,8}(?:\p{Lu}[\p{L}'’.-]{0,40}|\(\p{Lu}\p{Ll}{1,40}\)|de|del|da|do|du|la|le|u|nad|pod|am|im|an|\d{1,2}\b)){0,3}"
         r"(?:[ \t]{1,8}" + POSTCODE + r")?)")
_ADDRESS_TAIL = r"(?:" + _SEP + _PART + r"){0,6}"
# "the corner of X and Y", "Monika and Turjaška 48": the whole phrase is the location.
_STREETISH = r"(?:" + _STRONG + r"|" + _NAMED + r"|(?:" + _NUM + r"[ \t]{1,8}){0,2}(?:" + _CAP + r"[ \t]{1,8}){1,3}\d{1,5}\b\.?)"
_CORNER = r"\b(?i:the[ \t]{1,8})?(?i:corner)[ \t]{1,8}of[ \t]{1,8}" + _STREETISH + r"[ \t]{1,8}and[ \t]{1,8}" + _STREETISH
_AND_STREET = r"\b\p{Lu}[\p{L}'’-]{1,40}[ \t]{1,8}and[ \t]{1,8}(?=\d|(?:" + _CAP + r"[ \t]{1,8}){1,3}\d)" + _STRONG
_AND_NUMBERED = r"\b\p{Lu}[\p{L}'’-]{1,40}[ \t]{1,8}and[ \t]{1,8}(?:" + _CAP + r"[ \t]{1,8}){1,3}(?:\p{Ll}[\p{L}.-]{0,40}[ \t]{1,8}){0,2}\d{1,5}\b\.?"
# A place: capitalized words, any script, particles inside ("Ostrov nad Ohrí", "WENG IM GESÄUSE").
PLACE = (r"(?!(?:" + "|".join(["January", "February", "March", "April", "May", "June", "July", "August", "September",
                                "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday",
                                "Friday", "Saturday", "Sunday", "The", "My", "Our", "Your", "Their", "His", "Her"])
         + r")\b)\p{Lu}[\p{L}'’.-]{0,40}(?:[ \t]{1,8}(?:(?i:nad|pod|pri|im|am|an|de|del|la|las|los|le|les|sur|upon|on|en|di|do|da|dos|das|du|van|von|y)[ \t]{1,8})?"
         r"\p{Lu}[\p{L}'’.-]{0,40}){0,3}")
_DATE = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)?\d{2}|(?:19|20)\d{2}-\d{1,2}-\d{1,2}"
    r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]{0,6}\.?\s{1,4}\d{1,2}(?:st|nd|rd|th)?,?\s{1,4}(?:19|20)\d{2}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s{1,4}(?:of\s{1,4})?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]{0,6}\.?,?\s{1,4}(?:19|20)\d{2})"
)

# --- rules: (entity, [(name, regex, score)], context words, case-sensitive, gate) ------------------
# The gate (None: always run) is for rules whose every pattern needs its cue word or a context
# word to pass the threshold: a text with neither skips the rule's regexes. It is the context
# words plus the regex given here ("" for none), searched case-insensitively.
ADDRESS_CONTEXT = [
    "address", "live", "lives", "living", "street", "ship", "shipping", "mail", "mailing", "reside", "located",
    "move", "moved", "deliver", "delivery", "home", "at", "residence", "billing", "sent", "send", "corner",
    "office", "offices", "visit", "drop", "drops", "enter", "taxi", "stop", "lived", "letter", "arrived",
    "validate", "update", "addresses", "station"]
_INTRODUCED = (r"(?<=\b(?i:my name is|my name's|name is|name:|this is|i am|i'm|call me|speaking with|patient|member|"
               r"insured|policyholder|spouse|husband|wife|son|daughter|signed|regards,|sincerely,|thanks,|cheers,)[ \t]{1,8})")
# "driver's license number is", "passport no.:", "zip code": the value follows its cue word.
_IS = r"(?:[ \t]{1,8}(?i:number|no\.?|num|#|id))?(?:[ \t]{1,8}(?i:is|was|reads))?[ \t]{0,8}[:#-]?[ \t]{0,8}"
_CODE = r"(?=[A-Z0-9-]{0,24}\d)[A-Z0-9]{1,12}(?:[- ]\d{2,9}){0,4}\b"
# An account-like code after its cue: letters, digits and dashes with at least one digit ("NW-POL-4821937").
_ID = r"(?=[A-Z0-9-]{0,24}\d)[A-Z0-9][A-Z0-9-]{4,24}\b"

RULES = [
    ("STREET_ADDRESS", [
        ("street", _STRONG + _ADDRESS_TAIL, 0.75),
        ("weak", _WEAK + _ADDRESS_TAIL, 0.3),
        # "637 Strojírenská 1006": numbers on both sides of a name is a street in most of Europe.
        ("numbered", r"\b(?:" + _NUM + r"[ \t]{1,8}){1,2}(?:(?:" + _CAP + r"|" + _PARTICLE + r")[ \t]{1,8}){0,3}" + _CAP
                     + r"[ \t]{1,8}\d{1,5}[A-Za-z]?\b" + _ADDRESS_TAIL, 0.5),
        ("zip_line", r"\b" + _CAP + r"(?:[ \t]{1,8}" + _CAP + r"){0,2},[ \t]{1,8}[A-Z]{2}[ \t]{1,8}\d{5}(?:-\d{4})?\b", 0.7),
        ("corner", _CORNER + _ADDRESS_TAIL, 0.75),
        ("name_and_street", _AND_STREET + _ADDRESS_TAIL, 0.6),
        ("name_and_numbered", _AND_NUMBERED + _ADDRESS_TAIL, 0.3),
        # A place and its postcode in prose: "in GRIGADALE PH36 9QH", "in Bubión 18412" (not a year).
        ("place_postcode", r"(?<=\b(?:in|at|from|near)[ \t]{1,8})(?:\p{Lu}[\p{L}'’.-]{0,40}[ \t]{1,8}){1,3}(?!(?:19|20)\d{2}\b)" + POSTCODE, 0.5),
        ("named", _NAMED, 0.3),
        # A postcode alone at the end of an address block ("Czech Republic 82704").
        ("country_zip", r"(?<=^[ \t]{0,8}(?:[?}>*•]{1,8}[ \t]{0,8})?" + _CAP + r"(?:[ \t]{1,8}" + _CAP + r")?[ \t]{1,8})\d{4,6}(?=[ \t]{0,8}$)", 0.35),
    ], ADDRESS_CONTEXT, True, None),
    ("PERSON", [
        ("titled", r"(?<=\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir)\.?[ \t]{1,8})\p{Lu}[\p{L}'’-]{1,40}(?:[ \t]{1,8}\p{Lu}[\p{L}'’-]{1,40})?", 0.6),
        ("introduced", _INTRODUCED + r"\p{Lu}[\p{Ll}'’-]{1,40}(?:[ \t]{1,8}\p{Lu}[\p{L}'’-]{1,40}){0,2}", 0.45),
        ("signoff", r"(?<=^[ \t]{0,8}(?:--|—|–|-|~)[ \t]{0,8})[A-Z][a-zA-Z'’-]{1,40}(?:[ \t]{1,8}[A-Z][a-zA-Z'’-]{1,40}){0,2}[ \t]{0,8}$", 0.5),
        ("here", r"\b\p{Lu}[\p{Ll}'’-]{1,40}(?:[ \t]{1,8}\p{Lu}[\p{L}'’-]{1,40}){1,2}(?=[ \t]{1,8}(?:here|speaking)\b)", 0.45),
    ], [], True, None),
    ("DATE_OF_BIRTH", [
        ("labelled", r"(?<=\b(?i:DOB|D\.O\.B\.?|date of birth|birth date|birthdate|born on|born|birthday)"
                     r"(?:\s{1,4}is)?[:\s-]{1,3})" + _DATE, 0.85),
        ("date", r"\b" + _DATE + r"\b", 0.2),
    ], ["dob", "birth", "born", "birthday", "birthdate", "age"], True, r"d\.o\.b"),
    ("MEDICAL_RECORD_NUMBER", [
        ("labelled", r"(?<=\b(?:MRN|medical record|chart)" + _IS + r")"
                     r"[A-Z]{0,3}-?\d{5,10}\b", 0.85),
        ("digits", r"\b(?:MRN-?)?\d{6,10}\b", 0.15),
    ], ["mrn", "medical", "record", "chart", "patient", "hospital"], False, ""),
    ("HEALTH_PLAN_ID", [
        ("labelled", r"(?<=\b(?:member id|member number|member #|subscriber id|health plan id|plan id|"
                     r"insurance id|group number)[:#\s-]{1,4})[A-Z0-9][A-Z0-9-]{5,18}\b", 0.8),
        ("coded", r"\b[A-Z]{2,4}-?\d{6,12}\b", 0.25),
    ], ["member", "subscriber", "plan", "insurance", "health", "group", "coverage", "medicaid", "medicare"], False, ""),
    ("POLICY_NUMBER", [
        ("labelled", r"(?<=\bpolicy" + _IS + r")" + _ID, 0.75),
    ], ["policy"], False, ""),
    ("CLAIM_NUMBER", [
        # Account-like numbers are identifiers under HIPAA's safe harbor list.
        ("labelled", r"(?<=\bclaims?" + _IS + r")" + _ID, 0.75),
        ("coded", r"\bCLM-[A-Z0-9-]{4,20}\b", 0.8),
    ], ["claim"], False, r"\bCLM-"),
    ("EMPLOYEE_ID", [
        ("prefixed", r"\b(?:EMP|EID|EMPL)[-#]?\d{3,8}\b", 0.8),
        ("labelled", r"(?<=\b(?:employee (?:id|number|no\.?|#)|staff (?:id|number)|badge(?: number| #)?)"
                     r"[:#\s-]{1,4})[A-Z]{0,4}-?\d{3,10}\b", 0.8),
    ], ["employee", "staff", "badge", "payroll", "hr"], False, r"\b(?:EMP|EID|EMPL)"),
    ("DRIVER_LICENSE", [
        ("cued", r"(?<=\b(?:driver'?s?|driving|drivers’?)[ \t]{1,8}(?:licen[cs]e|permit)" + _IS + r")" + _CODE, 0.85),
        ("dl", r"(?<=\bDL" + _IS + r")" + _CODE, 0.6),
    ], ["driver", "driving", "licence", "license"], False, r"\bDL"),
    ("PASSPORT_NUMBER", [
        ("cued", r"(?<=\bpassport" + _IS + r")(?=[A-Z0-9]{0,12}\d)[A-Z0-9]{6,12}\b", 0.85),
    ], ["passport"], False, ""),
    ("ZIP_CODE", [
        ("cued", r"(?<=\b(?i:zip|zip ?code|post ?code|postal code|plz|cep)" + _IS + r")(?:" + POSTCODE + r"|\d{3}\b)", 0.85),
    ], ["zip", "postcode", "postal"], True, r"post ?code|plz|cep"),
    # Where someone lives, is or goes: a city unless the policy's lists say country or state.
    ("LOCATION", [
        ("cued", r"(?<=\b(?i:(?:i'm|i am|we're|we are|lives?|lived|living|stay(?:s|ed|ing)?|based|located|moved|"
                 r"relocated|born|grew up|flew|fly|travel(?:l?ing|l?ed)?|arrived|returned|going|visiting|headed|"
                 r"residing|resides?|originally|come|comes|came)(?:[ \t]{1,8}(?:here|back|over|out))?[ \t]{1,8}(?:in|to|from|at|near)|"
                 r"home ?town|home city|"
                 r"city of|town of|village of|university of|where:)[ \t]{1,8})" + PLACE, 0.55),
    ], [], True, None),
    ("PHONE_NUMBER", [
        ("us", r"(?<![\w+-])(?:\+?1[\s.-]?)?\(?[2-9]\d{2}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?:\s{0,3}(?:x|ext\.?)\s{0,3}\d{1,5})?\b", 0.6),
        ("uk", r"(?<![\w+])(?:\+44\s?\(?0?\)?\s?|\b0)(?:\d[\s-]?){9,10}\b", 0.55),
    ], ["phone", "call", "mobile", "cell", "tel", "telephone", "number", "reach", "text", "fax"], False, None),
    ("US_SSN", [("dashed", r"\b\d{3}[- .]\d{2}[- .]\d{4}\b", 0.5)], ["ssn", "social", "security"], False, None),
]

# Any national grouping: "(07700)553419", "+46 (0)8 515 691 54", "05.53.18.69.64", "87 47 98".
# Kept only with 6-15 digits, and below the threshold unless a phone word is near (score 0.4 +
# context); "-Office" after the number is a label, not a digit group.
PHONE_GROUPINGS = [
    ("grouped", r"(?<![\w.+$€£-])(?:\+\d{1,3}[ .-]?)?(?:\(\+?\d{1,5}\)[ .-]?)?\d{1,6}"
                r"(?:[ .-]?\(\d{1,5}\)[ .-]?\d{1,6}|[ .-]\d{1,6}){0,6}"
                r"(?:[ \t]?(?:x|ext\.?)[ \t]?\d{1,5})?(?!\w|[.-]\d)", 0.4),
    ("international", r"(?<![\w+])\+\d{8,15}\b", 0.6),
    ("plain", r"(?<![\w.-])\d{10,11}(?![\w-])", 0.3),
]
PHONE_CONTEXT = ["phone", "call", "mobile", "cell", "tel", "telephone", "fax", "desk", "office", "reach", "text",
                 "number", "contact", "whatsapp", "dial", "ring", "messages", "message", "sms", "answering",
                 "registered", "landline", "extension", "line"]
NOT_A_PHONE = [
    re.compile(r"\d{1,3}(?:\.\d{1,3}){3}"),  # an IPv4 address, left to the IP recognizer
    re.compile(r"\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}|(?:19|20)\d{2}-\d{1,2}-\d{1,2}"),  # a date
    re.compile(r"\d{1,7}[.,]\d{1,2}"),  # an amount ("1994.23")
]
CARD_DIGITS = r"(?<![\w.-])(?:\d[ -]?){11,18}\d(?![\w-])"
CARD_CONTEXT = ["card", "credit", "debit", "visa", "mastercard", "amex", "cc"]
