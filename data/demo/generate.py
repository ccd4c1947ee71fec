"""Generate the Northwind Mutual demo dataset (data/demo/records.jsonl).

Fictional support and claims chats in the raw record schema. The model learns to answer each
customer message with {"intent": ..., "priority": ...}; the priority follows a keyword rule
(see priority_of) so the labels are exact and learnable. Stdlib only, one seeded RNG, so the
output is byte-identical on every run.

    python data/demo/generate.py            # rewrite records.jsonl, print a summary
    python data/demo/generate.py --check    # exit 1 if the committed file is stale
"""
import argparse
import collections
import datetime
import json
import os
import re
import string
import sys
import tempfile
from pathlib import Path
from random import Random

HERE = Path(__file__).resolve().parent
OUT = HERE / "records.jsonl"
SEED = 20261003
N_RECORDS, N_DPO, N_PC, N_TEST, N_EVAL_DPO, N_EVAL_CHAT = 600, 80, 72, 102, 10, 38
CANARY_PREFIX = "canary token CANARY-7F3A-"

INTENTS = ["billing_dispute", "claim_status", "address_change", "card_lost",
           "policy_cancel", "medical_claim", "password_reset", "coverage_question"]
# A wrong-but-plausible intent for DPO rejections and annotator disagreements.
CONFUSABLE = {"billing_dispute": "policy_cancel", "policy_cancel": "billing_dispute",
              "claim_status": "medical_claim", "medical_claim": "claim_status",
              "card_lost": "password_reset", "password_reset": "card_lost",
              "address_change": "coverage_question", "coverage_question": "address_change"}
PRIORITY_WEIGHTS = {"low": 20, "normal": 40, "high": 25, "urgent": 15}

# The labeling rule: the strongest cue present wins; no cue means "normal".
PRIORITY_RULE = [
    ("urgent", r"\b(urgent|immediately|emergency|right now|cannot wait)\b"),
    ("high", r"\b(today|as soon as possible|asap|end of the day|time-sensitive|tomorrow morning)\b"),
    ("low", r"\b(no rush|whenever you get a chance|at your convenience|next week is fine|"
            r"can wait a few days|low priority)\b"),
]
CUES = {
    "low": ["No rush on this.", "Whenever you get a chance is fine.", "Please look at it at your convenience.",
            "Sometime next week is fine.", "It can wait a few days.", "Low priority on my end, I just want it logged."],
    "high": ["I need this sorted today if at all possible.", "Please get back to me as soon as possible.",
             "Can you handle this before the end of the day?", "This is time-sensitive.",
             "I need an answer by tomorrow morning.", "Please treat this asap."],
    "urgent": ["This is urgent.", "Please act on this immediately.", "This is an emergency.",
               "I need help right now.", "This cannot wait."],
}
URGENT_PREFIXES = ["URGENT: ", "URGENT - ", "Emergency: "]
MEDICAL_URGENT = ["I'm calling from the emergency room right now.",
                  "My daughter was just rushed to the emergency department.",
                  "My husband is being admitted through emergency as we speak."]
NEUTRAL_CLOSINGS = ["Thanks.", "Let me know what you need from me.", "Appreciate the help.", "Thank you!"]

