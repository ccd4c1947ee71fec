"""Two things at once: a forget while an ingest runs, and a promotion after a forget that landed
while the adapter trained. Before the erasure lock was shared with the data steps, the ingest
wrote back the record the forget had just erased, and the promotion published a model trained on
it."""
from __future__ import annotations

import json
import threading

import pytest

from ft_pipeline.core.erasure import requests as erasure
from ft_pipeline.core.data.ingest import ingest
from ft_pipeline.core.digest import TRAINED, keyed_digest
from ft_pipeline.core.release import registry, release

VALUE = "zelda.quarnstrom@example.com"
LINEAGE = {"name": "m", "version": "v1", "promoted_at": "2026-12-07T00:00:00Z", "run_id": "r" * 32, "assets": []}


def _record(i: int, text: str = "") -> str:
    return json.dumps({"id": f"rec-{i}", "prompt": text or f"question {i} about my policy", "completion": "ok"}) + "\n"


def test_a_forget_during_an_ingest_reaches_what_the_ingest_writes(tmp_path, ft_home):
    src = tmp_path / "source.jsonl"
    n = 30_000
    src.write_text("".join(_record(i) for i in range(n - 1)) + _record(n - 1, f"write to {VALUE} please"))
    out = ft_home / "raw" / "raw_dataset" / "run-1" / "records.jsonl"
    midway, errors = threading.Event(), []

    def run_ingest():
        try:
            ingest(str(src), out, ft_home / "raw" / "quarantine" / "run-1.jsonl",
                   progress=lambda done, total: done >= 1000 and midway.set())
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            midway.set()

    worker = threading.Thread(target=run_ingest)
    worker.start()
    assert midway.wait(120)
    assert worker.is_alive(), "the ingest finished before the forget could start: the race was not run"
    summaries = erasure.forget(values=[VALUE])  # waits for the ingest, then finds what it wrote
    worker.join(120)
    assert not errors
    text = out.read_text()
    came_back = VALUE in text or "rec-29999" in text  # a bool: the record's text stays out of test output
    assert not came_back, "the ingest wrote back the record the forget erased"
    assert sum(1 for _ in out.open()) == n - 1
    assert summaries[-1]["status"] == "done"


def test_a_promotion_after_a_forget_refuses_a_model_trained_on_the_erased_record(tmp_path, ft_home):
    raw = ft_home / "raw" / "raw_dataset" / "run-1" / "records.jsonl"
    raw.parent.mkdir(parents=True)
    raw.write_text(_record(7, f"mail {VALUE}") + _record(8))
    trained_on = {"export_sha256": "e" * 64, "method": "sft", "rows": {"train.jsonl": 2},
                  "continued_from": None, "trained_on": sorted(keyed_digest(f"rec-{i}", TRAINED) for i in (7, 8))}
    erasure.forget(values=[VALUE])  # lands while the adapter "trained" on rec-7

    root = ft_home / "registry"
    staging = registry.staging_dir(root, "m")
    (staging / "merged").mkdir()
    staged = release.Staged(staging, prompts=1, well_formed=1)
    with pytest.raises(release.ReleaseError, match="1 of its training records were erased"):
        release.publish(root, "m", staged, LINEAGE, trained_on)
    assert registry.versions(root, "m") == [] and not staging.exists()

    clean = {**trained_on, "trained_on": [keyed_digest("rec-8", TRAINED)]}  # retrained without it
    staging = registry.staging_dir(root, "m")
    version_dir = release.publish(root, "m", release.Staged(staging, 1, 1), LINEAGE, clean)
    assert version_dir.name == "v1" and registry.current_version(root, "m") == "v1"


def test_a_forget_waits_for_a_data_step_and_a_data_step_for_a_forget(ft_home):
    order = []
    with erasure.erasure_lock(shared=True):
        forgetting = threading.Thread(target=lambda: (erasure.erasure_lock().__enter__(), order.append("forget")))
        forgetting.daemon = True
        forgetting.start()
        forgetting.join(1.0)
        assert forgetting.is_alive() and order == []  # blocked by the running step
        with erasure.erasure_lock(shared=True):  # another data step is not blocked by the first
            order.append("second step")
    forgetting.join(10)
    assert order == ["second step", "forget"]
