"""Run-time knobs of the data assets, as the Dagster UI's launchpad shows them."""
from __future__ import annotations

import dagster as dg
from pydantic import Field

from ft_pipeline.core.data import bias, export


class RawDatasetConfig(dg.Config):
    # The source itself is the partition key (a raw_files partition): see defs/data/partitions.py.
    max_record_bytes: int = Field(default=1_000_000, description="larger records are quarantined")


class RedactionRunConfig(dg.Config):
    score_threshold: float = Field(default=0.45, description="Presidio score below which a finding is ignored")
    surrogates: bool = Field(default=False, description="realistic fake values instead of <TYPE_n> placeholders")
    n_process: int = Field(default=0, description="worker processes (each loads spaCy, ~250 MB); 0 = one per core, as memory allows")
    allow_list: list[str] = Field(default_factory=list, description="exact strings never redacted")
    deny_list: list[str] = Field(default_factory=list, description="exact strings always redacted")
    deny_terms: list[str] = Field(default_factory=list, description="terms that send a record to quarantine")
    protected_documents: str = Field(
        default="", description="glob of proprietary documents whose near-copies are quarantined "
                                "(added to the task's redaction.protected_documents)",
    )

    def to_core(self, task=None):
        """The task's redaction section with this run's knobs over it (RedactionConfig.for_task)."""
        from ft_pipeline.core.data.redaction import RedactionConfig

        return RedactionConfig.for_task(
            task, allow_list=self.allow_list, deny_list=self.deny_list, deny_terms=self.deny_terms,
            protected_documents=self.protected_documents, score_threshold=self.score_threshold,
            n_process=self.n_process, surrogates=self.surrogates)


class BiasAuditConfig(dg.Config):
    min_group_size: int = Field(default=20, description="groups smaller than this are flagged, not gated")
    max_parity_difference: float = Field(default=0.2, description="largest allowed selection-rate gap")
    min_parity_ratio: float = Field(default=0.5, description="smallest allowed lowest/highest selection-rate ratio")
    require_judgement: bool = Field(default=False, description="fail the gate when nothing could be judged "
                                                               "(no attributes, no outcome, groups too small)")

    def to_core(self, task=None) -> bias.BiasConfig:
        outcome = task.outcome if task is not None else None
        return bias.BiasConfig(
            outcome_field=outcome.field if outcome else None,
            positive_values=tuple(outcome.positive) if outcome else (),
            min_group_size=self.min_group_size,
            max_parity_difference=self.max_parity_difference,
            min_parity_ratio=self.min_parity_ratio,
        )


class ExportRunConfig(dg.Config):
    eval_fraction: float = Field(default=0.08, description="share of records without a split sent to eval")
    test_fraction: float = Field(default=0.17, description="share of records without a split sent to test")
    near_duplicate_threshold: float = Field(default=0.6, description="Jaccard similarity above which an eval/test "
                                                                    "record is a copy of a train record (moved or dropped)")

    def to_core(self) -> export.ExportConfig:
        return export.ExportConfig(eval_fraction=self.eval_fraction, test_fraction=self.test_fraction,
                                   near_duplicate_threshold=self.near_duplicate_threshold)
