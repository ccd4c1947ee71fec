"""`serve --engine vllm`: vLLM serves the same registry versions on a GPU, behind the guard.

vLLM speaks the same OpenAI API (the same /v1/models, /v1/chat/completions, and, with
VLLM_ALLOW_RUNTIME_LORA_UPDATING, the same /v1/load_lora_adapter and /v1/unload_lora_adapter).
`launch` starts it on 127.0.0.1 and a free port, with a random API key passed in its environment
(not its argv, which other users can read), and waits until it answers; the public port is then
the guard's app with upstream.UpstreamEngine in front of it: limits, redaction, the task's answer
check (and the task's schema or labels sent as vLLM's structured outputs), the traffic log and
live rollouts, as on CPU. vLLM only ever reads redacted requests. Its PyPI wheel is a CUDA build:
on CPU, and in the tests, the argv is built and checked but not run, and the tests drive the guard
through `serve --upstream URL` in front of the CPU server instead.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

RUNTIME_LORA_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


def lora_rank(adapter_dir: Path) -> int:
    return int(json.loads((Path(adapter_dir) / "adapter_config.json").read_text()).get("r", 8))


def vllm_command(base_model: str, adapters: dict[str, Path], host: str, port: int,
                 max_model_len: int | None = None, min_rank: int = 0,
                 spare_loras: int = 0) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) for `vllm serve BASE --enable-lora --lora-modules name=path ...`.

    --max-lora-rank must cover every adapter's rank (vLLM sizes its LoRA buffers by it and refuses
    a larger adapter), `min_rank` those loaded later too; --max-loras is how many adapters one batch
    may mix: `spare_loras` more than served at start, for a version in rollout beside `current`.
    """
    if not adapters:
        raise ValueError("vllm_command: no adapters to serve")
    rank = max(min_rank, *(lora_rank(path) for path in adapters.values()))
    # vLLM accepts only ranks from this list (8, 16, 32, 64, ...): round up to the next one.
    allowed = (8, 16, 32, 64, 128, 256, 320, 512)
    argv = ["vllm", "serve", str(base_model), "--host", host, "--port", str(port), "--enable-lora",
            "--lora-modules", *[f"{name}={path}" for name, path in adapters.items()],
            "--max-lora-rank", str(next((r for r in allowed if r >= rank), rank)),
            "--max-loras", str(len(adapters) + spare_loras)]
    if max_model_len:
        argv += ["--max-model-len", str(max_model_len)]
    return argv, dict(RUNTIME_LORA_ENV)


def launch(base_model: str, adapters: dict[str, Path], log_path: Path, min_rank: int = 0,
           timeout_s: float = 900.0) -> tuple[subprocess.Popen, str, str]:
    """Starts `vllm serve` on a private port and waits (bounded) until its /health answers:
    (the process, its URL, its API key). Room for one more adapter in a batch (a live rollout's
    candidate) and for ranks up to `min_rank` (the registry's other versions). A vLLM that exits or
    never answers raises RuntimeError naming its log."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv, env = vllm_command(base_model, adapters, "127.0.0.1", port, min_rank=min_rank, spare_loras=1)
    key = secrets.token_urlsafe(24)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **env, "VLLM_API_KEY": key})
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {proc.returncode}; see {log_path}")
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    return proc, url, key
            except httpx.HTTPError:
                pass
            time.sleep(2)
        raise RuntimeError(f"vllm serve did not answer on {url} within {timeout_s:.0f} s; see {log_path}")
    except BaseException:  # not started, or stopped while starting (Ctrl-C, SIGTERM): no vLLM left behind
        stop(proc)
        raise


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL past `timeout`: a server process (vLLM, ft-pipeline serve) never left behind."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
