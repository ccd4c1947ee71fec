"""Sensors and schedules, evaluated with build_sensor_context against a real temp instance."""
import json
import os

import boto3
import dagster as dg
import pytest

from ft_pipeline.defs.automation.schedules import weekly_retrain
from ft_pipeline.defs.automation.sensors import new_raw_files_sensor, new_s3_objects_sensor


def declare_task(instance) -> None:
    """What materializing the `task` asset leaves in the instance, as far as the sensors look."""
    instance.report_runless_asset_event(dg.AssetMaterialization("task"))


def test_new_files_wait_for_a_task_and_are_not_lost(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setenv("FT_PIPELINE_INBOX", str(inbox))
    (inbox / "early.jsonl").write_text('{"id": "a"}\n')
    from ft_pipeline.definitions import defs

    repo = defs.get_repository_def()
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, repository_def=repo)
        skipped = new_raw_files_sensor(context)
        assert isinstance(skipped, dg.SkipReason) and "materialize the `task` asset" in skipped.skip_message
        assert context.cursor is None  # the file is not marked seen
        declare_task(instance)
        result = new_raw_files_sensor(context)
        assert [r.partition_key for r in result.run_requests] == [str(inbox / "early.jsonl")]


def test_local_sensor_requests_one_run_per_new_file(tmp_path, monkeypatch):
    inbox = tmp_path / "raw" / "inbox"
    inbox.mkdir(parents=True)
    monkeypatch.setenv("FT_PIPELINE_INBOX", str(inbox))
    from ft_pipeline.definitions import defs

    repo = defs.get_repository_def()
    with dg.instance_for_test() as instance:
        declare_task(instance)
        context = dg.build_sensor_context(instance=instance, repository_def=repo)
        assert isinstance(new_raw_files_sensor(context), dg.SkipReason)

        (inbox / "batch-1.jsonl").write_text('{"id": "a"}\n')
        (inbox / "batch-2.jsonl").write_text('{"id": "b"}\n')
        (inbox / "notes.txt").write_text("ignored")
        result = new_raw_files_sensor(context)
        # each new file becomes a raw_files partition with its own ingest run (parallel redaction)
        keys = [str(inbox / "batch-1.jsonl"), str(inbox / "batch-2.jsonl")]
        assert [r.partition_key for r in result.run_requests] == keys
        assert result.dynamic_partitions_requests[0].partition_keys == keys
        assert all(r.job_name in (None, "ingest_source") for r in result.run_requests)
        instance.add_dynamic_partitions("raw_files", keys)  # what the daemon does with the request

        # same files, cursor advanced: nothing new
        context = dg.build_sensor_context(instance=instance, repository_def=repo, cursor=context.cursor)
        assert isinstance(new_raw_files_sensor(context), dg.SkipReason)

        # a changed file is ingested again (new run key), an already known partition is not re-added
        (inbox / "batch-2.jsonl").write_text('{"id": "b"}\n{"id": "c"}\n')
        # evaluate_tick, as the daemon calls it, also validates the result (cursor, partition keys)
        from dagster._core.definitions.partitions.context import partition_loading_context

        with partition_loading_context(dynamic_partitions_store=instance):
            second = new_raw_files_sensor.evaluate_tick(context)
        assert [r.partition_key for r in second.run_requests] == [keys[1]]
        assert second.run_requests[0].run_key not in {r.run_key for r in result.run_requests}
        assert second.dynamic_partitions_requests == []
        assert json.loads(context.cursor).keys() == {"batch-1.jsonl", "batch-2.jsonl"}


