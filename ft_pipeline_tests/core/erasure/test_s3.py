"""Erasure in the stored-values bucket, against moto's S3 server: objects rewritten, and in a
versioned bucket the older versions that held the record deleted too."""
from __future__ import annotations

import pickle

import boto3
import pytest

from ft_pipeline.core.erasure import s3 as erasure_s3


@pytest.mark.parametrize("versioned", [False, True])
def test_scan_then_scrub_reaches_every_version(moto_s3, versioned):
    bucket = f"values-{'v' if versioned else 'u'}"
    s3 = boto3.client("s3", endpoint_url=moto_s3)
    s3.create_bucket(Bucket=bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = lambda key, value: s3.put_object(Bucket=bucket, Key=key, Body=pickle.dumps(value))
    put("ft-pipeline/fit_assessment", {"test_ids": ["r-a", "r-b"]})
    put("ft-pipeline/fit_assessment", {"test_ids": ["r-a", "r-c"]})  # a later run's value; the first is a version
    put("ft-pipeline/jsonl_export", {"path": "/x", "counts": {"train": 3}})
    put("ft-pipeline/storage/0123abcd-0000-0000-0000-000000000000/out", {"ids": ["r-a"]})
    put("elsewhere/fit_assessment", {"test_ids": ["r-a"]})  # outside the prefix: not the pipeline's
    store = erasure_s3.S3Store(bucket=bucket, prefix="ft-pipeline", endpoint_url=moto_s3)

    found = erasure_s3.scan(store, {"r-a"})
    assert found == [{"key": "ft-pipeline/fit_assessment", "kind": "s3 value: fit_assessment", "records": 1},
                     {"key": "ft-pipeline/storage/0123abcd-0000-0000-0000-000000000000/out", "kind": "s3 value: run outputs", "records": 1}]
    for item in found:
        assert erasure_s3.scrub(store, item["key"], {"r-a"}) == (2 if versioned and "fit" in item["key"] else 1)
        assert erasure_s3.scrub(store, item["key"], {"r-a"}) == 0  # a rerun finds it done
    assert erasure_s3.scan(store, {"r-a"}) == []
    latest = pickle.loads(s3.get_object(Bucket=bucket, Key="ft-pipeline/fit_assessment")["Body"].read())
    assert latest == {"test_ids": ["r-c"]}
    held = [v for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="ft-pipeline/")
            for v in page.get("Versions", [])
            if b"r-a" in s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()]
    assert held == []
    assert b"r-a" in s3.get_object(Bucket=bucket, Key="elsewhere/fit_assessment")["Body"].read()


def test_store_needs_a_bucket():
    with pytest.raises(ValueError, match="bucket"):
        erasure_s3.S3Store(bucket=" ")
