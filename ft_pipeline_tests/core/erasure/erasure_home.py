"""A $FT_PIPELINE_HOME laid out as the pipeline lays it out, for the erasure tests."""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

from ft_pipeline.core.digest import TRAINED, keyed_digest
from ft_pipeline.core.erasure import marks as erasure_marks
from ft_pipeline.core.release import registry
from ft_pipeline.core.training import manifest

EMAIL = "jane.roe@example.com"


def chat(rid: str, text: str) -> dict:
    return {"id": rid, "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": '{"intent": "x"}'}]}


def _write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def digest(rid: str) -> str:
    """What a training manifest holds for an export row's id (this home's keyed digest)."""
    return keyed_digest(rid, TRAINED)


def build_home(home: Path) -> dict:
    """A home as runs before pseudonymized ids left it (raw ids in derived files, which erasure
    still finds): the raw copy, redacted data, an export, a review sample, predictions,
    stored values, and two registered versions (v1 trained on the erased record, v2 not)."""
    a, b, c = chat("r-a", f"mail me at {EMAIL}"), chat("r-b", "card lost"), chat("r-c", "claim status")
    _write_jsonl(home / "raw/raw_dataset/run1/records.jsonl", [a, b, c])
    _write_jsonl(home / "raw/raw_dataset/run1/quarantine.jsonl", [{"raw": json.dumps(chat("r-q", EMAIL)), "reason": "x"}])
    _write_jsonl(home / "data/redacted_dataset/run2/redacted.jsonl", [chat("r-a", "mail me at <EMAIL_1>"), b, c])
    _write_jsonl(home / "data/jsonl_export/run3/train.jsonl", [chat("r-a", "mail me at <EMAIL_1>"), b])
    _write_jsonl(home / "data/jsonl_export/run3/test.jsonl", [c])
    _write_jsonl(home / "reports/fit_assessment/run4/baseline_predictions.jsonl", [{"id": "r-a", "prediction": "{}"}])
    review = home / "data/label_review_sample/run3/review_sample.csv"
    review.parent.mkdir(parents=True)
    with open(review, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "prompt"])
        writer.writeheader()
        writer.writerows([{"id": "r-a", "prompt": "mail me at <EMAIL_1>"}, {"id": "r-c", "prompt": "claim status"}])
    values = home.parent / "storage"
    (values / "fit_assessment").mkdir(parents=True)
    (values / "fit_assessment" / "fit_assessment").write_bytes(pickle.dumps({"test_ids": ["r-c"], "few_shot_ids": ["r-a"]}))
    (values / "jsonl_export").mkdir()
    (values / "jsonl_export" / "jsonl_export").write_bytes(pickle.dumps({"path": "/x", "counts": {"train": 2}}))
    root = home / "registry"
    for trained in (["r-a", "r-b"], ["r-b"]):
        staging = registry.staging_dir(root, "m")
        (staging / "adapter").mkdir()
        (staging / "adapter" / "weights.bin").write_bytes(b"w")
        (staging / "MODEL_CARD.md").write_text("# Model card — m\n")
        (staging / "lineage.json").write_text(json.dumps({"name": "m", "version": "v?", "promoted_at": "t", "run_id": "r"}))
        manifest.write_training_manifest(staging, {"export_sha256": "e" * 64, "trained_on": sorted(map(digest, trained))})
        registry.publish(root, "m", staging)
    registry.set_current(root, "m", "v1")
    return {"values": values, "root": root}


def build_formats_home(home: Path) -> dict:
    """A home holding "Anna" (record r-anna) and "José Müller" (r-jose) in every format and through
    links, beside a "Savannah" (r-sav) who must stay: JSONL, a Latin-1 CSV, Parquet, Markdown in
    and outside the raw zone, a linked file and a linked folder (each target also reached directly)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = home / "raw"
    _write_jsonl(raw / "raw_dataset/run1/records.jsonl",
                 [chat("r-anna", "this is anna."), chat("r-sav", "Savannah here"), chat("r-b", "card lost")])
    _write_jsonl(raw / "store/kept.jsonl", [chat("r-kept", "Anna's second ticket"), chat("r-c", "claim status")])
    (raw / "inbox").mkdir(parents=True)
    (raw / "inbox/kept-link.jsonl").symlink_to(raw / "store/kept.jsonl")
    (raw / "inbox/legacy.csv").write_bytes(
        "id,name,note\r\nr-jose,José Müller,café\r\nr-zoe,Zoë,merci\r\n".encode("latin-1"))
    pq.write_table(pa.table({"id": ["p-anna", "p-sav"], "text": ["Anna called", "Savannah called"]}),
                   raw / "inbox/crm.parquet")
    (raw / "kb").mkdir()
    (raw / "kb/contacts.md").write_text("# Contacts\nAsk Anna, or Savannah.\n")
    derived = {"r-anna": "this is <NAME_1>.", "r-sav": "<NAME_2> here", "r-kept": "<NAME_1>'s second ticket"}
    _write_jsonl(home / "data/archive/run2/redacted.jsonl", [chat(keyed_digest(i), t) for i, t in derived.items()])
    (home / "data/redacted_dataset").mkdir(parents=True)
    (home / "data/redacted_dataset/run2").symlink_to(home / "data/archive/run2", target_is_directory=True)
    report = home / "reports/bias_report/run3/report.md"
    report.parent.mkdir(parents=True)
    report.write_text("| id | group |\n" + "".join(f"| {keyed_digest(i)} | g |\n" for i in ("r-anna", "r-sav", "r-c")))
    return {"link": raw / "inbox/kept-link.jsonl", "folder_link": home / "data/redacted_dataset/run2"}
