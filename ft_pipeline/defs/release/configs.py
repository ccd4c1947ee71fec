"""Run-time knobs of evaluation and promotion. What the task needs (metric, generation budget,
canaries, the registry name) comes from the task file; the gates' bounds from its `gates:`."""
from __future__ import annotations

import dagster as dg
from pydantic import Field


class EvalConfig(dg.Config):
    min_group_size: int = Field(default=10, description="groups smaller than this are reported but not gated")
    max_examples: int = Field(default=0, description="cap on held-out examples (0: all)")


class EvalGateConfig(dg.Config):
    min_margin: float = Field(default=0.1, description="primary-metric points the tuned model must gain over base")
    min_margin_over_baseline: float = Field(default=0.01, description="primary-metric points the tuned model must gain over the prompt-only baseline")
    max_group_gap: float = Field(default=0.35, description="largest allowed gap in the primary metric between groups")


class PromotionConfig(dg.Config):
    smoke_examples: int = Field(default=3, description="held-out prompts the promoted model must answer")
