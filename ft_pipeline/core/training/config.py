"""TrainingConfig: every training knob in one documented dataclass, saved beside the adapter."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ft_pipeline.core import safe_yaml
from ft_pipeline.core.training.privacy import PrivacyConfig

METHODS = ("sft", "dpo", "grpo")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The linear layers of Llama/Qwen/Mistral-style blocks: attention and MLP projections.
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# transformers' SchedulerType values (a test keeps this list equal to the installed enum): checked
# here so a typo names its field before any model is loaded.
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                 "warmup_stable_decay", "greedy")


@dataclass
class TrainingConfig:
    method: str = field(default="sft", metadata={"help": "Training method: sft, dpo or grpo."})
    base_model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "Bundled model name, local HF directory, or Hugging Face hub id."},
    )
    # LoRA
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank r."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha; the update is scaled by alpha / r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input, in [0, 1)."})
    target_modules: list[str] = field(
        default_factory=lambda: list(ALL_LINEAR),
        metadata={"help": "Module names that get LoRA adapters, or ['all-linear']."},
    )
    init_adapter: str | None = field(
        default=None,
        metadata={"help": "Continue training this LoRA adapter directory (e.g. GRPO or DPO after SFT) instead "
                          "of a fresh one; its rank, alpha and target modules then apply. Relative paths are "
                          "read from $FT_PIPELINE_HOME."},
    )
    qlora: bool = field(
        default=False,
        metadata={"help": "Load the base model in 4-bit NF4 (bitsandbytes). Needs a CUDA GPU."},
    )
    # Optimisation
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate (AdamW)."})
    lr_scheduler: str = field(default="cosine", metadata={"help": "transformers lr scheduler name."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Fraction of steps spent warming up the LR."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training set (ignored if max_steps > 0)."})
    max_steps: int = field(default=-1, metadata={"help": "Total optimizer steps; -1 means use epochs."})
    per_device_batch_size: int = field(default=8, metadata={"help": "Sequences per device per micro-step."})
    gradient_accumulation: int = field(
        default=1, metadata={"help": "Micro-steps per optimizer step (effective batch = batch * accum * devices)."}
    )
    max_length: int = field(default=512, metadata={"help": "Max tokens per sequence (prompt + answer)."})
    max_eval_examples: int = field(default=0, metadata={
        "help": "Eval-split examples the trainer's end-of-run evaluation reads (0: all); the release "
                "evaluation is eval_report's, so on a CPU this only bounds a diagnostic."})
    packing: bool = field(
        default=False,
        metadata={"help": "SFT only: pack several short examples into one max_length row (BFD, padding-free)."},
    )
    group_by_length: bool = field(
        default=True,
        metadata={"help": "SFT without packing: batch sequences of similar length, so little of each batch is padding."},
    )
    assistant_only_loss: bool = field(
        default=True,
        metadata={"help": "SFT only: loss on assistant tokens only (the chat template needs {% generation %})."},
    )
    precision: str = field(
        default="auto", metadata={"help": "fp32, bf16, fp16, or auto (bf16 on a bf16 GPU, else fp32)."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward: less memory, ~30% slower."}
    )
    seed: int = field(default=42, metadata={"help": "Random seed for data order and LoRA init."})
    # Logging and checkpoints
    logging_steps: int = field(default=5, metadata={"help": "Log loss / reward every N optimizer steps."})
    save_steps: int = field(
        default=50, metadata={"help": "Checkpoint every N steps into <output>/checkpoints (resume point)."}
    )
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    # DPO
    dpo_beta: float = field(default=0.1, metadata={"help": "DPO beta: strength of the KL pull to the reference."})
    # GRPO
    num_generations: int = field(default=4, metadata={"help": "GRPO: completions sampled per prompt (>= 2)."})
    max_completion_length: int = field(default=48, metadata={"help": "GRPO: max new tokens per completion."})
    # Differential privacy (privacy.py)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig, metadata={
        "help": "DP-SGD for SFT: {dp: true, target_epsilon: 8, delta: null (1/N), max_grad_norm: 1.0}."})
    # Cost
    gpu_type: str = field(default="cpu", metadata={"help": "For cost estimates: cpu, A10G, L4, A100, H100, H200."})
    num_gpus: int = field(default=1, metadata={"help": "For cost estimates: GPUs used."})
    price_per_hour: float = field(default=0.0, metadata={"help": "USD per GPU-hour (per machine-hour on CPU)."})
    budget_usd: float | None = field(
        default=None, metadata={"help": "Refuse to start when the estimated cost exceeds this (None: no limit)."}
    )

    def __post_init__(self):
        def fail(name: str, why: str):
            raise ValueError(f"TrainingConfig.{name}={getattr(self, name)!r}: {why}")

        self._read_types(fail)
        self.privacy = PrivacyConfig.from_value(self.privacy)
        if self.method not in METHODS:
            fail("method", f"must be one of {', '.join(METHODS)}")
        if not isinstance(self.base_model, str) or not self.base_model.strip():
            fail("base_model", "must be a non-empty string")
        if isinstance(self.target_modules, str):
            self.target_modules = [self.target_modules]
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            fail("target_modules", "must be a non-empty list of module names")
        if self.lr_scheduler not in LR_SCHEDULERS:
            fail("lr_scheduler", f"must be one of {', '.join(LR_SCHEDULERS)}")
        if self.precision not in PRECISIONS:
            fail("precision", f"must be one of {', '.join(PRECISIONS)}")
        for name in ("lora_rank", "lora_alpha", "per_device_batch_size", "gradient_accumulation",
                     "max_length", "logging_steps", "save_steps", "save_total_limit", "num_gpus",
                     "max_completion_length"):
            if getattr(self, name) < 1:
                fail(name, "must be an integer >= 1")
        if not isinstance(self.max_eval_examples, int) or isinstance(self.max_eval_examples, bool) or self.max_eval_examples < 0:
            fail("max_eval_examples", "must be an integer >= 0 (0: the whole eval split)")
        if self.max_steps < 1 and self.max_steps != -1:
            fail("max_steps", "must be -1 (use epochs) or an integer >= 1")
        if not 0 <= self.lora_dropout < 1:
            fail("lora_dropout", "must be in [0, 1)")
        if not 0 < self.learning_rate < 1:
            fail("learning_rate", "must be in (0, 1)")
        if not 0 <= self.warmup_ratio < 1:
            fail("warmup_ratio", "must be in [0, 1)")
        if self.epochs <= 0:
            fail("epochs", "must be > 0")
        if self.dpo_beta <= 0:
            fail("dpo_beta", "must be > 0")
        if self.num_generations < 2:
            fail("num_generations", "GRPO needs at least 2 completions per prompt to compare")
        if self.price_per_hour < 0:
            fail("price_per_hour", "must be >= 0")
        if self.budget_usd is not None and self.budget_usd < 0:
            fail("budget_usd", "must be >= 0 or null")
        if self.init_adapter is not None and (not isinstance(self.init_adapter, str) or not self.init_adapter.strip()):
            fail("init_adapter", "must be a LoRA adapter directory or null")
        if self.packing and self.method != "sft":
            fail("packing", "only SFT packs sequences")
        if self.qlora and self.precision == "fp32":
            fail("qlora", "QLoRA computes in bf16/fp16; set precision to bf16, fp16 or auto")
        self.privacy.check_method(self)
        from ft_pipeline.core.training.cost import PEAK_FLOPS

        if self.gpu_type not in PEAK_FLOPS:
            fail("gpu_type", f"must be one of {', '.join(PEAK_FLOPS)}")

    def _read_types(self, fail) -> None:
        """Every field as its declared type, numbers as a person means them: YAML reads
        `learning_rate: 2e-4` as the text "2e-4", which means 0.0002."""
        from ft_pipeline.core.numbers import parse_number

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float", "float | None") and value is not None:
                number = parse_number(value)
                if number is None:
                    fail(f.name, "must be a number")
                if f.type == "int":
                    if number != int(number):
                        fail(f.name, "must be a whole number")
                    number = int(number)
                setattr(self, f.name, number)
            elif f.type == "bool" and not isinstance(value, bool):
                fail(f.name, "must be true or false")
            elif f.type == "str" and not isinstance(value, str):
                fail(f.name, "must be text")

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingConfig":
        if not isinstance(data, dict):
            raise ValueError(f"training config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config field(s): {', '.join(unknown)}")
        return cls(**data)

    def to_yaml(self, path: Path | None = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            _atomic_write(Path(path), text)
        return text

    @classmethod
    def from_yaml(cls, source: Path | str) -> "TrainingConfig":
        """From a YAML file path, or YAML text when `source` is a str containing a newline."""
        import yaml

        if isinstance(source, str) and "\n" in source:
            text, where = source, "<yaml text>"
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"training config file not found: {path}")
            text, where = path.read_text(encoding="utf-8"), str(path)
        try:
            data, _ = safe_yaml.load(text)
        except safe_yaml.YamlLimitError as exc:
            line = f" line {exc.line}" if exc.line else ""
            raise ValueError(f"{where}{line}: {exc.why}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise ValueError(f"{where}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
        try:
            return cls.from_dict(data or {})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None

    def fingerprint(self) -> str:
        """Identity of a run for resuming: everything except knobs that don't change the math."""
        ignore = {"logging_steps", "save_steps", "save_total_limit", "gpu_type", "num_gpus",
                  "price_per_hour", "budget_usd"}
        data = {k: v for k, v in self.to_dict().items() if k not in ignore}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
