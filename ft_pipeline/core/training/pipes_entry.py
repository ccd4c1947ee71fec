"""The trainer as an external process speaking Dagster Pipes.

    python -m ft_pipeline.core.training.pipes_entry --config-json '{...}' --data D --output O

Launched by TrainerResource as a plain subprocess, under torchrun / accelerate for several
processes, or as the command of a remote ECS task. Progress goes back as Pipes log lines and the
final metrics as a custom message; without a Pipes context (run by hand) it just trains.
Only rank 0 talks to Dagster: the other ranks would send the same numbers again.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

# Keys worth a log line; the rest (lr, grad_norm, entropy...) stays in metrics.json history.
LOG_KEYS = ("loss", "reward", "rewards/correctness_reward/mean", "rewards/margins", "num_tokens")


def format_event(event: dict) -> str | None:
    kind = event.get("event")
    if kind == "start":
        resumed = event.get("resumed_from")
        return (f"training started: {event.get('max_steps')} steps, world size {event.get('world_size')}, "
                f"{event.get('trainable_params', 0):,} trainable params"
                + (f", resumed from step {resumed}" if resumed else ""))
    if kind == "log" and any(k in event for k in ("loss", "reward")):
        parts = [f"{k}={event[k]:.4g}" for k in LOG_KEYS if k in event]
        return f"step {event['step']}/{event['max_steps']}: " + " ".join(parts)
    if kind == "end":
        rate = event.get("tokens_per_s") or 0
        return (f"training done: {event.get('steps')} steps, {event.get('train_tokens', 0):,} tokens "
                f"at {rate:,.0f} tokens/s, final loss {event.get('final_loss')}")
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipes_entry")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="YAML training config file")
    source.add_argument("--config-json", help="the TrainingConfig as inline JSON (no shared file needed)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-steps", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ft_pipeline.core.training.config import TrainingConfig
    from ft_pipeline.core.training.train import train

    opts = build_parser().parse_args(argv)
    if opts.config_json:
        config = TrainingConfig.from_dict(json.loads(opts.config_json))
    else:
        config = TrainingConfig.from_yaml(Path(opts.config))

    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        from dagster_pipes import open_dagster_pipes

        session = open_dagster_pipes()
    else:
        session = contextlib.nullcontext(None)
    with session as pipes:
        def on_event(event: dict) -> None:
            line = format_event(event)
            if pipes is not None and line:
                pipes.log.info(line)

        metrics = train(config, Path(opts.data), Path(opts.output), max_steps=opts.max_steps, callback=on_event)
        if pipes is not None:
            summary = {k: v for k, v in metrics.items() if k not in ("history", "cost_estimate")}
            pipes.report_custom_message({"metrics": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
