"""Differentially private SFT (DP-SGD with Opacus), for `privacy: {dp: true}` in a TrainingConfig.

trl's SFTTrainer cannot clip per example, so this is a small loop of its own; it ends in the same
output folder as train() (adapter, tokenizer, training_config.yaml, metrics.json written last)
plus privacy.json, so evaluation and release read a DP adapter like any other.

What makes the guarantee honest:
- Poisson sampling (Opacus's DPDataLoader): each step takes every example with probability
  q = expected batch / N, the sampling the accountant assumes.
- The privacy unit is one training example (one conversation): its loss is the mean over its own
  answer tokens, so its gradient does not depend on which other examples share the batch.
- The noise is sized (opacus.accountants.utils.get_noise_multiplier, as make_private_with_epsilon
  does) for the exact number of steps this run takes, and the epsilon reported is the one the
  accountant (PRV) measured over the steps taken.
- The base model is on its device before get_peft_model and Opacus see it, and the optimizer holds
  the LoRA parameters only (Opacus issue 820: a wrong order trains weights that are never used).
- A killed run resumes from its last checkpoint (dp_checkpoints.py) with the accountant's history
  and the RNG states restored: the epsilon it reports covers every step, before the kill and after.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from types import SimpleNamespace

from ft_pipeline.core.training import dp_checkpoints
from ft_pipeline.core.training.checkpoints import prepare_checkpoints, write_outputs
from ft_pipeline.core.training.cost import estimate_cost, planned_tokens
from ft_pipeline.core.training.model_setup import lora_config
from ft_pipeline.core.training.model_stats import peak_memory
from ft_pipeline.core.training.privacy import privacy_record_text, resolve_delta

IGNORE = -100
ACCOUNTANT = "prv"  # Opacus's default: tighter than RDP for the same noise


def tokenize(dataset, tokenizer, max_length: int, assistant_only: bool) -> tuple[list[dict], int]:
    """(examples, dropped): input ids and labels per conversation, labels IGNORE outside the
    answer; a conversation whose answer truncation cut away entirely is dropped, as trl does."""
    examples, dropped = [], 0
    for row in dataset:
        out = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=assistant_only)
        ids = list(out["input_ids"])[:max_length]
        mask = list(out["assistant_masks"])[:max_length] if assistant_only else [1] * len(ids)
        labels = [t if m else IGNORE for t, m in zip(ids, mask)]
        if all(label == IGNORE for label in labels[1:]):  # the first token is never predicted
            dropped += 1
            continue
        examples.append({"input_ids": ids, "labels": labels})
    return examples, dropped


def collate(pad_id: int):
    def pad(batch: list[dict]) -> dict:
        import torch

        width = max((len(e["input_ids"]) for e in batch), default=1)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e["input_ids"])
            ids[i, :n], labels[i, :n], attention[i, :n] = torch.tensor(e["input_ids"]), torch.tensor(e["labels"]), 1
        return {"input_ids": ids, "labels": labels, "attention_mask": attention}

    return pad


def noise_only_batch(pad_id: int) -> dict:
    """What an empty Poisson draw trains on: Llama cannot run a batch of zero rows, so one row with
    no label, whose loss and gradient are exactly zero; the step still adds its noise and counts."""
    return collate(pad_id)([{"input_ids": [pad_id, pad_id], "labels": [IGNORE, IGNORE]}])


def example_losses(model, batch: dict, device):
    """(flattened logits, flattened next-token labels, (B, T-1)): what the per-example loss reads."""
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    logits = logits[:, :-1].float()
    labels = batch["labels"][:, 1:].to(device)
    return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), labels.shape


def mean_example_loss(model, examples: list[dict], pad_id: int, batch_size: int, device) -> float:
    """Mean over examples of each example's mean answer-token loss (the loss DP training minimizes)."""
    import torch
    import torch.nn.functional as F

    total, pad = 0.0, collate(pad_id)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            logits, labels, shape = example_losses(model, pad(examples[start:start + batch_size]), device)
            tokens = F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="none").view(shape)
            valid = (labels.view(shape) != IGNORE).sum(1).clamp(min=1)
            total += (tokens.sum(1) / valid).sum().item()
    model.train()
    return total / max(len(examples), 1)


def planned_steps(config, batches_per_epoch: int) -> int:
    return config.max_steps if config.max_steps > 0 else max(1, math.ceil(config.epochs * batches_per_epoch))


