"""`serve --engine vllm` as far as a machine without CUDA can run it: a `vllm` on the PATH that is the
CPU server (it reads the argv's --port and serves the same version there), so the guard's own part
is real: vLLM started on 127.0.0.1 and a private port with its API key in the environment (never
the argv), waited for, answered through the guard, and stopped with it."""
from __future__ import annotations

import os
import signal
import stat
import sys
import time
import urllib.request

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline_tests.core.serving.helpers import (
    free_port, lora_adapter, publish_version, serve_process, stop_process, write_task)

openai = pytest.importorskip("openai")
NAME = "ticket-router"
SHIM = """#!/bin/sh
# what the guard ran, and whether vLLM's key came in the environment
printf '%s\\n' "$*" > "{seen}/argv"
printf '%s' "$VLLM_API_KEY" > "{seen}/key"
echo $$ > "{seen}/pid"
port=$(printf '%s' "$*" | sed -n 's/.*--port \\([0-9]*\\).*/\\1/p')
FT_PIPELINE_HOME="{upstream_home}" exec "{python}" -m ft_pipeline.cli serve --name {name} --port "$port" \\
    --requests-per-minute 0 --no-live-rollout
"""


def test_engine_vllm_starts_it_privately_answers_through_the_guard_and_stops_it(tmp_path, tiny_model_dir, monkeypatch):
    home, upstream_home, bin_dir = tmp_path / "home", tmp_path / "upstream", tmp_path / "bin"
    for folder in (home, upstream_home, bin_dir):
        folder.mkdir()
    publish_version(home, tiny_model_dir, write_task(tmp_path), lora_adapter(tiny_model_dir, tmp_path / "a1", 1))
    (upstream_home / "registry").symlink_to(home / "registry")
    shim = bin_dir / "vllm"
    shim.write_text(SHIM.format(seen=tmp_path, upstream_home=upstream_home, python=sys.executable, name=NAME))
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    port = free_port()
    guard = serve_process(home, port, "--name", NAME, "--engine", "vllm", timeout_s=300)
    try:
        argv = (tmp_path / "argv").read_text().split()
        assert argv[:2] == ["serve", str(tiny_model_dir)] and argv[argv.index("--host") + 1] == "127.0.0.1"
        key = (tmp_path / "key").read_text()
        assert int(argv[argv.index("--port") + 1]) != port and len(key) >= 24 and key not in " ".join(argv)
        assert argv[argv.index("--max-loras") + 1] == "2"  # room for a rollout's candidate beside current
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        reply = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "where is my parcel"}])
        assert reply.system_fingerprint == f"{NAME}/v1"
        day = (home / "traffic").glob("*.jsonl")
        assert reply.id in "".join(p.read_text() for p in day)  # logged by the guard, in the guard's home
        assert (home / "logs" / "vllm.log").is_file()
    finally:
        stop_process(guard)
    upstream_port = int(argv[argv.index("--port") + 1])
    deadline = time.monotonic() + 30  # the guard stops its vLLM on the way out
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{upstream_port}/health", timeout=2).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "vllm kept running after the guard stopped"
            time.sleep(0.5)
    finally:  # never leave it running, whatever the test found
        try:
            os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert registry.current_version(home / "registry", NAME) == "v1"
