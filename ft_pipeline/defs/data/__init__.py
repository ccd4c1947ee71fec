"""Data preparation assets and their blocking checks: raw_dataset (one partition per source),
redacted_dataset, label_review_sample, bias_report, jsonl_export; partitions (the sources).
The logic lives in ft_pipeline/core/data/."""
