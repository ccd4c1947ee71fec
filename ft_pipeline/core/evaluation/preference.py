"""Held-out preference accuracy of a model: does it find the chosen answer more likely than the
rejected one, per token (so a longer answer is not penalized for its length)?

Each pair is rendered with the model's chat template, as DPO trained on it: the prompt turns with
the generation prompt are the prefix, the answer (with the template's end-of-turn) the continuation.
"""
from __future__ import annotations

import os

from ft_pipeline.core import metrics
from ft_pipeline.core.evaluation.generation import Progress, continuation_logprobs, load_model


def pair_texts(tokenizer, row: dict) -> tuple[str, str, str]:
    """(prefix, chosen continuation, rejected continuation) of one export preference row."""
    prompt = [{"role": m["role"], "content": m["content"]} for m in row["prompt"]]
    prefix = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    sides = []
    for key in ("chosen", "rejected"):
        full = tokenizer.apply_chat_template(prompt + [row[key][-1]], tokenize=False)
        if not full.startswith(prefix):  # a template that rewrites earlier turns: score the answer alone
            sides.append(row[key][-1]["content"])
        else:
            sides.append(full[len(prefix):])
    return prefix, sides[0], sides[1]


def preference_scores(model_dir: str | os.PathLike, rows: list[dict], *, adapter_dir=None, batch_size: int = 8,
                      progress: Progress | None = None) -> metrics.Scores:
    _, tokenizer = load_model(model_dir, adapter_dir)
    texts = [pair_texts(tokenizer, row) for row in rows]
    prefixes = [prefix for prefix, _, _ in texts for _ in range(2)]
    continuations = [side for _, chosen, rejected in texts for side in (chosen, rejected)]
    scored = continuation_logprobs(model_dir, prefixes, continuations, adapter_dir=adapter_dir,
                                   batch_size=batch_size, progress=progress)
    per_token = [total / max(n, 1) for total, n in scored]
    return metrics.score_preference(per_token[0::2], per_token[1::2])