def test_local_sensor_skips_without_inbox(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_PIPELINE_INBOX", str(tmp_path / "missing"))
    assert isinstance(new_raw_files_sensor(dg.build_sensor_context()), dg.SkipReason)


def test_s3_sensor_against_moto_server(moto_s3, monkeypatch):
    monkeypatch.setenv("FT_PIPELINE_S3_INBOX", "s3://landing/conversations/")
    s3 = boto3.client("s3", endpoint_url=moto_s3)
    s3.create_bucket(Bucket="landing")
    from ft_pipeline.definitions import defs

    repo = defs.get_repository_def()
    with dg.instance_for_test() as instance:
        declare_task(instance)
        context = dg.build_sensor_context(instance=instance, repository_def=repo)
        assert isinstance(new_s3_objects_sensor(context), dg.SkipReason)
        s3.put_object(Bucket="landing", Key="conversations/day-1.jsonl", Body=b'{"id": "x"}\n')
        result = new_s3_objects_sensor(context)
        assert [r.partition_key for r in result.run_requests] == ["s3://landing/conversations/day-1.jsonl"]
        assert result.dynamic_partitions_requests[0].partition_keys == ["s3://landing/conversations/day-1.jsonl"]
        context = dg.build_sensor_context(instance=instance, repository_def=repo, cursor=context.cursor)
        assert isinstance(new_s3_objects_sensor(context), dg.SkipReason)


def test_weekly_schedule_runs_the_full_gated_job():
    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.automation.jobs import retrain_job

    graph = defs.resolve_asset_graph()
    assert weekly_retrain.cron_schedule == "0 3 * * 1" and weekly_retrain.job_name == "retrain"
    sources = {dg.AssetKey("task"), dg.AssetKey("raw_dataset"), dg.AssetKey("redacted_dataset")}
    # partitioned by day: what serving logged, not trained on; and a rollout, which needs a candidate and requests
    serving = {dg.AssetKey("production_traffic"), dg.AssetKey("rollout")}
    assert retrain_job.selection.resolve(graph) == graph.get_all_asset_keys() - sources - serving
    # every check downstream of the sources rides along; the per-source gates ran in each source's
    # ingest run, and adapter_weights re-verifies them on every partition before it trains
    assert retrain_job.selection.resolve_checks(graph) == {k for k in graph.asset_check_keys
                                                          if k.asset_key not in sources | serving}
    ingest = defs.resolve_job_def("ingest_source")
    assert ingest.partitions_def.name == "raw_files"
    assert {k.name for k in ingest.asset_layer.asset_graph.asset_check_keys} >= {"labels_are_verified", "annotators_agree"}


def test_sources_ready_sensor_waits_for_every_partition(tmp_path, monkeypatch):
    """Two files landed; the retrain is requested only once both are redacted and gated, and once."""
    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.automation.sensors import sources_ready_sensor
    from ft_pipeline_tests.defs.pipeline_helpers import add_source, demo_slice

    monkeypatch.setenv("FT_PIPELINE_HOME", str(tmp_path / "home"))
    # the default slice: big enough for the label gates (coverage, kappa) to pass on each file
    files = [demo_slice(tmp_path / "a.jsonl"), demo_slice(tmp_path / "b.jsonl")]
    ingest = defs.resolve_job_def("ingest_source")
    with dg.instance_for_test() as instance:
        repo = defs.get_repository_def()

        def tick(cursor=None):
            context = dg.build_sensor_context(instance=instance, repository_def=repo, cursor=cursor)
            return sources_ready_sensor(context), context.cursor

        assert isinstance(tick()[0], dg.SkipReason)  # nothing redacted yet
        from ft_pipeline.defs.task import task

        assert dg.materialize([task], instance=instance).success  # the task in force (the demo's)
        keys = [add_source(instance, f) for f in files]
        assert ingest.execute_in_process(instance=instance, partition_key=keys[0]).success
        waiting, _ = tick()
        assert isinstance(waiting, dg.SkipReason) and "never materialized on 1 of 2 partitions" in waiting.skip_message
        assert ingest.execute_in_process(instance=instance, partition_key=keys[1]).success
        request, cursor = tick()
        assert isinstance(request, dg.RunRequest) and request.tags["ft_pipeline/trigger"] == "sources_ready"
        assert isinstance(tick(cursor)[0], dg.SkipReason)  # once per change