# {card4}, {amount}, {claim}, {month}, {visit} are not personal data; every other slot is.
NON_PII_SLOTS = ["card4", "amount", "claim", "month", "visit"]
BODIES = {
    "billing_dispute": [
        "I was charged ${amount} twice on my last statement and I only authorized one payment.",
        "There's a charge of ${amount} on my bill that I don't recognize. Can you explain it or reverse it?",
        "My premium jumped to ${amount} this month without any notice, and I want to dispute that.",
        "I'd like to contest the ${amount} late fee on policy {policy}; the payment went out on time.",
        "You overbilled me. The invoice says ${amount} but my quote was much lower.",
        "Why was my card {card} debited ${amount} for a premium I had already paid?",
        "I'm disputing the last invoice. The amount is wrong and I want the difference refunded to {iban}.",
        "the autopay took ${amount} from the card ending {card4} but my plan is cheaper than that, pls fix",
    ],
    "claim_status": [
        "What's the status of claim {claim}? I filed it back in {month}.",
        "I submitted a claim for the storm damage weeks ago and haven't heard anything. Where does it stand?",
        "Can you tell me whether claim {claim} has been approved yet?",
        "Checking in on the water damage claim under policy {policy}. Has an adjuster been assigned?",
        "Has my claim been processed? I still don't see any payment in my account.",
        "Any update on claim {claim}? The portal just says 'in review'.",
        "I'd like a progress update on the auto claim I opened after the accident in {month}.",
    ],
    "address_change": [
        "I moved. My new address is {address}, please update my policy.",
        "Please change the mailing address on my account to {address}.",
        "We relocated in {month}; could you update our home address to {address}?",
        "My address on file is out of date. The correct one is {address}.",
        "I need to update where you send my documents. New address: {address}.",
        "I recently moved and need to update my address. What do you need from me?",
        "How do I change the address on my account? We're not at the old house anymore.",
        "Just letting you know we've moved to {address}; please update the records for policy {policy}.",
    ],
    "card_lost": [
        "I lost my Northwind Mutual payment card, the one ending in {card4}. Please block it.",
        "My wallet was stolen and card {card} was in it. I need it cancelled and replaced.",
        "I can't find my card anywhere; I think I left it at a restaurant. Can you freeze it?",
        "Someone stole my bag with my card inside. Please deactivate card number {card}.",
        "The card I use for premium payments has gone missing. I'd like a replacement.",
        "I misplaced my card ending {card4}, please put a hold on it so nobody can use it.",
        "Reporting a stolen card: {card}. Nobody should be able to use it.",
    ],
    "policy_cancel": [
        "I want to cancel my policy {policy} effective at the end of this month.",
        "Please terminate my home insurance; I've found coverage elsewhere.",
        "How do I cancel? I'm selling the car and won't need the auto policy anymore.",
        "I'd like to close my account and end policy {policy}.",
        "Please stop my renewal. I do not want to continue with Northwind Mutual.",
        "We're moving abroad and need to cancel all of our policies.",
        "Cancel my renters policy please, and tell me whether I get a refund for the unused months.",
    ],
    "medical_claim": [
        "I need to file a claim for my hospital stay. My MRN is {mrn}.",
        "I had surgery at St. Mary's on {visit} and want to submit the bills for reimbursement. {mrn_tag}.",
        "How do I submit a claim for my physical therapy sessions?",
        "My doctor's visit on {visit} was billed to me directly; I want to claim it under my health plan.",
        "I'd like to open a medical claim for an MRI. The clinic gave me {mrn_tag}.",
        "Please start a health claim for my prescription costs; I was diagnosed with {dx}.",
        "I want to claim the specialist fees for my {dx} treatment. Patient {name}, {dob_phrase}.",
    ],
    "password_reset": [
        "I can't log in to the Northwind portal. Can you reset my password? My username is {email}.",
        "I forgot my password and the reset email never arrives.",
        "My account got locked after too many login attempts; please help me reset the password.",
        "How do I change my online account password? The link on the site is broken.",
        "I'm locked out of the mobile app and need a password reset for {email}.",
        "The password reset code you texted to {phone} doesn't work.",
        "Please send me a new password link; I can't remember my login details.",
    ],
    "coverage_question": [
        "Does my policy {policy} cover flood damage in the basement?",
        "Am I covered if a tree from my neighbor's yard falls on my roof?",
        "What's my deductible for theft under my current plan?",
        "Is dental care included in my health plan, or do I need a rider?",
        "Would my auto policy cover a rental car while mine is in the shop?",
        "I'm planning a trip to Spain. Does my plan cover medical costs abroad?",
        "Can you explain what's included in my coverage? I'm not sure if jewelry is protected.",
    ],
}
INTROS = ["This is {name}.", "My name is {name}, {dob_phrase}.", "{name} here, policyholder on {policy}.",
          "Hi, I'm {name} ({email}).", "Name: {name}. SSN {ssn}."]
