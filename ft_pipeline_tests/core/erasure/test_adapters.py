"""Erasure reaches models outside the registry: adapter folders and checkpoints trained on an erased
record are deleted (others kept), registry lineage is scrubbed, and `ft-pipeline erasures` says so."""
from __future__ import annotations

import json

from ft_pipeline import cli
from ft_pipeline.core.digest import keyed_digest
from ft_pipeline.core.erasure import requests as erasure
from ft_pipeline.core.release import registry
from ft_pipeline.core.training import manifest
from ft_pipeline.core.training.checkpoints import RUN_FILE
from ft_pipeline_tests.core.erasure.erasure_home import digest

RUN_A = "models/adapter_weights/run-a"  # trained on r-a (the erased record)
PRESET_B = "adapters/preset-b"  # trained on r-b only: kept
KILLED = "models/adapter_weights/killed"  # checkpoints of a run that left no manifest


def _run(home, rel: str, trained: list[str] | None, checkpoints=(5, 10)) -> None:
    folder = home / rel
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / RUN_FILE).write_text("{}")
    for step in checkpoints:
        (folder / "checkpoints" / f"checkpoint-{step}").mkdir()
        (folder / "checkpoints" / f"checkpoint-{step}" / "adapter_model.safetensors").write_bytes(b"w")
    if trained is not None:
        (folder / "adapter_model.safetensors").write_bytes(b"w")
        manifest.write_training_manifest(folder, {"export_sha256": "e" * 64, "trained_on": sorted(map(digest, trained))})


def test_forget_deletes_adapters_and_checkpoints_trained_on_the_record_and_keeps_the_others(ft_home, capsys):
    _run(ft_home, RUN_A, ["r-a", "r-b"])
    _run(ft_home, PRESET_B, ["r-b"], checkpoints=(3,))
    _run(ft_home, KILLED, None, checkpoints=(2,))
    [summary] = erasure.forget(ids=["r-a"])
    assert summary["adapters_deleted"] == [RUN_A]
    assert summary["checkpoints_deleted"] == [f"{KILLED}/checkpoints/checkpoint-2", f"{RUN_A}/checkpoints/checkpoint-10",
                                              f"{RUN_A}/checkpoints/checkpoint-5"]
    assert summary["checkpoints_unverifiable"] == [f"{KILLED}/checkpoints/checkpoint-2"]
    assert not (ft_home / RUN_A).exists() and not (ft_home / KILLED / "checkpoints" / "checkpoint-2").exists()
    assert (ft_home / PRESET_B / "adapter_model.safetensors").is_file()
    assert (ft_home / PRESET_B / "checkpoints" / "checkpoint-3").is_dir()
    assert not [p for p in ft_home.rglob(".erasing-*")]
    # counted per inventory place: files found there when planned, copies the request changed
    assert summary["places"]["adapters"] == {"scanned": 2, "changed": 1}  # its weights and manifest
    assert summary["places"]["preset adapters"] == {"scanned": 2, "changed": 0}
    assert summary["places"]["checkpoints"] == {"scanned": 5, "changed": 1}  # the unverifiable one
    # what the erasure log keeps, `ft-pipeline erasures` shows
    assert cli.main(["erasures", "--format", "json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["adapters_deleted"] == [RUN_A] and listed["places"]["adapters"]["changed"] == 1
    assert cli.main(["erasures"]) == 0
    md = capsys.readouterr().out
    assert f"| adapter deleted | `{RUN_A}` |" in md and f"| checkpoint deleted | `{RUN_A}/checkpoints/checkpoint-5` |" in md
    assert "| adapters | `FT_PIPELINE_HOME/models/adapter_weights/*/**` | 2 | 1 |" in md
    # an identical request has nothing left to delete
    [again] = erasure.forget(ids=["r-a"])
    assert again["status"] == "nothing to do"


def test_lineage_is_scrubbed_of_erased_ids_and_digests(ft_home, capsys):
    root = ft_home / "registry"
    pseudonym = keyed_digest("r-a")
    for held in ([pseudonym, "r-c"], ["r-c"]):
        staging = registry.staging_dir(root, "m")
        (staging / "adapter").mkdir()
        lineage = {"name": "m", "assets": [{"asset": "fit_assessment", "metadata": {"few_shot_ids": held, "records": 3}}],
                   "by_id": {pseudonym: 1} if pseudonym in held else {}}
        (staging / "lineage.json").write_text(json.dumps(lineage))
        manifest.write_training_manifest(staging, {"export_sha256": "e" * 64, "trained_on": [digest("r-c")]})
        registry.publish(root, "m", staging)
    v2_before = (root / "m" / "v2" / "lineage.json").read_bytes()
    [summary] = erasure.forget(ids=["r-a"])
    assert summary["lineages_scrubbed"] == ["m/v1"] and summary["models_marked"] == []
    v1 = registry.read_manifest(root / "m" / "v1")
    assert v1["assets"][0]["metadata"] == {"few_shot_ids": ["r-c"], "records": 3} and v1["by_id"] == {}
    assert (root / "m" / "v2" / "lineage.json").read_bytes() == v2_before  # held nothing erased: untouched
    assert cli.main(["erasures"]) == 0
    assert "| lineage scrubbed | m/v1 |" in capsys.readouterr().out
