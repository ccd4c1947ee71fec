"""Run-time knobs of promotion. The registry name comes from the task file."""
from __future__ import annotations

import dagster as dg
from pydantic import Field


class PromotionConfig(dg.Config):
    smoke_examples: int = Field(default=3, description="held-out prompts the promoted model must answer")