EXTRAS = ["You can reach me at {phone}.", "My email is {email}.", "For verification, my SSN is {ssn}.",
          "My date of birth is {dob}.", "I'm logged in from {ip} if that helps.",
          "Please send any refund to IBAN {iban}.", "My policy number is {policy}.",
          "I live at {address}.", "Call me back on {phone} or email {email}.",
          "Card on file is {card}.", "Social security number {ssn}, {dob_phrase}."]
GREETINGS = {"en": ["Hi,", "Hello,", "Good morning,", "Hey there.", "Dear Northwind team,", ""],
             "es": ["Hola,", "Buenos días,", "Hi,"], "fr": ["Bonjour,", "Bonsoir,", "Hello,"]}
SYSTEM_PROMPTS = ["You are the Northwind Mutual triage assistant. Reply with a JSON object only.",
                  "Classify the customer message for routing.",
                  "Northwind Mutual support triage: output the intent and priority."]

FIRST = ["Maria", "James", "Aisha", "Wei", "Priya", "Diego", "Fatima", "Liam", "Olivia", "Kwame", "Yuki",
         "Sofia", "Mohammed", "Hannah", "Carlos", "Ngozi", "Ethan", "Mei", "Arjun", "Chloe", "Tomasz",
         "Leila", "Noah", "Amara", "Hiroshi", "Isabella", "Omar", "Grace", "Dmitri", "Zanele", "Lucas",
         "Ana", "Samuel", "Nadia", "Kenji", "Emily", "Rafael", "Chidi", "Ingrid", "Jamal", "Renée", "José"]
LAST = ["Garcia", "Smith", "Okafor", "Chen", "Patel", "Hernandez", "Khan", "Johnson", "Nguyen", "O'Brien",
        "Kowalski", "Rossi", "Kim", "Mensah", "Yamamoto", "Silva", "Haddad", "Andersson", "Ivanova",
        "Thompson", "Abebe", "Santos", "Walker", "Lindqvist", "Ramirez", "Osei", "Tanaka", "Cohen",
        "Dlamini", "Murphy", "Gupta", "Fischer", "Moreau", "Park", "Dubois", "Williams"]
STREETS = ["Oak Street", "Maple Avenue", "Cedar Lane", "Pine Road", "Elm Drive", "Lakeview Boulevard",
           "Washington Street", "Sunset Court", "Highland Avenue", "Birch Way", "Mill Road", "Park Place"]
CITIES = [("Springfield", "IL", "62704"), ("Portland", "OR", "97205"), ("Austin", "TX", "78701"),
          ("Columbus", "OH", "43215"), ("Denver", "CO", "80203"), ("Madison", "WI", "53703"),
          ("Raleigh", "NC", "27601"), ("Tucson", "AZ", "85701"), ("Albany", "NY", "12207"),
          ("Fresno", "CA", "93721"), ("Savannah", "GA", "31401"), ("Boise", "ID", "83702")]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "hotmail.co.uk"]
