"""Run-time knobs of model selection. How to train is the `training_plan` resource."""
from __future__ import annotations

import dagster as dg
from pydantic import Field


class BaseModelConfig(dg.Config):
    name_or_path: str = Field(
        default="",
        description="bundled name, local directory or Hugging Face hub id (e.g. Qwen/Qwen2.5-7B-Instruct); "
                    "empty: the training preset's base_model, so a 7B preset trains and is priced as 7B",
    )
