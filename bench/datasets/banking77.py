"""banking77 (PolyAI) -> one CSV a user could have exported: the dataset's own columns `text,category`,
plus `label_verified,annotator,verified_at,split`, and no id column (ingestion assigns ids; the
task file maps `text` -> prompt and `category` -> completion). See bench/datasets/README.md.

    python bench/datasets/banking77.py --train raw/train.csv --test raw/test.csv \\
        --out /work/datasets/banking77/banking77.csv [--check]

Splits: the dataset's test split stays test; a stable 5% of each intent's train rows (the lowest
hashes of their row indexes) becomes eval, so that every intent is in eval.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from common import atomic_write, check_csv, finish, parser, read_csv, stratified_held_out

NAME = "banking77"
ANNOTATOR = "banking77-authors"  # PolyAI's annotators (Casanueva et al., 2020)
RELEASED = "2020-02-18"  # the commit that published banking_data/ (9d08145)
COLUMNS = ["text", "category", "label_verified", "annotator", "verified_at", "split"]
TASK_COLUMNS = {"text": "prompt", "category": "completion"}  # as in configs/tasks/banking77.yaml


def rows(train: list[dict], test: list[dict], eval_fraction: float):
    held = stratified_held_out(f"{NAME}:train", [row["category"] for row in train], eval_fraction)
    labelled = list(zip(held, train))
    labelled += [("test", row) for row in test]
    for split, row in labelled:
        yield {"text": row["text"], "category": row["category"], "label_verified": "true",
               "annotator": ANNOTATOR, "verified_at": RELEASED, "split": split}


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, required=True, help="banking_data/train.csv")
    ap.add_argument("--test", type=Path, required=True, help="banking_data/test.csv")
    ap.add_argument("--eval-fraction", type=float, default=0.05, help="share of train held out as eval")
    args = ap.parse_args()
    train, test = read_csv(args.train), read_csv(args.test)
    for path, table in ((args.train, train), (args.test, test)):
        if table and list(table[0]) != ["text", "category"]:
            raise SystemExit(f"{path}: expected columns text,category, got {','.join(table[0])}")
    splits, labels = Counter(), Counter()
    with atomic_write(args.out) as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows(train, test, args.eval_fraction):
            writer.writerow(row)
            splits[row["split"]] += 1
            labels[row["category"]] += 1
    summary = {"out": str(args.out), "rows": sum(splits.values()), "splits": dict(splits),
               "labels": len(labels), "per_label_min": min(labels.values()), "per_label_max": max(labels.values())}
    finish(summary, check_csv(args.out, TASK_COLUMNS, NAME) if args.check else None)


if __name__ == "__main__":
    main()
