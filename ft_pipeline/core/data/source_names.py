"""A source file's name is data too: `claims/jane.doe@example.com.jsonl`, a folder per customer.

A source's location becomes its Dagster partition key, and a partition key is everywhere: the
UI, every event of every run, check results, lineage. So a location whose path holds what the
redaction engine finds in a record (an e-mail, a phone number, a known name) is registered under
an alias, `source-<keyed digest>.<ext>`, and the alias's real location is kept in the raw zone
(`raw/source_aliases.json`), where only ingest reads it. A clean location stays its own key: the
UI keeps showing `data/demo/records.jsonl`.

The path is judged as written and with `_`, `-`, `.` and `/` read as spaces (`jane_doe.csv`):
identifier patterns and the name gazetteer count as they stand; spaCy's NER counts only when a
word of its finding is a known name, as for the task's own text (core/data/task_text.py), since NER
on bare file names tags half of them.
"""
from __future__ import annotations

import fcntl
import json
import re
from pathlib import Path, PurePosixPath

from ft_pipeline.core import paths
from ft_pipeline.core.digest import keyed_digest
from ft_pipeline.core.jsonl import atomic_text

ALIAS_PREFIX = "source-"
PURPOSE = "source"
NER = "SpacyRecognizer"
_SEPARATORS = re.compile(r"[_\-./\\]+")


def alias_path() -> Path:
    return paths.raw_zone() / "source_aliases.json"


def _judged_part(location: str) -> str:
    """What of a location is judged: an s3:// URI's key, a path's last three parts (the folders
    above are the operator's own layout: /home/<user>/..., /mnt/...)."""
    if location.startswith("s3://"):
        return location[len("s3://"):].partition("/")[2]
    return "/".join(PurePosixPath(location).parts[-3:])


def holds_pii(location: str, config=None) -> bool:
    """Whether the redaction engine finds PII in the location's name (see the module's docstring)."""
    from ft_pipeline.core.data.redaction import RedactionConfig, analyze_texts, name_gazetteer
    from ft_pipeline.core.data.redaction.names import NAME_WORD

    part = _judged_part(location)
    if not part.strip():
        return False
    config = config or RedactionConfig()
    texts = [part, _SEPARATORS.sub(" ", part).strip()]
    known = name_gazetteer()
    for text, spans in zip(texts, analyze_texts(texts, config)):
        for span in spans:
            words = re.findall(NAME_WORD, text[span.start:span.end])
            if span.recognizer != NER or any(w in known or w.capitalize() in known for w in words):
                return True
    return False


def _suffixes(location: str) -> str:
    """The format suffix an alias keeps (`.jsonl`, `.csv`, `.parquet`, `.csv.gz`), so the readers
    that go by the name still do; anything that is not a known format suffix is dropped."""
    known = {".jsonl", ".json", ".csv", ".parquet", ".gz", ".zst", ".bz2"}
    kept = [s for s in PurePosixPath(location).suffixes if s.lower() in known]
    return "".join(kept[-2:])


def safe_name(location: str, config=None) -> str:
    """The location as it may be shown outside the raw zone: itself, or its alias."""
    if not holds_pii(location, config):
        return location
    return f"{ALIAS_PREFIX}{keyed_digest(location, PURPOSE)[:16]}{_suffixes(location)}"


def key_for(location: str, config=None) -> str:
    """The partition key of a location: itself, or an alias whose location the raw zone keeps."""
    key = safe_name(location, config)
    if key != location:
        _record(key, location)
    return key


def location_of(key: str) -> str | None:
    """The real location of an alias; None when `key` is not one (it is its own location)."""
    if not key.startswith(ALIAS_PREFIX):
        return None
    return _aliases().get(key)


def _aliases() -> dict[str, str]:
    path = alias_path()
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _record(key: str, location: str) -> None:
    path = alias_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(".source_aliases.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sensors or runs registering at once keep both
        aliases = _aliases()
        if aliases.get(key) != location:
            aliases[key] = location
            with atomic_text(path) as fh:
                json.dump(aliases, fh, indent=1, sort_keys=True)


def shown(message: str, key: str) -> str:
    """An error message about an aliased source with its real location replaced by the alias (the
    message goes to the event log; the location is in the raw zone)."""
    location = location_of(key)
    if not location:
        return message
    for form in sorted({location, str(Path(location).resolve()) if "://" not in location else location,
                        Path(location).name}, key=len, reverse=True):
        message = message.replace(form, key)
    return message
