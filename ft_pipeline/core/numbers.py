"""Numbers as a person writes them in a YAML file.

PyYAML follows YAML 1.1, which reads `2e-4` or `1e5` (an exponent without a dot) as text: a
preset's `learning_rate: 2e-4` arrives as the string "2e-4". A person means 0.0002.
"""
from __future__ import annotations

import math


def parse_number(value) -> int | float | None:
    """An int or float for a number or numeric text ("2e-4", "1_000", " 3 "); None for anything
    else, true/false and nan/inf included."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return None
