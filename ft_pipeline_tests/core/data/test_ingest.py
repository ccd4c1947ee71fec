"""ingest: every input line lands once, in the output or the quarantine, with a reason."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ft_pipeline.core.data.ingest import InputError, ingest
from ft_pipeline_tests.conftest import read_jsonl

GOOD = {"id": "ok-1", "messages": [{"role": "user", "content": "is my claim approved?"},
                                   {"role": "assistant", "content": '{"intent": "claim_status"}'}]}


def line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def run(tmp_path: Path, body: bytes, name="in.jsonl", **kw):
    src = tmp_path / name
    src.write_bytes(body)
    out, quarantine = tmp_path / "out.jsonl", tmp_path / "raw" / "quarantine.jsonl"
    summary = ingest(str(src), out, quarantine, **kw)
    return summary, read_jsonl(out), read_jsonl(quarantine)


BAD_LINES = {
    "broken_json": (b'{"id": "b1", "prompt": "x", \n', "broken_json", None),
    "invalid_utf8": (b'{"id": "b2", "prompt": "caf\xe9", "completion": "x"}\n', "invalid_utf8", None),
    "not_object": (b'["b3"]\n', "not_object", None),
    "missing_field": (line({"id": "b4", "prompt": "x"}), "missing_field", "completion"),
    "empty_field": (line({"id": "b5", "prompt": "", "completion": "x"}), "empty_field", "prompt"),
    "wrong_type": (line({"id": "b6", "prompt": "x", "completion": 3}), "wrong_type", "completion"),
    "unknown_role": (line({"id": "b7", "messages": [{"role": "bot", "content": "x"}]}), "unknown_role",
                     "messages[0].role"),
    "control_chars_escaped": (line({"id": "b8", "prompt": "x\u0007", "completion": "y"}), "control_characters", "prompt"),
    "control_chars_raw": (b'{"id": "b9", "prompt": "x\x01y", "completion": "y"}\n', "control_characters", "prompt"),
    "bad_verified_at": (line({**GOOD, "id": "b10", "verified_at": "yesterday"}), "bad_timestamp", "verified_at"),
    "attributes_not_dict": (line({**GOOD, "id": "b11", "attributes": "NA"}), "wrong_type", "attributes"),
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_bad_line_is_quarantined_with_reason(tmp_path, kind):
    body, reason, field = BAD_LINES[kind]
    summary, out, quarantine = run(tmp_path, line(GOOD) + body)
    assert [r["id"] for r in out] == ["ok-1"]
    assert len(quarantine) == 1
    entry = quarantine[0]
    assert (entry["reason"], entry["field"], entry["line"]) == (reason, field, 2)
    assert entry["source_file"].endswith("in.jsonl") and entry["raw"]
    assert summary["quarantine_reasons"] == {reason: 1}


def test_oversized_record_is_quarantined(tmp_path):
    big = line({"id": "big", "prompt": "x" * 5000, "completion": "y"})
    summary, out, quarantine = run(tmp_path, line(GOOD) + big, max_record_bytes=1000)
    assert len(out) == 1 and quarantine[0]["reason"] == "oversized"


def test_duplicate_id_keeps_the_first(tmp_path):
    second = {**GOOD, "messages": [{"role": "user", "content": "other"}, {"role": "assistant", "content": "x"}]}
    summary, out, quarantine = run(tmp_path, line(GOOD) + line(second))
    assert out[0]["messages"][0]["content"] == "is my claim approved?"
    assert (quarantine[0]["reason"], quarantine[0]["line"]) == ("duplicate_id", 2)


def test_accounting_every_line_exactly_once(tmp_path):
    body = b"".join(
        [line({**GOOD, "id": f"g{i}"}) for i in range(20)]
        + [b"\n", b"   \n"]  # blank lines are not records
        + [body for body, _, _ in BAD_LINES.values()]
        + [line({**GOOD, "id": "g3"})]
    )
    summary, out, quarantine = run(tmp_path, body)
    n_lines = sum(1 for raw in body.splitlines() if raw.strip())
    assert summary["lines"] == n_lines == len(out) + len(quarantine)
    assert summary["records"] == len(out) == 20
    assert summary["quarantined"] == len(quarantine) == len(BAD_LINES) + 1
    assert sorted(q["line"] for q in quarantine) == sorted(set(q["line"] for q in quarantine))
    assert set(summary["sha256"]) == set(summary["files"])


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: str(d / "missing.jsonl"), "no such file"),
        (lambda d: str(d), "is a directory"),
        (lambda d: str(d / "*.jsonl"), "matches no files"),
        (lambda d: (d / "empty.jsonl").write_text("\n\n") and str(d / "empty.jsonl"), "empty"),
        (lambda d: (d / "data.txt").write_text("x") and str(d / "data.txt"), "unsupported file type"),
    ],
    ids=["missing_file", "directory", "glob_no_match", "empty_file", "unsupported_type"],
)
def test_unusable_input_raises_input_error(tmp_path, setup, message):
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    source = setup(src_dir)
    with pytest.raises(InputError) as info:
        ingest(source, tmp_path / "out.jsonl", tmp_path / "q.jsonl")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.jsonl").exists(), "a failed ingest must not leave an output"


def test_glob_reads_every_match(tmp_path):
    for i in range(3):
        (tmp_path / f"part{i}.jsonl").write_bytes(line({**GOOD, "id": f"p{i}"}))
    summary = ingest(str(tmp_path / "part*.jsonl"), tmp_path / "o.jsonl", tmp_path / "q.jsonl")
    assert summary["records"] == 3 and len(summary["files"]) == 3


def test_csv_with_json_cells(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(
        "id,prompt,completion,attributes,label_verified,messages\n"
        'c1,hello,world,"{""region"": ""EU""}",true,\n'
        'c2,,,,,"[{""role"": ""user"", ""content"": ""hi""}, {""role"": ""assistant"", ""content"": ""yo""}]"\n'
        'c3,hi,there,{broken,,\n',
        encoding="utf-8",
    )
    summary = ingest(str(src), tmp_path / "o.jsonl", tmp_path / "q.jsonl")
    out, quarantine = read_jsonl(tmp_path / "o.jsonl"), read_jsonl(tmp_path / "q.jsonl")
    assert [r["id"] for r in out] == ["c1", "c2"]
    assert out[0]["attributes"] == {"region": "EU"} and out[0]["label_verified"] is True
    assert out[1]["messages"][1]["content"] == "yo"
    assert (quarantine[0]["reason"], quarantine[0]["field"], quarantine[0]["line"]) == ("broken_json", "attributes", 4)
    assert summary["lines"] == 3


def test_parquet(tmp_path):
    import pandas as pd

    src = tmp_path / "in.parquet"
    pd.DataFrame([
        {"id": "q1", "prompt": "hello", "completion": "world", "label_verified": True},
        {"id": "q2", "prompt": "hello", "completion": None, "label_verified": False},
    ]).to_parquet(src)
    summary = ingest(str(src), tmp_path / "o.jsonl", tmp_path / "q.jsonl")
    assert (summary["records"], summary["quarantined"]) == (1, 1)
    assert read_jsonl(tmp_path / "q.jsonl")[0]["reason"] == "missing_field"


def test_s3_prefix(tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="raw")
        s3.put_object(Bucket="raw", Key="in/a.jsonl", Body=line({**GOOD, "id": "s1"}) + b"{oops\n")
        s3.put_object(Bucket="raw", Key="in/b.jsonl", Body=line({**GOOD, "id": "s2"}))
        s3.put_object(Bucket="raw", Key="in/readme.md", Body=b"not data")
        summary = ingest("s3://raw/in/", tmp_path / "o.jsonl", tmp_path / "q.jsonl")
        assert summary["files"] == ["s3://raw/in/a.jsonl", "s3://raw/in/b.jsonl"]
        assert (summary["records"], summary["quarantined"]) == (2, 1)
        assert read_jsonl(tmp_path / "q.jsonl")[0]["source_file"] == "s3://raw/in/a.jsonl"
        with pytest.raises(InputError, match="no .jsonl"):
            ingest("s3://raw/nothing/", tmp_path / "o.jsonl", tmp_path / "q.jsonl")
