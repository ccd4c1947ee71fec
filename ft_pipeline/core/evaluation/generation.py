"""Batched greedy generation from a chat model, optionally with a LoRA adapter merged in, and the
log-probability of given continuations (multiple-choice and preference scoring).

Evaluation answers the same prompts with several variants (base, prompt-only baseline, tuned), so
loaded models are cached per process: base and baseline share one load, and the tuned variant
gets its own copy because merging an adapter rewrites the base weights in place.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

Progress = Callable[[int, int], None]


def generate(
    model_dir: str | os.PathLike,
    prompts: list[list[dict]],
    *,
    adapter_dir: str | os.PathLike | None = None,
    max_new_tokens: int = 48,
    batch_size: int = 32,
    progress: Progress | None = None,
    stop_after_json: bool = False,
) -> list[str]:
    """One greedy completion per chat prompt, in the order of `prompts`.

    The tokens every prompt of a batch starts with (the system prompt, fixed few-shot examples)
    are computed once and their attention cache shared by the batch, as vLLM's automatic prefix
    caching does: the fit assessment's few-shot arm spends most of its time there.

    stop_after_json: a sequence is finished once it has written one balanced JSON object. For
    structured-answer tasks that is the whole answer, and an untuned model that would ramble for
    max_new_tokens costs no more than a tuned one (3-4x fewer decode steps on the demo).
    """
    import torch

    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError("batch_size and max_new_tokens must be at least 1")
    if not prompts:
        return []
    model, tokenizer = load_model(model_dir, adapter_dir)
    texts = [_render(tokenizer, messages, i) for i, messages in enumerate(prompts)]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    lengths = [len(one) for one in ids]
    # Longest first, so each batch pads to nearly its own length and an out-of-memory shows up
    # on the first batch rather than the last.
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    outputs: list[str | None] = [None] * len(texts)
    done = 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            encoded, cache = _shared_prefix_inputs(model, tokenizer, [ids[i] for i in batch])
            generated = model.generate(
                **encoded,
                **({"past_key_values": cache} if cache is not None else {}),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **({"stopping_criteria": [_JsonObjectEnd(tokenizer, encoded["input_ids"].shape[1])]} if stop_after_json else {}),
            )
            new_tokens = generated[:, encoded["input_ids"].shape[1]:]
            for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                outputs[i] = text.strip()
            done += len(batch)
            if progress:
                progress(done, len(texts))
    return outputs  # type: ignore[return-value]


MIN_SHARED_PREFIX = 16  # tokens; below this a shared cache saves less than it costs to set up


def _shared_prefix_inputs(model, tokenizer, sequences: list[list[int]]):
    """(generate's inputs, a prefilled cache or None) for one batch of token id lists.

    With a shared prefix P, each row is [P | padding | rest of its prompt]: the cache holds P's
    keys and values once per row (computed once, repeated), generate feeds only what follows P,
    and the padding sits masked between the two. Positions come from the attention mask's
    running count, so every prompt token keeps the position it has without the cache.
    """
    import torch

    shared = _common_prefix(sequences)
    if len(shared) < MIN_SHARED_PREFIX or len(sequences) < 2:
        shared = []
    # Leave at least one token per row to feed: generate needs a last token to continue from.
    shared = shared[:min(len(s) for s in sequences) - 1] if shared else []
    rests = [s[len(shared):] for s in sequences]
    width = max(len(r) for r in rests)
    input_ids = torch.full((len(sequences), len(shared) + width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for row, rest in enumerate(rests):
        input_ids[row, :len(shared)] = torch.tensor(shared, dtype=torch.long)
        input_ids[row, input_ids.shape[1] - len(rest):] = torch.tensor(rest, dtype=torch.long)
        attention[row, :len(shared)] = 1
        attention[row, input_ids.shape[1] - len(rest):] = 1
    inputs = {"input_ids": input_ids, "attention_mask": attention}
    if not shared:
        return inputs, None
    from transformers import DynamicCache

    cache = model(input_ids=torch.tensor([shared], dtype=torch.long), past_key_values=DynamicCache(),
                  use_cache=True).past_key_values
    cache.batch_repeat_interleave(len(sequences))
    return inputs, cache


def _common_prefix(sequences: list[list[int]]) -> list[int]:
    first = sequences[0]
    end = min(len(s) for s in sequences)
    for seq in sequences[1:]:
        i = 0
        while i < end and seq[i] == first[i]:
            i += 1
        end = i
    return list(first[:end])


def continuation_logprobs(
    model_dir: str | os.PathLike,
    prefixes: list[str],
    continuations: list[str],
    *,
    adapter_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
    per_token: bool = False,
) -> list:
    """(sum of the log-probabilities of the continuation's tokens given the prefix, token count)
    per pair, in order: the primitive of multiple-choice scoring and preference accuracy.
    per_token: the list of the continuation's token log-probabilities instead (min-k% prob).

    Raw text: the caller renders any chat template. Prefix and continuation are tokenized apart and
    joined, as lm-evaluation-harness does, so a continuation's tokens do not depend on its prefix;
    keep the separating space on the continuation (" Paris"). An empty prefix is scored after the
    BOS (else EOS) token; an empty continuation scores (0.0, 0). A pair longer than the model's
    context loses the start of its prefix. Batches are right-padded: every sequence keeps its
    positions from 0, and in a causal model padding after the last token changes nothing before it.
    """
    import torch

    if len(prefixes) != len(continuations):
        raise ValueError(f"{len(prefixes)} prefixes for {len(continuations)} continuations")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not prefixes:
        return []
    model, tokenizer = load_model(model_dir, adapter_dir)
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    limit = getattr(model.config, "max_position_embeddings", None) or 1 << 30
    sequences = []
    for prefix, continuation in zip(tokenizer(list(prefixes), add_special_tokens=False)["input_ids"],
                                    tokenizer(list(continuations), add_special_tokens=False)["input_ids"]):
        ids = ((prefix or [start]) + continuation)[-limit:]
        sequences.append((ids, min(len(continuation), len(ids) - 1)))
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i][0]))
    scores: list[tuple[float, int] | None] = [None] * len(sequences)
    with torch.inference_mode():
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            width = max(len(sequences[i][0]) for i in batch)
            input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, :len(sequences[i][0])] = torch.tensor(sequences[i][0])
                attention[row, :len(sequences[i][0])] = 1
            logits = model(input_ids=input_ids, attention_mask=attention).logits
            for row, i in enumerate(batch):
                ids, count = sequences[i]
                # Token t is predicted at position t - 1: log-softmax only over those positions.
                steps = torch.log_softmax(logits[row, len(ids) - count - 1:len(ids) - 1].float(), dim=-1)
                targets = torch.tensor(ids[len(ids) - count:], dtype=torch.long)
                picked = steps[torch.arange(count), targets]
                scores[i] = picked.tolist() if per_token else (float(picked.sum()), count)
            if progress:
                progress(min(first + batch_size, len(order)), len(order))
    return scores  # type: ignore[return-value]


def load_model(model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None):
    """(model, tokenizer) ready for batched generation, from the per-process cache.

    The key carries the weights' modification times, so an adapter retrained into the same
    directory is loaded afresh instead of served stale from the cache.
    """
    return _load(str(model_dir), _stamp(model_dir), str(adapter_dir) if adapter_dir else None, _stamp(adapter_dir))


def clear_cache() -> None:
    _load.cache_clear()


@functools.lru_cache(maxsize=3)
def _load(model_dir: str, model_stamp: tuple, adapter_dir: str | None, adapter_stamp: tuple):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter_dir:
        from peft import PeftModel

        # Merged weights run at base-model speed; the unmerged wrapper adds a matmul per layer.
        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.eval()
    # The trainer may save the tokenizer it trained with next to the adapter; it is the one the
    # adapter learned its chat format from.
    tokenizer_dir = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").exists() else model_dir
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if not tokenizer.chat_template:
        raise ValueError(f"tokenizer in {tokenizer_dir} has no chat template; generation needs one")
    # Decoder-only models continue from the last position, so padding must sit on the left.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


class _JsonObjectEnd:
    """Per-sequence stop once the new text holds a balanced {...} (braces inside strings ignored)."""

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer, self.prompt_length = tokenizer, prompt_length

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        return torch.tensor([_closes_object(t) for t in texts], dtype=torch.bool, device=input_ids.device)


def _closes_object(text: str) -> bool:
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                return True
    return False


def _stamp(path: str | os.PathLike | None) -> tuple:
    if not path or not Path(path).is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in Path(path).iterdir() if p.is_file()))


def _render(tokenizer, messages: list[dict], index: int) -> str:
    if not messages or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
        raise ValueError(f"prompt {index}: expected a non-empty list of {{role, content}} messages")
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
