"""Run-time knobs of the fit assessment. What the task needs (target, few-shot, generation budget)
is in the task file's `fit:`; how the planned run trains is the `training_plan` resource."""
from __future__ import annotations

import dagster as dg
from pydantic import Field


class FitAssessmentConfig(dg.Config):
    max_examples: int = Field(default=0, description="cap on held-out examples (0: all)")
    override: bool = Field(default=False, description="train even when fine-tuning is not recommended")
    override_reason: str = Field(default="", description="why the recommendation is overridden (recorded)")
