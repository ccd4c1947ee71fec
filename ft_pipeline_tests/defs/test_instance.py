"""A fresh DAGSTER_HOME opened by several `ft-pipeline` processes at once (two runs and a forget
started together): each opens it, none fails on the schema version two creators stamped at once."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ft_pipeline_tests.conftest import REPO

OPEN = ("from ft_pipeline.defs.instance import open_instance\n"
        "with open_instance() as instance:\n"
        "    instance.get_runs_count()\n")


def _open_at_once(dagster_home, code: str, n: int = 6) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate()) for p in procs]


def test_processes_opening_a_fresh_home_at_once_all_open_it(tmp_path):
    for attempt in range(3):  # the race needs the creations to overlap: three fresh homes
        home = tmp_path / f"dagster-{attempt}"
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        failed = [r.stderr.strip().splitlines()[-1] for r in _open_at_once(home, OPEN) if r.returncode]
        assert not failed, failed
