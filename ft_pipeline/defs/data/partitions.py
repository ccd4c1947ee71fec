"""raw_dataset and redacted_dataset are partitioned by source: one partition per landed file.

A partition key is the file's location — a path (relative paths are read from the repo root) or
an s3:// URI; a glob or an s3:// prefix also works, as one partition. Sensors register a partition
for every new file and redact it in its own run, so a large landing is redacted by parallel runs
and a new file never re-redacts the old ones. Everything downstream (bias audit, export, training)
reads every partition at once.
"""
from __future__ import annotations

import dagster as dg

from ft_pipeline.core import paths

RAW_FILES = dg.DynamicPartitionsDefinition(name="raw_files")


def partition_key_for(location: str) -> str:
    """A location's partition key: itself, or an alias when its name holds PII (core/data/source_names.py)."""
    from ft_pipeline.core.data.source_names import key_for

    return key_for(location)


def source_location(partition_key: str) -> str:
    """Where a partition's data is read from: an alias's recorded location, s3:// URIs as they are,
    relative paths from the repo root."""
    from ft_pipeline.core.data.source_names import location_of

    partition_key = location_of(partition_key) or partition_key
    if partition_key.startswith("s3://"):
        return partition_key
    from pathlib import Path

    path = Path(partition_key).expanduser()
    return str(path if path.is_absolute() else paths.REPO_ROOT / path)


def register_sources(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """Adds the keys not yet registered as raw_files partitions; returns those it added."""
    known = set(instance.get_dynamic_partitions(RAW_FILES.name))
    new = [k for k in dict.fromkeys(keys) if k not in known]
    if new:
        instance.add_dynamic_partitions(RAW_FILES.name, new)
    return new


def by_partition(value) -> list[tuple[str, dict]]:
    """An unpartitioned asset's view of a partitioned input: (partition key, value) pairs, in key order.
    Dagster hands it a {partition: value} mapping; a value with a "path" is one partition on its own."""
    if isinstance(value, dict) and "path" in value:
        return [("", value)]
    return sorted(value.items())