def train_private(config, model, tokenizer, train_ds, eval_ds, output_dir, *, run: dict, callback=None,
                  progress: bool = False) -> dict:
    """DP-SGD LoRA training; `run` carries what train() already knows (model_path, n_params,
    n_tokens, precision, cuda, started, data_digest: which checkpoints it may resume). Returns the metrics written to metrics.json."""
    import shutil
    import sys

    import opacus
    import torch
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier
    from opacus.utils.batch_memory_manager import BatchMemoryManager
    from peft import get_peft_model
    from torch.utils.data import DataLoader
    from tqdm import tqdm
    from transformers import get_scheduler, set_seed

    privacy, precision = config.privacy, run["precision"]
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise ValueError("TrainingConfig.privacy.dp=True: DP training runs on one process; "
                         "launch it without accelerate / torchrun")
    if precision == "fp16":
        raise ValueError("TrainingConfig.privacy.dp=True: fp16 needs a loss scaler Opacus's clipping "
                         "does not see; set precision: bf16 or fp32")
    emit = callback or (lambda event: None)
    device = torch.device("cuda" if run["cuda"] else "cpu")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples, dropped = tokenize(train_ds, tokenizer, config.max_length, config.assistant_only_loss)
    if not examples:
        raise ValueError(f"TrainingConfig.max_length={config.max_length}: truncation leaves no answer token in any "
                         f"of the {len(train_ds)} training examples; raise max_length")
    eval_examples = tokenize(eval_ds, tokenizer, config.max_length, config.assistant_only_loss)[0] if eval_ds is not None else []

    set_seed(config.seed)  # fixes the LoRA init and the Poisson draws
    model = model.to(device)  # before LoRA and Opacus: hooks and optimizer must see the placed weights
    model = get_peft_model(model, lora_config(config))
    model.train()  # from_pretrained loads in eval mode: LoRA dropout would silently be off
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    estimate = estimate_cost(config, planned_tokens(config, run["n_tokens"], len(examples), 1), run["n_params"],
                             n_trainable, epochs=1)
    if estimate["within_budget"] is False:
        raise ValueError(f"TrainingConfig.budget_usd={config.budget_usd}: estimated cost ${estimate['usd']:.2f} "
                         f"({estimate['device_hours']:.2f} {config.gpu_type}-hours) exceeds the budget")

    # A logical batch of batch * accumulation examples (expected: Poisson sampling varies it),
    # computed in physical batches of at most per_device_batch_size.
    logical = min(config.per_device_batch_size * config.gradient_accumulation, len(examples))
    loader = DataLoader(examples, batch_size=logical, collate_fn=collate(pad_id))
    sample_rate = 1 / len(loader)  # what make_private's DPDataLoader samples with
    steps = planned_steps(config, len(loader))
    delta = resolve_delta(privacy, len(examples))
    engine = PrivacyEngine(accountant=ACCOUNTANT)
    sigma = get_noise_multiplier(target_epsilon=privacy.target_epsilon, target_delta=delta, sample_rate=sample_rate,
                                 steps=steps, accountant=ACCOUNTANT)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=int(config.warmup_ratio * steps),
                              num_training_steps=steps)
    ghost = privacy.grad_sample_mode == "ghost"
    private = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=sigma,
        max_grad_norm=privacy.max_grad_norm, poisson_sampling=True, grad_sample_mode=privacy.grad_sample_mode,
        criterion=torch.nn.CrossEntropyLoss(ignore_index=IGNORE), wrap_model=False)
    hooks, dp_optimizer, criterion, dp_loader = private if ghost else (*private[:2], None, private[2])
    # None where Opacus draws from the global generator (no secure_mode, no generator passed).
    generators = {"sampler": getattr(dp_loader.batch_sampler, "generator", None),
                  "noise": getattr(dp_optimizer, "generator", None)}

    def loss_of(batch):
        logits, labels, shape = example_losses(model, batch, device)
        if ghost:  # Opacus's wrapper: per-example mean over answer tokens, two backward passes
            return criterion(logits, labels, shape=shape)
        tokens = torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="none").view(shape)
        return (tokens.sum(1) / (labels.view(shape) != IGNORE).sum(1).clamp(min=1)).mean()

    def taken() -> int:  # optimizer steps so far: the accountant counts exactly the noised ones
        return sum(entry[-1] for entry in engine.accountant.history)

    # Resume only a checkpoint of this config and data (the rule of every run: checkpoints.py).
    ckpt_dir = Path(output_dir) / "checkpoints"
    resume, not_resumed = prepare_checkpoints(ckpt_dir, config, True, run.get("data_digest", ""))
    if not_resumed:
        print(f"starting afresh: checkpoints in {ckpt_dir} not resumed, {not_resumed}", file=sys.stderr, flush=True)
    saved, state = dp_checkpoints.load(resume) if resume else ({}, {})
    if resume:
        dp_checkpoints.restore_training(saved, model, dp_optimizer, scheduler)
        # The steps already taken stay spent: epsilon is measured over the whole run's history.
        dp_checkpoints.restore_accountant(engine.accountant, state["accountant"])
    resumed_from = state.get("step")

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    emit({"event": "start", "max_steps": steps, "resumed_from": resumed_from, "world_size": 1,
          "trainable_params": n_trainable, "total_params": run["n_params"]})
    if run["cuda"]:
        torch.cuda.reset_peak_memory_stats()
    history, window, tokens_seen = state.get("history", []), state.get("window", []), state.get("tokens_seen", 0)
    done = taken()
    bar = tqdm(total=steps, initial=done, disable=not progress, desc="DP-SGD")
    t0 = time.time()
    while done < steps:
        # One pass of exactly the steps left (an independent Poisson draw each), so a resumed run
        # draws from the restored generator what the uninterrupted run drew at the same step.
        dp_loader.batch_sampler.steps = steps - done
        with BatchMemoryManager(data_loader=dp_loader, max_physical_batch_size=config.per_device_batch_size,
                                optimizer=dp_optimizer) as physical:
            batches = iter(physical)
            if "rng" in saved:
                dp_checkpoints.restore_rng(saved.pop("rng"), generators)
            for batch in batches:
                # An empty first draw comes as [] (Opacus has no batch yet to shape it like).
                empty = not isinstance(batch, dict) or batch["input_ids"].shape[0] == 0
                if empty:
                    batch = noise_only_batch(pad_id)
                with autocast:
                    loss = loss_of(batch)
                loss.backward()
                dp_optimizer.step()
                dp_optimizer.zero_grad()
                if not empty:
                    window.append(loss.item())
                    tokens_seen += int(batch["attention_mask"].sum())
                if taken() == done:
                    continue
                done = taken()
                scheduler.step()
                bar.update(1)
                if done % config.logging_steps == 0 or done == steps:
                    entry = {"step": done, **({"loss": sum(window) / len(window)} if window else {}),
                             "learning_rate": scheduler.get_last_lr()[0], "epsilon": float(engine.get_epsilon(delta))}
                    history.append(entry)
                    window = []
                    emit({"event": "log", "max_steps": steps, **entry})
                if done % config.save_steps == 0 and done < steps:
                    tensors = dp_checkpoints.snapshot(model, dp_optimizer, scheduler, generators)
                    dp_checkpoints.save(ckpt_dir, done, tensors,
                                        {"step": done, "tokens_seen": tokens_seen, "history": history, "window": window,
                                         "accountant": engine.accountant.history, "noise_multiplier": sigma,
                                         "sample_rate": sample_rate}, config.save_total_limit)
                if done >= steps:
                    break
    bar.close()
    train_seconds = time.time() - t0
    hooks.cleanup()  # the plain peft model again, without Opacus's hooks, for evaluation and saving
    epsilon = float(engine.get_epsilon(delta))
    eval_loss = mean_example_loss(model, eval_examples, pad_id, config.per_device_batch_size, device) if eval_examples else None

    record = {"dp": True, "epsilon": epsilon, "delta": delta, "target_epsilon": privacy.target_epsilon,
              "max_grad_norm": privacy.max_grad_norm, "noise_multiplier": sigma, "sample_rate": sample_rate,
              "expected_batch_size": len(examples) * sample_rate, "steps": done, "train_examples": len(examples),
              "accountant": ACCOUNTANT, "sampling": "poisson", "grad_sample_mode": privacy.grad_sample_mode,
              "privacy_unit": "one training example (conversation)", "opacus_version": opacus.__version__}
    losses = [h["loss"] for h in history if "loss" in h]
    metrics = {
        "method": config.method, "base_model": config.base_model, "base_model_path": str(run["model_path"]),
        "steps": done, "max_steps": steps, "epochs": done * sample_rate, "resumed_from": resumed_from, "world_size": 1,
        "device": device.type, "precision": precision, "packing": False, "load_in_4bit": config.qlora,
        "total_params": run["n_params"], "trainable_params": n_trainable, "train_examples": len(train_ds),
        "train_examples_dropped_by_truncation": dropped, "eval_examples": len(eval_examples),
        "train_tokens": tokens_seen, "tokens_per_s": tokens_seen / train_seconds if train_seconds > 0 else None,
        "train_seconds": train_seconds, "wall_seconds": time.time() - run["started"],
        "final_loss": losses[-1] if losses else None, "first_loss": losses[0] if losses else None,
        "train_loss_avg": sum(losses) / len(losses) if losses else None,
        "eval": {"eval_example_loss": eval_loss} if eval_loss is not None else {},
        "peak_memory_bytes": peak_memory(run["cuda"]),
        "peak_memory_kind": "cuda_max_memory_allocated" if run["cuda"] else "process_max_rss",
        "cost_estimate": estimate, "privacy": record, "history": history,
    }
    output_dir = Path(output_dir)
    write_outputs(SimpleNamespace(model=model), tokenizer, config, metrics, output_dir,
                  extra_files={"privacy.json": privacy_record_text(record)})
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # complete: the adapter supersedes them
    emit({"event": "end", **{k: v for k, v in metrics.items() if k != "history"}})
    return metrics
