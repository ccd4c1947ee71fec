"""S3 end to end against moto's server on 127.0.0.1: raw source on S3, asset values stored in S3
through dagster-aws's S3PickleIOManager, selected by FT_PIPELINE_S3_BUCKET."""
import boto3
import dagster as dg

from ft_pipeline.defs.data.engine import RecordEngineResource
from ft_pipeline_tests.defs.pipeline_helpers import add_source, demo_slice


def test_pipeline_reads_raw_data_from_s3_and_stores_values_in_s3(moto_s3, tmp_path, monkeypatch):
    from dagster_aws.s3 import S3PickleIOManager

    from ft_pipeline.defs.data.assets import label_review_sample, raw_dataset, redacted_dataset
    from ft_pipeline.defs.task import task
    from ft_pipeline.defs.resources import io_manager

    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FT_PIPELINE_S3_BUCKET", "ft-assets")
    s3 = boto3.client("s3", endpoint_url=moto_s3)
    for bucket in ("ft-landing", "ft-assets"):
        s3.create_bucket(Bucket=bucket)
    source = demo_slice(tmp_path / "slice.jsonl", per_split={"train": 8, "eval": 2, "test": 2})
    s3.upload_file(str(source), "ft-landing", "conversations/2026-11-27.jsonl")

    manager = io_manager()
    assert isinstance(manager, S3PickleIOManager)
    with dg.instance_for_test() as instance:
        # an S3 prefix as one source partition (the S3 sensor registers one partition per object)
        first = dg.materialize(
            [task, raw_dataset, redacted_dataset], instance=instance,
            resources={"io_manager": manager, "record_engine": RecordEngineResource()},
            partition_key=add_source(instance, "s3://ft-landing/conversations/"),
        )
        assert first.success
        meta = instance.get_latest_materialization_event(dg.AssetKey("raw_dataset")).asset_materialization.metadata
        assert list(meta["source_sha256"].value) == ["s3://ft-landing/conversations/2026-11-27.jsonl"]
        assert meta["records"].value + meta["quarantined"].value == 12 + 2  # slice + 2 confidential

        stored = {o["Key"].rsplit("/", 1)[0] for o in s3.list_objects_v2(Bucket="ft-assets")["Contents"]}
        assert {"ft-pipeline/raw_dataset", "ft-pipeline/redacted_dataset"} <= stored  # one object per partition

        # A later run on another machine reads its input from S3, not from local disk.
        second = dg.materialize(
            [label_review_sample, redacted_dataset.to_source_asset(), task.to_source_asset()], instance=instance,
            resources={"io_manager": manager}, selection=[label_review_sample],
        )
        assert second.success
        assert "ft-pipeline/label_review_sample" in {o["Key"] for o in s3.list_objects_v2(Bucket="ft-assets")["Contents"]}
