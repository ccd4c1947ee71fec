"""Drift on a real Dagster instance: the check on a day of production_traffic against the training
export, and the sensor that requests a retrain once a day drifted (tested with build_sensor_context)."""
from __future__ import annotations

import json

import dagster as dg
import pytest

from ft_pipeline.core.serving import traffic
from ft_pipeline.defs.serving.assets import production_traffic
from ft_pipeline.defs.serving.drift import CHECK, drift_retrain_sensor, traffic_matches_training_data
from ft_pipeline.defs.serving.resources import ModelServerResource
from ft_pipeline_tests.core.serving.helpers import free_port

TASK = """\
name: ticket-queue
type: classification
labels: [billing, shipping]
drift:
  min_requests: 20
"""


def ticket(i: int) -> tuple[str, str]:
    return ((f"ticket {i}: I was charged twice for order {1000 + i}", "billing") if i % 2 else
            (f"ticket {i}: my parcel {2000 + i} has not arrived", "shipping"))


def record_traffic(texts_and_answers) -> None:
    for text, answer in texts_and_answers:
        traffic.record({"status": 200, "answer": answer, "messages": [{"role": "user", "content": text}]})


def materialize_day(instance) -> dg.AssetCheckEvaluation:
    result = dg.materialize([production_traffic, traffic_matches_training_data], instance=instance,
                            partition_key=traffic.today(),
                            resources={"model_server": ModelServerResource(port=free_port())})
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_drifted_traffic_fails_the_check_and_the_sensor_requests_one_retrain(ft_home, tmp_path):
    (tmp_path / "task.yaml").write_text(TASK)
    export = tmp_path / "export"
    export.mkdir()
    (export / "train.jsonl").write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": text}, {"role": "assistant", "content": label}]}) + "\n"
        for text, label in map(ticket, range(200))))
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization("task", metadata={"path": dg.MetadataValue.path(str(tmp_path / "task.yaml"))}))
    instance.report_runless_asset_event(dg.AssetMaterialization("jsonl_export", metadata={"path": dg.MetadataValue.path(str(export))}))

    record_traffic(ticket(i) for i in range(300, 340))  # like the training data, labels answered alike
    alike = materialize_day(instance)
    assert alike.check_name == CHECK and alike.passed, alike.description
    assert alike.metadata["n_live"].value == 40 and alike.metadata["token_distance"].value < 0.5
    context = dg.build_sensor_context(instance=instance)
    assert isinstance(drift_retrain_sensor(context), dg.SkipReason)

    # The business changed: long questions about a product the model never saw, all routed to shipping.
    record_traffic((f"hello, question {i} about the new solar inverter warranty and installation " * 4, "shipping")
                   for i in range(200))
    drifted = materialize_day(instance)
    assert not drifted.passed and drifted.severity == dg.AssetCheckSeverity.WARN
    assert set(drifted.metadata["drifted"].value) == {"length_ks", "token_distance", "label_distance"}
    context = dg.build_sensor_context(instance=instance, cursor=context.cursor)
    request = drift_retrain_sensor(context)
    assert isinstance(request, dg.RunRequest) and request.tags["ft_pipeline/trigger"] == "drift"
    again = dg.build_sensor_context(instance=instance, cursor=context.cursor)
    assert isinstance(drift_retrain_sensor(again), dg.SkipReason)  # one retrain per drifted check


def test_labelled_feedback_since_the_last_training_requests_one_retrain(ft_home, tmp_path):
    """drift.feedback_retrain: 3 labels from /v1/feedback since adapter_weights last materialized
    request one retrain; a label from before that training does not count, nor does one counted for
    an earlier request."""
    import time

    from ft_pipeline.defs.serving.drift import feedback_retrain_sensor

    (tmp_path / "task.yaml").write_text(TASK.replace("  min_requests: 20", "  min_requests: 20\n  feedback_retrain: 3"))
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization("task", metadata={"path": dg.MetadataValue.path(str(tmp_path / "task.yaml"))}))
    feedback = lambda n: [traffic.record({"event": "feedback", "request_id": f"chatcmpl-{i}", "label": "billing"})  # noqa: E731
                          for i in range(n)]
    tick = lambda cursor=None: feedback_retrain_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))  # noqa: E731

    feedback(1)  # before the training below: not new
    time.sleep(0.01)
    instance.report_runless_asset_event(dg.AssetMaterialization("adapter_weights"))
    time.sleep(0.01)
    feedback(2)
    assert "2 labels since the last training" in tick().skip_message
    feedback(1)
    request = tick()
    assert isinstance(request, dg.RunRequest) and request.tags == {"ft_pipeline/trigger": "feedback", "ft_pipeline/feedback": "3"}
    context = dg.build_sensor_context(instance=instance)
    feedback_retrain_sensor(context)
    feedback(5)
    assert isinstance(tick(context.cursor), dg.SkipReason)  # one retrain per training
    time.sleep(0.01)
    instance.report_runless_asset_event(dg.AssetMaterialization("adapter_weights"))  # the retrain ran
    assert isinstance(tick(context.cursor), dg.SkipReason)
    assert traffic.summarize(traffic.today())["feedback"] == 9 and traffic.summarize(traffic.today())["requests"] == 0


@pytest.mark.parametrize("value, why", [(-1, "must be >= 0"), ("many", "drift.feedback_retrain")])
def test_feedback_retrain_is_validated_like_the_other_drift_fields(value, why):
    from ft_pipeline.core.release.rollout_config import DriftConfig
    from ft_pipeline.core.task import TaskError

    with pytest.raises(TaskError, match=why.replace(".", r"\.")):
        DriftConfig.from_dict({"feedback_retrain": value}, "task.yaml")
