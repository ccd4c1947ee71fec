"""Plain Python, no Dagster imports: the logic every asset, check and command calls.

Shared by every stage: the task declaration (task; read from YAML by task_file, its sections
built by task_sections on the shape config_mapping gives them, the asset's value loaded back by
task_loader), the record schema (records), where files go (paths), answers read from
records (answers), JSONL I/O (jsonl), digests (digest), numbers as a person writes them in YAML
(numbers) and plots (plots).
One folder per stage, mirroring ft_pipeline/defs/: data/ (ingest to export), training/ (the
standalone trainer, base model, cost), release/ (fit assessment, evaluation, registry, audit);
tracking/ mirrors runs and the registry to MLflow.
"""
