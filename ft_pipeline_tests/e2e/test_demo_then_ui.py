"""`make demo`, then `make ui`: the daemon's first ticks start no run by themselves. After that a
source redacted to new bytes is retrained once; the same bytes redacted again are not.

The demo is `ft-pipeline run` on the bundled files; here the same command runs on a slice of
them with the tiny model. The ticks are evaluated as the daemon evaluates them (evaluate_tick,
with the instance's dynamic partitions) against the instance the run wrote."""
from __future__ import annotations

import json

import dagster as dg
import pytest

from ft_pipeline import cli
from ft_pipeline_tests.defs.pipeline_helpers import demo_slice, demo_task, write_preset


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("demo-then-ui")
    (root / "dagster_home").mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        env.setenv("FT_PIPELINE_HOME", str(root / "ft_home"))
        source = demo_slice(root / "records.jsonl")
        task = demo_task(root / "task.yaml", gates={"min_group_size": 3, "capability_items": 8, "n_boot": 200})
        code = cli.main(["run", str(source), "--task", str(task), "--preset", str(write_preset(root / "tiny.yaml")),
                         "--base-model", str(tiny_model_dir), "--max-examples", "8"])
        assert code in (0, 1)  # 1: the random tiny model fails a release gate after training, as expected
        yield {"instance": dg.DagsterInstance.get(), "source": source}


def first_ticks(instance, cursors: dict | None = None) -> dict:
    """Every sensor the daemon runs by default, evaluated once: {name: (run requests, new cursor)}."""
    from dagster._core.definitions.partitions.context import partition_loading_context

    from ft_pipeline.definitions import defs

    repo = defs.get_repository_def()
    ticks = {}
    for sensor in repo.sensor_defs:
        if sensor.default_status != dg.DefaultSensorStatus.RUNNING:
            continue
        context = dg.build_sensor_context(instance=instance, repository_def=repo,
                                          cursor=(cursors or {}).get(sensor.name))
        with partition_loading_context(dynamic_partitions_store=instance):
            result = sensor.evaluate_tick(context)
        ticks[sensor.name] = (result.run_requests or [], context.cursor)
    return ticks


def test_the_ui_right_after_the_demo_starts_no_run(after_demo):
    from ft_pipeline.definitions import defs
    from ft_pipeline.defs.automation.trained_data import redacted_now, redacted_trained_on

    instance = after_demo["instance"]
    now = redacted_now(instance)
    assert len(now) == 1 and all(now.values()) and redacted_trained_on(instance) == now  # the demo trained
    ticks = first_ticks(instance)
    assert {"sources_ready_sensor", "erasure_retrain_sensor"} <= set(ticks)
    assert {name: requests for name, (requests, _) in ticks.items() if requests} == {}
    # Nothing else starts runs on its own: every schedule is off by default, no asset auto-materializes.
    repo = defs.get_repository_def()
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in repo.schedule_defs)
    graph = defs.resolve_asset_graph()
    assert all(graph.get(key).automation_condition is None for key in graph.get_all_asset_keys())


def test_only_new_redacted_bytes_request_a_retrain_once(after_demo):
    from ft_pipeline import runner
    from ft_pipeline.definitions import defs

    instance, source = after_demo["instance"], after_demo["source"]
    ingest = defs.resolve_job_def("ingest_source")
    key = runner.partition_key(str(source))

    # The same file ingested and redacted again: the same redacted bytes, nothing to retrain on.
    assert ingest.execute_in_process(instance=instance, partition_key=key).success
    assert first_ticks(instance)["sources_ready_sensor"][0] == []

    # One more verified record lands in the file: new redacted bytes, one retrain, once.
    records = [json.loads(line) for line in source.read_text().splitlines()]
    extra = {**next(r for r in records if r.get("split") == "train"), "id": "late-arrival"}
    source.write_text(source.read_text() + json.dumps(extra) + "\n")
    assert ingest.execute_in_process(instance=instance, partition_key=key).success
    requests, cursor = first_ticks(instance)["sources_ready_sensor"]
    assert [r.tags["ft_pipeline/trigger"] for r in requests] == ["sources_ready"]
    assert first_ticks(instance, {"sources_ready_sensor": cursor})["sources_ready_sensor"][0] == []
