"""A live rollout's evidence on disk, so that a restarted server resumes the rollout at the same
step with the same pairs (live.py), instead of starting the gate over on an empty record.

One file per version in rollout, `$FT_PIPELINE_HOME/rollouts/<name>/<version>.jsonl`, appended
line by line (one write() on an O_APPEND file, as the registry's rollout log: a crash loses at most
the line being written, and a torn last line is skipped on reading). Each line belongs to one
rollout, named by the `at` of its started step, so a later rollout of the same version starts
afresh. Two kinds of line:

- a pair: the step it was paired at, the request's completion id, and per version only what the
  online gate scores (status, the answer as returned to the client - redacted by app.complete -
  counts of values masked, latency): never the request's text;
- a label: a request id and its label, as /v1/feedback redacted it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ft_pipeline.core import paths

SCORED = ("status", "answer", "pii_masked_answer", "error", "latency_ms")  # what online_gate.Arm.add reads


def evidence_file(name: str, version: str) -> Path:
    return paths.pipeline_home() / "rollouts" / name / f"{version}.jsonl"


def scored(entry: dict) -> dict:
    """The part of a guarded completion's log entry the gate scores."""
    return {k: entry[k] for k in SCORED if entry.get(k) is not None}


def _append(path: Path, line: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def record_pair(path: Path, rollout_at: str, stage: int, request_id: str, canary: bool,
                incumbent: dict, candidate: dict) -> None:
    _append(path, {"rollout": rollout_at, "stage": stage, "request_id": request_id, "canary": canary,
                   "incumbent": scored(incumbent), "candidate": scored(candidate)})


def record_label(path: Path, rollout_at: str, request_id: str, label: str) -> None:
    _append(path, {"rollout": rollout_at, "request_id": request_id, "label": label})


def load(path: Path, rollout_at: str, stage: int) -> tuple[list[dict], dict[str, str]]:
    """(the pairs of this rollout at `stage`, in the order they came; every label of this rollout)."""
    pairs, labels = [], {}
    if not path.is_file():
        return pairs, labels
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash: the pair it held is lost, not the rollout
            if not isinstance(item, dict) or item.get("rollout") != rollout_at:
                continue
            if "label" in item:
                labels[str(item.get("request_id"))] = item["label"]
            elif item.get("stage") == stage:
                pairs.append(item)
    return pairs, labels
