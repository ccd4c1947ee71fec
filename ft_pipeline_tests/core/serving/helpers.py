"""A promoted tiny-model release without running the pipeline: a LoRA adapter on the tiny random
Llama, published with the registry's own staging_dir/publish, and a task file of its own."""
from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

from ft_pipeline.core.release import registry
from ft_pipeline.core.task import file_sha256

TASK = """\
name: ticket-router
type: structured
system_prompt: Route the ticket. Reply with only a JSON object.
schema:
  type: object
  properties:
    queue: {type: string, enum: [billing, shipping, account]}
    urgent: {type: boolean}
  required: [queue, urgent]
  additionalProperties: false
max_new_tokens: 40
"""


def write_task(folder: Path, text: str = TASK) -> Path:
    path = folder / "task.yaml"
    path.write_text(text)
    return path


def lora_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) B matrices, so that versions answer differently."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(out)
    return out


def publish_version(home: Path, model_dir: Path, task_path: Path, adapter: Path, name: str = "ticket-router",
                    make_current: bool = True) -> str:
    """What promoted_model writes that serving reads: adapter/ and lineage.json (task, base model);
    make_current=False publishes it beside `current`, waiting for a rollout."""
    root = home / "registry"
    staging = registry.staging_dir(root, name)
    shutil.copytree(adapter, staging / "adapter")
    lineage = {"name": name, "version": registry.next_version(root, name), "promoted_at": "2026-01-01T00:00:00+00:00",
               "run_id": "test", "task": {"name": name, "path": str(task_path), "sha256": file_sha256(task_path),
                                         **_task_summary(task_path)},
               "training": {"base_model": str(model_dir), "method": "sft"}}
    (staging / "lineage.json").write_text(json.dumps(lineage))
    return registry.publish(root, name, staging, make_current)


def _task_summary(task_path: Path) -> dict:
    """type, metric and target as the audit trail names them (a task file that does not load: none)."""
    from ft_pipeline.core.task import TaskConfig, TaskError

    try:
        task = TaskConfig.from_yaml(task_path)
    except (TaskError, OSError):
        return {}
    return {"type": task.type, "metric": task.metric, "target": task.target}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_process(home: Path, port: int, *args: str, timeout_s: float = 240):
    """`python -m ft_pipeline.cli serve --port PORT ARGS` with its own FT_PIPELINE_HOME, its output in
    HOME/logs/serve.log, once its /health answers (a process that exits first fails the test)."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    (home / "logs").mkdir(parents=True, exist_ok=True)
    with open(home / "logs" / "serve.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ft_pipeline.cli", "serve", "--port", str(port), *args],
                                stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "FT_PIPELINE_HOME": str(home), "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, (home / "logs" / "serve.log").read_text()[-2000:]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).close()
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"serve on port {port} did not answer within {timeout_s} s")


def stop_process(proc) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
