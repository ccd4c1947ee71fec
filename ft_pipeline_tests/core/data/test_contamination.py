"""Contamination gate: planted near-duplicates across splits are caught, moved or dropped; groups stay together."""
from __future__ import annotations

import random

import pytest

from ft_pipeline.core.data.contamination import (
    Match,
    find_cross_split,
    fix_counts,
    group_value,
    plan_fixes,
    split_key,
    straddling_groups,
)
from ft_pipeline.core.data.export import ExportConfig, assign_split


@pytest.fixture(scope="module")
def corpus():
    """300 train messages (~30 words), 60 eval/test messages; 10 of those edit a train message (a word
    changed, another customer's placeholder, case and punctuation) and 3 copy one exactly."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(5)
    rng = random.Random(5)
    train = [(f"tr{i}", "train", f"Hi, this is <PERSON_{i}>. " + fake.paragraph(nb_sentences=5)) for i in range(300)]
    held = [(f"ho{i}", "test" if i % 3 else "eval", fake.paragraph(nb_sentences=5)) for i in range(60)]
    planted = {}
    for n, i in enumerate(rng.sample(range(60), 13)):
        source_id, _, text = train[rng.randrange(300)]
        if n < 10:
            words = text.split()
            words[rng.randrange(5, len(words))] = "banana"
            text = " ".join(words).upper().replace(f"<PERSON_{source_id[2:]}>", "<PERSON_999>").replace(".", " ;")
        held[i] = (held[i][0], held[i][1], text)
        planted[held[i][0]] = (source_id, n >= 10)
    return train, held, planted


def test_planted_near_duplicates_are_caught_with_their_neighbour(corpus):
    train, held, planted = corpus
    matches = find_cross_split(iter(train[:150] + held + train[150:]))  # one pass, any order
    assert {m.id: m.neighbour_id for m in matches} == {h: source for h, (source, _) in planted.items()}
    assert all(m.neighbour_split == "train" and m.split in ("eval", "test") for m in matches)
    exact = {m.id for m in matches if m.similarity == 1.0}
    assert exact == {h for h, (_, is_exact) in planted.items() if is_exact}


def test_near_duplicates_are_moved_and_exact_copies_dropped(corpus):
    train, held, planted = corpus
    matches = find_cross_split(train + held)
    plan = plan_fixes(matches)
    assert {h for h, target in plan.items() if target == "train"} == {h for h, (_, e) in planted.items() if not e}
    assert {h for h, target in plan.items() if target is None} == {h for h, (_, e) in planted.items() if e}
    counts = fix_counts(matches, plan)
    assert (counts["near_duplicates"], counts["moved_to_train"], counts["dropped"]) == (13, 10, 3)
    held_split = dict((i, s) for i, s, _ in held)
    for split in ("eval", "test"):
        expected = sum(1 for h in planted if held_split[h] == split)
        assert sum(counts["by_split"][split].values()) == expected


def test_a_grouped_record_is_dropped_rather_than_moved_away_from_its_group():
    matches = [Match("t1", "test", "a", "train", 0.8), Match("t2", "test", "b", "train", 0.8)]
    assert plan_fixes(matches, grouped={"t2"}) == {"t1": "train", "t2": None}


def test_pairs_within_train_or_within_held_out_are_not_contamination():
    text = "the parcel arrived damaged and the box was open when the courier handed it over"
    rows = [("a", "train", text), ("b", "train", text), ("c", "eval", text + " again"), ("d", "test", text + " again")]
    matches = find_cross_split(rows, threshold=0.6)
    assert {m.id for m in matches} == {"c", "d"} and {m.neighbour_id for m in matches} == {"a"}  # tie: smaller id


def test_unrelated_splits_have_no_matches(corpus):
    train, held, _ = corpus
    clean = [row for row in held if not row[2].isupper() and "<PERSON_" not in row[2]]
    assert find_cross_split(train + clean) == []


def test_unknown_split_is_an_error_naming_the_record():
    with pytest.raises(ValueError, match="record x1: split 'holdout'"):
        find_cross_split([("x1", "holdout", "text")])


# --- groups -------------------------------------------------------------------------------------


def records_of_customers(n_customers: int, per_customer: int) -> list[dict]:
    return [{"id": f"c{c}-m{m}", "attributes": {"customer": f"cust{c}"}, "conversation": f"conv{c}"}
            for c in range(n_customers) for m in range(per_customer)]


@pytest.mark.parametrize("group_key", ["attributes.customer", "conversation"])
def test_a_group_key_keeps_records_of_one_group_in_one_split(group_key):
    records = records_of_customers(40, 5)
    config = ExportConfig()
    by_id = straddling_groups((group_value(r, group_key), assign_split(r, config)) for r in records)
    by_group = straddling_groups((group_value(r, group_key), assign_split({**r, "id": split_key(r, group_key)}, config))
                                 for r in records)
    assert by_id  # hashing ids scatters customers over splits
    assert by_group == {}


def test_records_without_a_group_value_keep_their_id_split():
    record = {"id": "r1", "attributes": {}}
    assert split_key(record, "attributes.customer") == "r1" == split_key(record, None)
    assert split_key({"id": "r2", "attributes": {"customer": 7}}, "attributes.customer") == "attributes.customer=7"


def test_straddling_groups_names_the_group_and_its_splits():
    rows = [("cust1", "train"), ("cust1", "train"), ("cust2", "train"), ("cust2", "test"), (None, "eval")]
    assert straddling_groups(rows) == {"cust2": ["test", "train"]}
