"""What the task's `fields:` section costs redaction: the 600 demo records through one in-process
worker, CPU seconds (process_time, so the shared box's load moves it little), best of 3 after a
warm-up of 64 records.

    PYTHONPATH=$PWD .venv/bin/python bench/fields.py task           # the demo's fields: declarations
    PYTHONPATH=$PWD .venv/bin/python bench/fields.py all-screened   # every non-text field screened
    # the code before fields: (ids and attributes left as they came), from a checkout of it:
    cd ../before && PYTHONPATH=$PWD ../wt/.venv/bin/python ../wt/bench/fields.py before

Screened values are short (a source, a label, four attributes) and join their record's one spaCy
batch; ids and annotators cost one HMAC each.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from ft_pipeline.core.paths import REPO_ROOT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["task", "all-screened", "before"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("FT_PIPELINE_HOME", tempfile.mkdtemp(prefix="bench-fields-"))
    from ft_pipeline.core.data.redaction import RedactionConfig, Redactor
    from ft_pipeline.core.records import parse_record
    from ft_pipeline.core.task import TaskConfig

    task = TaskConfig.from_yaml(REPO_ROOT / "configs" / "tasks" / "demo-triage.yaml")
    records = [parse_record(json.loads(line)) for line in open(REPO_ROOT / "data" / "demo" / "records.jsonl")]
    fields = {"fields": task.fields} if args.mode == "task" else {}
    config = RedactionConfig.from_task_section(task.redaction, n_process=1, **fields)
    list(Redactor(config).redact_records(records[:64]))  # spaCy, Presidio and the gazetteer loaded
    times = []
    for _ in range(args.runs):
        start = time.process_time()
        list(Redactor(config).redact_records(records))
        times.append(time.process_time() - start)
    print(f"{args.mode}: best {min(times):.2f} CPU s for {len(records)} records, runs {[round(t, 2) for t in times]}, "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
