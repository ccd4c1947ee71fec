#!/usr/bin/env bash
# vLLM behind the guard against the CPU server, on one GPU (prepared for a lent H100; not run yet).
#
#   OUT=/tmp/out bash bench/gpu_vllm.sh [--model smollm2-135m-instruct] [--requests 64] [--max-tokens 32]
#
# Serves the demo base model with a LoRA adapter (bench/serve.py's publish: r8 on q/v, B = 0) as
# `bench-serve`, twice, each measured with the official openai client from 1, 8 and 32 threads on
# the same prompts, greedy, --max-tokens new tokens:
#   vllm: `ft-pipeline serve --engine vllm`: vLLM on a private port, the guard (limits, redaction of
#         request and answer, the task's check, the traffic log) on the public one;
#   cpu:  `ft-pipeline serve` (transformers + peft) with CUDA hidden, as on a machine without a GPU.
# Writes $OUT/gpu_vllm.jsonl (one line per side and concurrency: requests/s, p50/p95 ms), the last
# line the vllm/cpu requests/s ratio per concurrency, and $OUT/vllm.log, $OUT/serve.log.
#
# Needs the project's environment (make setup) plus vllm (`pip install vllm`, a CUDA wheel of about
# 400 MB with its own torch) and the base model on disk (ensure_base_model converts it into
# $FT_PIPELINE_HOME/models once). Where vllm cannot be installed it writes $OUT/skipped.txt and
# exits 0. This workplace's lent machines reach no registry and carry at most 64 MiB per call, so
# there vllm, fastapi, presidio and the spaCy model must already be in the image.
set -euo pipefail
OUT=${OUT:?set OUT to the folder for the results}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT"

if ! "$PY" -c "import vllm" 2>/dev/null; then
  "$PY" -m pip install -q vllm >"$OUT/pip.log" 2>&1 || true
fi
if ! "$PY" -c "import vllm, fastapi, presidio_analyzer" 2>/dev/null; then
  echo "skipped: vllm (or the project's serving dependencies) cannot be imported here; see pip.log" | tee "$OUT/skipped.txt"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>&1 || true

cd "$REPO"
PYTHONPATH=$REPO HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false "$PY" - "$@" <<'EOF'
import argparse, json, os, shutil, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

sys.path.insert(0, "bench")
from serve import prompts, publish, serve  # the CPU bench's prompts, adapter and client loop

from ft_pipeline.core.training.base_model import ensure_base_model
from ft_pipeline_tests.core.serving.helpers import free_port

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="smollm2-135m-instruct")
parser.add_argument("--requests", type=int, default=64)
parser.add_argument("--max-tokens", type=int, default=32)
args = parser.parse_args()
out = Path(os.environ["OUT"])
base = Path(ensure_base_model(args.model))
home = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
publish(home, base)
texts, results = prompts(args.requests), {}


def side(name: str, extra: list[str], env: dict) -> None:
    port = free_port()
    log = open(out / f"{'vllm' if name == 'vllm' else 'serve'}.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "ft_pipeline.cli", "serve", "--name", "bench-serve", "--port", str(port),
                             "--requests-per-minute", "0", *extra], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "FT_PIPELINE_HOME": str(home), **env})
    try:
        deadline = time.monotonic() + 1200  # vLLM compiles and captures CUDA graphs at start
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, f"{name}: the server did not start; see its log"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).close()
                break
            except OSError:
                time.sleep(2)
        for c in (1, 8, 32):
            results[(name, c)] = serve(f"http://127.0.0.1:{port}", texts, c, args.max_tokens)
            line = json.dumps({"side": name, "concurrency": c, "requests": len(texts), **results[(name, c)]})
            print(line, flush=True)
            with open(out / "gpu_vllm.jsonl", "a") as fh:
                fh.write(line + "\n")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


try:
    side("vllm", ["--engine", "vllm"], {})
    side("cpu", [], {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(os.cpu_count() or 1)})
    if (home / "logs" / "vllm.log").is_file():
        shutil.copy(home / "logs" / "vllm.log", out / "vllm-server.log")
finally:
    shutil.rmtree(home, ignore_errors=True)
ratio = {f"vllm/cpu requests_per_s, concurrency {c}":
         round(results[("vllm", c)]["requests_per_s"] / results[("cpu", c)]["requests_per_s"], 2) for c in (1, 8, 32)}
print(json.dumps(ratio))
with open(out / "gpu_vllm.jsonl", "a") as fh:
    fh.write(json.dumps(ratio) + "\n")
EOF
