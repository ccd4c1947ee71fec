"""Plain Python, no Dagster imports: the logic every asset, check and command calls.

Shared by every stage: the task declaration (task), the record schema (records), where files go
(paths), answers read from records (answers), JSONL I/O (jsonl), digests (digest) and plots (plots).
One folder per stage, mirroring ft_pipeline/defs/: data/ (ingest to export), training/ (the
standalone trainer, base model, cost), release/ (fit assessment, evaluation, registry, audit).
"""
