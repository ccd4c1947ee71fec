"""Inputs over a limit: quarantined with a reason, or one error naming the file and line; never
read whole into memory, never an uncaught csv error."""
from __future__ import annotations

import csv
import json
import tracemalloc

import pytest

from ft_pipeline.core.data.ingest import InputError, ingest
from ft_pipeline.core.data.redaction.stream import redact_file
from ft_pipeline_tests.conftest import read_jsonl

GOOD = {"id": "ok-1", "prompt": "is my claim approved?", "completion": "yes"}


def _line(obj) -> str:
    return json.dumps(obj) + "\n"


def test_a_huge_jsonl_line_is_quarantined_without_being_read_whole(tmp_path, ft_home):
    src = tmp_path / "in.jsonl"
    with open(src, "w") as fh:
        fh.write(_line(GOOD))
        fh.write('{"id": "huge", "prompt": "' + "x" * (50 << 20) + '", "completion": "y"}\n')  # 50 MiB
        fh.write(_line({**GOOD, "id": "ok-2"}))
    tracemalloc.start()
    try:
        summary = ingest(str(src), tmp_path / "out.jsonl", ft_home / "raw" / "q.jsonl")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["ok-1", "ok-2"]
    (entry,) = read_jsonl(ft_home / "raw" / "q.jsonl")
    assert (entry["reason"], entry["line"]) == ("oversized", 2)
    assert summary["quarantine_reasons"] == {"oversized": 1}
    assert peak < 16 << 20, f"peak {peak / 2**20:.0f} MiB for a 50 MiB line"  # read whole, it was 150 MiB


def test_redact_file_has_a_record_limit(tmp_path, ft_home):
    src = tmp_path / "in.jsonl"
    src.write_text(_line(GOOD) + _line({"id": "big", "prompt": "x" * 5000, "completion": "y"}))
    summary = redact_file(src, tmp_path / "out.jsonl", ft_home / "raw" / "q.jsonl", max_record_bytes=1000)
    assert (summary["in"], summary["out"], summary["quarantined"]) == (2, 1, 1)
    assert summary["quarantine_reasons"] == {"oversized": 1}


def _csv(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "prompt", "completion"])
        writer.writerows(rows)


def test_a_csv_cell_over_128_kib_is_read(tmp_path, ft_home):
    """The csv module's own field limit (128 KiB) crashed ingest with `_csv.Error`."""
    src = tmp_path / "in.csv"
    _csv(src, [["a", "hello " * 30_000, "ok"], ["b", "short", "ok"]])  # a 180 KB cell
    summary = ingest(str(src), tmp_path / "out.jsonl", ft_home / "raw" / "q.jsonl")
    assert summary["records"] == 2


def test_a_csv_cell_over_the_record_limit_names_file_and_line(tmp_path, ft_home):
    src = tmp_path / "in.csv"
    _csv(src, [["a", "short", "ok"], ["b", "x" * 300_000, "ok"], ["c", "short", "ok"]])
    with pytest.raises(InputError, match=rf"^{src} line 3: a cell is over 200,000 bytes, the record limit"):
        ingest(str(src), tmp_path / "out.jsonl", ft_home / "raw" / "q.jsonl", max_record_bytes=200_000)
    assert not (tmp_path / "out.jsonl").exists()  # nothing half-written
