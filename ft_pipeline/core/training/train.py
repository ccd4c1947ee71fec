"""The standalone trainer: TrainingConfig + export dir in, LoRA adapter + metrics out.

    ft-pipeline train --config configs/presets/smollm2-cpu-sft.yaml --data var/export --output var/adapters/smollm2-cpu-sft

Layout of the output directory when it finishes:
    adapter_config.json, adapter_model.safetensors   the LoRA adapter (peft)
    tokenizer files + chat_template.jinja            so the adapter dir is self-contained
    training_config.yaml                             the exact config, round-trippable
    metrics.json                                     written last: its presence means "complete"
While it runs, checkpoints live in <output>/checkpoints/; a rerun with the same config resumes
from the newest one. Final files are assembled in <output>/.partial/ and moved in with
os.replace, so a crash never leaves a half-written adapter beside a stale metrics.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ft_pipeline.core.training.checkpoints import prepare_checkpoints, write_outputs
from ft_pipeline.core.training.config import TrainingConfig
from ft_pipeline.core.training.cost import planned_tokens
from ft_pipeline.core.training.model_setup import adapter_dir, load_for_training, lora_config, resolve_precision
from ft_pipeline.core.training.model_stats import peak_memory

Event = dict
METHOD_MODULES = {"sft": "sft", "dpo": "dpo", "grpo": "grpo"}


def train(
    config: TrainingConfig,
    data_dir: Path | str,
    output_dir: Path | str,
    *,
    max_steps: int | None = None,
    callback: Callable[[Event], None] | None = None,
    progress: bool = False,
) -> dict:
    """Trains a LoRA adapter with trl; returns the metrics also written to output_dir/metrics.json."""
    import importlib

    import torch
    from transformers import set_seed

    from ft_pipeline.core.training.base_model import ensure_base_model
    from ft_pipeline.core.training.cost import estimate_cost
    from ft_pipeline.core.training.data import count_tokens, data_digest, export_task, load_datasets

    started = time.time()
    if max_steps is not None:
        config = dataclasses.replace(config, max_steps=max_steps)
    output_dir, ckpt_dir = Path(output_dir), Path(output_dir) / "checkpoints"
    cuda = torch.cuda.is_available()
    precision = resolve_precision(config, cuda)

    # GRPO rewards come from the task's verifier: read the task before any model is loaded.
    extra = {"task": export_task(Path(data_dir))} if config.method == "grpo" else {}
    train_ds, eval_ds = load_datasets(config.method, Path(data_dir))
    if eval_ds is not None and config.max_eval_examples and len(eval_ds) > config.max_eval_examples:
        eval_ds = eval_ds.select(range(config.max_eval_examples))
    model, tokenizer, model_path = load_for_training(config, ensure_base_model(config.base_model), precision, cuda)
    n_params = model.num_parameters()  # counts 4-bit weights unpacked (numel() sees two per byte)
    n_tokens = count_tokens(config.method, train_ds, tokenizer, config.max_completion_length)
    if config.privacy.dp:  # trl's trainers cannot clip per example: DP-SGD has its own loop (dp.py)
        from ft_pipeline.core.training.dp import train_private

        run = {"model_path": model_path, "n_params": n_params, "n_tokens": n_tokens, "precision": precision,
               "cuda": cuda, "started": started, "data_digest": data_digest(config.method, Path(data_dir))}
        return train_private(config, model, tokenizer, train_ds, eval_ds, output_dir, run=run, callback=callback,
                             progress=progress)

    common = _trainer_args(config, ckpt_dir, precision, cuda, progress)
    set_seed(config.seed)  # before the trainer wraps the model: fixes the LoRA init
    recorder = _make_recorder(callback)
    module = importlib.import_module(f"ft_pipeline.core.training.{METHOD_MODULES[config.method]}")
    peft_config = lora_config(config)
    if config.init_adapter:  # continue an existing adapter (SFT -> GRPO/DPO): peft loads it trainable
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir(config.init_adapter), is_trainable=True)
        peft_config = None
    trainer = module.build_trainer(
        config, model, tokenizer, train_ds, eval_ds, common, peft_config, [recorder], **extra
    )
    args = trainer.args
    # trl drops rows whose answer max_length truncated away entirely: count them, and refuse to
    # train on nothing rather than fail deep inside the data loader.
    kept = len(trainer.train_dataset) if hasattr(trainer.train_dataset, "__len__") else len(train_ds)
    if kept == 0:
        raise ValueError(f"TrainingConfig.max_length={config.max_length}: truncation leaves no answer token in any "
                         f"of the {len(train_ds)} training examples; raise max_length")
    if not progress:  # without a progress bar, transformers prints every log dict to stdout instead
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    estimate = estimate_cost(
        config, planned_tokens(config, n_tokens, len(train_ds), args.world_size), n_params, n_trainable, epochs=1
    )
    if estimate["within_budget"] is False:
        raise ValueError(
            f"TrainingConfig.budget_usd={config.budget_usd}: estimated cost ${estimate['usd']:.2f} "
            f"({estimate['device_hours']:.2f} {config.gpu_type}-hours) exceeds the budget"
        )

    with args.main_process_first(desc="checkpoint check"):
        resume, not_resumed = prepare_checkpoints(ckpt_dir, config, args.process_index == 0,
                                                  data_digest(config.method, Path(data_dir)))
    if not_resumed and args.process_index == 0:
        print(f"starting afresh: checkpoints in {ckpt_dir} not resumed, {not_resumed}", file=sys.stderr, flush=True)
    resumed_from = int(Path(resume).name.rsplit("-", 1)[1]) if resume else None
    recorder.start_info = {"resumed_from": resumed_from, "world_size": args.world_size,
                           "trainable_params": n_trainable, "total_params": n_params}

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.time() - t0
    eval_metrics = trainer.evaluate() if eval_ds is not None and config.method != "grpo" else {}

    state = trainer.state
    history = [
        {k: v for k, v in entry.items() if isinstance(v, (int, float))}
        for entry in state.log_history
        if "train_runtime" not in entry and not any(k.startswith("eval_") for k in entry)
    ]
    tokens = getattr(trainer, "_total_train_tokens", None) or state.num_input_tokens_seen or 0
    losses = [h["loss"] for h in history if "loss" in h]
    metrics = {
        "method": config.method,
        "base_model": config.base_model,
        "base_model_path": str(model_path),
        "steps": state.global_step,
        "max_steps": state.max_steps,
        "epochs": state.epoch,
        "resumed_from": resumed_from,
        "world_size": args.world_size,
        "device": "cuda" if cuda else "cpu",
        "precision": precision,
        "packing": config.packing,
        "load_in_4bit": bool(getattr(model, "is_loaded_in_4bit", False)),
        "total_params": n_params,
        "trainable_params": n_trainable,
        "train_examples": len(train_ds),
        "train_examples_dropped_by_truncation": len(train_ds) - kept,
        "eval_examples": len(eval_ds) if eval_ds is not None else 0,
        # Tokens this process group pushed through the model since (re)start, all ranks summed.
        "train_tokens": int(tokens),
        "tokens_per_s": tokens / train_seconds if train_seconds > 0 else None,
        "train_seconds": train_seconds,
        "wall_seconds": time.time() - started,
        "final_loss": losses[-1] if losses else None,
        "first_loss": losses[0] if losses else None,
        "train_loss_avg": result.training_loss,
        "eval": {k: v for k, v in eval_metrics.items() if isinstance(v, (int, float))},
        "peak_memory_bytes": peak_memory(cuda),
        "peak_memory_kind": "cuda_max_memory_allocated" if cuda else "process_max_rss",
        "cost_estimate": estimate,
        "history": history,
    }
    if trainer.is_world_process_zero():
        write_outputs(trainer, tokenizer, config, metrics, output_dir)
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # complete: the adapter supersedes them
        recorder.emit({"event": "end", **{k: v for k, v in metrics.items() if k != "history"}})
    args.distributed_state.wait_for_everyone()
    return metrics


# --- pieces ------------------------------------------------------------------------------

def _trainer_args(config: TrainingConfig, ckpt_dir: Path, precision: str, cuda: bool, progress: bool) -> dict:
    return dict(
        output_dir=str(ckpt_dir),
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of total steps
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="no",  # one evaluation at the end; eval_report does the real measuring
        seed=config.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=config.gradient_checkpointing,
        use_cpu=not cuda,
        # LoRA leaves most parameters frozen; DDP's unused-parameter scan would only cost time.
        ddp_find_unused_parameters=False,
        report_to="none",
        disable_tqdm=not progress,
    )


def _make_recorder(callback: Callable[[Event], None] | None):
    """A TrainerCallback forwarding start / every log / end to `callback` (rank 0 only)."""
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def __init__(self):
            self.start_info: dict = {}  # filled in by train() once the resume point is known

        def emit(self, event: Event) -> None:
            if callback is not None:
                callback(event)

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.emit({"event": "start", "max_steps": state.max_steps, **self.start_info})

        def on_step_end(self, args, state, control, **kwargs):
            # The trainer logs every logging_steps only: a run whose last step falls between two
            # (or that is shorter than one interval) would end without its last losses.
            if state.global_step >= state.max_steps:
                control.should_log = True
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                numeric = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
                self.emit({"event": "log", "step": state.global_step, "max_steps": state.max_steps, **numeric})

    return Recorder()


# --- command line ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ft-pipeline train", description="Train a LoRA adapter.")
    parser.add_argument("--config", required=True, help="YAML training preset (see configs/)")
    parser.add_argument("--data", default=None, help="export dir with train.jsonl etc. "
                        "(default: $FT_PIPELINE_HOME/export)")
    parser.add_argument("--output", default=None, help="adapter output dir "
                        "(default: $FT_PIPELINE_HOME/adapters/<config name>)")
    parser.add_argument("--max-steps", type=int, default=None, help="override max_steps (smoke runs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from ft_pipeline.core.paths import pipeline_home
    from ft_pipeline.core.training import manifest

    opts = build_parser().parse_args(argv)
    try:
        config = TrainingConfig.from_yaml(Path(opts.config))
        if opts.max_steps is not None and opts.max_steps < 1:
            raise ValueError(f"--max-steps={opts.max_steps}: must be >= 1")
        data = Path(opts.data) if opts.data else pipeline_home() / "export"
        output = Path(opts.output) if opts.output else pipeline_home() / "adapters" / Path(opts.config).stem
        # The ids it trains on, for erasure (as adapter_weights records them), taken before it starts.
        trained_on = manifest.training_manifest(data, config.method, config.init_adapter) if data.is_dir() else None
        metrics = train(config, data, output, max_steps=opts.max_steps, progress=True)
        if trained_on and int(os.environ.get("RANK", 0)) == 0:
            manifest.write_training_manifest(output, trained_on)
    except (FileNotFoundError, ValueError) as exc:  # user errors: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in metrics.items() if k not in ("history", "cost_estimate")}
    summary["output"] = str(output)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
