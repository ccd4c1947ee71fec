"""What a training run costs before it starts, and which model size a task needs.

FLOPs: the usual 6 * N * D for a dense transformer with N parameters trained on D tokens
(2ND forward + 4ND backward). LoRA freezes the base weights, so the backward skips the ~2ND
weight-gradient matmuls but still needs the ~2ND activation-gradient matmuls to carry the
gradient down through every frozen layer to the adapters: about 4ND in total. We keep 6ND as a
deliberately conservative figure: it also absorbs attention FLOPs (not in N), gradient
checkpointing's re-forward (+2ND) and MFU optimism. For 7B on 1M tokens:
6 * 7e9 * 1e6 = 4.2e16 FLOPs; at 40% of an A100's 312 TFLOP/s that is 4.2e16 / 1.25e14 = 336 s.
"""
from __future__ import annotations

# Peak dense bf16 tensor FLOP/s (no sparsity), from vendor datasheets. "cpu" is an order of
# magnitude for a 2-core AVX2 box in fp32: ~2 cores * 3 GHz * 32 FLOP/cycle.
PEAK_FLOPS = {
    "cpu": 0.2e12,
    "A10G": 70e12,
    "L4": 121e12,
    "A100": 312e12,
    "H100": 989e12,
    "H200": 989e12,
}
# Model FLOPs utilisation that LoRA fine-tuning typically reaches with HF trainers: short
# sequences and small per-device batches keep it well under pre-training's ~50%.
ASSUMED_MFU = {"cpu": 0.3, "A10G": 0.35, "L4": 0.35, "A100": 0.4, "H100": 0.35, "H200": 0.35}
FLOPS_PER_PARAM_TOKEN = 6


def estimate_cost(config, n_train_tokens: int, n_params: int, n_trainable: int | None = None,
                  epochs: float | None = None) -> dict:
    """FLOPs, GPU-hours and USD for `config` over `n_train_tokens` tokens per epoch.

    `epochs` defaults to config.epochs; the trainer passes the tokens a max_steps run will really
    see (steps * effective batch * mean example length) with epochs=1.
    """
    gpu = config.gpu_type
    epochs = config.epochs if epochs is None else epochs
    flops = FLOPS_PER_PARAM_TOKEN * n_params * n_train_tokens * epochs
    if config.method == "grpo":
        # Each prompt is sampled num_generations times and every completion is scored with a forward
        # and trained with a backward: roughly num_generations times the SFT work on that text.
        flops *= config.num_generations
    throughput = PEAK_FLOPS[gpu] * ASSUMED_MFU[gpu] * config.num_gpus
    seconds = flops / throughput
    device_hours = seconds / 3600 * config.num_gpus
    usd = device_hours * config.price_per_hour
    return {
        "flops": flops,
        "flops_formula": f"{FLOPS_PER_PARAM_TOKEN} * {n_params:,} params * {n_train_tokens:,} tokens * {epochs} epochs",
        "n_params": n_params,
        "n_trainable": n_trainable,
        "trainable_fraction": (n_trainable / n_params) if n_trainable and n_params else None,
        "gpu_type": gpu,
        "num_gpus": config.num_gpus,
        "peak_flops_per_device": PEAK_FLOPS[gpu],
        "assumed_mfu": ASSUMED_MFU[gpu],
        "wall_seconds": seconds,
        "device_hours": device_hours,
        "usd": usd,
        "price_per_hour": config.price_per_hour,
        "within_budget": None if config.budget_usd is None else usd <= config.budget_usd,
    }


def model_size_guidance(n_examples: int, n_tokens: int, task: str = "classification") -> dict:
    """Which base-model class to start from, with the reasons.

    Rules of thumb from LoRA practice: narrow structured-output tasks (classification, extraction
    into a fixed JSON schema) saturate on small models given a few thousand labelled examples;
    open-ended generation and reasoning need the knowledge and fluency that only bigger bases have,
    and more data to move them.
    """
    narrow = task in {"classification", "extraction", "routing", "json", "structured"}
    reasons = []
    if narrow and n_examples >= 1000:
        size = "7B"
        reasons.append(f"{task} with a fixed output schema: a 7B LoRA usually matches larger models here")
    elif narrow:
        size = "7B"
        reasons.append(f"only {n_examples} examples: a bigger base would overfit the same little data; "
                       "collect >= 1,000 verified examples before scaling up")
    elif n_examples < 5000:
        size = "13B"
        reasons.append(f"open-ended task ({task}) with {n_examples} examples: a 13B base brings the "
                       "fluency the data cannot teach")
    else:
        size = "70B"
        reasons.append(f"open-ended task ({task}) with {n_examples} examples and {n_tokens:,} tokens: "
                       "enough data to make a 70B QLoRA run pay off")
    tokens_per_example = n_tokens / max(n_examples, 1)
    if tokens_per_example > 2048:
        reasons.append(f"long examples ({tokens_per_example:.0f} tokens avg): budget memory for long "
                       "context (gradient checkpointing, or a GPU with >= 80 GB)")
    hardware = {"7B": "1x A10G/L4 (24 GB) with QLoRA, or 1x A100 with LoRA",
                "13B": "1x A100 80GB with LoRA, or 2-4x A10G with QLoRA + DDP",
                "70B": "4-8x A100/H100 80GB with QLoRA + FSDP"}[size]
    return {"recommended": size, "hardware": hardware, "reasons": reasons,
            "n_examples": n_examples, "n_tokens": n_tokens, "task": task}


def planned_tokens(config, tokens_per_epoch: int, n_examples: int, world_size: int) -> int:
    """Tokens the run will see: epochs over the data, or max_steps * effective batch * mean length."""
    if config.max_steps > 0:
        per_step = config.per_device_batch_size * config.gradient_accumulation * world_size
        return int(config.max_steps * per_step * tokens_per_epoch / max(n_examples, 1))
    return int(tokens_per_epoch * config.epochs)
