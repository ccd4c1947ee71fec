"""ModelServerResource: `ft-pipeline serve` as something a run can start, ask and stop.

health() is what the UI shows as "which version serves": the model ids the server answers for and
the registry version behind each, read from the live server rather than from the registry (a
server started before a rollback still answers with the old version until it loads the new one).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.core.serving.vllm import stop as stop_process


class ModelServerResource(dg.ConfigurableResource):
    name: str = ""  # registry name (default: the registry's only model)
    host: str = "127.0.0.1"
    port: int = 8000
    start_timeout_s: float = 300.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def health(self) -> dict | None:
        """{"status", "models": {model id: "<name>/<version>"}} from the live server, or None."""
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def start(self) -> subprocess.Popen:
        """Starts the server and waits (bounded) until it answers; its output goes to a log under
        $FT_PIPELINE_HOME/logs (requests are never written there, only start-up and errors)."""
        log_dir = paths.ensure_dir(paths.pipeline_home() / "logs")
        argv = [sys.executable, "-m", "ft_pipeline.cli", "serve", "--host", self.host, "--port", str(self.port)]
        argv += ["--name", self.name] if self.name else []
        with open(log_dir / "serve.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise dg.Failure(f"ft-pipeline serve exited with {proc.returncode}; see {log_dir / 'serve.log'}")
            if self.health() is not None:
                return proc
            time.sleep(0.5)
        self.stop(proc)
        raise dg.Failure(f"ft-pipeline serve did not answer on {self.url} within {self.start_timeout_s:.0f} s")

    @staticmethod
    def stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
        stop_process(proc, timeout)  # the same stop as the vLLM behind the guard
