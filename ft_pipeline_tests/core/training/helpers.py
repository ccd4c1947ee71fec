"""A small export directory in the jsonl_export format, for training tests on the tiny model."""
from __future__ import annotations

import json
import os
from pathlib import Path

# Four intents the tiny model can memorise in a few dozen steps.
EXAMPLES = [
    ("my card was charged twice", {"intent": "billing_dispute", "priority": "high"}),
    ("please update my address", {"intent": "address_change", "priority": "normal"}),
    ("what is my claim status", {"intent": "claim_status", "priority": "normal"}),
    ("I need a refund", {"intent": "billing_dispute", "priority": "urgent"}),
]


def chat_row(i: int, text: str, answer: dict) -> dict:
    return {"id": f"ex-{i}", "messages": [
        {"role": "system", "content": "You triage customer messages."},
        {"role": "user", "content": text},
        {"role": "assistant", "content": json.dumps(answer)},
    ]}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def tiny_task():
    """The task the tiny export is made for: a JSON answer with an intent and a priority."""
    from ft_pipeline.core.task import TaskConfig

    return TaskConfig(name="tiny-triage", type="structured", key_fields=["intent", "priority"],
                      system_prompt="You triage customer messages.")


def write_export(root: Path, repeats: int = 8) -> Path:
    """train/eval/test chat files, preference files and the task.yaml GRPO reads; train repeats the
    examples `repeats` times."""
    root.mkdir(parents=True, exist_ok=True)
    tiny_task().to_yaml(root / "task.yaml")
    rows = [chat_row(i, t, a) for i, (t, a) in enumerate(EXAMPLES * repeats)]
    write_jsonl(root / "train.jsonl", rows)
    write_jsonl(root / "eval.jsonl", rows[:4])
    write_jsonl(root / "test.jsonl", rows[:4])
    wrong = {"intent": "claim_status", "priority": "low"}
    prefs = [
        {"id": f"p-{i}", "prompt": r["messages"][:-1], "chosen": [r["messages"][-1]],
         "rejected": [{"role": "assistant", "content": json.dumps(wrong)}]}
        for i, r in enumerate(rows)
    ]
    write_jsonl(root / "preference_train.jsonl", prefs)
    write_jsonl(root / "preference_eval.jsonl", prefs[:4])
    return root


def child_env(**extra: str) -> dict[str, str]:
    """Environment for trainer subprocesses: offline, one thread each (the CI box has two cores)."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "GX_ANALYTICS_ENABLED": "false",
                "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def tiny_config(model_dir: Path, **overrides):
    from ft_pipeline.core.training.config import TrainingConfig

    base = dict(method="sft", base_model=str(model_dir), lora_rank=8, lora_alpha=16, lora_dropout=0.0,
                learning_rate=5e-3, warmup_ratio=0.0, lr_scheduler="constant", max_steps=30,
                per_device_batch_size=4, max_length=64, logging_steps=5, save_steps=100,
                num_generations=2, max_completion_length=8)
    base.update(overrides)
    return TrainingConfig(**base)
