"""Data preparation, before any GPU hour: ingest to the raw zone (ingest), PII/PHI redaction
(redaction), confidential-content screening (screening), label verification (labels), the bias
audit (bias), the chat-JSONL export and its validation (export), and the right to erasure (erasure).
Mirrors ft_pipeline/defs/data/."""
