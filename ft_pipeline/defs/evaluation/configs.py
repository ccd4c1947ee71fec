"""Run-time knobs of the evaluation. What the task needs (metric, generation budget, canaries) comes
from the task file; the gates' bounds from its `gates:`."""
from __future__ import annotations

import dagster as dg
from pydantic import Field


class EvalConfig(dg.Config):
    max_examples: int = Field(default=0, description="cap on held-out examples (0: all)")
