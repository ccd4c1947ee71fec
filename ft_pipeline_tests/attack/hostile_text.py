"""Texts built to make a regex backtrack: long runs of what the recognizers' repetitions
consume (hyphenated words, capitals, digit groups, particles, street prefixes, @ and dots,
phone-like groups, blanks), and random families of those atoms. Each family takes a size n and
returns about 2n characters, so a test can compare the cost at two sizes."""
from __future__ import annotations

import random

ATOMS = ["a-", "Ab ", "A.", "1 ", "12 ", "de ", "Rua ", "a@", "a.", "1-", "(1) ", ", ", "\n", "St ", "Main ",
         "x", "-", "'", "+1 ", "#", "> ", "\t", "Dr. ", "ab.ac.", "straße", "\\n", "CLM-", "policy ", "9"]

FAMILIES = {
    "hyphen": lambda n: "Note: " + "a-" * n,
    "capital": lambda n: "Note: " + "Ab " * n,
    "capital_run": lambda n: "Note: " + "A" * (2 * n),
    "capital_dot": lambda n: "Note: " + "A." * n,
    "digit_space": lambda n: "Note: " + "1 " * n,
    "number_words": lambda n: "12 Ab " * (n // 3),
    "particle": lambda n: "Note: " + "de " * (2 * n // 3),
    "street_prefix": lambda n: "Note: " + "Rua " * (n // 2),
    "at_sign": lambda n: "Note: " + "a@" * n,
    "dots": lambda n: "Note: " + "a." * n,
    "labels": lambda n: "ab.ac." * (n // 3),
    "phone_dash": lambda n: "call " + "1-" * n,
    "phone_groups": lambda n: "call " + "(1) " * (n // 2),
    "blanks": lambda n: "1" + " " * (2 * n) + "Main Street",
    "commas": lambda n: "Main, " * (n // 3),
    "lines": lambda n: "A\n" * n,
    "quoted_lines": lambda n: "> A\n" * (n // 2),
    "digits": lambda n: "9" * (2 * n),
    "cue_then_code": lambda n: "policy number is " + "A1-" * (2 * n // 3),
}


def random_family(seed: int):
    rng = random.Random(seed)
    atoms = rng.sample(ATOMS, 4)

    def make(n: int) -> str:
        local = random.Random(seed)  # the same text prefix at every size
        out, size = [], 0
        while size < 2 * n:
            out.append(local.choice(atoms))
            size += len(out[-1])
        return "".join(out)
    return make


for _seed in range(8):
    FAMILIES[f"random_{_seed}"] = random_family(_seed)
