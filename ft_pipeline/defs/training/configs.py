"""Run-time knobs of model selection and the fit assessment. What the task needs (target, few-shot,
generation budget) is in the task file; how to train is the `training_plan` resource."""
from __future__ import annotations

import dagster as dg
from pydantic import Field


class BaseModelConfig(dg.Config):
    name_or_path: str = Field(
        default="",
        description="bundled name, local directory or Hugging Face hub id (e.g. Qwen/Qwen2.5-7B-Instruct); "
                    "empty: the training preset's base_model, so a 7B preset trains and is priced as 7B",
    )


class FitAssessmentConfig(dg.Config):
    max_examples: int = Field(default=0, description="cap on held-out examples (0: all)")
    override: bool = Field(default=False, description="train even when fine-tuning is not recommended")
    override_reason: str = Field(default="", description="why the recommendation is overridden (recorded)")
