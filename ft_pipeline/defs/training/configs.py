"""Run-time knobs of model selection, the fit assessment and training."""
from __future__ import annotations

import dagster as dg
from pydantic import Field

from ft_pipeline.core import paths


class BaseModelConfig(dg.Config):
    name_or_path: str = Field(
        default="smollm2-135m-instruct",
        description="bundled name, local directory or Hugging Face hub id (e.g. Qwen/Qwen2.5-7B-Instruct)",
    )


class FitAssessmentConfig(dg.Config):
    target_exact_match: float = Field(default=0.8, description="held-out exact match the task needs")
    few_shot: int = Field(default=0, description="training examples shown in the prompt-only baseline")
    max_examples: int = Field(default=0, description="cap on held-out examples (0: all)")
    max_new_tokens: int = Field(default=32, description="generation budget per answer (the demo's JSON answers take ~18 tokens)")
    needs_fresh_facts: bool = Field(default=False, description="answers depend on facts that change (favours RAG)")
    override: bool = Field(default=False, description="train even when fine-tuning is not recommended")
    override_reason: str = Field(default="", description="why the recommendation is overridden (recorded)")
    training_preset: str = Field(
        default=str(paths.REPO_ROOT / "configs" / "demo-sft.yaml"), description="training config whose cost is estimated"
    )


class TrainingRunConfig(dg.Config):
    preset: str = Field(default=str(paths.REPO_ROOT / "configs" / "demo-sft.yaml"), description="training config YAML")
    max_steps: int = Field(default=0, description="override the preset's step count (0: keep)")
