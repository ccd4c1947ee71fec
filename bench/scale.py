"""Redaction at scale: the local engine against Ray Data with 1 and 2 workers, and per-record cost
as the input grows. Whole processes, as a user waits (`ft-pipeline redact IN OUT --engine E
--workers W`), the three arms interleaved for --rounds rounds; the ratio of Ray's 2 workers to the
local engine's 2 processes (medians) is printed last. --ray-address times the ray arms against a Ray
already running (`ray start --head`) instead of one each run starts.

    PYTHONPATH=$PWD .venv/bin/python bench/scale.py [--records 2000] [--rounds 3] [--sizes 1000,10000] [--seed 2]
    PYTHONPATH=$PWD .venv/bin/python bench/scale.py --source data/demo/records.jsonl --rounds 3
    PYTHONPATH=$PWD .venv/bin/python bench/scale.py --near-duplicates 10000,100000,1000000

Records are generated here (Faker, seeded): a customer message of 2-4 sentences carrying a name,
an e-mail address, a phone number and a street address, and a short assistant answer; every record
is distinct, so none is quarantined as a duplicate. Seed 1 was used while writing this; the
figures in bench/RESULTS.md are seed 2. `--near-duplicates` times the contamination search
(MinHash LSH, core/data/contamination.py) on the same kind of text: per-record cost should stay
flat as N grows (sub-quadratic), and a plot of both curves is written to --plot.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthetic_records(n: int, seed: int) -> list[dict]:
    from faker import Faker

    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
    Faker.seed(seed)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        person = fake.name()
        sentences = [fake.sentence(nb_words=rng.randint(8, 16)) for _ in range(rng.randint(2, 4))]
        sentences.insert(rng.randint(0, len(sentences)), f"My name is {person}, reach me at {fake.email()} "
                                                           f"or {fake.phone_number()}.")
        if rng.random() < 0.5:
            sentences.append(f"I moved to {fake.street_address()}, {fake.city()}.")
        out.append({"id": f"r{seed}-{i}", "messages": [
            {"role": "user", "content": " ".join(sentences)},
            {"role": "assistant", "content": fake.sentence(nb_words=10)}]})
    return out


def timed_redact(source: Path, work: Path, engine: str, workers: int, ray_address: str = "") -> tuple[float, dict]:
    out = work / f"{engine}-{workers}.jsonl"
    # One home for every run: ids are keyed digests under the home's key, and the outputs are compared.
    env = {**os.environ, "FT_PIPELINE_HOME": str(work / "home"), "TQDM_DISABLE": "1",
           "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
    if ray_address and engine == "ray":
        env["RAY_ADDRESS"] = ray_address
    start = time.perf_counter()
    done = subprocess.run([str(REPO / ".venv/bin/ft-pipeline"), "redact", str(source), str(out),
                           "--engine", engine, "--workers", str(workers)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{engine} x{workers}: ft-pipeline redact failed: {done.stderr.strip().splitlines()[-1:]}")
    return elapsed, json.loads(done.stdout.strip().splitlines()[-1])


def engines(records: int, seed: int, work: Path, rounds: int, ray_address: str, given: str = "") -> None:
    """The three arms in turn, `rounds` times over (a shared machine's load drifts: interleaved
    rounds see the same drift), then the median of each. `given`: a records file instead of
    synthetic ones (the issue's own measure is data/demo/records.jsonl)."""
    import statistics

    source = Path(given) if given else work / "records.jsonl"
    if given:
        records = sum(1 for _ in source.open())
    else:
        source.write_text("".join(json.dumps(r) + "\n" for r in synthetic_records(records, seed)))
    arms = (("local", 2), ("ray", 1), ("ray", 2))
    times, digests = {arm: [] for arm in arms}, set()
    for _ in range(rounds):
        for engine, workers in arms:
            elapsed, summary = timed_redact(source, work, engine, workers, ray_address)
            times[(engine, workers)].append(elapsed)
            digests.add(summary["sha256"])
            print(f"{engine:5s} x{workers}: {records} records in {elapsed:6.1f} s = {records / elapsed:6.1f} records/s "
                  f"(out {summary['out']}, quarantined {summary['quarantined']}; load {os.getloadavg()[0]:.1f})", flush=True)
    median = {arm: statistics.median(t) for arm, t in times.items()}
    for (engine, workers), value in median.items():
        print(f"median {engine:5s} x{workers}: {value:6.1f} s over {rounds} rounds")
    print(f"ray: {ray_address or 'started by each run'}")
    print(f"outputs identical: {len(digests) == 1}")
    print(f"ray x2 speed-up over ray x1: {median[('ray', 1)] / median[('ray', 2)]:.2f}x")
    print(f"ray x2 / local x2 (time, medians): {median[('ray', 2)] / median[('local', 2)]:.2f}x (target <= 1.5x)")


def per_record(sizes: list[int], seed: int, work: Path) -> list[tuple[int, float]]:
    rows = []
    for n in sizes:
        source = work / f"records-{n}.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in synthetic_records(n, seed)))
        elapsed, _ = timed_redact(source, work, "local", 2)
        rows.append((n, elapsed / n * 1000))
        print(f"redaction, local x2: {n:>9,} records {elapsed:8.1f} s = {elapsed / n * 1000:6.2f} ms/record", flush=True)
    return rows


def near_duplicates(sizes: list[int], seed: int) -> list[tuple[int, float]]:
    from ft_pipeline.core.data.contamination import find_cross_split

    rows = []
    texts = [r["messages"][0]["content"] for r in synthetic_records(min(max(sizes), 20000), seed)]
    for n in sizes:
        # 1 in 7 held out; past 20k records the text comes round again with its own number in it: a
        # near-copy of an earlier record, in another split for 6 in 7 of them (a contamination to find)
        items = ((f"r{i}", "test" if i % 7 == 0 else "train", f"{texts[i % len(texts)]} ticket {i}") for i in range(n))
        start = time.perf_counter()
        matches = find_cross_split(items)
        elapsed = time.perf_counter() - start
        rows.append((n, elapsed / n * 1000))
        print(f"near-duplicate search: {n:>9,} records {elapsed:8.1f} s = {elapsed / n * 1000:6.3f} ms/record "
              f"({len(matches)} cross-split matches)", flush=True)
    return rows


def plot(redaction: list, search: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for rows, label in ((redaction, "redaction (local, 2 processes)"), (search, "near-duplicate search (LSH)")):
        if rows:
            ax.plot([n for n, _ in rows], [ms for _, ms in rows], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("records")
    ax.set_ylabel("ms per record")
    ax.set_title("Per-record cost as the input grows (flat = linear total)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="records for the engine comparison (0: skip)")
    parser.add_argument("--sizes", default="", help="input sizes for redaction's per-record cost, e.g. 1000,10000")
    parser.add_argument("--near-duplicates", default="", help="input sizes for the near-duplicate search")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the engine comparison")
    parser.add_argument("--ray-address", default="", help="a running Ray for the ray arms (`ray start --head`); "
                        "default: each run starts its own")
    parser.add_argument("--source", default="", help="time the engines on this records file instead of "
                        "synthetic records, e.g. data/demo/records.jsonl")
    parser.add_argument("--plot", default=str(REPO / "bench" / "scale.png"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    search_sizes = [int(s) for s in args.near_duplicates.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        redaction = per_record(sizes, args.seed, work) if sizes else []
        search = near_duplicates(search_sizes, args.seed) if search_sizes else []
        if redaction or search:
            plot(redaction, search, Path(args.plot))
        if args.records or args.source:
            engines(args.records, args.seed, work, args.rounds, args.ray_address, args.source)


if __name__ == "__main__":
    main()
