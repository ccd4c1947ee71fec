"""The inventory of places a record can live: every entry names a real eraser or says why it needs
none, paths land on the right entry, and a file in a place no entry lists is reported. (The same
check on what the whole pipeline writes is in e2e/test_erasure_everywhere.py.)"""
from __future__ import annotations

import importlib

import pytest

from ft_pipeline.core.erasure import inventory


@pytest.mark.parametrize("place", inventory.PLACES, ids=lambda p: p.name)
def test_every_place_has_an_eraser_or_a_reason(place):
    assert place.writer.strip()
    if place.eraser.startswith("none: "):
        assert len(place.eraser) > len("none: ") + 5
        return
    module, name = place.eraser.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize("root, rel, name", [
    (inventory.FT, "models/adapter_weights/abc-123/checkpoints/checkpoint-5/adapter_model.safetensors", "checkpoints"),
    (inventory.FT, "models/adapter_weights/abc-123/adapter_model.safetensors", "adapters"),
    (inventory.FT, "adapters/tiny/training_ids.json", "preset adapters"),
    (inventory.FT, "registry/m/v3/lineage.json", "registry lineage"),
    (inventory.FT, "registry/m/v3/adapter/training_ids.json", "registry adapter"),
    (inventory.FT, "data/jsonl_export/run/train.jsonl", "export"),
    (inventory.FT, "data/jsonl_export_sidecars/run/attributes.jsonl", "export sidecars"),
    (inventory.DAGSTER, "storage/0f3c2b1a-1111-2222-3333-444455556666/compute_logs/abc.err", "compute logs"),
    (inventory.DAGSTER, "storage/fit_assessment", "stored values"),
])
def test_a_path_lands_on_its_place(root, rel, name):
    assert inventory.place_of(root, rel).name == name


def test_a_file_in_an_unlisted_place_is_reported(tmp_path):
    ft, dh = tmp_path / "ft", tmp_path / "dh"
    (ft / "data/jsonl_export/run").mkdir(parents=True)
    (ft / "data/jsonl_export/run/train.jsonl").write_text("{}\n")
    (dh / "storage").mkdir(parents=True)
    (dh / "storage/jsonl_export").write_bytes(b"\x80")
    assert inventory.unlisted(ft, dh) == []
    (ft / "notes").mkdir()
    (ft / "notes/copy.jsonl").write_text("{}\n")  # a new writer nobody told erasure about
    (ft / "data/jsonl_export/run/rows.parquet").write_bytes(b"PAR1")
    (dh / "storage/rows.parquet").write_bytes(b"PAR1")  # beside the values, but no pickle: their eraser skips it
    assert inventory.unlisted(ft, dh) == ["FT_PIPELINE_HOME/data/jsonl_export/run/rows.parquet",
                                          "FT_PIPELINE_HOME/notes/copy.jsonl", "DAGSTER_HOME/storage/rows.parquet"]
