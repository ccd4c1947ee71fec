"""PrivacyConfig: the `privacy:` block of a TrainingConfig (differentially private SFT), and the
privacy.json a DP run writes beside its adapter.

Redaction removes the PII a recognizer knows; DP-SGD bounds what the adapter can memorize of any
one training example, including what redaction missed: every example's gradient is clipped to
`max_grad_norm` and Gaussian noise is added, sized so that the whole run spends at most
(`target_epsilon`, `delta`).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GRAD_SAMPLE_MODES = ("ghost", "hooks")
PRIVACY_FILE = "privacy.json"  # in the adapter folder, copied with it into the registry


@dataclass
class PrivacyConfig:
    dp: bool = field(default=False, metadata={
        "help": "Train the LoRA adapter with DP-SGD (Opacus). SFT only; DPO and GRPO refuse it."})
    target_epsilon: float = field(default=8.0, metadata={
        "help": "Privacy budget epsilon the whole run may spend (> 0); the noise is sized to it."})
    delta: float | None = field(default=None, metadata={
        "help": "delta of the (epsilon, delta) guarantee, in (0, 1); null: 1 / (training examples)."})
    max_grad_norm: float = field(default=1.0, metadata={
        "help": "Clip norm: each example's gradient is scaled down to at most this L2 norm."})
    grad_sample_mode: str = field(default="ghost", metadata={
        "help": "ghost: ghost clipping (per-example gradient norms without per-example gradients, "
                "less memory); hooks: Opacus's per-example gradients."})

    def __post_init__(self):
        from ft_pipeline.core.numbers import parse_number

        def fail(name: str, why: str):
            raise ValueError(f"TrainingConfig.privacy.{name}={getattr(self, name)!r}: {why}")

        if not isinstance(self.dp, bool):
            fail("dp", "must be true or false")
        for name in ("target_epsilon", "delta", "max_grad_norm"):
            value = getattr(self, name)
            if value is None and name == "delta":
                continue
            number = parse_number(value)
            if number is None:
                fail(name, "must be a number")
            setattr(self, name, float(number))
        if self.target_epsilon <= 0:
            fail("target_epsilon", "must be > 0")
        if self.delta is not None and not 0 < self.delta < 1:
            fail("delta", "must be in (0, 1), or null for 1 / (training examples)")
        if self.max_grad_norm <= 0:
            fail("max_grad_norm", "must be > 0")
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            fail("grad_sample_mode", f"must be one of {', '.join(GRAD_SAMPLE_MODES)}")

    @classmethod
    def from_value(cls, data: Any) -> "PrivacyConfig":
        if isinstance(data, cls):
            return data
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"TrainingConfig.privacy={data!r}: must be a mapping like {{dp: true, target_epsilon: 8}}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"TrainingConfig.privacy: unknown field(s): {', '.join(unknown)}")
        return cls(**data)

    def check_method(self, config) -> None:
        """The settings DP-SGD cannot honour, refused by name rather than trained without DP."""
        if not self.dp:
            return
        why = None
        if config.method != "sft":
            why = (f"DP-SGD is implemented for SFT only; {config.method} would train without it. "
                   "Set privacy.dp: false or method: sft")
        elif config.packing:
            why = "a packed row mixes several examples, so one example's influence is no longer one row; set packing: false"
        elif config.gradient_checkpointing:
            why = "Opacus's per-example hooks see recomputed activations twice; set gradient_checkpointing: false"
        elif config.init_adapter:
            why = "an adapter trained before, without DP, would carry its data past the guarantee; unset init_adapter"
        if why:
            raise ValueError(f"TrainingConfig.privacy.dp=True: {why}")


def resolve_delta(privacy: PrivacyConfig, n_examples: int) -> float:
    return privacy.delta if privacy.delta is not None else 1.0 / max(n_examples, 1)


def privacy_record_text(record: dict) -> str:
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def read_privacy_record(adapter: Path) -> dict | None:
    path = Path(adapter) / PRIVACY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def spent(record: dict | None, run: str) -> dict:
    """One run's share of the data's privacy budget: (epsilon, delta) of a DP run, or `dp: false`
    for a run without DP (it bounds nothing, so nothing composed with it is bounded either)."""
    if not record or not record.get("dp"):
        return {"run": run, "dp": False}
    return {"run": run, "dp": True, "epsilon": record["epsilon"], "delta": record["delta"],
            "steps": record.get("steps"), "train_examples": record.get("train_examples")}


def total_privacy(training: dict | None, pilots: list[dict]) -> dict | None:
    """The (epsilon, delta) the whole pipeline spent on the training data: the training run and the
    fit assessment's pilots (`spent` records) all read subsets of the same records, so by basic
    composition (Dwork & Roth 2014, Theorem 3.16) a record in all of them is protected at the sum
    of their epsilons and the sum of their deltas. The pilots' subsets overlap the training set (a
    quarter and half of it), so no parallel composition applies. None when no run used DP."""
    parts = [spent(training, "training"), *pilots]
    if not any(p["dp"] for p in parts):
        return None
    bounded = all(p["dp"] for p in parts)
    return {"epsilon": sum(p["epsilon"] for p in parts) if bounded else None,
            "delta": sum(p["delta"] for p in parts) if bounded else None,
            "bounded": bounded, "runs": len(parts), "composition": "basic: sum of epsilon, sum of delta",
            "parts": parts}


def total_line(total: dict | None) -> str | None:
    """One sentence on the data's total budget, for the model card and the evidence bundle."""
    if not total:
        return None
    pilots = [p for p in total["parts"] if p["run"] != "training"]
    if not pilots:
        return None
    if not total["bounded"]:
        plain = ", ".join(p["run"] for p in total["parts"] if not p["dp"])
        return f"total over the data: unbounded ({plain}: no DP guarantee on record, on the same records)"
    shares = " + ".join(f"{p['epsilon']:.2f}" for p in total["parts"])
    return (f"total over the data, including the fit assessment's {len(pilots)} pilot run(s): ε = {total['epsilon']:.2f} "
            f"({shares}, basic composition) at δ = {total['delta']:.2g}")
