"""Adversarial redaction benchmark: how much longer a file of records built to make regexes
backtrack takes to redact than a normal file of the same size and count. Target: at most 3x.

    PYTHONPATH=$PWD .venv/bin/python bench/adversarial.py [--records 48] [--size 8192]

Whole processes, as a user waits: `ft-pipeline redact IN OUT` (the CLI, default config) on
- normal: demo records' prompts concatenated to `--size` bytes each (names, claims, addresses);
- adversarial: one hostile family per record (ft_pipeline_tests/attack/hostile_text.py: hyphen,
  capital, digit-space, particle, street-prefix, @ and dot, phone-like and blank runs), padded to
  the same size, plus random families on seeds the tests never used (1000+).
Before the repetitions were bounded, one 8 KB "a-a-a-" record took 20 s and one "a.a.a." record 13 s.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ft_pipeline_tests.attack.hostile_text import FAMILIES, random_family  # noqa: E402


def _fit(text: str, size: int) -> str:
    return (text * (size // max(len(text), 1) + 1))[:size]


def normal_records(n: int, size: int) -> list[dict]:
    from ft_pipeline.core.data.screening import ScreeningConfig, screen_record

    # The demo plants secrets and confidential markers, which the screener quarantines unredacted:
    # only prompts it lets through, so that every normal record is redacted.
    rows = [json.loads(line) for line in (REPO / "data/demo/records.jsonl").read_text().splitlines()]
    prompts = [r["prompt"] for r in rows if "prompt" in r
               and screen_record(_record(r["id"], r["prompt"]), ScreeningConfig()) is None]
    out, at = [], 0
    for i in range(n):
        text = ""
        while len(text.encode()) < size:
            text += prompts[at % len(prompts)] + "\n"
            at += 1
        out.append(_record(f"normal-{i}", text.encode()[:size].decode(errors="ignore")))
    return out


def adversarial_records(n: int, size: int) -> list[dict]:
    makers = [FAMILIES[k] for k in sorted(FAMILIES) if not k.startswith("random_")]
    makers += [random_family(1000 + s) for s in range(8)]
    return [_record(f"hostile-{i}", _fit(makers[i % len(makers)](size // 2), size)) for i in range(n)]


def _record(record_id: str, text: str) -> dict:
    return {"id": record_id, "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}


def timed_redact(records: list[dict], workdir: Path, name: str) -> float:
    src = workdir / f"{name}.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    env = {**os.environ, "FT_PIPELINE_HOME": str(workdir / "home"), "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run([str(REPO / ".venv/bin/ft-pipeline"), "redact", str(src), str(workdir / f"{name}.out.jsonl")],
                          env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{name}: ft-pipeline redact failed: {done.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{name:12s} {len(records)} records x {len(records[0]['messages'][0]['content'].encode()):,} B: {elapsed:6.1f} s "
          f"(out {summary['out']}, quarantined {summary['quarantined']} {summary['quarantine_reasons']}; "
          f"load {os.getloadavg()[0]:.1f})", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=48)
    parser.add_argument("--size", type=int, default=8192)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-adversarial-") as tmp:
        work = Path(tmp)
        normal = timed_redact(normal_records(args.records, args.size), work, "normal")
        hostile = timed_redact(adversarial_records(args.records, args.size), work, "adversarial")
    print(f"adversarial / normal: {hostile / normal:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
