"""Training throughput: the project's trainer against a plain trl SFTTrainer script.

    python bench/train_throughput.py --data var/export [--model smollm2-135m-instruct] [--steps 8]

Both sides train the same LoRA (r16, all linear layers) on the same model, data and settings
(batch 4, max_length 192, assistant-only loss, fp32 on CPU / bf16 on GPU) for the same steps, in
this one process. Throughput is trained tokens (non-padding, as trl counts them) per second of
`trainer.train()`. Two more runs show what the project's batching options buy over right-padded
random batches: `group_by_length` (rows of similar length batched together, little padding) and
padding-free BFD packing. The demo preset's choice (grouped, no packing, no LoRA dropout) comes
from these figures on CPU.

Prints one JSON line per run; the last line is the project/plain ratio (target >= 1.0).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def settings(cuda: bool) -> dict:
    return dict(batch=4, max_length=192, lr=3e-4, rank=16, alpha=32, precision="bf16" if cuda else "fp32")


def plain_trl(model_path: str, data: Path, out: Path, steps: int, s: dict, cuda: bool) -> dict:
    """What a user writes from the trl quickstart: load, SFTConfig, SFTTrainer, train."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    dataset = load_dataset("json", data_files=str(data / "train.jsonl"), split="train").select_columns(["messages"])
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    dtype = torch.bfloat16 if s["precision"] == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    args = SFTConfig(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=s["batch"], learning_rate=s["lr"],
        max_length=s["max_length"], assistant_only_loss=True, logging_steps=steps, save_strategy="no",
        report_to="none", use_cpu=not cuda, bf16=s["precision"] == "bf16", seed=42, disable_tqdm=True,
        warmup_steps=0.05, lr_scheduler_type="cosine",
    )
    peft = LoraConfig(r=s["rank"], lora_alpha=s["alpha"], lora_dropout=0.05, target_modules=TARGETS,
                      task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft)
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    tokens = trainer._total_train_tokens
    return {"run": "plain_trl", "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def project(model_path: str, data: Path, out: Path, steps: int, s: dict, packing: bool, grouped: bool) -> dict:
    from ft_pipeline.core.training.config import TrainingConfig
    from ft_pipeline.core.training.train import train

    config = TrainingConfig(
        base_model=model_path, max_steps=steps, per_device_batch_size=s["batch"], learning_rate=s["lr"],
        max_length=s["max_length"], lora_rank=s["rank"], lora_alpha=s["alpha"], target_modules=TARGETS,
        precision=s["precision"], packing=packing, group_by_length=grouped, logging_steps=steps, save_steps=10**6,
    )
    m = train(config, data, out)
    name = "project_packed" if packing else "project_grouped" if grouped else "project"
    return {"run": name, "tokens": m["train_tokens"],
            "seconds": m["train_seconds"], "tokens_per_s": m["tokens_per_s"]}


def main() -> int:
    import torch

    from ft_pipeline.core.training.base_model import ensure_base_model
    from ft_pipeline.core.paths import pipeline_home

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default=str(pipeline_home() / "export"))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (thread pools, caches)")
    opts = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cuda = torch.cuda.is_available()
    model_path = str(ensure_base_model(opts.model))
    data, s = Path(opts.data), settings(cuda)
    with tempfile.TemporaryDirectory() as tmp:
        if opts.warmup:
            plain_trl(model_path, data, Path(tmp) / "warm", opts.warmup, s, cuda)
        runs = [plain_trl(model_path, data, Path(tmp) / "plain", opts.steps, s, cuda),
                project(model_path, data, Path(tmp) / "project", opts.steps, s, packing=False, grouped=False),
                project(model_path, data, Path(tmp) / "grouped", opts.steps, s, packing=False, grouped=True),
                project(model_path, data, Path(tmp) / "packed", opts.steps, s, packing=True, grouped=False)]
    for run in runs:
        print(json.dumps({**run, "model": opts.model, "steps": opts.steps, "device": "cuda" if cuda else "cpu"}))
    plain, proj, grouped, packed = (r["tokens_per_s"] for r in runs)
    print(json.dumps({"grouping_gain": round(grouped / proj, 3), "packing_gain": round(packed / proj, 3),
                      "project_vs_plain_trl": round(proj / plain, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
