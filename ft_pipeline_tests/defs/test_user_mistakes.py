"""A user's mistake in what an asset reads stops that asset with one line naming the file (or
run config) and the field: a dg.Failure, never a traceback, never a silent default."""
from __future__ import annotations

import shutil

import dagster as dg
import pytest

from ft_pipeline.defs.data.engine import RecordEngineResource
from ft_pipeline.defs.training.resources import TrainingPlanResource
from ft_pipeline_tests.defs.pipeline_helpers import add_source, demo_slice, demo_task


def failure_description(result) -> str:
    [failure] = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    assert failure.user_failure_data is not None, failure.error.message  # a dg.Failure, not a crash
    return failure.user_failure_data.description


@pytest.mark.parametrize("in_task, in_run_config, says", [
    # in the task file: the task asset stops, as for any task-file mistake, with the line
    ("/nowhere/protectd/*.txt", "",
     "{task} line {line}: field redaction.protected_documents: no file matches /nowhere/protectd/*.txt"),
    # the run config's glob joins the task's list, and is reported as part of it
    (None, "/nowhere/*.md", "{task}: field redaction.protected_documents: no file matches /nowhere/*.md"),
], ids=["task-file", "run-config"])
def test_a_protected_documents_typo_stops_redaction(tmp_path, ft_home, in_task, in_run_config, says):
    """A glob that matches nothing would turn proprietary-document screening off without a word."""
    from ft_pipeline.core.task import TaskConfig
    from ft_pipeline.defs.data.assets import raw_dataset, redacted_dataset
    from ft_pipeline.defs.task import task as task_asset
    from ft_pipeline_tests.defs.pipeline_helpers import DEMO_TASK

    redaction = dict(TaskConfig.from_yaml(DEMO_TASK).redaction)  # its documents' glob, resolved
    if in_task:
        redaction["protected_documents"] = in_task
    task_file = demo_task(tmp_path / "task.yaml", redaction=redaction)
    source = demo_slice(tmp_path / "input.jsonl", per_split={"train": 4, "eval": 1, "test": 1})
    config = {"ops": {"task": {"config": {"path": str(task_file)}},
                      "redacted_dataset": {"config": {"protected_documents": in_run_config}}}}
    with dg.instance_for_test() as instance:
        result = dg.materialize([task_asset, raw_dataset, redacted_dataset], instance=instance, run_config=config,
                                partition_key=add_source(instance, source), raise_on_error=False,
                                resources={"record_engine": RecordEngineResource()})
        # the key's own line inside the redaction: section
        line = next(i for i, text in enumerate(task_file.read_text().splitlines(), 1)
                    if text.startswith("  protected_documents:"))
        assert failure_description(result) == says.format(task=task_file, line=line)
        assert instance.get_latest_materialization_event(dg.AssetKey("redacted_dataset")) is None


def test_a_base_model_without_weights_stops_in_one_line(tmp_path, tiny_model_dir):
    """A directory holding only config.json would be sized 0 parameters: a $0 cost estimate."""
    from ft_pipeline.defs.training.assets import base_model

    weightless = tmp_path / "weightless"
    shutil.copytree(tiny_model_dir, weightless, ignore=shutil.ignore_patterns("*.safetensors"))
    result = dg.materialize([base_model], instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                            resources={"training_plan": TrainingPlanResource()},
                            run_config={"ops": {"base_model": {"config": {"name_or_path": str(weightless)}}}})
    assert failure_description(result) == (f"base_model: {weightless} has no weights to size the model by "
                                           "(no *.safetensors, no pytorch_model*.bin)")


def test_without_a_base_model_the_presets_own_is_loaded_and_priced(tmp_path, tiny_model_dir):
    """`--preset qwen7b-qlora-1gpu.yaml` alone must not train (and price) the bundled 135M model
    with a 7B preset's settings: the preset's base_model is the model."""
    from ft_pipeline.defs.training.assets import base_model
    from ft_pipeline_tests.defs.pipeline_helpers import write_preset

    preset = write_preset(tmp_path / "preset.yaml")
    preset.write_text(preset.read_text().replace("base_model: tiny", f"base_model: {tiny_model_dir}"))
    assert f"base_model: {tiny_model_dir}" in preset.read_text()
    result = dg.materialize([base_model], instance=dg.DagsterInstance.ephemeral(),
                            resources={"training_plan": TrainingPlanResource(preset=str(preset))})
    value = result.output_for_node("base_model")
    assert value["path"] == str(tiny_model_dir) and value["n_params"] > 0
