"""Anthropic hh-rlhf -> JSONL preference records: `prompt` (the conversation before the final
assistant turn, as a list of turns) + `chosen` / `rejected` (the two final assistant texts), for DPO.

    python bench/datasets/hh_rlhf.py --input raw/test.jsonl.gz --subset harmless-base \\
        --out /work/datasets/hh-rlhf-harmless/hh-rlhf-harmless.jsonl [--check]

Each hh-rlhf row holds two whole transcripts ("\\n\\nHuman: ...\\n\\nAssistant: ...") that differ only
in their last assistant turn. A pair is skipped, and counted by reason, when the two transcripts do
not share the turns before it, when a transcript does not alternate Human/Assistant starting with
Human and ending with Assistant, or when a final text is empty or both are the same. Ids are
`hh-rlhf-<subset>-<line index>`. Only one split of the subset is available here (see the README),
so a stable 15% of it (by the hash of the conversation's opening line, so that conversations
opening alike stay together) becomes eval and the rest train; DPO exports have no test split.
"""
from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

from common import CONTROL, check_jsonl, finish, held_out, parser, write_jsonl

ANNOTATOR = "hh-rlhf-crowdworkers"  # the crowdworkers who picked the better reply (Bai et al., 2022)
# The commit on master that added each subset (harmless-base: 0398e36; helpful-*: f956116).
RELEASED = {"harmless-base": "2022-08-24", "helpful-base": "2022-04-12", "helpful-online": "2022-04-12",
            "helpful-rejection-sampled": "2022-04-12"}
SOURCE = "anthropics/hh-rlhf@354e5c3:{subset}/{file}"
TURN = re.compile(r"\n\n(Human|Assistant): ?")
ROLE = {"Human": "user", "Assistant": "assistant"}


def turns(transcript: str) -> list[dict]:
    """[{role, content}] of a transcript; text before the first marker becomes a `preamble` turn
    (which `alternates` rejects)."""
    parts = TURN.split(transcript)
    out = [{"role": "preamble", "content": parts[0]}] if parts[0].strip() else []
    return out + [{"role": ROLE[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)]


def alternates(conversation: list[dict]) -> bool:
    """Human/Assistant in turn, from Human to a final Assistant turn."""
    roles = [t["role"] for t in conversation]
    return bool(roles) and roles == ["user", "assistant"] * (len(roles) // 2)


def pair(row: dict) -> tuple[dict | None, str | None]:
    """(prompt/chosen/rejected, None) or (None, why it was skipped)."""
    chosen, rejected = turns(row["chosen"]), turns(row["rejected"])
    if chosen[:-1] != rejected[:-1]:
        return None, "prompt_differs"
    if not alternates(chosen) or not alternates(rejected):
        return None, "not_alternating"
    if not chosen[-1]["content"] or not rejected[-1]["content"]:
        return None, "empty_final_turn"
    if any(not t["content"] for t in chosen[:-1]):
        return None, "empty_prompt_turn"
    if chosen[-1]["content"] == rejected[-1]["content"]:
        return None, "same_final_turn"
    if CONTROL.search(row["chosen"] + row["rejected"]):
        return None, "control_characters"
    return {"prompt": chosen[:-1], "chosen": chosen[-1]["content"], "rejected": rejected[-1]["content"]}, None


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True, help="<subset>/<split>.jsonl.gz (or .jsonl)")
    ap.add_argument("--subset", choices=sorted(RELEASED), required=True, help="the hh-rlhf folder it came from")
    ap.add_argument("--eval-fraction", type=float, default=0.15, help="share held out as eval")
    args = ap.parse_args()
    name = f"hh-rlhf-{args.subset}"
    skipped, splits, prompt_turns, odd = Counter(), Counter(), Counter(), Counter()

    def records():
        opener = gzip.open if args.input.suffix == ".gz" else open
        with opener(args.input, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                converted, why = pair(json.loads(line))
                if converted is None:
                    skipped[why] += 1
                    continue
                # Keyed by the opening line: red-teamers reused openings, and a pair in eval should
                # not have a near-twin in train.
                split = held_out(f"{name}:{converted['prompt'][0]['content']}", args.eval_fraction)
                splits[split] += 1
                prompt_turns[len(converted["prompt"])] += 1
                # The models that wrote these replies sometimes carried on with the human's next line.
                odd["final_text_contains_Human:"] += any("Human:" in converted[k] for k in ("chosen", "rejected"))
                yield {"id": f"{name}-{i}", **converted, "split": split, "label_verified": True,
                       "annotator": ANNOTATOR, "verified_at": RELEASED[args.subset],
                       "source": SOURCE.format(subset=args.subset, file=args.input.name)}

    n = write_jsonl(args.out, records())
    summary = {"out": str(args.out), "records": n, "splits": dict(splits), "skipped": dict(skipped),
               "prompt_turns": dict(sorted(prompt_turns.items())), "kept_as_is": dict(odd)}
    finish(summary, check_jsonl(args.out) if args.check else None)


if __name__ == "__main__":
    main()
