"""What checking the task's own text costs when a task loads, and what judging only record text
changes in the residual-PII gate (issue 22, "Gates that judge the right text").

    PYTHONPATH=$PWD .venv/bin/python bench/task_text.py [--records 800]

1. Load cost, each in a fresh process (5 runs, median): TaskConfig.from_yaml alone, then with
   check_task_text (the first check loads Presidio and spaCy), then the same check again (one
   digest: nothing analyzed), then a changed prompt (the cached analyzer, one short text).
2. The gate on an export of N clean dialogues whose task prompt trips spaCy ("Speaker B."):
   the old scan (every turn, the system prompt included) against scan_export (record text only):
   findings and seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "Write a one-sentence summary of the conversation. Refer to the speakers as Speaker A and Speaker B."
TOPICS = ["the parcel is late", "my invoice shows a double charge", "the app crashes at login", "the refund never arrived",
          "can I change the delivery slot", "my card was declined twice", "the router keeps dropping", "I was billed twice"]

LOAD = """
import sys, time
t = time.perf_counter()
from ft_pipeline.core.task import TaskConfig
task = TaskConfig.from_yaml(sys.argv[1]); loaded = time.perf_counter() - t
from ft_pipeline.core.data.task_text import check_task_text
t = time.perf_counter(); check_task_text(task); first = time.perf_counter() - t
same = TaskConfig.from_yaml(sys.argv[1])
t = time.perf_counter(); check_task_text(same); again = time.perf_counter() - t
task.system_prompt += " Keep it short."
t = time.perf_counter(); check_task_text(task); changed = time.perf_counter() - t
print(loaded, first, again, changed)
"""


def load_costs(task_path: Path, runs: int = 5) -> list[float]:
    rows = [list(map(float, subprocess.run([sys.executable, "-c", LOAD, str(task_path)], check=True,
                                           capture_output=True, text=True).stdout.split())) for _ in range(runs)]
    return [statistics.median(col) for col in zip(*rows)]


def old_scan(export_dir: Path, config) -> int:
    """The gate before: every turn of every row, the task's system prompt included."""
    from ft_pipeline.core.data.redaction import Redactor
    from ft_pipeline.core.data.residual_pii import _batches, record_turns

    redactor, found = Redactor(config), 0
    for batch in _batches(record_turns(export_dir), 256):
        found += sum(len(f) for f in redactor.find_pii([text for _, _, turns in batch for _, text in turns]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=800)
    args = parser.parse_args()
    from ft_pipeline.core.data.export import ExportConfig, write_export
    from ft_pipeline.core.data.redaction import RedactionConfig, analyze_texts
    from ft_pipeline.core.data.residual_pii import scan_export
    from ft_pipeline.core.task import TaskConfig

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        task = TaskConfig(name="dialogue-summary", type="generation", system_prompt=PROMPT)
        task.to_yaml(tmp / "task.yaml")
        loaded, first, again, changed = load_costs(tmp / "task.yaml")
        print(f"task load {loaded:.3f} s; check_task_text: first {first:.3f} s, same digest {again * 1e6:.0f} us, "
              f"changed prompt {changed * 1e3:.1f} ms")
        records = [{"id": f"d{i}", "task": "chat", "messages": [
            {"role": "user", "content": f"Speaker A: ticket {i}, {TOPICS[i % 8]}. Speaker B: sorry, let me check {TOPICS[(i * 3) % 8]}."},
            {"role": "assistant", "content": f"A customer reports that {TOPICS[i % 8]}."}]} for i in range(args.records)]
        write_export(lambda: iter(records), tmp / "export", ExportConfig(near_duplicate_threshold=0.95), task,
                     sidecar_dir=tmp / "sidecars")
        config = RedactionConfig()
        analyze_texts(["warm up"], config)
        t = time.perf_counter(); before = old_scan(tmp / "export", config); t_old = time.perf_counter() - t
        t = time.perf_counter(); scan = scan_export(tmp / "export", config); t_new = time.perf_counter() - t
        print(json.dumps({"records": scan.rows, "old_findings": before, "old_s": round(t_old, 2),
                          "new_findings": len(scan.findings), "new_s": round(t_new, 2)}))


if __name__ == "__main__":
    main()
