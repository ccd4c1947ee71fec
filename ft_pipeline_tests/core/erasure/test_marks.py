"""Model versions and erasure: training ids kept as digests, marking, retiring, rollback refusing."""
from __future__ import annotations

import json

import pytest

from ft_pipeline.core.digest import TRAINED, keyed_digest
from ft_pipeline.core.erasure import marks as erasure_marks
from ft_pipeline.core.release import registry
from ft_pipeline.core.training import manifest


def trained_digest(record_id: str) -> str:
    return keyed_digest(record_id, TRAINED)


@pytest.fixture(autouse=True)
def _home(ft_home):
    """Training digests are keyed with the home's secret: each test has its own home."""
    return ft_home


def export(folder, splits: dict[str, list[str]]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, ids in splits.items():
        (folder / name).write_text("".join(json.dumps({"id": i, "messages": []}) + "\n" for i in ids))
    return folder


@pytest.mark.parametrize("method, expected", [
    ("sft", {"a", "b", "e"}),  # train and eval: every row the trainer read; never test
    ("grpo", {"a", "b", "e"}),
    ("dpo", {"p", "q"}),
])
def test_training_manifest_holds_digests_of_what_the_trainer_read(tmp_path, method, expected):
    folder = export(tmp_path / "export", {"train.jsonl": ["a", "b"], "eval.jsonl": ["e"], "test.jsonl": ["t"],
                                          "preference_train.jsonl": ["p"], "preference_eval.jsonl": ["q"]})
    found = manifest.training_manifest(folder, method)
    assert found["trained_on"] == sorted(trained_digest(i) for i in expected)
    assert len(found["export_sha256"]) == 64
    assert not any(f'"{i}"' in json.dumps(found) for i in "abetpq")  # digests only, never the ids


def test_a_continued_adapter_inherits_what_its_parent_saw(tmp_path):
    parent = tmp_path / "parent"
    manifest.write_training_manifest(parent, manifest.training_manifest(export(tmp_path / "e1", {"train.jsonl": ["old"]}), "sft"))
    child = manifest.training_manifest(export(tmp_path / "e2", {"train.jsonl": ["new"]}), "grpo", init_adapter=str(parent))
    assert set(child["trained_on"]) == {trained_digest("old"), trained_digest("new")}


def test_a_parent_named_relative_to_the_pipeline_home_is_found_there(tmp_path, monkeypatch):
    """The trainer reads init_adapter: adapters/smollm2-cpu-sft under $FT_PIPELINE_HOME, and so must
    the manifest, whatever the working directory."""
    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    parent = tmp_path / "home" / "adapters" / "sft"
    manifest.write_training_manifest(parent, manifest.training_manifest(export(tmp_path / "e1", {"train.jsonl": ["old"]}), "sft"))
    child = manifest.training_manifest(export(tmp_path / "e2", {"train.jsonl": ["new"]}), "grpo",
                                            init_adapter="adapters/sft")
    assert set(child["trained_on"]) == {trained_digest("old"), trained_digest("new")}


def publish(root, trained: list[str], name="m"):
    staging = registry.staging_dir(root, name)
    (staging / "merged").mkdir()
    (staging / "merged" / "model.safetensors").write_bytes(b"w")
    (staging / "MODEL_CARD.md").write_text(f"# Model card — {name}\n")
    (staging / "lineage.json").write_text(json.dumps({"name": name, "assets": []}))
    manifest.write_training_manifest(staging, {"export_sha256": "e" * 64, "trained_on": sorted(map(trained_digest, trained))})
    return registry.publish(root, name, staging)


def test_plan_mark_and_rollback_refusal(tmp_path):
    for trained in (["a", "b"], ["b"], ["c"]):
        publish(tmp_path, trained)
    registry.set_current(tmp_path, "m", "v3")
    todo, unknown = erasure_marks.plan(tmp_path, {trained_digest("b")})
    assert [(t["version"], t["records"], t["current"]) for t in todo] == [("v1", 1, False), ("v2", 1, False)] and unknown == []
    for target in todo:
        erasure_marks.mark(tmp_path, target, "req-1", "2026-12-01T10:00:00+00:00", retire=False)
        erasure_marks.mark(tmp_path, target, "req-1", "2026-12-01T10:00:00+00:00", retire=False)  # repeated: once
    marks = registry.erasure_marks(tmp_path / "m" / "v2")
    assert marks["requests"] == [{"request_id": "req-1", "at": "2026-12-01T10:00:00+00:00", "records": 1,
                                  "digests": [trained_digest("b")]}]
    card = (tmp_path / "m" / "v2" / "MODEL_CARD.md").read_text()
    assert card.count("## Erasure notice") == 1 and "`req-1`" in card and card.startswith("# Model card — m")
    # already marked for these digests: a repeated request has nothing to do there
    assert erasure_marks.plan(tmp_path, {trained_digest("b")}) == ([], [])

    with pytest.raises(registry.RegistryError, match=r"refusing to roll 'm' back to v2: .* erased by request req-1"):
        registry.rollback(tmp_path, "m")
    with pytest.raises(registry.RegistryError, match="back to v1"):
        registry.rollback(tmp_path, "m", "v1")
    assert registry.current_version(tmp_path, "m") == "v3"
    assert erasure_marks.tainted_current(tmp_path, {trained_digest("b")}) == []
    registry.set_current(tmp_path, "m", "v1")  # e.g. it was current when the erasure came
    assert erasure_marks.tainted_current(tmp_path, set()) == [{"name": "m", "version": "v1", "requests": ["req-1"], "retired": False}]


def test_retire_later_deletes_weights_keeps_card_lineage_and_ids(tmp_path):
    publish(tmp_path, ["a"])
    [target] = erasure_marks.plan(tmp_path, {trained_digest("a")})[0]
    erasure_marks.mark(tmp_path, target, "req-1", "t1", retire=False)
    [again] = erasure_marks.plan(tmp_path, {trained_digest("a")}, retire=True)[0]  # retiring is still to do
    assert again["hits"] == []
    erasure_marks.mark(tmp_path, again, "req-2", "t2", retire=True)
    folder = tmp_path / "m" / "v1"
    assert not (folder / "merged").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "erasure.json", "lineage.json", "training_ids.json"]
    assert [r["request_id"] for r in registry.erasure_marks(folder)["requests"]] == ["req-1"]  # nothing new was erased
    assert registry.erasure_marks(folder)["retired_at"] == "t2"
    assert erasure_marks.plan(tmp_path, {trained_digest("a")}, retire=True) == ([], [])


def test_a_version_without_training_ids_is_reported_unverifiable(tmp_path):
    publish(tmp_path, ["a"])
    (tmp_path / "m" / "v1" / manifest.TRAINING_IDS).unlink()
    assert erasure_marks.plan(tmp_path, {trained_digest("a")}) == ([], ["m/v1"])
