"""`serve --engine vllm`: the command that serves the same registry versions with vLLM on a GPU.

vLLM speaks the same OpenAI API (the same /v1/models, /v1/chat/completions, and, with
VLLM_ALLOW_RUNTIME_LORA_UPDATING, the same /v1/load_lora_adapter and /v1/unload_lora_adapter), so
clients do not change when the engine does. vLLM's PyPI wheel is a CUDA build: on CPU, and in the
tests, the argv is built and checked but not run. Structured tasks: vLLM applies no default schema,
so clients pass the task's answer schema as `response_format` (vLLM's guided decoding then keeps
the answer in it). The guard and the traffic log of app.py are not in front of vLLM.
"""
from __future__ import annotations

import json
from pathlib import Path

RUNTIME_LORA_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


def lora_rank(adapter_dir: Path) -> int:
    return int(json.loads((Path(adapter_dir) / "adapter_config.json").read_text()).get("r", 8))


def vllm_command(base_model: str, adapters: dict[str, Path], host: str, port: int,
                 max_model_len: int | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) for `vllm serve BASE --enable-lora --lora-modules name=path ...`.

    --max-lora-rank must cover every adapter's rank (vLLM sizes its LoRA buffers by it and refuses
    a larger adapter); --max-loras is how many adapters one batch may mix.
    """
    if not adapters:
        raise ValueError("vllm_command: no adapters to serve")
    rank = max(lora_rank(path) for path in adapters.values())
    # vLLM accepts only ranks from this list (8, 16, 32, 64, ...): round up to the next one.
    allowed = (8, 16, 32, 64, 128, 256, 320, 512)
    argv = ["vllm", "serve", str(base_model), "--host", host, "--port", str(port), "--enable-lora",
            "--lora-modules", *[f"{name}={path}" for name, path in adapters.items()],
            "--max-lora-rank", str(next((r for r in allowed if r >= rank), rank)),
            "--max-loras", str(len(adapters))]
    if max_model_len:
        argv += ["--max-model-len", str(max_model_len)]
    return argv, dict(RUNTIME_LORA_ENV)
