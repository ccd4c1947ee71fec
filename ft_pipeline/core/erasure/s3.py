"""Erasure in the S3 bucket that stores the values assets pass each other (FT_PIPELINE_S3_BUCKET).

Those values are pickles of small dicts; the ones that hold records hold their ids (the held-out
ids fit_assessment hands to eval_report, for one). Each object that holds an erased id is written
again without it — a PUT replaces an object whole, so a reader never sees half of one — and, in a
versioned bucket, every older version that held it is deleted too: a version is a copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ft_pipeline.core.erasure.stored_values import scrub_bytes


@dataclass(frozen=True)
class S3Store:
    bucket: str = field(metadata={"help": "the bucket of stored values (FT_PIPELINE_S3_BUCKET)"})
    prefix: str = field(default="ft-pipeline", metadata={"help": "key prefix of stored values (FT_PIPELINE_S3_PREFIX)"})
    endpoint_url: str | None = field(default=None, metadata={"help": "S3-compatible endpoint (AWS_ENDPOINT_URL)"})

    def __post_init__(self):
        if not self.bucket.strip():
            raise ValueError("S3Store.bucket must name a bucket")

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url)

    def kind(self, key: str) -> str:
        parts = key.removeprefix(self.prefix.rstrip("/") + "/").split("/")
        return "s3 value: " + ("run outputs" if parts[0] == "storage" else parts[0])


def _status(client, bucket: str) -> str:
    return client.get_bucket_versioning(Bucket=bucket).get("Status") or "Unversioned"


def _versions(client, store: S3Store, key: str | None = None):
    """(key, version id, is latest) of every stored object version under the prefix (or of `key`)."""
    prefix = key if key is not None else store.prefix.rstrip("/") + "/"
    for page in client.get_paginator("list_object_versions").paginate(Bucket=store.bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if key is None or version["Key"] == key:
                yield version["Key"], version["VersionId"], version["IsLatest"]


def _held(client, store: S3Store, key: str, version_id: str, ids: set[str]) -> tuple[bytes | None, int]:
    body = client.get_object(Bucket=store.bucket, Key=key, VersionId=version_id)["Body"].read()
    return scrub_bytes(body, key, ids)


def scan(store: S3Store, ids: set[str]) -> list[dict]:
    """Every object (any version) that holds an erased id: {key, kind, records}; nothing is changed."""
    client, found = store.client(), {}
    for key, version_id, _ in _versions(client, store):
        _, removed = _held(client, store, key, version_id, ids)
        if removed:
            found[key] = max(found.get(key, 0), removed)
    return [{"key": key, "kind": store.kind(key), "records": n} for key, n in sorted(found.items())]


def scrub(store: S3Store, key: str, ids: set[str]) -> int:
    """Rewrites `key` without the erased ids and deletes its older versions that held them; returns
    how many versions it changed (0 when a previous, interrupted call had already done it all)."""
    client = store.client()
    status = _status(client, store.bucket)
    changed = 0
    for _, version_id, latest in list(_versions(client, store, key)):
        new, removed = _held(client, store, key, version_id, ids)
        if not removed:
            continue
        if latest:
            client.put_object(Bucket=store.bucket, Key=key, Body=new)
        # A PUT replaced the unversioned object (and a suspended bucket's "null" version) in
        # place; any other version that held the ids survives it and is deleted by its id.
        if status == "Enabled" or (status == "Suspended" and version_id != "null"):
            client.delete_object(Bucket=store.bucket, Key=key, VersionId=version_id)
        changed += 1
    return changed
