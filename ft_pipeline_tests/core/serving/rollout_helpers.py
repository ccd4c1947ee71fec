"""Versions that really answer differently, for the rollout tests: LoRA adapters on the tiny random
Llama trained here (a few dozen AdamW steps, seconds) to give one answer to every request."""
from __future__ import annotations

from pathlib import Path


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
