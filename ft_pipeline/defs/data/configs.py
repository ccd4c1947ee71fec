"""Run-time knobs of the data assets, as the Dagster UI's launchpad shows them."""
from __future__ import annotations

import dagster as dg
from pydantic import Field

from ft_pipeline.core import paths
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
        default=str(paths.REPO_ROOT / "data" / "demo" / "protected" / "*.txt"),
        description="glob of proprietary documents whose near-copies are quarantined",
    )

    def to_core(self):
        import glob

        from ft_pipeline.core.data.redaction import RedactionConfig
        from ft_pipeline.core.data.screening import ScreeningConfig

        return RedactionConfig(
            score_threshold=self.score_threshold,
            mode="surrogate" if self.surrogates else "placeholder",
            n_process=self.n_process,
            allow_list=list(self.allow_list),
            deny_list=list(self.deny_list),
            screening=ScreeningConfig(
                deny_terms=list(self.deny_terms),
                protected_documents=sorted(glob.glob(self.protected_documents)),
            ),
        )


class BiasAuditConfig(dg.Config):
    min_group_size: int = Field(default=20, description="groups smaller than this are flagged, not gated")
    max_parity_difference: float = Field(default=0.2, description="largest allowed selection-rate gap")
    min_parity_ratio: float = Field(default=0.5, description="smallest allowed lowest/highest selection-rate ratio")

    def to_core(self) -> bias.BiasConfig:
        return bias.BiasConfig(
            min_group_size=self.min_group_size,
            max_parity_difference=self.max_parity_difference,
            min_parity_ratio=self.min_parity_ratio,
        )


class ExportRunConfig(dg.Config):
    eval_fraction: float = Field(default=0.08, description="share of records without a split sent to eval")
    test_fraction: float = Field(default=0.17, description="share of records without a split sent to test")

    def to_core(self) -> export.ExportConfig:
        return export.ExportConfig(eval_fraction=self.eval_fraction, test_fraction=self.test_fraction)
