"""What happens to a record's non-text fields: the task file's `fields:` section.

Text fields (messages, chosen, rejected, reference) follow the redaction policy. Every other field
that can carry a person's data is declared here, with safe defaults:

    fields: {id: pseudonymize, annotator: pseudonymize, attributes.region: keep, source: screen}

- pseudonymize  the value's keyed digest (core/digest.py): same value, same digest, not reversible
                (a value that is 64 hex digits already, a digest, is left as it is).
                `id` and `annotator` (also each `labels[].annotator`) are always pseudonymized.
- keep          the value as it is: the task says it is not personal (a region, an age band). The
                bias audit and per-group evaluation compare only attributes declared `keep`.
- redact        the value is dropped.
- screen        the value goes through the redaction engine with the record's texts (detected
                PII replaced, consistently with the texts). The default for anything undeclared.

`label_verified`, `verified_at` and `split` are validated by the record schema (a boolean, an ISO
timestamp, one of three words) and hold no free text.
"""
from __future__ import annotations

import re

from ft_pipeline.core.digest import keyed_digest

ACTIONS = ("pseudonymize", "redact", "keep", "screen")
DIGESTED = ("id", "annotator")  # leave the raw zone only as keyed digests
FIELDS = ("id", "annotator", "source", "labels")
DEFAULT = "screen"
ATTRIBUTE = "attributes."
DIGEST = re.compile(r"[0-9a-f]{64}")


def pseudonym(value: str) -> str:
    """The value's keyed digest; a value that is a digest already (a record redacted before) is left
    as it is, so redacting twice changes nothing. 64 hex digits cannot spell a name or an address."""
    return value if DIGEST.fullmatch(value) else keyed_digest(value)


def check_fields(declared) -> dict[str, str]:
    """The section as given, or a ValueError "fields[.<name>]: why" naming the bad entry."""
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise ValueError("fields: must map a record field to " + " | ".join(ACTIONS))
    for name, action in declared.items():
        if not isinstance(name, str) or not (name in FIELDS or (name.startswith(ATTRIBUTE) and len(name) > len(ATTRIBUTE))):
            raise ValueError(f"fields.{name}: is not a field this section governs; use {', '.join(FIELDS)} or "
                             "attributes.<name> (text fields follow redaction.policy)")
        if action not in ACTIONS:
            raise ValueError(f"fields.{name}: {action!r} is not an action; use one of {', '.join(ACTIONS)}")
        if name in DIGESTED and action != "pseudonymize":
            raise ValueError(f"fields.{name}: must be pseudonymize ({name}s leave the raw zone only as keyed digests)")
    return dict(declared)


def action(fields: dict[str, str], name: str) -> str:
    return "pseudonymize" if name in DIGESTED else fields.get(name, DEFAULT)


def _governed(record: dict) -> list[tuple[str, str]]:
    """(declared name, value) of every screenable value of the record, in a fixed order."""
    out = [("source", record["source"])] if record.get("source") is not None else []
    out += [("labels", item["label"]) for item in record.get("labels") or []]
    out += [(ATTRIBUTE + key, value) for key, value in sorted((record.get("attributes") or {}).items())]
    return out


def screened_values(record: dict, fields: dict[str, str]) -> list[str]:
    """The values the redaction engine must see with the record's texts (action `screen`)."""
    return [value for name, value in _governed(record) if action(fields, name) == "screen"]


def apply(record: dict, screened: list[str], fields: dict[str, str]) -> dict:
    """A copy of the record with its screened values (as redacted, in `screened_values` order)
    put back, `redact` values dropped and `keep` values kept. Values to pseudonymize are left for
    `pseudonymize`, which runs where the home's key is (this may run in a worker elsewhere)."""
    rest = iter(screened)

    def out(name: str, value: str) -> str | None:
        what = action(fields, name)
        return next(rest) if what == "screen" else None if what == "redact" else value

    new = dict(record)
    if record.get("source") is not None:
        new["source"] = out("source", record["source"])
    if record.get("labels") is not None:
        labels = [{**item, "label": out("labels", item["label"])} for item in record["labels"]]
        new["labels"] = [item for item in labels if item["label"] is not None]
    attributes = {key: out(ATTRIBUTE + key, value) for key, value in sorted((record.get("attributes") or {}).items())}
    new["attributes"] = {key: value for key, value in attributes.items() if value is not None}
    return new


def pseudonymize(record: dict, fields: dict[str, str]) -> dict:
    """A copy of the record with the id, the annotators and every value declared `pseudonymize`
    replaced by its keyed digest: the last step before a redacted record is written."""
    def out(name: str, value):
        return pseudonym(value) if value is not None and action(fields, name) == "pseudonymize" else value

    new = dict(record, id=pseudonym(record["id"]), annotator=out("annotator", record.get("annotator")))
    if record.get("source") is not None:
        new["source"] = out("source", record["source"])
    if record.get("labels") is not None:
        new["labels"] = [{"annotator": pseudonym(item["annotator"]), "label": out("labels", item["label"])}
                         for item in record["labels"]]
    new["attributes"] = {key: out(ATTRIBUTE + key, value) for key, value in (record.get("attributes") or {}).items()}
    return new


def audited(attributes: dict | None, fields: dict[str, str]) -> dict:
    """The attributes the bias audit and per-group evaluation may show: those declared `keep`."""
    return {k: v for k, v in (attributes or {}).items() if action(fields, ATTRIBUTE + k) == "keep"}
