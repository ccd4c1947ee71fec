"""Redaction benchmark: our Redactor vs vanilla Presidio, on labelled sentences and on throughput.

    .venv/bin/python bench/redaction.py                  # accuracy (1,500 sentences) + throughput (3,000 records)
    .venv/bin/python bench/redaction.py --stream 100000  # peak RSS while redact_file streams 100k demo-like records

Accuracy data: presidio-evaluator's PresidioSentenceFaker (its templates, fake people, seed 42).
A gold span counts as found only when every one of its letters and digits is covered by some
predicted span (of any type: a name redacted as LOCATION is still gone); a house number or a
surname left behind is a miss. A predicted span is correct when it overlaps a gold span.
Non-PII word survival = share of words outside every gold span that no prediction covers.
Throughput: records/s of redact_file (the asset/CLI path) with 1 and with 2 worker processes,
each run in a fresh interpreter so that engine start-up is paid and counted, against a naive
loop of AnalyzerEngine.analyze + AnonymizerEngine.anonymize per text field on the same records
(its engine is already loaded: start-up not counted, which favours the baseline).
The load average is printed next to every figure: the box is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ft_pipeline.core.data import redaction as R  # noqa: E402
from ft_pipeline.core.data.screening import ScreeningConfig  # noqa: E402

DIRECT = ["EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS"]
TARGETS = {**{e: 0.99 for e in DIRECT}, "PERSON": 0.90, "STREET_ADDRESS": 0.90}
ANSWERS = ['{"intent": "billing_dispute", "priority": "high"}', '{"intent": "claim_status", "priority": "normal"}',
           '{"intent": "address_change", "priority": "low"}', '{"intent": "card_lost", "priority": "urgent"}']


def labelled_sentences(n: int, seed: int = 42):
    import contextlib
    import io

    from presidio_evaluator.data_generator import PresidioSentenceFaker

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its defaults
        faker = PresidioSentenceFaker("en_US", lower_case_ratio=0.05, random_seed=seed)
        samples = faker.generate_new_fake_sentences(n)
    # Some templates hold a literal backslash-n where a line break is meant; " \n" has the same
    # length, so the gold offsets stay valid.
    return [(s.full_text.replace("\\n", " \n"), [(sp.entity_type, sp.start_position, sp.end_position) for sp in s.spans])
            for s in samples]


# --- accuracy -------------------------------------------------------------------------------


def _covered(length: int, spans) -> list[bool]:
    mask = [False] * length
    for _, start, end in spans:
        for i in range(max(0, start), min(length, end)):
            mask[i] = True
    return mask


def score(samples, predictions) -> dict:
    gold_n, gold_hit = Counter(), Counter()
    pred_n, pred_hit = Counter(), Counter()
    words = words_kept = 0
    for (text, gold), pred in zip(samples, predictions):
        mask = _covered(len(text), pred)
        for entity, start, end in gold:
            gold_n[entity] += 1
            gold_hit[entity] += all(mask[i] for i in range(start, end) if text[i].isalnum())
        gold_mask = _covered(len(text), gold)
        for entity, start, end in pred:
            pred_n[entity] += 1
            pred_hit[entity] += any(gold_mask[start:end])
        for m in re.finditer(r"\w+", text):
            if not any(gold_mask[m.start():m.end()]):
                words += 1
                words_kept += not any(mask[m.start():m.end()])
    rows = {}
    for entity in sorted(gold_n):
        rows[entity] = {"gold": gold_n[entity], "recall": gold_hit[entity] / gold_n[entity]}
    for entity in sorted(pred_n):
        rows.setdefault(entity, {"gold": 0, "recall": None})["precision"] = pred_hit[entity] / pred_n[entity]
        rows[entity]["predicted"] = pred_n[entity]
    targeted = [e for e in gold_n if e in TARGETS]
    target_recall = sum(gold_hit[e] for e in targeted) / max(1, sum(gold_n[e] for e in targeted))
    recall = sum(gold_hit.values()) / max(1, sum(gold_n.values()))
    precision = sum(pred_hit.values()) / max(1, sum(pred_n.values()))
    return {"entities": rows, "recall": recall, "target_recall": target_recall, "precision": precision, "f2": f2(precision, recall),
            "target_f2": f2(precision, target_recall), "words_kept": words_kept / max(1, words)}


def f2(p: float, r: float) -> float:
    return 5 * p * r / (4 * p + r) if p + r else 0.0


def predict_ours(texts: list[str], config: R.RedactionConfig):
    spans = R.analyze_texts(texts, config)
    # Each sentence is its own record, so this is exactly what redact_records replaces.
    return [[(s.entity, s.start, s.end) for s in R._propagate([t], [sp])[0]] for t, sp in zip(texts, spans)]


def predict_vanilla(texts: list[str], threshold: float | None = None):
    analyzer = R.vanilla_analyzer()
    out = []
    for text in texts:
        results = analyzer.analyze(text, language="en", score_threshold=threshold)
        out.append([(r.entity_type, r.start, r.end) for r in results])
    return out


def accuracy(n: int) -> dict:
    samples = labelled_sentences(n)
    texts = [t for t, _ in samples]
    config = R.RedactionConfig(screening=ScreeningConfig(protected_documents=[]))
    runs = {"ours": predict_ours(texts, config), "presidio": predict_vanilla(texts),
            "presidio@0.4": predict_vanilla(texts, 0.4)}
    return {name: score(samples, pred) for name, pred in runs.items()}


# --- throughput -----------------------------------------------------------------------------


def make_records(n: int, seed: int = 7):
    """Support-chat records: 1-3 labelled sentences as the user turn, a JSON answer, sometimes a
    system turn, like the demo data."""
    import random

    rng = random.Random(seed)
    pool = [t for t, _ in labelled_sentences(2000, seed=seed)]
    for i in range(n):
        user = " ".join(rng.choice(pool) for _ in range(rng.randint(1, 3)))
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": rng.choice(ANSWERS)}]
        if rng.random() < 0.25:
            messages.insert(0, {"role": "system", "content": "You are the triage assistant. Reply with JSON only."})
        yield {"id": f"b-{i:07d}", "messages": messages}


def write_records(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for record in make_records(n):
            fh.write(json.dumps(record) + "\n")


def naive(path: Path) -> float:
    from presidio_anonymizer import AnonymizerEngine

    from ft_pipeline.core.jsonl import iter_jsonl
    from ft_pipeline.core.records import parse_record, text_fields

    analyzer, anonymizer = R.vanilla_analyzer(), AnonymizerEngine()
    start = time.perf_counter()
    n = 0
    for raw in iter_jsonl(path):
        for _, text in text_fields(parse_record(raw)):
            anonymizer.anonymize(text=text, analyzer_results=analyzer.analyze(text, language="en"))
        n += 1
    return n / (time.perf_counter() - start)


def ours(path: Path, n_process: int, tmp: Path, checkpoints: int = 0) -> tuple[float, dict, list]:
    """redact_file's rate; with `checkpoints`, (records done, RSS of this process + workers in MB)
    every that many records."""
    config = R.RedactionConfig(n_process=n_process, screening=ScreeningConfig(protected_documents=[]))
    samples: list = []

    def progress(done: int, total: int | None) -> None:
        if checkpoints and done % checkpoints == 0 and not (samples and samples[-1][0] == done):
            samples.append((done, round(rss_tree_mb()), round(time.perf_counter() - start), load()))

    start = time.perf_counter()
    summary = R.redact_file(path, tmp / "out.jsonl", tmp / "q.jsonl", config=config, progress=progress)
    return summary["in"] / (time.perf_counter() - start), summary, samples


def ours_fresh(path: Path, n_process: int) -> float:
    """`ours` in a new interpreter: spaCy/Presidio start-up is part of the figure."""
    out = subprocess.run([sys.executable, __file__, "--_ours", str(path), "--n-process", str(n_process)],
                         check=True, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    return float(out.stdout.strip().splitlines()[-1])


def rss_tree_mb() -> float:
    import psutil

    me = psutil.Process()
    procs = [me] + me.children(recursive=True)
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def demo_like_records(n: int, seed: int = 11):
    """The demo records, repeated with fresh ids and perturbed digits (so pseudonym numbering
    and the seen-id set work as on real data)."""
    import random

    rng = random.Random(seed)
    demo = [json.loads(line) for line in open(Path(__file__).resolve().parents[1] / "data" / "demo" / "records.jsonl",
                                           encoding="utf-8")]
    for i in range(n):
        record = dict(demo[i % len(demo)])
        record["id"] = f"s-{i:07d}"
        text = json.dumps(record)
        yield re.sub(r"\d(?=\d{2})", lambda m: str(rng.randint(0, 9)), text) if i >= len(demo) else text


def peak_rss_mb() -> tuple[float, float]:
    # ru_maxrss is KiB on Linux; RUSAGE_CHILDREN reports the largest terminated child.
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1500)
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--n-process", type=int, nargs="+", default=[1, 2],
                        help="worker processes for redact_file; each count is measured")
    parser.add_argument("--stream", type=int, default=0, help="only stream N demo-like records through redact_file")
    parser.add_argument("--_ours", help=argparse.SUPPRESS)  # one fresh-interpreter throughput run
    args = parser.parse_args()

    if args._ours:
        with tempfile.TemporaryDirectory() as tmpdir:
            print(ours(Path(args._ours), args.n_process[0], Path(tmpdir))[0])
        return

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.stream:
            with open(tmp / "in.jsonl", "w", encoding="utf-8") as fh:
                fh.writelines(line + "\n" for line in demo_like_records(args.stream))
            n_process = args.n_process[0]
            every = max(1000, args.stream // 10)
            rate, summary, samples = ours(tmp / "in.jsonl", n_process, tmp, checkpoints=every)
            me, kids = peak_rss_mb()
            print(f"## streaming {summary['in']} demo-like records, n_process={n_process} "
                  f"(out {summary['out']}, quarantined {summary['quarantined']})")
            print("records  rss_mb(main+workers)  elapsed_s  load")
            for done, rss, elapsed, avg in samples:
                print(f"{done:>7}  {rss:>20}  {elapsed:>9}  {avg}")
            print(json.dumps({"records_per_s": round(rate, 1), "peak_rss_main_mb": round(me),
                              "peak_rss_largest_worker_mb": round(kids),
                              "peak_rss_total_bound_mb": round(me + n_process * kids), "load": load()}))
            return

        print(f"load average at start: {load()}")
        results = accuracy(args.sentences)
        print(f"## accuracy on {args.sentences} presidio-evaluator sentences (partial leak = miss); load {load()}")
        print(f"{'entity':<20}{'gold':>6}  {'recall ours':>11} {'presidio':>9}  {'prec ours':>9} {'presidio':>9}  target")
        ours_rows, van_rows = results["ours"]["entities"], results["presidio"]["entities"]
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        for entity in sorted(set(ours_rows) | set(van_rows)):
            o, v = ours_rows.get(entity, {}), van_rows.get(entity, {})
            gold = o.get("gold") or v.get("gold") or 0
            print(f"{entity:<20}{gold:>6}  {fmt(o.get('recall')):>11} {fmt(v.get('recall')):>9}"
                  f"  {fmt(o.get('precision')):>9} {fmt(v.get('precision')):>9}  {TARGETS.get(entity, '')}")
        for name, r in results.items():
            target_recall = {e: r["entities"].get(e, {}).get("recall") for e in TARGETS}
            print(f"{name:<14} overall recall {r['recall']:.3f} (target types {r['target_recall']:.3f}) precision {r['precision']:.3f} "
                  f"F2 {r['f2']:.3f} (target types {r['target_f2']:.3f}) non-PII words kept {r['words_kept']:.3f} | targets: "
                  + " ".join(f"{e}={v:.3f}" for e, v in target_recall.items() if v is not None))
        missed = [e for e, t in TARGETS.items() if (results["ours"]["entities"].get(e, {}).get("recall") or 0) < t]
        print(f"accuracy targets: {'all met' if not missed and results['ours']['words_kept'] >= 0.85 else 'MISSED ' + ' '.join(missed)}")

        write_records(tmp / "in.jsonl", args.records)
        print(f"## throughput on {args.records} records, {os.cpu_count()} cores")
        rate_naive = naive(tmp / "in.jsonl")
        print(f"naive per-record Presidio analyze+anonymize: {rate_naive:.1f} records/s (load {load()})")
        for n_process in args.n_process:
            rate = ours_fresh(tmp / "in.jsonl", n_process)
            print(f"redact_file n_process={n_process}: {rate:.1f} records/s, {rate / rate_naive:.2f}x naive "
                  f"(fresh interpreter, start-up included; load {load()})")


if __name__ == "__main__":
    main()
