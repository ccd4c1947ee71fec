"""The task file's `rollout:` section: the online gate's thresholds and how a new version rolls out
(core/serving/rollout.py and online_gate.py use it; promotion reads `hold_new_versions`). Validated
like `fit:` and `gates:`: a bad value names `rollout.<knob>`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ft_pipeline.core import user_regex
from ft_pipeline.core.knobs import KnobError, check_types, from_mapping

MODES = ("shadow", "canary")
MAX_STEPS = 20
REFUSAL_PATTERN = (r"(?i)\b(i can(?:no|')t (?:help|assist|answer|do that)|i(?: am|'m) (?:unable|not able) to|"
                   r"i(?: am|'m) sorry,? but|as an ai\b)")


class RolloutConfigError(KnobError):
    section = "rollout"


@dataclass
class RolloutConfig:
    """Rollout knobs, the task file's `rollout:` mapping."""

    mode: str = field(default="canary", metadata={
        "help": "shadow: the candidate answers a copy of each request, never returned; canary: it answers "
                "`share` of the requests (chosen by a hash of the request id), the incumbent shadows those."})
    share: float = field(default=0.1, metadata={"help": "canary: the share of requests the candidate answers."})
    steps: list = field(default_factory=list, metadata={
        "help": "canary in steps: percents of traffic, rising, e.g. [5, 25, 50, 100] (Argo Rollouts' setWeight "
                "steps, Flagger's stepWeight up to maxWeight). The candidate moves to the next share only when the "
                "online gate passes on the pairs of the current step, rolls back at any step it fails, and becomes "
                "current after the last. Empty: one step at `share`. Shadow mode has one step."})
    min_requests: int = field(default=200, metadata={
        "help": "Paired requests the gate needs before it can pass, at each step: with no change in 200 requests, "
                "a rate's 95% interval still spans +-0.019, so the default tolerances of 0.02 can just pass. A step "
                "with fewer is not judged: it waits (a `waiting` step in the rollout log), never switches or rolls back."})
    min_labelled_per_step: int = field(default=30, metadata={
        "help": "A step whose pairs carry labels (the task_metric gate judges them) waits until this many of them "
                "do: on 3 labels one unlucky answer reads as 33 points worse and would roll back. 0: judge the "
                "labels there are. Steps without any label are judged without the task metric, as before."})
    alpha: float = field(default=0.05, metadata={"help": "1 - confidence level of every interval."})
    max_schema_valid_loss: float = field(default=0.02, metadata={"help": "Tolerated fall of the schema-valid rate."})
    max_metric_loss: float = field(default=0.05, metadata={
        "help": "Tolerated fall of the task's primary metric on labelled requests."})
    max_refusal_increase: float = field(default=0.02, metadata={"help": "Tolerated rise of the refusal rate."})
    max_pii_increase: float = field(default=0.02, metadata={"help": "Tolerated rise of answers with PII masked."})
    max_error_increase: float = field(default=0.02, metadata={"help": "Tolerated rise of the error rate."})
    max_p95_latency_increase: float = field(default=0.5, metadata={
        "help": "Tolerated relative rise of p95 latency (0.5: the candidate's p95 at most 1.5x the incumbent's)."})
    refusal_pattern: str = field(default=REFUSAL_PATTERN, metadata={"help": "Regex of an answer that refuses."})
    n_boot: int = field(default=2000, metadata={"help": "Bootstrap resamples (continuous metrics, latency)."})
    seed: int = field(default=0, metadata={"help": "Bootstrap seed: the same requests give the same verdicts."})
    hold_new_versions: bool = field(default=False, metadata={
        "help": "Promotion publishes a new version beside `current` (MLflow alias challenger) instead of "
                "switching to it: only a passing rollout makes it current."})

    def __post_init__(self):
        check_types(self, RolloutConfigError)
        if self.mode not in MODES:
            raise RolloutConfigError("mode", f"{self.mode!r} must be one of {', '.join(MODES)}")
        if not 0 < self.share <= 1:
            raise RolloutConfigError("share", f"{self.share} must be in (0, 1]")
        self._check_steps()
        if not 0 < self.alpha < 0.5:
            raise RolloutConfigError("alpha", f"{self.alpha} must be in (0, 0.5)")
        if self.min_requests < 1:
            raise RolloutConfigError("min_requests", "must be at least 1")
        if self.min_labelled_per_step < 0:
            raise RolloutConfigError("min_labelled_per_step", f"{self.min_labelled_per_step} must be >= 0 (0: no minimum)")
        for name in ("max_schema_valid_loss", "max_metric_loss", "max_refusal_increase", "max_pii_increase",
                     "max_error_increase"):
            if not 0 <= getattr(self, name) <= 1:
                raise RolloutConfigError(name, f"{getattr(self, name)} must be in [0, 1] (rates are shares)")
        if self.max_p95_latency_increase < 0:
            raise RolloutConfigError("max_p95_latency_increase", "must be >= 0")
        if not isinstance(self.refusal_pattern, str) or (why := user_regex.problem(self.refusal_pattern)):
            raise RolloutConfigError("refusal_pattern", why if isinstance(self.refusal_pattern, str) else "must be a regex")
        if self.n_boot < 100:
            raise RolloutConfigError("n_boot", "must be at least 100")

    def _check_steps(self) -> None:
        steps = self.steps
        if not isinstance(steps, list) or isinstance(steps, str):
            raise RolloutConfigError("steps", f"{steps!r} must be a list of percents of traffic, e.g. [5, 25, 50, 100]")
        if len(steps) > MAX_STEPS:
            raise RolloutConfigError("steps", f"{len(steps)} steps; at most {MAX_STEPS}")
        for k, percent in enumerate(steps, 1):
            if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= 100:
                raise RolloutConfigError("steps", f"step {k}: {percent!r} must be a percent of traffic in (0, 100]")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise RolloutConfigError("steps", f"{steps} must rise step by step (each share above the last)")

    def shares(self) -> list[float]:
        """The candidate's share of the requests at each step, as fractions: shadow mode copies every
        request (one step); a canary without `steps` is one step at `share`."""
        if self.mode != "canary":
            return [1.0]
        return [percent / 100 for percent in self.steps] or [self.share]

    def with_overrides(self, mode: str | None = None, share: float | None = None) -> "RolloutConfig":
        """The command line's --mode and --share over the task file's; --share is one step at that share."""
        return replace(self, mode=mode or self.mode, **({"share": share, "steps": []} if share is not None else {}))

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "task") -> "RolloutConfig":
        """From `task.rollout`; a bad or unknown key raises TaskError naming `rollout.<key>`."""
        return from_mapping(cls, data, where, RolloutConfigError)