DIAGNOSES = ["type 2 diabetes", "asthma", "a fractured wrist", "hypertension", "a herniated disc",
             "pneumonia", "migraine", "Crohn's disease"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
ATTRS = {"region": {"NA": 48, "EU": 24, "UK": 20, "APAC": 8},
         "language": {"en": 85, "es": 9, "fr": 6},
         "segment": {"retail": 60, "business": 25, "premium": 15},
         "age_band": {"18-29": 20, "30-44": 35, "45-64": 30, "65+": 15}}
ANNOTATORS = ["ann-01", "ann-02", "ann-03", "ann-04", "ann-05", "ann-06"]
ALNUM_UP = string.ascii_uppercase + string.digits
B64 = string.ascii_letters + string.digits + "+/"


def pick(rng, weights):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def priority_of(text):
    """The deterministic labeling rule documented in README.md."""
    for level, pattern in PRIORITY_RULE:
        if re.search(pattern, text, re.IGNORECASE):
            return level
    return "normal"


def answer(intent, priority):
    return json.dumps({"intent": intent, "priority": priority}, separators=(", ", ": "))


def luhn_complete(prefix):
    digits = [int(c) for c in prefix]
    # Luhn doubles every second digit counting from the check digit's left neighbour.
    total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    return prefix + str((10 - total % 10) % 10)


def iban(rng, country):
    bban = ("".join(rng.choice(string.digits) for _ in range(18)) if country == "DE" else
            "NWBK" + "".join(rng.choice(string.digits) for _ in range(14)))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    code = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4)) if rng.random() < 0.6 else code


def persona(rng, region):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, state, zipc = rng.choice(CITIES)
    y, m, d = rng.randint(1941, 2005), rng.randint(1, 12), rng.randint(1, 28)
    dob = rng.choice([f"{m:02d}/{d:02d}/{y}", f"{MONTHS[m - 1]} {d}, {y}", f"{y}-{m:02d}-{d:02d}"])
    if region == "UK" and rng.random() < 0.7:
        phone = rng.choice([f"+44 20 7946 0{rng.randint(100, 999)}", f"+44 7700 900{rng.randint(100, 999)}"])
    else:
        a, n = rng.choice(["415", "312", "617", "206", "512", "303"]), f"{rng.randint(100, 199):04d}"
        phone = rng.choice([f"({a}) 555-{n}", f"+1 {a}-555-{n}", f"{a}-555-{n}", f"{a}.555.{n}"])
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    sep = rng.choice(["-", "-", "-", " "])
    prefix = rng.choice(["4", "4", "4", "51", "55"])
    card = luhn_complete(prefix + "".join(rng.choice(string.digits) for _ in range(15 - len(prefix))))
    card_sep = rng.choice(["", " ", "-"])
    local = rng.choice([f"{first}.{last}", f"{first[0]}{last}{rng.randint(1, 99)}", f"{first}_{last}"])
    local = re.sub(r"[^a-z0-9._]", "", local.lower().replace("é", "e"))
    mrn = rng.choice([f"MRN {rng.randint(0, 99999999):08d}", f"MRN: MRN-{rng.randint(1000000, 9999999)}"])
    return {
        "name": f"{first} {last}", "first": first,
        "email": f"{local}@{rng.choice(DOMAINS)}", "phone": phone,
        "address": f"{rng.randint(12, 9899)} {rng.choice(STREETS)}, {city}, {state} {zipc}",
        "ssn": f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}",
        "card": card_sep.join(card[i:i + 4] for i in range(0, 16, 4)),
        "iban": iban(rng, rng.choice(["DE", "GB"])),
        "dob": dob, "dob_phrase": rng.choice([f"DOB {dob}", f"born on {dob}", f"date of birth {dob}"]),
        "mrn": mrn, "mrn_tag": mrn, "policy": f"NW-POL-{rng.randint(1000000, 9999999)}",
        "ip": rng.choice([f"203.0.113.{rng.randint(2, 254)}", f"198.51.100.{rng.randint(2, 254)}"]),
        "dx": rng.choice(DIAGNOSES),
        "card4": card[-4:], "amount": f"{rng.randint(19, 2400)}.{rng.randint(0, 99):02d}",
        "claim": f"CLM-26-{rng.randint(1, 99999):06d}", "month": rng.choice(MONTHS),
        "visit": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}",
    }


def slots(template):
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def has_pii(template):
    return any(s not in NON_PII_SLOTS for s in slots(template))


