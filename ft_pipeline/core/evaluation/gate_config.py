"""The release gates' knobs, the task file's `gates:` mapping (validated like `fit:`). Apart from the
gates themselves (gates.py) so that a task file's sections can be checked on load
(core/task_sections.py) without importing the gates, the evaluation and the answers they read."""
from __future__ import annotations

from dataclasses import dataclass, field

from ft_pipeline.core.config_mapping import Section, SettingError, check_types
from ft_pipeline.core.data.canaries import MemorizationConfig


class GateConfigError(SettingError):
    section = "gates"


@dataclass
class GateConfig(Section):
    """Release-gate knobs, the task file's `gates:` mapping."""

    error = GateConfigError

    alpha: float = field(default=0.05, metadata={
        "help": "1 - confidence level of every interval (0.05: 95% intervals); gates judge the lower end."})
    min_margin_over_base: float = field(default=0.10, metadata={
        "help": "The interval of tuned - base must lie at or above this: a credible gain of at least 0.10."})
    min_margin_over_baseline: float = field(default=0.0, metadata={
        "help": "The same over the prompt-only baseline: 0 means tuned must be credibly better, by any amount; "
                "a negative margin -d asks only that a loss larger than d be ruled out."})
    min_margin_over_alternative: float = field(default=0.0, metadata={
        "help": "The same over the best cheaper alternative, when the evaluation names one."})
    max_group_gap: float = field(default=0.35, metadata={
        "help": "Largest allowed gap between the best and the worst group; fails only when the gap's "
                "interval lies wholly above it."})
    min_group_size: int = field(default=10, metadata={
        "help": "Groups with fewer items are reported as too small to judge, with the gap they could show."})
    require_group_judgement: bool = field(default=False, metadata={
        "help": "Fail the group gate when no attribute has two groups large enough to compare "
                "(otherwise that outcome, not_judged, is reported and passes)."})
    max_capability_loss: float = field(default=0.05, metadata={
        "help": "Largest loss on the general capability probe the tuned model may credibly have: the "
                "interval of tuned - base must lie at or above -max_capability_loss."})
    capability_items: int = field(default=0, metadata={
        "help": "Items of the general capability probe scored per model (0: all 382, ~20 s per model on two "
                "CPU cores for a 135M model); the first items mix both kinds. Fewer items cost less and widen "
                "the interval: on the demo, 200 items could not rule out a 0.05 loss that 382 can."})
    n_boot: int = field(default=2000, metadata={"help": "Bootstrap resamples for continuous metrics."})
    seed: int = field(default=0, metadata={"help": "Bootstrap seed: the same evidence gives the same verdicts."})
    memorization: dict = field(default_factory=dict, metadata={
        "help": "The memorization gate: canaries planted and the bounds they are judged by "
                "(core/data/canaries.py MemorizationConfig)."})

    def __post_init__(self):
        check_types(self, GateConfigError)
        if not 0 < self.alpha < 0.5:
            raise GateConfigError("alpha", f"{self.alpha} must be in (0, 0.5)")
        for name in ("min_margin_over_base", "min_margin_over_baseline", "min_margin_over_alternative"):
            if not -1 <= getattr(self, name) <= 1:
                raise GateConfigError(name, f"{getattr(self, name)} must be in [-1, 1] (metrics are shares)")
        for name in ("max_group_gap", "max_capability_loss"):
            if not 0 <= getattr(self, name) <= 1:
                raise GateConfigError(name, f"{getattr(self, name)} must be in [0, 1]")
        if self.min_group_size < 2:
            raise GateConfigError("min_group_size", "must be at least 2")
        if self.capability_items < 0:
            raise GateConfigError("capability_items", "must be >= 0 (0: every item)")
        if self.n_boot < 100:
            raise GateConfigError("n_boot", "must be at least 100 (percentile intervals need resamples in the tails)")
        if not isinstance(self.memorization, dict):
            raise GateConfigError("memorization", "must be a mapping like {canaries: 200}")
        # Built once here; the gate reads this typed section, never the mapping again.
        self.memorization_config = MemorizationConfig.from_dict(self.memorization)
