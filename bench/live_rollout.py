"""What a live shadow rollout costs the clients of `ft-pipeline serve`: client-side latency of the
same requests without a rollout and while a candidate answers a copy of each.

    PYTHONPATH=$PWD .venv/bin/python bench/live_rollout.py [--requests 40] [--pause-ms 0]

The tiny random Llama of the tests with two trained LoRA adapters (v1 current, v2 beside it;
ft_pipeline_tests/core/serving/rollout_helpers.py), `ft-pipeline serve` in a subprocess on
127.0.0.1, the official openai client sending one request at a time (`--pause-ms` between them).
Phase 1: no rollout. Phase 2: `ft-pipeline rollout --live --mode shadow` for v2 (a min_requests
too high to decide during the run), the same requests. The copies run on a background thread, so
the answer is never held back for them; they do take turns on the one engine, so a request that
arrives while a copy generates waits for it. Prints one JSON line per phase, then the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def phase(client, name: str, n: int, pause_s: float) -> dict:
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        client.chat.completions.create(model=name, messages=[{"role": "user", "content": f"ticket {i}: charged twice"}])
        latencies.append(time.perf_counter() - started)
        time.sleep(pause_s)
    return {"p50_ms": round(float(np.percentile(latencies, 50)) * 1000),
            "p95_ms": round(float(np.percentile(latencies, 95)) * 1000), "requests": n}


def main() -> None:
    import openai

    from ft_pipeline.defs.serving.resources import ModelServerResource
    from ft_pipeline_tests.conftest import build_tiny_llama
    from ft_pipeline_tests.core.serving import rollout_helpers
    from ft_pipeline_tests.core.serving.helpers import free_port

    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--pause-ms", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        tmp = Path(tmp)
        home, model = tmp / "home", build_tiny_llama(tmp / "tiny")
        os.environ["FT_PIPELINE_HOME"] = str(home)
        task = rollout_helpers.TASK.replace("min_requests: 20", "min_requests: 100000")
        for answer, current in (("billing", True), ("billing", False)):
            rollout_helpers.publish_trained(home, model, tmp, answer, int(not current), current, task=task)
        resource = ModelServerResource(name="ticket-queue", port=free_port(), start_timeout_s=300)
        proc = resource.start()
        try:
            client = openai.OpenAI(base_url=resource.url + "/v1", api_key="unused", max_retries=0, timeout=120)
            phase(client, "ticket-queue", 5, 0)  # warm-up
            results = {"no_rollout": phase(client, "ticket-queue", args.requests, args.pause_ms / 1000)}
            subprocess.run([sys.executable, "-m", "ft_pipeline.cli", "rollout", "--name", "ticket-queue", "--version", "v2",
                            "--live", "--mode", "shadow"], check=True, capture_output=True)
            while not resource.health()["rollout"]:
                phase(client, "ticket-queue", 1, 1.0)
            results["live_shadow"] = phase(client, "ticket-queue", args.requests, args.pause_ms / 1000)
            time.sleep(2)
            results["live_shadow"]["paired_after_2s"] = resource.health()["rollout"]["paired"]
        finally:
            resource.stop(proc)
    for name, result in results.items():
        print(json.dumps({"phase": name, "pause_ms": args.pause_ms, **result}))
    print(json.dumps({"p50_ratio_shadow_over_none": round(results["live_shadow"]["p50_ms"] / results["no_rollout"]["p50_ms"], 2),
                      "p95_ratio_shadow_over_none": round(results["live_shadow"]["p95_ms"] / results["no_rollout"]["p95_ms"], 2)}))


if __name__ == "__main__":
    main()