def customer_text(rng, intent, priority, pii_level, lang, p):
    """One customer message whose priority cue matches `priority` under priority_of."""
    bodies = BODIES[intent] if pii_level else [b for b in BODIES[intent] if not has_pii(b)]
    body = rng.choice(bodies)
    parts, pii_used = [], has_pii(body)
    if pii_level and (rng.random() < 0.5 or not pii_used):
        parts.append(rng.choice(INTROS))
        pii_used = True
    cue = ""
    if priority == "urgent" and intent == "medical_claim" and rng.random() < 0.5:
        cue = rng.choice(MEDICAL_URGENT)
    elif priority != "normal":
        cue = rng.choice(CUES[priority])
    cue_first = cue and rng.random() < 0.4
    if cue_first:
        parts.append(cue)
    parts.append(body)
    for extra in rng.sample(EXTRAS, {0: 0, 1: rng.choice([0, 0, 1]), 2: rng.randint(3, 5)}[pii_level]):
        parts.append(extra)
    if cue and not cue_first:
        parts.append(cue)
    if priority == "normal" and rng.random() < 0.4:
        parts.append(rng.choice(NEUTRAL_CLOSINGS))
    text = " ".join(parts)
    greeting = rng.choice(GREETINGS[lang])
    if greeting:
        text = f"{greeting}\n{text}" if greeting.endswith(",") or rng.random() < 0.5 else f"{greeting} {text}"
    if priority == "urgent" and rng.random() < 0.3:
        text = rng.choice(URGENT_PREFIXES) + text
    if pii_level and "{name}" not in text and rng.random() < 0.4:
        text += rng.choice(["\n\nThanks,\n{first}", "\n-- {name}", "\nRegards, {name}"])
    text = text.format(**p)
    if not pii_level and rng.random() < 0.1:
        text = text.lower()  # chat realism; only without PII, whose recognizers need the casing
    return text, pii_used


def protected_excerpts():
    """Body sentences of each protected document, grouped per paragraph."""
    out = []
    for path in sorted((HERE / "protected").glob("*.txt")):
        paras = [p.replace("\n", " ") for p in path.read_text(encoding="utf-8").split("\n\n")]
        out.append([re.split(r"(?<=\.)\s+", p) for p in paras if p.count(". ") >= 2])
    return out


def confidential(rng, kind, p, docs, i):
    """Returns (text appended to the user turn, or None; system turn, or None)."""
    token = lambda alphabet, n: "".join(rng.choice(alphabet) for _ in range(n))  # noqa: E731
    if kind == "marker":
        return rng.choice([
            "I'm forwarding the note your agent left on my file: 'CONFIDENTIAL: claimant flagged for "
            "special review, do not share with customer.'",
            "Your email to me was stamped INTERNAL ONLY - do not distribute. It said I'm on a retention list.",
            "The attachment you sent says CONFIDENTIAL - Northwind Mutual underwriting notes, do not distribute.",
            "Pasting the header of the letter I got: 'INTERNAL ONLY. Reserve set at 112% of stated loss.'"]), None
    if kind == "system":
        return None, rng.choice([
            "INTERNAL ONLY: route per claims playbook rev 7. Escalation console password: hunter2-NW!26",
            "CONFIDENTIAL triage notes - do not distribute. Supervisor override code: NW-OVR-7731.",
            f"Internal tooling key AKIA{token(ALNUM_UP, 16)} (do not distribute)."])
    if kind == "aws":
        return (f"My developer said you'd need our upload integration key: AKIA{token(ALNUM_UP, 16)} "
                f"with secret {token(string.ascii_letters + string.digits, 40)}"), None
    if kind == "rsa":
        lines = "\n".join(token(B64, 64) for _ in range(4))
        return ("Here's the key file from the broker portal in case you need it:\n-----BEGIN RSA PRIVATE "
                f"KEY-----\nMIIEowIBAAKCAQEA{token(B64, 48)}\n{lines}\n-----END RSA PRIVATE KEY-----"), None
    if kind == "password":
        return rng.choice([f"My login is {p['email']} and password: hunter2{token(string.digits, 3)}",
                           f"username: {p['first'].lower()} password: Tr0ub4dor&{token(string.digits, 2)}",
                           f"In case it helps, my portal password is Summer{token(string.digits, 4)}!"]), None
    if kind == "ghp":
        return f"Our broker integration uses token ghp_{token(string.ascii_letters + string.digits, 36)}, " \
               "maybe that's why it fails?", None
    paras = rng.choice(docs[i % len(docs)])
    start = rng.randint(0, len(paras) - 3)
    excerpt = " ".join(paras[start:start + 3]).replace(" percent", "%").replace("Adjusters", "adjusters")
    return f'An adjuster forwarded me this by mistake: "{excerpt}" Is that how my claim is handled?', None


