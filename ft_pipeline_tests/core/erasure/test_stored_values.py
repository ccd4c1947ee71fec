"""Stored values are read as plain data: a pickle that names any function is refused, naming the
file, and the function is never called — the planning step promises to change nothing."""
from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import pytest

from ft_pipeline.core.erasure import requests as erasure
from ft_pipeline.core.erasure import stored_values
from ft_pipeline.core.erasure.copies import ErasureError
from ft_pipeline_tests.core.erasure.erasure_home import EMAIL, build_home


class _Runs:
    """Unpickling it calls `func(*args)`: the shape of every crafted pickle."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def crafted(marker: Path) -> list[bytes]:
    """Pickles whose loading would create `marker`, through the functions an attacker reaches for."""
    command, code = f"touch {marker}", f"open({str(marker)!r}, 'w').close()"
    by_hand = code.encode()
    return [
        pickle.dumps(_Runs(os.system, command)),
        pickle.dumps({"test_ids": ["r-a"], "x": _Runs(exec, code)}),  # hidden inside a plain value
        pickle.dumps(_Runs(eval, f"__import__('os').system({command!r})"), protocol=2),
        # assembled by hand: PROTO 2, GLOBAL __builtin__ exec, the code, TUPLE1, REDUCE, STOP
        b"\x80\x02c__builtin__\nexec\nX" + len(by_hand).to_bytes(4, "little") + by_hand + b"\x85R.",
    ]


def test_values_the_pipeline_stores_read_back_as_they_were():
    value = {"path": "/x", "sha256": "e" * 64, "counts": {"train": 2}, "metric": 0.5, "ids": ("a", "b"),
             "few_shot_ids": ["a"], "ok": True, "none": None, "tags": {"b", "c"}, "raw": b"\x00"}
    assert stored_values.load_data(pickle.dumps(value)) == value


@pytest.mark.parametrize("index", range(4))
def test_a_crafted_pickle_is_refused_and_never_run(tmp_path, index):
    marker = tmp_path / "ran"
    pickle.loads(crafted(tmp_path / "proof")[index])  # pickle.loads runs it: the test is not vacuous
    assert (tmp_path / "proof").exists()
    with pytest.raises(ErasureError, match=r"^storage/v: stored value refused, it names \S+\.(system|exec|eval) ") as info:
        stored_values.scrub_bytes(crafted(marker)[index], "storage/v", {"r-a"})
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_a_protocol_0_pickle_is_not_a_stored_value_and_is_never_loaded(tmp_path):
    """Dagster's IO managers write protocol 4; text pickles (protocols 0 and 1) are never loaded."""
    marker = tmp_path / "ran"
    (tmp_path / "v").write_bytes(pickle.dumps(_Runs(os.system, f"touch {marker}"), protocol=0))
    assert list(stored_values.stored_values(tmp_path)) == []
    assert stored_values.scrub_bytes((tmp_path / "v").read_bytes(), "v", {"r-a"}) == (None, 0)
    assert not marker.exists()


def test_a_class_pickle_is_refused_even_when_harmless():
    with pytest.raises(ErasureError, match="it names collections.OrderedDict"):
        stored_values.scrub_bytes(pickle.dumps(collections.OrderedDict(a=1)), "v", {"a"})


def test_planning_a_forget_never_runs_a_planted_pickle(ft_home, tmp_path):
    """The file is found while planning, before anything is written: the request stops with the
    file's name under its root, the marker never appears, and nothing was changed."""
    setup = build_home(ft_home)
    marker = tmp_path / "ran"
    planted = setup["values"] / "fit_assessment" / "planted"
    planted.write_bytes(crafted(marker)[0])
    before = (ft_home / "data/jsonl_export/run3/train.jsonl").read_bytes()
    with pytest.raises(ErasureError) as info:
        erasure.forget(values=[EMAIL], stores=erasure.Stores(value_dirs=[str(setup["values"])]))
    assert str(info.value).startswith("storage/fit_assessment/planted: stored value refused, it names ")
    assert not marker.exists()
    assert (ft_home / "data/jsonl_export/run3/train.jsonl").read_bytes() == before
    assert not (ft_home / "raw/erasure/requests").exists() or not any((ft_home / "raw/erasure/requests").iterdir())
