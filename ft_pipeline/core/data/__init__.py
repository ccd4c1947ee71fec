"""Data preparation, before any GPU hour: where records come from (sources), ingest to the raw
zone (ingest), PII/PHI redaction (redaction/), confidential-content screening (screening), label
verification (labels), the bias audit (bias), splits that keep groups whole and held-out data free
of near-copies of train (splits, contamination, near_duplicates), the chat-JSONL export and its
validation (export), and the suppression list that erasure leaves for ingestion (suppression).
Mirrors ft_pipeline/defs/data/."""
