"""Mentions of an erased record in serialized events and logs: whole tokens, any case, escaped or
not, replaced where they are while the document keeps its shape and its type names."""
from __future__ import annotations

import json

import pytest

from ft_pipeline.core.erasure.mentions import ERASED, Mentions, scrub_serialized, scrub_text, scrub_text_file

NEEDLES = Mentions(["r-a", "jane.roe@example.com", "josé ramírez"])


@pytest.mark.parametrize("text, expected, n", [
    ("held out r-a and r-b", f"held out {ERASED} and r-b", 1),
    ("r-ab r-a-2 xr-a", "r-ab r-a-2 xr-a", 0),  # not a whole token: another record's id
    ("mail JANE.ROE@EXAMPLE.COM.", f"mail {ERASED}.", 1),
    ("(r-a)\n'jane.roe@example.com'", f"({ERASED})\n'{ERASED}'", 2),
    ("José Ramírez wrote", f"{ERASED} wrote", 1),
])
def test_scrub_text_replaces_whole_tokens_in_any_case(text, expected, n):
    assert scrub_text(text, NEEDLES) == (expected, n)


def test_a_serialized_event_keeps_its_shape_types_and_field_names():
    event = {"__class__": "EventLogEntry", "user_message": "for jane.roe@example.com",
             "dagster_event": {"__class__": "DagsterEvent", "event_type_value": "ASSET_MATERIALIZATION",
                               "metadata": {"r-a": {"__class__": "JsonMetadataValue", "data": {"r-a": ["r-a", "r-b"]}},
                                            "n": {"__class__": "IntMetadataValue", "value": 3}}},
             "level": {"__enum__": "Level.INFO"}}
    new = json.loads(scrub_serialized(json.dumps(event, sort_keys=True), NEEDLES))
    assert new["user_message"] == f"for {ERASED}"
    assert new["dagster_event"]["metadata"] == {
        ERASED: {"__class__": "JsonMetadataValue", "data": {ERASED: [ERASED, "r-b"]}},
        "n": {"__class__": "IntMetadataValue", "value": 3}}
    assert new["__class__"] == "EventLogEntry" and new["level"] == {"__enum__": "Level.INFO"}


def test_field_names_and_type_names_are_never_rewritten():
    """A value that spells a field or type name must not make the event unreadable."""
    spelled = Mentions(["user_message", "EventLogEntry"])
    event = json.dumps({"__class__": "EventLogEntry", "user_message": "no user_message here"}, sort_keys=True)
    assert json.loads(scrub_serialized(event, spelled)) == {"__class__": "EventLogEntry", "user_message": f"no {ERASED} here"}


def test_a_needle_json_escapes_is_found_once_parsed():
    """Dagster's serdes writes ASCII only: josé is stored as jos\\u00e9, in whatever case it came."""
    stored = json.dumps({"text": "From JOSÉ RAMÍREZ", "other": "x"}, sort_keys=True)
    assert "RAM" in stored and "Í" not in stored
    assert json.loads(scrub_serialized(stored, NEEDLES)) == {"text": f"From {ERASED}", "other": "x"}


def test_text_without_a_mention_is_left_alone():
    assert scrub_serialized(json.dumps({"text": "r-b only"}), NEEDLES) is None
    assert scrub_serialized("tag value r-a", NEEDLES) == f"tag value {ERASED}"  # not JSON: plain text


def test_a_compute_log_is_rewritten_only_when_asked_and_keeps_other_bytes(tmp_path):
    log = tmp_path / "step.err"
    log.write_bytes(b"\xff raw byte, then jane.roe@example.com\n")
    assert scrub_text_file(log, NEEDLES) == 1 and b"jane" in log.read_bytes()
    assert scrub_text_file(log, NEEDLES, write=True) == 1
    assert log.read_bytes() == b"\xff raw byte, then " + ERASED.encode() + b"\n"
    assert [p.name for p in tmp_path.iterdir()] == ["step.err"]
