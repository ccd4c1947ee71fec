"""Sensors and schedules, evaluated with build_sensor_context against a real temp instance."""
import json
import os

import boto3
import dagster as dg
import pytest

from ft_pipeline.defs.automation.schedules import weekly_retrain
from ft_pipeline.defs.automation.sensors import new_raw_files_sensor, new_s3_objects_sensor


def test_local_sensor_requests_one_run_per_new_file(tmp_path, monkeypatch):
    inbox = tmp_path / "raw" / "inbox"
    inbox.mkdir(parents=True)
    monkeypatch.setenv("FT_PIPELINE_INBOX", str(inbox))
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(new_raw_files_sensor(context), dg.SkipReason)

        (inbox / "batch-1.jsonl").write_text('{"id": "a"}\n')
        (inbox / "notes.txt").write_text("ignored")
        request = new_raw_files_sensor(context)
        assert isinstance(request, dg.RunRequest)
        assert request.run_config["ops"]["raw_dataset"]["config"]["source"] == str(inbox / "*.jsonl")
        assert request.tags["ft_pipeline/new_files"] == "1"

        # same files, cursor advanced: nothing new
        context = dg.build_sensor_context(instance=instance, cursor=context.cursor)
        assert isinstance(new_raw_files_sensor(context), dg.SkipReason)

        (inbox / "batch-2.jsonl").write_text('{"id": "b"}\n')
        second = new_raw_files_sensor(context)
        assert isinstance(second, dg.RunRequest) and second.run_key != request.run_key
        assert json.loads(context.cursor).keys() == {"batch-1.jsonl", "batch-2.jsonl"}


def test_local_sensor_skips_without_inbox(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_PIPELINE_INBOX", str(tmp_path / "missing"))
    assert isinstance(new_raw_files_sensor(dg.build_sensor_context()), dg.SkipReason)


def test_s3_sensor_against_moto_server(moto_s3, monkeypatch):
    monkeypatch.setenv("FT_PIPELINE_S3_INBOX", "s3://landing/conversations/")
    s3 = boto3.client("s3", endpoint_url=moto_s3)
    s3.create_bucket(Bucket="landing")
    context = dg.build_sensor_context()
    assert isinstance(new_s3_objects_sensor(context), dg.SkipReason)
    s3.put_object(Bucket="landing", Key="conversations/day-1.jsonl", Body=b'{"id": "x"}\n')
    request = new_s3_objects_sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["raw_dataset"]["config"]["source"] == "s3://landing/conversations/"
    context = dg.build_sensor_context(cursor=context.cursor)
    assert isinstance(new_s3_objects_sensor(context), dg.SkipReason)


def test_weekly_schedule_runs_the_full_gated_job():
    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.automation.jobs import retrain_job

    graph = defs.resolve_asset_graph()
    assert weekly_retrain.cron_schedule == "0 3 * * 1" and weekly_retrain.job_name == "retrain"
    assert retrain_job.selection.resolve(graph) == graph.get_all_asset_keys()
    # every check rides along, so a scheduled retrain passes through every gate
    assert retrain_job.selection.resolve_checks(graph) == graph.asset_check_keys
