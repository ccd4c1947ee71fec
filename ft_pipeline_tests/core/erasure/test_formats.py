"""Erasure's matching and per-format rewriters on real files: whole-token values, each file in its
own encoding, Parquet keeping its schema, Markdown redacted or trimmed, and the suppression list
holding digests only."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ft_pipeline.core.data import suppression
from ft_pipeline.core.data.suppression import Suppression
from ft_pipeline.core.erasure import formats


@pytest.mark.parametrize("value, text, hit", [
    ("Anna", "ask anna.", True),
    ("Anna", "That is Anna's ticket", True),
    ("Anna", "Savannah called", False),
    ("Anna", "ANNA", True),
    ("anna smith", "Anna  Smith wrote", True),
    ("anna smith", "Anna wrote to Smith", False),
    ("jane.roe@example.com", "mail Jane.Roe@example.com.", True),
    ("jane.roe@example.com", "mail bob.jane.roe@example.com", False),
    ("jane.roe@example.com", "mail jane.roe@example.com.au", False),
    ("555-123-4567", "call 555-123-4567 now", True),
    ("555-123-4567", "call 1555-123-45678", False),
    ("José", "JOSÉ paid", True),
])
def test_values_match_whole_tokens(ft_home, value, text, hit):
    clear = Suppression.request(values=[value])
    assert clear.matches({"id": "x", "messages": [{"content": text}]}) is hit
    # what ingestion loads: the same decision from keyed digests
    suppression.add_entries(suppression.entries_for([], [value], "r"))
    assert Suppression.load().matches({"id": "x", "text": text}) is hit


def test_the_list_holds_digests_and_an_old_clear_list_is_migrated_on_load(ft_home):
    path = suppression.suppression_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"request_id": "q", "kind": "value", "value": "Anna Karenina"}) + "\n"
                    + json.dumps({"request_id": "q", "kind": "id", "value": "r-9"}) + "\n")
    loaded = Suppression.load()
    text = path.read_text()
    assert "anna" not in text.lower() and "r-9" not in text and len(text.splitlines()) == 2
    assert {e["kind"] for e in map(json.loads, text.splitlines())} == {"id", "value"}
    assert loaded.matches({"id": "r-9"}) and loaded.matches({"id": "a", "t": "anna karenina!"})
    assert not loaded.matches({"id": "a", "t": "Anna wrote"})


def test_latin1_csv_matched_in_cells_and_written_back_in_latin1(tmp_path):
    path = tmp_path / "export.csv"
    body = "id;name;note\r\nr-1;José Müller;café\r\nr-2;Zoë;merci\r\nr-3;Savannah;ok\r\n"
    path.write_bytes(body.encode("latin-1"))
    assert formats.text_encoding(path) == ("cp1252", "strict")
    request = Suppression.request(values=["José Müller"])
    assert formats.filter_csv(path, request.matches) == (1, ["r-1"])
    assert formats.filter_csv(path, request.matches, write=True) == (1, ["r-1"])
    assert path.read_bytes() == "id;name;note\r\nr-2;Zoë;merci\r\nr-3;Savannah;ok\r\n".encode("latin-1")
    assert formats.filter_csv(path, request.matches, write=True) == (0, [])


def test_parquet_rows_dropped_with_schema_kept(tmp_path):
    path = tmp_path / "source.parquet"
    schema = pa.schema([pa.field("id", pa.string()), pa.field("text", pa.large_string()),
                        pa.field("score", pa.int16())], metadata={b"origin": b"crm"})
    pq.write_table(pa.table({"id": ["p-1", "p-2", "p-3"], "text": ["Anna here", "Savannah", None],
                             "score": [1, 2, 3]}, schema=schema), path, compression="zstd")
    request = Suppression.request(values=["anna"])
    assert formats.filter_parquet(path, request.matches, write=True) == (1, ["p-1"])
    table = pq.read_table(path)
    assert table.schema.equals(schema, check_metadata=True) and table.column("id").to_pylist() == ["p-2", "p-3"]
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_markdown_in_the_raw_zone_redacted_outside_trimmed(tmp_path):
    doc = tmp_path / "kb.md"
    doc.write_text("# Contacts\nAsk Anna's team, or anna.\nSavannah handles billing.\n")
    request = Suppression.request(values=["anna"])
    assert formats.redact_markdown(doc, request.spans, write=True) == 2
    assert doc.read_text() == "# Contacts\nAsk [erased]'s team, or [erased].\nSavannah handles billing.\n"
    report = tmp_path / "report.md"
    digest = "ab" * 32
    report.write_text(f"| id | score |\n| {digest} | 1 |\n| {digest}0 | 7 |\n")
    assert formats.drop_markdown_lines(report, formats.id_lines({digest, "7"}), write=True) == 1
    assert report.read_text() == f"| id | score |\n| {digest}0 | 7 |\n"  # a raw id is not a digest


@pytest.mark.parametrize("encoding, text", [
    ("utf-8", "id,t\nr-1,Grüße\n"),
    ("utf-8-sig", "id,t\nr-1,Grüße\n"),
    ("utf-16", "id,t\nr-1,Grüße\n"),
    ("cp1251", "id,t\nr-1,Привет Анна, как дела у тебя сегодня\nr-2,Хорошо спасибо, до встречи завтра\n"),
    ("cp1251", "id,t\nr-1,Шість років у Києві, і все гаразд сьогодні\nr-2,Дякую, побачимося завтра в офісі\n"),
])
def test_text_encoding_reads_what_was_written(tmp_path, encoding, text):
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode(encoding))
    found, _ = formats.text_encoding(path)
    assert path.read_bytes().decode(found) == text


def test_utf8_with_a_broken_byte_keeps_it_and_still_finds_accented_values(tmp_path):
    path = tmp_path / "inbox.jsonl"
    lines = [json.dumps({"id": "r-1", "t": "José Müller"}, ensure_ascii=False).encode() + b"\n",
             b'{"id": "r-2", "t": "cut \xff off"}\n']
    path.write_bytes(b"".join(lines))
    assert formats.text_encoding(path) == ("utf-8", "surrogateescape")
    assert formats.filter_jsonl(path, Suppression.request(values=["josé müller"]).matches, write=True) == (1, ["r-1"])
    assert path.read_bytes() == lines[1]
