"""Differentially private SFT against plain LoRA SFT: same preset, seed, data and steps, one process.

    python bench/dp.py --data <demo export> [--preset configs/presets/smollm2-cpu-sft.yaml]
                       [--steps N] [--items 48] [--epsilon 8] [--dp-preset FILE]

Trains the preset twice through `train()`: as it is, and with `privacy: {dp: true,
target_epsilon: E}` (or `--dp-preset`, a preset of its own for the DP run, with the same steps).
Each adapter is then measured the same way on the first `--items` held-out test conversations: the
per-example loss (mean over conversations of the mean answer-token loss, dp.mean_example_loss) and
the task's metric, answered greedily as eval_report answers them.

Prints one JSON line per run; the last line is the DP / plain ratios (wall time target <= 2x).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def held_out_loss(base_dir: str, adapter: Path, data: Path, config, items: int) -> float:
    from peft import PeftModel

    from ft_pipeline.core.training.base_model import load_model_and_tokenizer
    from ft_pipeline.core.training.dp import mean_example_loss, tokenize

    model, tokenizer = load_model_and_tokenizer(base_dir, dtype="float32")
    model = PeftModel.from_pretrained(model, adapter)
    test = [json.loads(line) for line in open(data / "test.jsonl")][:items]
    examples = tokenize(test, tokenizer, config.max_length, True)[0]
    return mean_example_loss(model, examples, tokenizer.pad_token_id, 8, "cpu")


def task_metric(base_dir: str, adapter: Path, data: Path, items: int) -> dict:
    from ft_pipeline.core import answers
    from ft_pipeline.core.evaluation.generation import clear_cache, generate
    from ft_pipeline.core.metrics import score
    from ft_pipeline.core.task import TaskConfig

    task = TaskConfig.from_yaml(data / "task.yaml")
    rows = [json.loads(line) for line in open(data / "test.jsonl")][:items]
    replies = generate(base_dir, [answers.prompt_turns(r) for r in rows], adapter_dir=adapter,
                       max_new_tokens=task.max_new_tokens, stop_after_json=task.type == "structured")
    clear_cache()
    scores = score(task, replies, [answers.last_assistant(r) for r in rows])
    return {"metric": scores.metric, "value": scores.values[scores.metric], "n": scores.n}


def main() -> None:
    from ft_pipeline.core.training.base_model import ensure_base_model
    from ft_pipeline.core.training.config import TrainingConfig
    from ft_pipeline.core.training.train import train

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--preset", default="configs/presets/smollm2-cpu-sft.yaml")
    parser.add_argument("--dp-preset", default=None)
    parser.add_argument("--steps", type=int, default=0, help="override both presets' max_steps (0: keep)")
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--epsilon", type=float, default=8.0)
    opts = parser.parse_args()

    plain = TrainingConfig.from_yaml(opts.preset)
    private = (TrainingConfig.from_yaml(opts.dp_preset) if opts.dp_preset else
               dataclasses.replace(plain, privacy={"dp": True, "target_epsilon": opts.epsilon}))
    if opts.steps:
        plain, private = (dataclasses.replace(c, max_steps=opts.steps) for c in (plain, private))
    base_dir = str(ensure_base_model(plain.base_model))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in (("sft", plain), ("dp_sft", private)):
            out = Path(tmp) / name
            metrics = train(config, opts.data, out)
            results[name] = {
                "run": name, "steps": metrics["steps"], "train_seconds": round(metrics["train_seconds"], 1),
                "wall_seconds": round(metrics["wall_seconds"], 1), "first_loss": metrics["first_loss"],
                "final_loss": metrics["final_loss"], "test_example_loss": held_out_loss(base_dir, out, opts.data, config, opts.items),
                "task": task_metric(base_dir, out, opts.data, opts.items),
                "privacy": metrics.get("privacy"),
            }
            print(json.dumps(results[name]), flush=True)
    sft, dp = results["sft"], results["dp_sft"]
    print(json.dumps({
        "epsilon": dp["privacy"]["epsilon"], "delta": dp["privacy"]["delta"],
        "metric": sft["task"]["metric"], "sft_metric": sft["task"]["value"], "dp_metric": dp["task"]["value"],
        "test_loss_ratio": round(dp["test_example_loss"] / sft["test_example_loss"], 3),
        "wall_time_ratio": round(dp["wall_seconds"] / sft["wall_seconds"], 3),
        "train_time_ratio": round(dp["train_seconds"] / sft["train_seconds"], 3),
    }))


if __name__ == "__main__":
    main()
