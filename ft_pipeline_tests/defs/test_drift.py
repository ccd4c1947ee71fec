"""Drift on a real Dagster instance: the check on a day of production_traffic against the training
export, and the sensor that requests a retrain once a day drifted (tested with build_sensor_context)."""
from __future__ import annotations

import json

import dagster as dg

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