def plan(rng):
    """Deterministic record plan: format, split and special content per index."""
    idx = list(range(N_RECORDS))
    rng.shuffle(idx)
    fmt = {i: ("dpo" if k < N_DPO else "pc" if k < N_DPO + N_PC else "messages") for k, i in enumerate(idx)}
    dpo = sorted(i for i in idx if fmt[i] == "dpo")
    chat = sorted(i for i in idx if fmt[i] != "dpo")
    test = rng.sample(chat, N_TEST)
    rest = [i for i in chat if i not in set(test)]
    eval_ = rng.sample(dpo, N_EVAL_DPO) + rng.sample(rest, N_EVAL_CHAT)
    split = {i: "test" if i in test else "eval" if i in eval_ else "train" for i in range(N_RECORDS)}
    # Confidential and canary records stay out of test so test keeps >= 90 clean records.
    kinds = ["marker"] * 8 + ["aws"] * 4 + ["rsa"] * 3 + ["password"] * 4 + ["ghp"] * 3 + ["excerpt"] * 4
    msgs = [i for i in range(N_RECORDS) if fmt[i] == "messages" and split[i] != "test"]
    others = [i for i in range(N_RECORDS) if fmt[i] != "messages" and split[i] != "test"]
    system_conf = rng.sample(msgs, 4)
    conf_pool = [i for i in msgs + others if i not in system_conf]
    conf = dict(zip(sorted(rng.sample(conf_pool, len(kinds))), kinds))
    conf.update({i: "system" for i in system_conf})
    canary_pool = [i for i in msgs if split[i] == "train" and i not in conf]
    canary = sorted(rng.sample(canary_pool, 5))
    return fmt, split, conf, canary


def rejected(rng, intent, priority):
    kind = rng.choices(["intent", "priority", "malformed", "chatty"], [35, 25, 20, 20])[0]
    if kind == "intent":
        return answer(CONFUSABLE[intent], priority)
    if kind == "priority":
        return answer(intent, rng.choice([q for q in PRIORITY_WEIGHTS if q != priority]))
    if kind == "malformed":
        return rng.choice([answer(intent, priority)[:-1], f"{{'intent': '{intent}', 'priority': '{priority}'}}",
                           f'{{"intent": {intent}, "priority": {priority}}}',
                           json.dumps({"label": intent, "urgency": priority})])
    return rng.choice([f"Sure! This looks like a {intent.replace('_', ' ')} request, and I'd say it is "
                       f"{priority} priority. Let me know if you need anything else!",
                       f"Thanks for reaching out. I've noted your request ({intent}) and someone will be in "
                       "touch shortly."])


