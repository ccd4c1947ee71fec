"""A source's name is judged like a record's text: names holding PII get an alias, others stay."""
from __future__ import annotations

import json

import pytest

from ft_pipeline.core.data import source_names


@pytest.mark.parametrize("location", [
    "data/inbox/jane.doe@example.com.jsonl",        # an e-mail address, as written
    "exports/claims_+44 20 7946 0958.csv",           # a phone number
    "s3://bank-exports/customers/john.smith@corp.example/chats.parquet",
])
def test_a_name_holding_pii_gets_an_alias_that_resolves_in_the_raw_zone(ft_home, location):
    key = source_names.key_for(location)
    assert key.startswith(source_names.ALIAS_PREFIX) and "@" not in key and "7946" not in key
    assert key.endswith((".jsonl", ".csv", ".parquet"))  # readers still know the format
    assert source_names.location_of(key) == location
    assert source_names.key_for(location) == key  # stable: one partition per file, however often seen
    assert source_names.alias_path().is_relative_to(ft_home / "raw")


@pytest.mark.parametrize("location", ["data/demo/records.jsonl", "data/inbox/2026-11-30_support_export.csv",
                                      "s3://bucket/prefix/part-00001.parquet", "/home/operator/runs/train.jsonl"])
def test_a_clean_name_is_its_own_key(ft_home, location):
    assert source_names.key_for(location) == location
    assert source_names.location_of(location) is None
    assert not source_names.alias_path().exists()


def test_an_error_about_an_aliased_source_names_the_alias(ft_home):
    location = "data/inbox/jane.doe@example.com.jsonl"
    key = source_names.key_for(location)
    message = source_names.shown(f"{location}, line 3, field 'messages': not a list", key)
    assert message == f"{key}, line 3, field 'messages': not a list"


def test_two_registrations_at_once_keep_both(ft_home):
    # Two sensors or runs registering aliases at once: the raw-zone map is read-modified-written
    # under a lock, so neither loses the other's entry.
    from concurrent.futures import ThreadPoolExecutor

    entries = {f"source-{i:016x}.jsonl": f"data/inbox/customer{i}@example.com.jsonl" for i in range(16)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: source_names._record(*item), entries.items()))
    assert json.loads(source_names.alias_path().read_text()) == entries
