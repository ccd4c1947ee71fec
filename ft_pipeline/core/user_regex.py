"""Regexes a user writes in a task file (`answer_pattern`, `canary_pattern`, `redaction.patterns`):
checked when the task loads, and run with a time limit.

On load: it compiles in the `regex` module (Presidio's engine, so `\\p{Lu}` works everywhere), is
at most MAX_LENGTH characters, has no more capture groups than its use reads, and answers each
probe below within PROBE_TIMEOUT_S: texts that make a nested or overlapping repetition ("(a+)+$",
"(\\d|\\d\\d)+x") backtrack. At run time every search has RUN_TIMEOUT_S; a pattern that runs out
fails closed (UserRegexTimeout) rather than skipping the text, since a redaction pattern that is
skipped leaves its identifier in the data.
"""
from __future__ import annotations

import functools

MAX_LENGTH = 1000
PROBE_TIMEOUT_S = 0.25
RUN_TIMEOUT_S = 5.0
_PROBE_RUN = 2_000
PROBES = tuple(unit * (_PROBE_RUN // len(unit)) + end
               for unit in ("a", "A", "1", " ", "a-", "a.", "a@", "1 ", "aA1 -.@_\n") for end in ("", "!", "\x00"))


class UserRegexTimeout(RuntimeError):
    """A user's regex ran past its time limit: not a TimeoutError, which Presidio swallows."""


def problem(pattern, max_groups: int | None = None) -> str | None:
    """Why `pattern` cannot be used, or None."""
    import regex

    if not isinstance(pattern, str) or not pattern:
        return "must be a non-empty regular expression"
    if len(pattern) > MAX_LENGTH:
        return f"is {len(pattern):,} characters long; at most {MAX_LENGTH:,}"
    try:
        compiled = regex.compile(pattern)
    except (regex.error, TypeError) as exc:
        return f"is not a valid regular expression ({exc})"
    if max_groups is not None and compiled.groups > max_groups:
        return (f"has {compiled.groups} capture groups; at most {max_groups} (write (?:...) for a group "
                "that captures nothing)")
    for probe in PROBES:
        try:
            compiled.search(probe, timeout=PROBE_TIMEOUT_S)
        except TimeoutError:
            shown = repr(probe[:12] + "...")
            return (f"takes over {PROBE_TIMEOUT_S} s on a {len(probe):,}-character text like {shown} "
                    "(nested or overlapping repetition: catastrophic backtracking)")
    return None


@functools.lru_cache(maxsize=256)
def compiled(pattern: str, flags: int = 0):
    import regex

    return regex.compile(pattern, flags)


def search(pattern: str, text: str, what: str):
    """regex.search with RUN_TIMEOUT_S; `what` names the task field in the error."""
    try:
        return compiled(pattern).search(text, timeout=RUN_TIMEOUT_S)
    except TimeoutError:
        raise UserRegexTimeout(f"{what}: the regex ran over {RUN_TIMEOUT_S:g} s on a text of {len(text):,} "
                               "characters; simplify it (nested or overlapping repetition)") from None


def finditer(pattern: str, text: str, what: str, flags: int = 0):
    try:
        yield from compiled(pattern, flags).finditer(text, timeout=RUN_TIMEOUT_S)
    except TimeoutError:
        raise UserRegexTimeout(f"{what}: the regex ran over {RUN_TIMEOUT_S:g} s on a text of {len(text):,} "
                               "characters; simplify it (nested or overlapping repetition)") from None


class TimedPattern:
    """A compiled `regex` pattern whose finditer keeps RUN_TIMEOUT_S whatever timeout its caller
    asks for, and fails closed: Presidio calls finditer(text, timeout=60) and, on TimeoutError,
    logs and skips the pattern, which would let the text through unredacted."""

    def __init__(self, pattern: str, flags: int, what: str):
        self.pattern, self.flags, self.what = pattern, flags, what
        self._compiled = compiled(pattern, flags)

    def finditer(self, text, *args, timeout=None, **kwargs):
        return finditer(self.pattern, text, self.what, self.flags)

    def __getattr__(self, name):
        return getattr(self._compiled, name)
