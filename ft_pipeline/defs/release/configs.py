"""Run-time knobs of evaluation and promotion."""
from __future__ import annotations

import dagster as dg
from pydantic import Field


class EvalConfig(dg.Config):
    canary_pattern: str = Field(default=r"CANARY-[0-9A-F]{4}-[0-9A-F]{4}", description="regex of canaries planted in training data")
    min_group_size: int = Field(default=10, description="groups smaller than this are reported but not gated")
    max_examples: int = Field(default=0, description="cap on held-out examples (0: all)")
    max_new_tokens: int = Field(default=32, description="generation budget per answer (the demo's JSON answers take ~18 tokens)")


class EvalGateConfig(dg.Config):
    min_margin: float = Field(default=0.1, description="exact-match points the tuned model must gain over base")
    min_margin_over_baseline: float = Field(default=0.01, description="exact-match points the tuned model must gain over the prompt-only baseline")
    max_group_gap: float = Field(default=0.35, description="largest allowed exact-match gap between groups")


class PromotionConfig(dg.Config):
    name: str = Field(default="northwind-triage", description="registry name of the model")
    smoke_examples: int = Field(default=3, description="held-out prompts the promoted model must answer")
