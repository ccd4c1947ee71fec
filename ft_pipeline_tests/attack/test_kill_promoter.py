"""SIGKILL a promoter at random points, again and again: the registry never shows a version that
is half there, `current` always names a complete version, and what a killed promotion left
behind (a staging folder holding weights) is removed by the next one."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from ft_pipeline.core.release import registry
from ft_pipeline_tests.core.release.test_release import TASK, _export, _model_with_adapter

KILLS = 24 if os.environ.get("FT_ATTACK_FULL") else 4

PROMOTE = """
import json, sys
from pathlib import Path
from ft_pipeline.core.release import release
from ft_pipeline.core.task import TaskConfig
root, base, adapter, export = map(Path, sys.argv[1:5])
task = TaskConfig(name="smoke", type="generation")
print("ready", flush=True)
while True:
    staged = release.stage(root, task, base, adapter, export, smoke_examples=1)
    lineage = {"name": task.name, "version": "v?", "promoted_at": "2026-12-07T00:00:00+00:00", "run_id": "r" * 8,
               "assets": []}
    print("published", release.publish(root, task.name, staged, lineage, trained_on={"trained_on": []}).name,
          flush=True)
"""


def _complete(version_dir) -> bool:
    return all((version_dir / name).exists() for name in ("lineage.json", "MODEL_CARD.md", "adapter", "merged"))


def test_a_promoter_killed_anywhere_leaves_a_consistent_registry(tiny_model_dir, tmp_path, ft_home):
    base, adapter = _model_with_adapter(tiny_model_dir, tmp_path, mute=False)
    export, root = _export(tmp_path / "export"), ft_home / "registry"
    env = {**os.environ, "FT_PIPELINE_HOME": str(ft_home)}
    rng = random.Random(23)

    def start():
        child = subprocess.Popen([sys.executable, "-c", PROMOTE, str(root), str(base), str(adapter), str(export)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout.readline().strip() == "ready"
        return child

    child, started = start(), time.monotonic()
    try:  # one promotion, timed: the kills land anywhere within about one
        assert child.stdout.readline().startswith("published v1")
        duration = time.monotonic() - started
    finally:
        child.kill()
        child.wait()
    for _ in range(KILLS):
        child = start()
        try:
            time.sleep(rng.uniform(0.0, 1.3 * duration))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        model = registry.model_root(root, TASK.name)
        versions = registry.versions(root, TASK.name)
        assert all(_complete(model / v) for v in versions), "a published version is missing files"
        current = registry.current_version(root, TASK.name)
        assert current is None or (current in versions and _complete(model / current))
    published = registry.versions(root, TASK.name)
    registry.staging_dir(root, TASK.name)  # the next promotion cleans up after the killed ones
    leftovers = [p.name for p in registry.model_root(root, TASK.name).glob(".*")]
    assert len(leftovers) == 1 and json.loads((registry.model_root(root, TASK.name) / published[-1]
                                                / "lineage.json").read_text())["name"] == TASK.name
