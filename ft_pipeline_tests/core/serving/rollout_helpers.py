"""Versions that really answer differently, for the rollout tests: LoRA adapters on the tiny random
Llama trained here (a few dozen AdamW steps, seconds) to give one answer to every request."""
from __future__ import annotations

import json
from pathlib import Path

from ft_pipeline_tests.core.serving.helpers import publish_version, write_task

SYSTEM = "Route the ticket to one queue."
# Thresholds for ~30 paired requests: with 30 of 30 alike, a 95% interval still spans +-0.11, so
# the default tolerances (0.02-0.05, for >= 200 requests) could not pass an equal version here.
TASK = f"""\
name: ticket-queue
type: classification
system_prompt: {SYSTEM}
labels: [billing, shipping]
rollout:
  mode: canary
  share: 0.5
  min_requests: 20
  min_labelled_per_step: 20
  max_schema_valid_loss: 0.15
  max_metric_loss: 0.15
  max_refusal_increase: 0.15
  max_pii_increase: 0.15
  max_error_increase: 0.15
  max_p95_latency_increase: 3.0
"""


def write_replay(path: Path, n: int = 60) -> Path:
    """`n` recorded billing requests, each labelled with the queue it belonged in."""
    lines = [{"request_id": f"req-{i}", "model": "ticket-queue", "label": "billing",
              "messages": [{"role": "user", "content": f"ticket {i}: I was charged twice for order {1000 + i}"}]}
             for i in range(n)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def publish_trained(home: Path, model_dir: Path, folder: Path, answer: str, seed: int, current: bool,
                    task: str = TASK) -> str:
    """A version of ticket-queue whose adapter answers `answer` to every ticket, published as
    current or beside it."""
    prompts = [f"ticket {i}: my card was charged twice" for i in range(8)]
    adapter = trained_adapter(model_dir, folder / f"adapter-{answer}-{seed}", SYSTEM, prompts, answer, seed=seed)
    return publish_version(home, model_dir, write_task(folder, task), adapter, "ticket-queue", current)


def trained_adapter(model_dir: Path, out: Path, system_prompt: str, prompts: list[str], answer: str,
                    steps: int = 30, seed: int = 0) -> Path:
    """A LoRA adapter trained to answer `answer` after each prompt. lm_head carries a LoRA too: the
    random model's logits are too flat (embeddings of std 0.02) for attention layers alone to make
    one answer likely."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "lm_head"]))
    rows = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template([{"role": "system", "content": system_prompt},
                                              {"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        target = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        rows.append((ids + target, [-100] * len(ids) + target))
    width = max(len(ids) for ids, _ in rows)
    pad = lambda seq, value: [value] * (width - len(seq)) + seq  # noqa: E731 - left padding, as the engine pads
    input_ids = torch.tensor([pad(ids, tokenizer.pad_token_id) for ids, _ in rows])
    labels = torch.tensor([pad(labels, -100) for _, labels in rows])
    mask = torch.tensor([pad([1] * len(ids), 0) for ids, _ in rows])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        model(input_ids=input_ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    return out
