"""Normalization, MinHash signatures and the LSH index (datasketch)."""
from __future__ import annotations

import pytest

from ft_pipeline.core.data.near_duplicates import (
    NearDuplicateIndex,
    build_index,
    from_hashvalues,
    normalize,
    shingles,
    signature,
)


@pytest.mark.parametrize("text,words", [
    ("Hello,   WORLD!\nIt's me.", ["hello", "world", "it", "s", "me"]),
    ("Call <PERSON_3> at <PHONE_NUMBER_12>", ["call", "pii_person", "at", "pii_phone_number"]),
    ("Straße", ["strasse"]),
    ("", []),
])
def test_normalize(text, words):
    assert normalize(text) == words


def test_placeholders_of_one_type_are_the_same_token():
    assert normalize("Dear <PERSON_1>, your claim") == normalize("dear <PERSON_9> -- your CLAIM!")


def test_short_texts_are_one_shingle():
    assert shingles(["a", "b"], 3) == {b"a b"}
    assert shingles(["a", "b", "c", "d"], 3) == {b"a b c", b"b c d"}
    assert shingles([], 3) == set()


def test_signature_estimates_jaccard():
    words = [f"w{i}" for i in range(200)]
    a, b = signature(words[:100], k=1, num_perm=256), signature(words[50:150], k=1, num_perm=256)
    assert abs(a.jaccard(b) - 50 / 150) < 0.1  # true Jaccard 1/3; error ~ 1/sqrt(256)


def test_signatures_survive_a_round_trip_through_their_hash_values():
    sig = signature(normalize("the quick brown fox jumps over the lazy dog"))
    assert from_hashvalues(sig.hashvalues.copy()).jaccard(sig) == 1.0


def test_a_text_without_words_matches_nothing():
    index = NearDuplicateIndex(0.5)
    index.add("empty", signature(normalize("!!! ...")))
    assert len(index) == 0 and index.matches(signature(normalize("?"))) == []


def test_index_returns_near_copies_best_first_and_nothing_unrelated():
    base = ("my card was charged twice for the same order last week and I would like "
            "the duplicate payment refunded to my account as soon as possible")
    index = build_index([("copy", base), ("edited", base.replace("last week", "on Monday")),
                         ("other", "please send me the forms to change the address on my home insurance policy")],
                        threshold=0.5)
    found = index.matches(signature(normalize(base.upper() + "!")))
    assert [key for key, _ in found] == ["copy", "edited"] and found[0][1] == 1.0 > found[1][1] >= 0.5


def test_keys_are_unique():
    index = NearDuplicateIndex(0.5)
    index.add("a", signature(["x", "y", "z"]))
    with pytest.raises(ValueError, match="already"):
        index.add("a", signature(["x", "y", "z"]))