class DriftConfigError(KnobError):
    section = "drift"


@dataclass
class DriftConfig:
    """Drift knobs, the task file's `drift:` mapping: how far a day of live requests may move from
    the training data before the drift check warns and drift_retrain_sensor asks for a retrain."""

    min_requests: int = field(default=100, metadata={"help": "Live requests a day needs before drift is judged."})
    max_length_ks: float = field(default=0.25, metadata={
        "help": "Largest Kolmogorov-Smirnov statistic between live and training request lengths (characters)."})
    max_token_distance: float = field(default=0.5, metadata={
        "help": "Largest Jensen-Shannon distance (base 2, 0-1) between live and training word distributions."})
    max_label_distance: float = field(default=0.3, metadata={
        "help": "Largest Jensen-Shannon distance between the labels answered live and the training labels."})
    retrain: bool = field(default=True, metadata={"help": "drift_retrain_sensor requests a retrain on drift."})
    feedback_retrain: int = field(default=0, metadata={
        "help": "feedback_retrain_sensor requests one retrain once this many labels came in through "
                "/v1/feedback since the adapter last trained (0: never)."})

    def __post_init__(self):
        check_types(self, DriftConfigError)
        if self.min_requests < 1:
            raise DriftConfigError("min_requests", "must be at least 1")
        if self.feedback_retrain < 0:
            raise DriftConfigError("feedback_retrain", f"{self.feedback_retrain} must be >= 0 (0: never)")
        for name in ("max_length_ks", "max_token_distance", "max_label_distance"):
            if not 0 < getattr(self, name) <= 1:
                raise DriftConfigError(name, f"{getattr(self, name)} must be in (0, 1]")

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "task") -> "DriftConfig":
        return from_mapping(cls, data, where, DriftConfigError)
