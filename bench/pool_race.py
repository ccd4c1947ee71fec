"""How often two runs that reach the training pool in the same instant both get its one slot.

    PYTHONPATH=$PWD .venv/bin/python bench/pool_race.py --trials 10

Each trial: a fresh DAGSTER_HOME with the project's dagster.yaml, two processes started together,
each materializing one asset in the `training` pool that holds it for 2 s (the child of
ft_pipeline_tests/attack/test_pools.py). Prints the trials whose steps overlapped. A run that
arrives while another holds the slot always waits (the tests); this measures the race left when
both claim at once: Dagster 1.13 claims a slot by reading a free row, then updating it by id.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def trial() -> float:
    """Seconds the two steps overlapped (0 when they were ordered)."""
    import dagster as dg

    from ft_pipeline_tests.attack.test_pools import _start

    home = Path(tempfile.mkdtemp(prefix="pool-race-"))
    try:
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
        with dg.DagsterInstance.get() as instance:
            instance.get_run_records(limit=1)  # tables created once, before the race
        procs = [_start(home / name, 2) for name in ("a.json", "b.json")]
        for proc in procs:
            proc.wait(timeout=120)
        (_, a_end), (b_start, _) = sorted(json.loads((home / n).read_text()) for n in ("a.json", "b.json"))
        return max(0.0, a_end - b_start)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    overlaps = [trial() for _ in range(args.trials)]
    print(json.dumps({"trials": args.trials, "overlapped": sum(o > 0 for o in overlaps),
                      "overlap_s": [round(o, 2) for o in overlaps], "load": os.getloadavg()}))


if __name__ == "__main__":
    main()
