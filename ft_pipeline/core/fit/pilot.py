"""A pilot learning curve: short fine-tunes on a quarter and on half of the training set, each
scored on held-out items, so the fit assessment can say whether the full run is likely to reach
the target, or whether more data or more steps would be needed.

Each pilot trains the planned preset (SFT) in-process for a share of the planned steps on a share
of the data; the half pilot trains twice the quarter's steps, so one doubling of data and steps
separates the two points. Extrapolating along that line to the planned run's steps gives a rough
figure for the full run: a learning curve is roughly linear in log data over short ranges, but two
short pilots are noisy and a curve can bend either way, so this is a rough reading (on the demo it
pointed to 0.67 and the full run reached 0.83) — the summary says so.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.core.training.privacy import spent

FRACTIONS = (0.25, 0.5)


def pilot_steps(planned_steps: int, fraction: float, half_steps: int = 0) -> int:
    """Steps of the pilot on `fraction` of the data: `half_steps` scaled from the half pilot, else
    the planned run's steps scaled to the share (at least 1)."""
    if half_steps:
        return max(1, round(half_steps * fraction / 0.5))
    return max(1, round(planned_steps * fraction))


def run_pilot(training, export_dir: Path, *, score: Callable[[str], dict], half_steps: int = 0,
              workdir: Path, log: Callable[[str], None] = lambda _: None) -> list[dict]:
    """Trains one pilot adapter per share of the training set and scores it with `score(adapter_dir)`
    ({"metric", "low", "high", "n"}); returns the curve, smallest share first."""
    from ft_pipeline.core.training.train import train

    records = list(iter_jsonl(Path(export_dir) / "train.jsonl"))
    curve = []
    for fraction in FRACTIONS:
        examples = max(1, math.floor(len(records) * fraction))
        steps = pilot_steps(training.max_steps, fraction, half_steps)
        # Pilot data and adapters are copies of training records: gone when scored, so an erasure
        # never has one more place to reach.
        with tempfile.TemporaryDirectory(prefix=f"pilot-{fraction}-", dir=workdir) as tmp:
            data = Path(tmp)
            with open(data / "train.jsonl", "w", encoding="utf-8") as fh:
                fh.writelines(line + "\n" for line in _lines(Path(export_dir) / "train.jsonl", examples))
            if (Path(export_dir) / "task.yaml").is_file():
                shutil.copy(Path(export_dir) / "task.yaml", data / "task.yaml")
            out = data / "adapter"
            log(f"pilot: training on {examples} of {len(records)} examples ({fraction:.0%}) for {steps} steps")
            config = dataclasses.replace(training, save_steps=steps * 10)  # no mid-run checkpoints
            metrics = train(config, data, out, max_steps=steps)
            result = score(str(out))
        # A DP pilot (the task's privacy block applies to it as to the run) spends its own epsilon
        # on the same records: kept here, and composed with the run's at adapter_weights.
        curve.append({"fraction": fraction, "examples": examples, "steps": steps,
                      "final_loss": metrics.get("final_loss"), **result,
                      "privacy": spent(metrics.get("privacy"), f"pilot {fraction:.0%}")})
        log(f"pilot {fraction:.0%}: {result['metric']:.3f} (interval {result['low']:.3f}–{result['high']:.3f})")
    return curve


def pilot_privacy(fit_assessment: dict | None) -> list[dict]:
    """The privacy each pilot of a fit assessment's output spent (privacy.spent records), in order.
    A pilot from before pilots recorded it counts as trained without DP: nothing is known of it."""
    curve = ((fit_assessment or {}).get("pilot") or {}).get("curve") or []
    return [p.get("privacy") or {"run": f"pilot {p['fraction']:.0%}", "dp": False, "recorded": False} for p in curve]


def _lines(path: Path, n: int):
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                return
            yield line.rstrip("\n")


def extrapolate(curve: list[dict], target: float, metric: str, planned_steps: int) -> dict:
    """The full run's likely metric on the pilot's straight line in log work: the quarter and half
    pilots are one doubling of data and steps apart, the planned run log2(planned / half steps)
    doublings past the half pilot."""
    quarter, half = curve[0], curve[-1]
    per_doubling = half["metric"] - quarter["metric"]
    to_plan = max(0.0, math.log2(max(planned_steps, 1) / max(half["steps"], 1)))
    projected = min(1.0, max(0.0, half["metric"] + per_doubling * to_plan))
    head = (f"pilot: {quarter['examples']} examples x {quarter['steps']} steps scored {metric} {quarter['metric']:.3f}, "
            f"{half['examples']} x {half['steps']} scored {half['metric']:.3f} ({per_doubling:+.3f} per doubling of "
            f"data and steps)")
    plan = f"the planned run ({planned_steps} steps on all the data, {to_plan:.1f} doublings further)"
    if per_doubling <= 0:
        verdict = "flat"
        tail = ("the curve is flat: more of the same data or steps is unlikely to help; check label quality, "
                "the prompt format or a larger base model")
    elif projected >= target:
        verdict = "likely_reaches"
        tail = f"{plan} points to about {projected:.3f}, at or above the target {target:.3f} (a rough straight-line reading)"
    else:
        more = math.ceil((target - projected) / per_doubling)
        verdict = "needs_more"
        tail = (f"{plan} points to about {projected:.3f}, short of the target {target:.3f}: on this curve it takes "
                f"about {more} more doubling(s) of data and steps ({2 ** more:g}x the plan), or a stronger base model "
                "(a rough straight-line reading)")
    return {"curve": curve, "per_doubling": round(per_doubling, 4), "doublings_to_plan": round(to_plan, 2),
            "projected_full": round(projected, 4), "verdict": verdict, "summary": f"{head}; {tail}"}