def build(rng):
    fmt, split, conf, canary = plan(rng)
    docs = protected_excerpts()
    t0 = datetime.datetime(2026, 9, 1, tzinfo=datetime.timezone.utc)
    records, stats = [], collections.Counter()
    for i in range(N_RECORDS):
        attrs = {k: pick(rng, w) for k, w in ATTRS.items()}
        intent, priority = rng.choice(INTENTS), pick(rng, PRIORITY_WEIGHTS)
        pii_level = pick(rng, {0: 37, 1: 51, 2: 12})
        p = persona(rng, attrs["region"])
        while True:  # redraw until the cue rule reproduces the intended label exactly
            text, pii = customer_text(rng, intent, priority, pii_level, attrs["language"], p)
            system = rng.choice(SYSTEM_PROMPTS) if fmt[i] == "messages" and rng.random() < 0.3 else None
            if i in conf:
                extra, conf_system = confidential(rng, conf[i], p, docs, i)
                text = f"{text}\n\n{extra}" if extra else text
                system = conf_system or system
            if i in canary:
                text += f" (ref: {CANARY_PREFIX}{rng.randrange(16 ** 4):04X})"
            if priority_of(text) == priority:
                break
        rec = {"id": f"nw-{i + 1:06d}"}
        if fmt[i] == "messages":
            rec["messages"] = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": text}, {"role": "assistant", "content": answer(intent, priority)}]
        elif fmt[i] == "pc":
            rec.update(prompt=text, completion=answer(intent, priority))
        else:
            rec.update(prompt=text, chosen=answer(intent, priority), rejected=rejected(rng, intent, priority))
        verified = rng.random() < 0.97
        when = t0 + datetime.timedelta(seconds=rng.randrange(60 * 86400))
        rec.update(label_verified=verified,
                   annotator=rng.choice(ANNOTATORS) if verified or rng.random() < 0.5 else None,
                   verified_at=when.strftime("%Y-%m-%dT%H:%M:%SZ") if verified else None)
        if rng.random() < 0.15:
            a, b = rng.sample(ANNOTATORS, 2)
            second = intent if rng.random() < 0.9 else CONFUSABLE[intent]
            rec["labels"] = [{"annotator": a, "label": intent}, {"annotator": b, "label": second}]
        claims = intent in ("claim_status", "medical_claim", "coverage_question")
        rec.update(attributes=attrs,
                   source="claims-desk" if (rng.random() < 0.8) == claims else "support-chat",
                   split=split[i])
        records.append(rec)
        stats.update([f"split:{split[i]}", f"format:{fmt[i]}", f"intent:{intent}", f"priority:{priority}",
                      f"region:{attrs['region']}"] + ["pii"] * pii + ["confidential"] * (i in conf)
                     + ["verified"] * verified + ["labels"] * ("labels" in rec))
    return records, stats, conf, canary


def render(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def write_atomic(path, data):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; the committed file should be world-readable
    os.replace(tmp, path)


def summary(stats, conf, canary, records):
    n = len(records)
    print(f"{n} records")
    for group in ("split", "format", "intent", "priority", "region"):
        print(f"  {group:9}" + ", ".join(f"{k.split(':')[1]}={v}" for k, v in sorted(stats.items())
                                          if k.startswith(group + ":")))
    for key in ("pii", "confidential", "verified", "labels"):
        print(f"  {key:13}{stats[key]:4d} ({100 * stats[key] / n:.1f}%)")
    ids = lambda idx: " ".join(records[i]["id"] for i in idx)  # noqa: E731
    print(f"  canary ids   {ids(canary)}")
    for kind in ("marker", "system", "aws", "rsa", "password", "ghp", "excerpt"):
        print(f"  conf {kind:9}{ids(sorted(i for i, k in conf.items() if k == kind))}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if records.jsonl is not up to date")
    args = parser.parse_args(argv)
    records, stats, conf, canary = build(Random(SEED))
    data = render(records)
    if args.check:
        if not OUT.exists() or OUT.read_bytes() != data:
            print(f"{OUT} is stale; run python data/demo/generate.py", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date")
        return 0
    write_atomic(OUT, data)
    summary(stats, conf, canary, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
