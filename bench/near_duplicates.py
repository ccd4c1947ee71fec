"""Protected-document screening: datasketch MinHash + MinHashLSH vs the hand-written MinHash it replaced.

    .venv/bin/python bench/near_duplicates.py                       # 1,000 documents, 10,000 records
    .venv/bin/python bench/near_duplicates.py --docs 100 --records 1000 --seed 2

Data (generated, seeded): protected documents of 8-12 Faker paragraphs (~250-400 words each); records
of 2-6 Faker sentences, of which `--planted` carry a 40-60 word excerpt of a random document with
10% of its words replaced, between record sentences. Recall = planted records flagged with the
right document; false positives = other records flagged. Both sides use the same windows, shingle
size, permutations and threshold (ScreeningConfig defaults); the new side is the production path,
screening.protected_match. Times: building the document index, then screening every record (the one-off
import of datasketch is timed apart). The load average is printed next to the figures: the box is shared.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ft_pipeline.core.data import screening  # noqa: E402
from ft_pipeline.core.data.screening import ScreeningConfig  # noqa: E402


class HandWrittenMinHash:
    """Baseline: core/data/screening.py's MinHash as of a2a623d (numpy universal hashing over
    blake2b shingle hashes; every record window compared with every document window)."""

    MERSENNE, MAX32 = np.uint64((1 << 61) - 1), np.uint64((1 << 32) - 1)

    def __init__(self, paths: list[str], config: ScreeningConfig):
        self.config = config
        rng = np.random.default_rng(1)
        self.a = rng.integers(1, 1 << 32, size=config.num_perm, dtype=np.uint64)
        self.b = rng.integers(0, 1 << 32, size=config.num_perm, dtype=np.uint64)
        names, sigs = [], []
        for path in paths:
            words = self.words(Path(path).read_text(encoding="utf-8"))
            for window in screening._windows(words, config.window_words, config.window_stride):
                if len(window) >= config.shingle_size:
                    names.append(Path(path).name)
                    sigs.append(self.minhash(window))
        self.names, self.matrix = names, np.vstack(sigs)

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    def minhash(self, words: list[str]) -> np.ndarray:
        k = self.config.shingle_size
        grams = {" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))}
        x = np.array([int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") for g in grams],
                     dtype=np.uint64)
        return ((np.outer(x, self.a) + self.b) % self.MERSENNE & self.MAX32).min(axis=0)

    def match(self, text: str) -> tuple[str, float] | None:
        c = self.config
        words = self.words(text)
        if len(words) < max(c.shingle_size, 8):
            return None
        best_j, best_name = 0.0, None
        for window in screening._windows(words, c.window_words, max(1, c.window_words // 2)):
            sims = (self.matrix == self.minhash(window)).mean(axis=1)
            i = int(sims.argmax())
            if sims[i] > best_j:
                best_j, best_name = float(sims[i]), self.names[i]
        return (best_name, best_j) if best_j >= c.near_dup_threshold else None


def make_data(n_docs: int, n_records: int, n_planted: int, seed: int, folder: Path):
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    paths, doc_words = [], []
    for i in range(n_docs):
        text = "\n\n".join(fake.paragraph(nb_sentences=rng.randint(5, 8)) for _ in range(rng.randint(8, 12)))
        path = folder / f"doc{i:04d}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
        doc_words.append(text.split())
    vocabulary = sorted({w for words in doc_words[:50] for w in words})
    records, truth = [], {}
    planted = set(rng.sample(range(n_records), n_planted))
    for r in range(n_records):
        before = " ".join(fake.sentence() for _ in range(rng.randint(1, 3)))
        after = " ".join(fake.sentence() for _ in range(rng.randint(1, 3)))
        if r in planted:
            d = rng.randrange(n_docs)
            length = rng.randint(40, 60)
            start = rng.randrange(max(1, len(doc_words[d]) - length))
            excerpt = [rng.choice(vocabulary) if rng.random() < 0.10 else w
                       for w in doc_words[d][start:start + length]]
            records.append(f"{before} {' '.join(excerpt)} {after}")
            truth[r] = Path(paths[d]).name
        else:
            records.append(f"{before} {after}")
    return paths, records, truth


def run(name: str, build, records: list[str], truth: dict[int, str]) -> dict:
    start = time.perf_counter()
    match = build()
    built = time.perf_counter() - start
    start = time.perf_counter()
    found = [match(text) for text in records]
    screened = time.perf_counter() - start
    hits = sum(1 for r, doc in truth.items() if found[r] and found[r][0] == doc)
    false_pos = sum(1 for r, f in enumerate(found) if f and r not in truth)
    row = {"name": name, "index_s": built, "screen_s": screened, "recall": hits / max(1, len(truth)),
           "false_positives": false_pos, "load": os.getloadavg()[0]}
    print(f"{name:<28} index {built:7.2f} s   screen {screened:8.2f} s ({len(records) / screened:7.0f} records/s)   "
          f"recall {row['recall']:.3f} ({hits}/{len(truth)})   false positives {false_pos}   "
          f"load {row['load']:.2f}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--planted", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths, records, truth = make_data(args.docs, args.records, args.planted, args.seed, Path(tmp))
        config = ScreeningConfig(protected_documents=paths)
        print(f"{args.docs} protected documents, {args.records} records ({args.planted} with an edited excerpt), "
              f"seed {args.seed}; load average {open('/proc/loadavg').read().split()[:3]}")
        start = time.perf_counter()
        import datasketch  # noqa: F401  (imports scipy: paid once per process, shown on its own)
        print(f"import datasketch {time.perf_counter() - start:.2f} s")
        new = run("datasketch MinHash + LSH", lambda: _warm(config), records, truth)
        old = run("hand-written MinHash (old)", lambda: HandWrittenMinHash(paths, config).match, records, truth)
    print(f"ratio old/new: index {old['index_s'] / new['index_s']:.1f}x, screening {old['screen_s'] / new['screen_s']:.1f}x; "
          f"load average {open('/proc/loadavg').read().split()[:3]}")


def _warm(config: ScreeningConfig):
    screening.protected_match("warm the document index cache " * 3, config)  # builds the LSH index once
    return lambda text: screening.protected_match(text, config)


if __name__ == "__main__":
    main()
