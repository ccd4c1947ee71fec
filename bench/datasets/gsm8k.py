"""GSM8K (OpenAI grade-school-math) -> JSONL records `prompt` (the question) + `reference` (the worked
solution ending in `#### N`), for GRPO: the reward reads N with the task's answer_pattern.

    python bench/datasets/gsm8k.py --train raw/train.jsonl --test raw/test.jsonl \\
        --out /work/datasets/gsm8k/gsm8k.jsonl [--keep-calculator] [--check]

Ids are `gsm8k-<split>-<line index>` in the original file. The test split stays test; a stable 5%
of train becomes eval. The solutions' calculator annotations (`<<48/2=24>>`, which GSM8K's own
sampler fills in with a calculator) are removed by default: the model we tune has no calculator,
and a reference it is trained towards should be text it can produce.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from common import CONTROL, check_jsonl, finish, held_out, parser, write_jsonl

NAME = "gsm8k"
ANNOTATOR = "gsm8k-authors"  # OpenAI's human problem writers (Cobbe et al., 2021)
RELEASED = "2021-10-28"  # the `release` commit (b0bb162); the files are unchanged at HEAD
SOURCE = "openai/grade-school-math@3101c7d:grade_school_math/data/{split}.jsonl"
CALCULATOR = re.compile(r"<<[^<>]*>>")
FINAL = re.compile(r"####\s*(-?[\d,]*\.?\d+)\s*$")  # the task's default answer_pattern, at the end


def convert(path: Path, split: str, eval_fraction: float, keep_calculator: bool, skipped: Counter):
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            row = json.loads(line)
            question, answer = row["question"].strip(), row["answer"].strip()
            if not keep_calculator:
                answer = CALCULATOR.sub("", answer)
            if not question or not FINAL.search(answer):
                skipped["no_final_answer" if question else "empty_question"] += 1
                continue
            if CONTROL.search(question + answer):
                skipped["control_characters"] += 1
                continue
            yield {"id": f"{NAME}-{split}-{i}", "prompt": question, "reference": answer,
                   "split": held_out(f"{NAME}:train:{i}", eval_fraction) if split == "train" else split,
                   "label_verified": True, "annotator": ANNOTATOR, "verified_at": RELEASED,
                   "source": SOURCE.format(split=split)}


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, required=True, help="grade_school_math/data/train.jsonl")
    ap.add_argument("--test", type=Path, required=True, help="grade_school_math/data/test.jsonl")
    ap.add_argument("--eval-fraction", type=float, default=0.05, help="share of train held out as eval")
    ap.add_argument("--keep-calculator", action="store_true", help="keep the <<a*b=c>> annotations")
    args = ap.parse_args()
    skipped, splits, answers = Counter(), Counter(), Counter()

    def records():
        for path, split in ((args.train, "train"), (args.test, "test")):
            for record in convert(path, split, args.eval_fraction, args.keep_calculator, skipped):
                splits[record["split"]] += 1
                final = FINAL.search(record["reference"]).group(1)
                answers["with_comma" if "," in final else "negative" if final.startswith("-")
                        else "decimal" if "." in final else "integer"] += 1
                yield record

    n = write_jsonl(args.out, records())
    summary = {"out": str(args.out), "records": n, "splits": dict(splits), "skipped": dict(skipped),
               "final_answers": dict(answers)}
    finish(summary, check_jsonl(args.out) if args.check else None)


if __name__ == "__main__":
    main()
