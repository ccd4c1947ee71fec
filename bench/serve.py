"""Serving throughput and latency: `ft-pipeline serve` against plain transformers `generate`.

    PYTHONPATH=$PWD .venv/bin/python bench/serve.py [--model smollm2-135m-instruct] [--requests 16] [--max-tokens 32]

Both sides answer the same prompts with the same base model (SmolLM2-135M by default, converted
once into $FT_PIPELINE_HOME/models), greedy, at most --max-tokens new tokens each:
- serve: a LoRA adapter (r8 on q/v, B = 0, so it answers as the base does) published into a
  temporary registry with a free-text (`generation`) task, `ft-pipeline serve` in a subprocess on
  127.0.0.1, called with the official openai client from 1 and from 8 threads. Each request goes
  through the whole guard: redaction of the request and the answer, the answer check, the log.
- plain: the base model in this process; concurrency 1 is one `generate` per prompt, concurrency 8
  one batched `generate` (left-padded) per 8 prompts, every request of a batch finishing with it.

Both sides run torch on one thread (OMP_NUM_THREADS=1, inherited by the server): on the shared
two-core machine two threads spin against each other's load (measured 4.5x slower per request).

Prints one JSON line per run (requests/s, p50/p95 latency in ms); the last line is the
serve/plain requests/s ratio at each concurrency.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported, here and in the server

TOPICS = ["my card was charged twice", "the parcel never arrived", "how do I reset my password",
          "cancel my subscription", "update my billing address", "is water damage covered",
          "the app crashes on login", "when is my claim paid", "I was billed after cancelling",
          "change the delivery date", "my refund is late", "add a second driver to the policy",
          "why did my premium go up", "report a lost card", "close my account", "the invoice total is wrong"]
TASK = "name: bench-serve\ntype: generation\nsystem_prompt: Answer the customer briefly.\n"


def prompts(n: int) -> list[str]:
    return [f"Customer message {i}: {TOPICS[i % len(TOPICS)]}. What should I do?" for i in range(n)]


def stats(latencies: list[float], wall: float) -> dict:
    return {"requests_per_s": round(len(latencies) / wall, 3), "p50_ms": round(float(np.percentile(latencies, 50)) * 1000),
            "p95_ms": round(float(np.percentile(latencies, 95)) * 1000)}


def plain(base: Path, texts: list[str], concurrency: int, max_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    system = TASK.split("system_prompt: ")[1].strip()

    def run(batch: list[str]) -> None:
        chats = [tokenizer.apply_chat_template([{"role": "system", "content": system}, {"role": "user", "content": t}],
                                               add_generation_prompt=True, tokenize=False) for t in batch]
        encoded = tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            model.generate(**encoded, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)

    run(texts[:1])  # warm-up
    latencies, started = [], time.perf_counter()
    for i in range(0, len(texts), concurrency):
        t = time.perf_counter()
        run(texts[i:i + concurrency])
        latencies += [time.perf_counter() - t] * len(texts[i:i + concurrency])
    return stats(latencies, time.perf_counter() - started)


def serve(url: str, texts: list[str], concurrency: int, max_tokens: int) -> dict:
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)

    def one(text: str) -> float:
        t = time.perf_counter()
        client.chat.completions.create(model="bench-serve", messages=[{"role": "user", "content": text}],
                                       max_tokens=max_tokens, temperature=0)
        return time.perf_counter() - t

    one(texts[0])  # warm-up
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, texts))
    return stats(latencies, time.perf_counter() - started)


def publish(home: Path, base: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ft_pipeline_tests.core.serving.helpers import publish_version

    task = home / "task.yaml"
    task.write_text(TASK)
    torch.manual_seed(0)
    adapter = home / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                   LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    publish_version(home, base, task, adapter, name="bench-serve")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    from ft_pipeline.core.training.base_model import ensure_base_model
    from ft_pipeline.defs.serving.resources import ModelServerResource
    from ft_pipeline_tests.core.serving.helpers import free_port

    try:
        base = Path(ensure_base_model(args.model))
    except FileNotFoundError as exc:
        print(f"skipped: base model {args.model!r} is not available here ({exc})")
        return
    texts = prompts(args.requests)
    home = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    results = {}
    try:
        publish(home, base)
        os.environ["FT_PIPELINE_HOME"] = str(home)
        server = ModelServerResource(port=free_port(), start_timeout_s=600)
        proc = server.start()
        try:
            for c in (1, 8):
                results[("serve", c)] = serve(server.url, texts, c, args.max_tokens)
                print(json.dumps({"side": "serve", "concurrency": c, **results[("serve", c)]}), flush=True)
        finally:
            server.stop(proc)
        for c in (1, 8):
            results[("plain", c)] = plain(base, texts, c, args.max_tokens)
            print(json.dumps({"side": "plain", "concurrency": c, **results[("plain", c)]}), flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps({f"serve/plain requests_per_s, concurrency {c}":
                      round(results[("serve", c)]["requests_per_s"] / results[("plain", c)]["requests_per_s"], 3)
                      for c in (1, 8)}))


if __name__ == "__main__":
    main()
