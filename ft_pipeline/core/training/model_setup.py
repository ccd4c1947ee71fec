"""The model a training run starts from: its precision, the base model loaded for training (4-bit
for QLoRA), a LoRA config, or an existing adapter to continue."""
from __future__ import annotations

import os

from ft_pipeline.core.training.config import TrainingConfig


def resolve_precision(config: TrainingConfig, cuda: bool) -> str:
    if config.qlora:
        check_qlora(cuda)
    if config.precision == "fp16" and not cuda:
        raise ValueError("TrainingConfig.precision='fp16': fp16 mixed precision needs a CUDA GPU; use fp32 or bf16")
    if config.precision != "auto":
        return config.precision
    if not cuda:  # CPU bf16 autocast is slower than fp32 on most x86 without AMX; 4-bit needs it
        return "bf16" if config.qlora else "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def check_qlora(cuda: bool) -> None:
    """4-bit QLoRA runs where the installed bitsandbytes has a backend: a CUDA GPU, or the CPU
    (bitsandbytes >= 0.48; slow, but the same load path the GPU presets take)."""
    try:
        import bitsandbytes
    except ImportError:
        raise ValueError("TrainingConfig.qlora=True: 4-bit QLoRA needs bitsandbytes, which is not installed; "
                         "pip install 'ft_pipeline[gpu]', or set qlora: false") from None
    if not cuda and "cpu" not in getattr(bitsandbytes, "supported_torch_devices", ()):
        raise ValueError("TrainingConfig.qlora=True: 4-bit QLoRA (bitsandbytes) needs a CUDA GPU; "
                         "this machine has none. Set qlora: false to train plain LoRA on CPU.")


def load_for_training(config: TrainingConfig, model_path, precision: str, cuda: bool):
    from ft_pipeline.core.training.base_model import load_model_and_tokenizer

    dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[precision]
    quant, device_map = None, None
    if config.qlora:
        import torch
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, dtype),
        )
        # One full copy per DDP rank; on CPU, bitsandbytes' CPU backend holds the 4-bit weights.
        device_map = {"": int(os.environ.get("LOCAL_RANK", 0))} if cuda else {"": "cpu"}
    try:
        model, tokenizer = load_model_and_tokenizer(model_path, dtype=dtype, quantization_config=quant,
                                                    device_map=device_map)
    except OSError as exc:  # a hub id misspelt, or not reachable offline: the user's to fix
        raise ValueError(f"TrainingConfig.base_model={config.base_model!r}: cannot load it "
                         f"({str(exc).splitlines()[0]})") from None
    model.config.use_cache = False  # the KV cache is useless in training and warns with checkpointing
    return model, tokenizer, model_path


def adapter_dir(location: str) -> str:
    """init_adapter: absolute, or relative to $FT_PIPELINE_HOME (where `ft-pipeline train` writes
    adapters/<preset name> by default)."""
    from ft_pipeline.core.paths import home_relative

    path = home_relative(location)
    if not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"TrainingConfig.init_adapter={location!r}: no LoRA adapter there "
                                "(adapter_config.json missing); train the SFT preset into it first")
    return str(path)


def lora_config(config: TrainingConfig):
    from peft import LoraConfig

    targets = "all-linear" if config.target_modules == ["all-linear"] else list(config.target_modules)
    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
