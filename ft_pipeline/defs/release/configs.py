"""Run-time knobs of evaluation and promotion. What the task needs (metric, generation budget,
canaries, the registry name) comes from the task file; the gates' bounds from its `gates:`."""
from __future__ import annotations

import dagster as dg
from pydantic import Field


class EvalConfig(dg.Config):
    max_examples: int = Field(default=0, description="cap on held-out examples (0: all)")


class PromotionConfig(dg.Config):
    smoke_examples: int = Field(default=3, description="held-out prompts the promoted model must answer")
