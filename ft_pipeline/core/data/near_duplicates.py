"""Near-duplicate text with datasketch: normalized words, word shingles, MinHash, LSH.

Two texts are near-duplicates when the Jaccard similarity of their k-word shingle sets is high.
MinHash estimates that similarity from fixed-size signatures (error about 1/sqrt(num_perm)), and
MinHashLSH finds the candidates above a threshold without comparing every pair. Used by the
protected-document screen (screening.py) and the train/test contamination gate (contamination.py).

Normalization makes copies that differ only in form collide: case is folded, punctuation and
whitespace separate words and vanish, and a redaction placeholder such as <PERSON_3> becomes one
token per entity type (pii_person), so two records that differ only in which customer they name
are the same text.
"""
from __future__ import annotations

import functools
import re
from typing import Iterable

PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*)_\d+>")  # redaction's <ENTITY_n>
WORD = re.compile(r"\w+")
LSH_WEIGHTS = (0.05, 0.95)  # (false positive, false negative) weights of the band choice
SEED, SCHEME = 1, "affine32"  # fixed: signatures must agree across processes, runs and versions


def normalize(text: str) -> list[str]:
    """The words of `text`, casefolded, with each placeholder as one token per entity type."""
    return WORD.findall(PLACEHOLDER.sub(lambda m: f" pii_{m.group(1)} ", text).casefold())


def shingles(words: list[str], k: int) -> set[bytes]:
    """k-word shingles; a text shorter than k words is one shingle of all its words."""
    if len(words) <= k:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i:i + k]).encode() for i in range(len(words) - k + 1)}


def signature(words: list[str], *, k: int = 3, num_perm: int = 128):
    """A LeanMinHash of the k-word shingles, or None for a text without words (it matches nothing:
    two empty signatures would look identical)."""
    from datasketch import LeanMinHash, MinHash

    grams = shingles(words, k)
    if not grams:
        return None
    minhash = MinHash(num_perm=num_perm, seed=SEED, permutations=_permutations(num_perm), scheme=SCHEME)
    minhash.update_batch(list(grams))
    return LeanMinHash(minhash)


@functools.lru_cache(maxsize=4)
def _permutations(num_perm: int):
    """The seed's permutations, drawn once: MinHash draws them anew per object (~0.3 ms each,
    more than hashing a whole record)."""
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=SEED, scheme=SCHEME).permutations


def from_hashvalues(hashvalues):
    """A signature rebuilt from its stored hash values (see NearDuplicateIndex)."""
    from datasketch import LeanMinHash

    return LeanMinHash(seed=SEED, hashvalues=hashvalues, scheme=SCHEME)


class NearDuplicateIndex:
    """MinHashLSH over signatures, keeping each signature so a candidate's Jaccard can be estimated
    and candidates under the threshold (LSH lets some through) are dropped."""

    def __init__(self, threshold: float, num_perm: int = 128):
        from datasketch import MinHashLSH

        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold, self.num_perm = threshold, num_perm
        # Bands tuned for recall: with datasketch's default (0.5, 0.5) weights a pair right at the
        # threshold becomes a candidate 40% of the time at 0.6 (18 bands of 7), with (0.05, 0.95)
        # 96% (24 bands of 4). A false candidate costs one Jaccard estimate; a missed copy, a gate.
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
        self.signatures: dict = {}

    def __len__(self) -> int:
        return len(self.signatures)

    def add(self, key, sig) -> None:
        if sig is None:
            return
        if key in self.signatures:
            raise ValueError(f"key {key!r} is already in the index")
        self.lsh.insert(key, sig)
        self.signatures[key] = sig

    def matches(self, sig) -> list[tuple[object, float]]:
        """(key, estimated Jaccard) of the indexed texts at or above the threshold, best first."""
        if sig is None or not self.signatures:
            return []
        found = [(key, float(self.signatures[key].jaccard(sig))) for key in self.lsh.query(sig)]
        return sorted((m for m in found if m[1] >= self.threshold), key=lambda m: (-m[1], str(m[0])))

    def best(self, sig) -> tuple[object, float] | None:
        found = self.matches(sig)
        return found[0] if found else None


def build_index(items: Iterable[tuple[object, str]], *, threshold: float, k: int = 3,
                num_perm: int = 128) -> NearDuplicateIndex:
    index = NearDuplicateIndex(threshold, num_perm)
    for key, text in items:
        index.add(key, signature(normalize(text), k=k, num_perm=num_perm))
    return index
