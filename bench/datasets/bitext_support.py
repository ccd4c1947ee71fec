"""Bitext customer-support training set -> JSONL records `prompt` (the customer's request) +
`completion` (the assistant's reply), for a free-text `generation` task.

    python bench/datasets/bitext_support.py --input raw/Bitext_Sample_Customer_Support_Training_Dataset.csv \\
        --out /work/datasets/bitext-support/bitext-support.jsonl [--check]

The file has no splits of its own: a stable 10% (by the hash of the row index) becomes test and 5%
eval. Ids are `bitext-support-<row index>`. `attributes` keep the dataset's own annotations that a
per-group evaluation can use: category, intent, and two of its language tags (TAGS.md):
colloquial (Q) and offensive (W) requests. The replies' Windows line ends (CRLF) become LF.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from common import CONTROL, check_jsonl, finish, held_out, parser, read_csv, write_jsonl

NAME = "bitext-support"
ANNOTATOR = "bitext-linguists"  # generated from seed texts, curated by Bitext's computational linguists
RELEASED = "2023-08-18"  # the commit that published this version of the file (8b6ca3d)
SOURCE = "bitext/customer-support-llm-chatbot-training-dataset@8b6ca3d:data/train/{file}"
COLUMNS = ["instruction", "intent", "category", "tags", "response"]


def record(i: int, row: dict, eval_fraction: float, test_fraction: float, file: str) -> dict:
    tags = row["tags"]
    reply = row["response"].replace("\r\n", "\n").strip()
    return {"id": f"{NAME}-{i}", "prompt": row["instruction"].strip(), "completion": reply,
            "split": held_out(f"{NAME}:{i}", eval_fraction, test_fraction),
            "label_verified": True, "annotator": ANNOTATOR, "verified_at": RELEASED,
            "attributes": {"category": row["category"], "intent": row["intent"],
                           "colloquial": "yes" if "Q" in tags else "no",
                           "offensive": "yes" if "W" in tags else "no"},
            "source": SOURCE.format(file=file)}


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True, help="Bitext_Sample_Customer_Support_Training_Dataset.csv")
    ap.add_argument("--eval-fraction", type=float, default=0.05)
    ap.add_argument("--test-fraction", type=float, default=0.10)
    args = ap.parse_args()
    table = read_csv(args.input)
    missing = [c for c in COLUMNS if table and c not in table[0]]
    if missing:
        raise SystemExit(f"{args.input}: no column {missing[0]!r}")
    skipped, splits = Counter(), Counter()

    def records():
        for i, row in enumerate(table):
            if not row["instruction"].strip() or not row["response"].strip():
                skipped["empty_text"] += 1
            elif CONTROL.search(row["instruction"] + row["response"]):
                skipped["control_characters"] += 1
            else:
                converted = record(i, row, args.eval_fraction, args.test_fraction, args.input.name)
                splits[converted["split"]] += 1
                yield converted

    n = write_jsonl(args.out, records())
    summary = {"out": str(args.out), "records": n, "splits": dict(splits), "skipped": dict(skipped),
               "categories": dict(Counter(r["category"] for r in table).most_common())}
    finish(summary, check_jsonl(args.out) if args.check else None)


if __name__ == "__main__":
    main()
