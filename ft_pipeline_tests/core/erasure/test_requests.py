"""Erasure in core: criteria, the per-file rewriters, and a whole request over a home laid out as
the pipeline lays it out — counts per kind, idempotence, and a crash at every write."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from ft_pipeline.core.erasure import requests as erasure
from ft_pipeline.core.erasure import copies, stored_values
from ft_pipeline.core.erasure.copies import ErasureError
from ft_pipeline.core.erasure import marks as erasure_marks
from ft_pipeline.core.release import registry
from ft_pipeline.core.training import manifest
from ft_pipeline_tests.conftest import read_jsonl
from ft_pipeline_tests.core.erasure.erasure_home import EMAIL, digest, build_home


@pytest.mark.parametrize("ids, values, message", [
    ([], [], "at least one record id"),
    ([" "], [], "--id must not be blank"),
    ([], ["  "], "--value must not be blank"),
    ([], ["ab"], "under 4 characters"),
])
def test_criteria_refuses_mistakes_without_repeating_values(ids, values, message):
    with pytest.raises(ErasureError, match=message) as info:
        erasure.criteria(ids, values)
    assert "\n" not in str(info.value) and all(v.strip() not in str(info.value) for v in values if v.strip())


def test_criteria_are_normalised():
    assert erasure.criteria(["b", "a ", "b"], ["Jane@X.com", "jane@x.com "]) == {"ids": ["a", "b"], "values": ["jane@x.com"]}


@pytest.mark.parametrize("rel, kind", [
    ("data/jsonl_export/0f1e-run/train.jsonl", "data/jsonl_export/train.jsonl"),
    ("raw/raw_dataset/run/records.jsonl", "raw/raw_dataset/records.jsonl"),
    ("raw/inbox/batch-1.jsonl", "raw/inbox"),
    ("loose.jsonl", "loose.jsonl"),
])
def test_kind_of_leaves_the_run_out(tmp_path, rel, kind):
    assert copies.kind_of(tmp_path / rel, tmp_path) == kind


@pytest.mark.parametrize("value, expected, removed", [
    ({"test_ids": ["a", "b"], "few_shot_ids": []}, {"test_ids": ["b"], "few_shot_ids": []}, 1),
    ({"rows": [{"id": "a", "x": 1}, {"id": "b"}]}, {"rows": [{"id": "b"}]}, 1),
    ({"by_id": {"a": 1, "b": 2}}, {"by_id": {"b": 2}}, 1),
    ({"first": "a", "n": 3}, {"first": None, "n": 3}, 1),
    ({"path": "/x/a", "ids": ("a", "c")}, {"path": "/x/a", "ids": ("c",)}, 1),
    ({"nothing": ["b"]}, {"nothing": ["b"]}, 0),
])
def test_scrub_value(value, expected, removed):
    assert copies.scrub_value(value, {"a"}) == (expected, removed)


@pytest.mark.parametrize("name, body, left", [
    ("v", pickle.dumps({"test_ids": ["a", "b"]}), {"test_ids": ["b"]}),
    ("x.jsonl", b'{"id": "a"}\n{"id": "b"}\nnot json\n', b'{"id": "b"}\nnot json\n'),
    ("x.csv", b"id,text\r\na,hello\r\nb,bye\r\n", b"id,text\r\nb,bye\r\n"),
])
def test_scrub_bytes(name, body, left):
    new, removed = stored_values.scrub_bytes(body, name, {"a"})
    assert removed == 1
    assert (pickle.loads(new) if name == "v" else new) == left
    assert stored_values.scrub_bytes(new, name, {"a"}) == (None, 0)


def test_unreadable_stored_value_is_an_error_naming_it():
    with pytest.raises(ErasureError, match="v: stored value cannot be read"):
        stored_values.scrub_bytes(b"\x80\x04garbage", "v", {"a"})


def snapshot(*roots: Path) -> dict:
    return {str(p.relative_to(r.parent)): p.read_bytes() for r in roots for p in sorted(r.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def normalised(snap: dict, request_ids: list[str], root: Path) -> dict:
    """The same state whatever the request id, time and folder: replaced by placeholders."""
    out = {}
    for name, data in snap.items():
        text = data.decode("utf-8", errors="replace").replace(str(root), "<root>")
        for rid in request_ids:
            text, name = text.replace(rid, "<request>"), name.replace(rid, "<request>")
        out[name] = __import__("re").sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", "<at>", text)
    return out


def test_forget_reaches_every_copy_and_counts_per_kind(ft_home):
    setup = build_home(ft_home)
    stores = erasure.Stores(value_dirs=[str(setup["values"])])
    [summary] = erasure.forget(values=[EMAIL.upper()], stores=stores)
    assert summary["status"] == "done" and summary["records_erased"] == 2  # r-a and the quarantined r-q
    assert summary["files"] == {
        "data/jsonl_export/train.jsonl": {"files": 1, "records": 1},
        "data/label_review_sample/review_sample.csv": {"files": 1, "records": 1},
        "data/redacted_dataset/redacted.jsonl": {"files": 1, "records": 1},
        "raw/raw_dataset/quarantine.jsonl": {"files": 1, "records": 1},
        "raw/raw_dataset/records.jsonl": {"files": 1, "records": 1},
        "reports/fit_assessment/baseline_predictions.jsonl": {"files": 1, "records": 1},
    }
    assert summary["stored_values"] == {"stored value: fit_assessment": {"objects": 1, "records": 1}}
    assert summary["models_marked"] == ["m/v1"] and summary["current_trained_on_erased_data"] == ["m/v1"]
    offenders = [p for p in ft_home.rglob("*") if p.is_file() and "/raw/erasure/" not in str(p)
                 and (b"r-a" in p.read_bytes() or EMAIL.encode() in p.read_bytes())]
    assert offenders == []
    assert pickle.loads((setup["values"] / "fit_assessment" / "fit_assessment").read_bytes())["few_shot_ids"] == []
    assert [r["id"] for r in read_jsonl(ft_home / "data/jsonl_export/run3/train.jsonl")] == ["r-b"]

    v1, v2 = setup["root"] / "m" / "v1", setup["root"] / "m" / "v2"
    marks = registry.erasure_marks(v1)
    assert marks["requests"][0]["request_id"] == summary["request_id"] and marks["requests"][0]["records"] == 1
    assert registry.erasure_marks(v2) is None and (v1 / "adapter").is_dir()  # weights kept without --retire
    assert "## Erasure notice" in (v1 / "MODEL_CARD.md").read_text()
    # the log keeps digests and counts, never the value or the ids
    log = erasure.log_path().read_text()
    assert EMAIL not in log.lower() and '"r-a"' not in log and digest("r-a") in log
    assert erasure.erased_digests() >= {digest("r-a")}


def test_a_repeated_request_changes_nothing_and_says_so(ft_home):
    setup = build_home(ft_home)
    stores = erasure.Stores(value_dirs=[str(setup["values"])])
    [first] = erasure.forget(ids=["r-a"], stores=stores)
    before = snapshot(ft_home, setup["values"])
    [again] = erasure.forget(ids=["r-a"], stores=stores)
    assert again["status"] == "nothing to do" and again["same_as"] == [first["request_id"]]
    assert again["current_trained_on_erased_data"] == ["m/v1"]  # still said, loudly, until a clean retrain
    assert snapshot(ft_home, setup["values"]) == before


def test_retire_deletes_weights_and_keeps_card_and_lineage(ft_home):
    setup = build_home(ft_home)
    [summary] = erasure.forget(ids=["r-b"], stores=erasure.Stores(), retire=True)
    assert summary["models_retired"] == ["m/v1", "m/v2"]
    for version in ("v1", "v2"):
        folder = setup["root"] / "m" / version
        assert not (folder / "adapter").exists()
        assert (folder / "MODEL_CARD.md").is_file() and (folder / manifest.TRAINING_IDS).is_file()
        assert "Weights retired" in (folder / "MODEL_CARD.md").read_text()


class Crash(BaseException):
    """What a SIGKILL leaves behind, minus the process: the writes done so far, and no others."""


def _run_crashing_after(monkeypatch, writes: int, stores) -> None:
    real, count = os.replace, {"n": 0}

    def replace(src, dst):
        real(src, dst)
        count["n"] += 1
        if count["n"] == writes:
            raise Crash()

    monkeypatch.setattr(os, "replace", replace)
    try:
        erasure.forget(values=[EMAIL], stores=stores, retire=True)
    except Crash:
        pass
    finally:
        monkeypatch.setattr(os, "replace", real)


def _count_writes(monkeypatch, tmp_path) -> tuple[int, dict]:
    """The uninterrupted request: how many atomic writes it makes, and the state it ends in."""
    home = tmp_path / "clean" / "ft_home"
    monkeypatch.setenv("FT_PIPELINE_HOME", str(home))
    setup = build_home(home)
    real, count = os.replace, {"n": 0}
    monkeypatch.setattr(os, "replace", lambda s, d: (count.__setitem__("n", count["n"] + 1), real(s, d))[1])
    [summary] = erasure.forget(values=[EMAIL], stores=erasure.Stores(value_dirs=[str(setup["values"])]), retire=True)
    monkeypatch.setattr(os, "replace", real)
    return count["n"], normalised(snapshot(home, setup["values"]), [summary["request_id"]], home.parent)


def test_a_forget_crashed_at_any_write_ends_in_the_same_state_when_run_again(tmp_path, monkeypatch):
    writes, expected = _count_writes(monkeypatch, tmp_path)
    assert writes >= 12  # journal, suppression, 6 files, 1 stored value, marks, card, log, journal done
    for n in range(1, writes):
        home = tmp_path / f"crash-{n}" / "ft_home"
        monkeypatch.setenv("FT_PIPELINE_HOME", str(home))
        (home / "raw").mkdir(parents=True)  # the clean home's digest key: the same digests, comparable states
        shutil.copy2(tmp_path / "clean" / "ft_home" / "raw" / "digest.key", home / "raw" / "digest.key")
        setup = build_home(home)
        stores = erasure.Stores(value_dirs=[str(setup["values"])])
        _run_crashing_after(monkeypatch, n, stores)
        summaries = erasure.forget(values=[EMAIL], stores=stores, retire=True)
        assert [s["status"] for s in summaries] == ["resumed"], n
        state = normalised(snapshot(home, setup["values"]), [summaries[0]["request_id"]], home.parent)
        assert state == expected, f"crash after write {n}"
