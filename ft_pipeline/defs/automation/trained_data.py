"""The rule sources_ready_sensor retrains by: the redacted data now, against the redacted data the
latest adapter_weights trained on.

Redacted data is a map {source partition: sha256 of its redacted file}.
- Now: every registered raw_files partition with the sha256 of its latest redacted_dataset
  materialization (None for a partition not redacted yet).
- Trained on: the latest adapter_weights materialization names the jsonl_export it read (Dagster's
  lineage tag dagster/input_event_pointer/jsonl_export); that export recorded the map it was built
  from (its `redacted_sha256` metadata). None when no adapter was trained yet, or its export
  predates that record.
A retrain is due when the two differ: a source added, dropped or redacted to different bytes. The
same bytes redacted again (a re-run, an unchanged file landing again) are no change, and neither
is a `make ui` right after `make demo`, whose retrain trained on exactly what the sources hold.
"""
from __future__ import annotations

import hashlib
import json

import dagster as dg

from ft_pipeline.defs.data.partitions import RAW_FILES

REDACTED, EXPORT, ADAPTER = dg.AssetKey("redacted_dataset"), dg.AssetKey("jsonl_export"), dg.AssetKey("adapter_weights")


def redacted_now(instance: dg.DagsterInstance) -> dict[str, str | None]:
    now = {}
    for partition in instance.get_dynamic_partitions(RAW_FILES.name):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=REDACTED, asset_partitions=[partition]), limit=1).records
        now[partition] = _sha256(records[0]) if records else None
    return now


def redacted_trained_on(instance: dg.DagsterInstance) -> dict[str, str] | None:
    adapters = instance.fetch_materializations(ADAPTER, limit=1).records
    tags = (adapters[0].asset_materialization.tags or {}) if adapters else {}
    pointer = tags.get(f"dagster/input_event_pointer/{EXPORT.to_user_string()}")
    if not pointer or not pointer.isdigit():
        return None
    exports = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=EXPORT, storage_ids=[int(pointer)]),
                                              limit=1).records
    digests = exports[0].asset_materialization.metadata.get("redacted_sha256") if exports else None
    return dict(digests.value) if digests is not None else None


def fingerprint(redacted: dict[str, str | None]) -> str:
    return hashlib.sha256(json.dumps(redacted, sort_keys=True).encode()).hexdigest()


def _sha256(record) -> str | None:
    value = record.asset_materialization.metadata.get("sha256")
    return value.value if value is not None else None
