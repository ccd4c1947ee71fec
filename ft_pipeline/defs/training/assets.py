"""Model selection and training. GPU work happens in the standalone trainer;
these assets only prepare, launch through the trainer resource, and report."""

from pathlib import Path

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.core.training import model_stats, recipe
from ft_pipeline.defs.common import file_metadata, task_config, task_metadata
from ft_pipeline.defs.failures import user_failure
from ft_pipeline.defs.gates import require_gates
from ft_pipeline.defs.pools import TRAINING_POOL
from ft_pipeline.defs.tracking.resources import MlflowResource
from ft_pipeline.defs.training.configs import BaseModelConfig
from ft_pipeline.defs.training.resources import TrainerResource, TrainingPlanResource

GROUP = "training"


@dg.asset(group_name=GROUP, kinds={"transformers"}, code_version="1")
def base_model(context: dg.AssetExecutionContext, config: BaseModelConfig, training_plan: TrainingPlanResource) -> dict:
    """The base model as a local Hugging Face directory (the bundled SmolLM2 is converted from
    GGUF once and cached under $FT_PIPELINE_HOME/models/): the one configured, else the training
    preset's own (the default presets train the bundled SmolLM2)."""
    from ft_pipeline.core.training.base_model import DEFAULT_BASE_MODEL, ensure_base_model

    name = config.name_or_path
    # a path that is not a model, a preset that is not there: one line naming it, no traceback
    with user_failure(FileNotFoundError, ValueError):
        if not name:
            name = training_plan.training_config("sft").base_model if training_plan.preset else DEFAULT_BASE_MODEL
        path = ensure_base_model(name)
        n_params = model_stats.count_parameters(Path(path)) if Path(path).is_dir() else None
    if n_params is None:  # a hub id: resolved by from_pretrained at load time
        context.add_output_metadata({"hub_id": str(path)})
        return {"path": str(path), "name": name, "n_params": None}
    context.add_output_metadata({**file_metadata(Path(path)), "name": name, "parameters": n_params})
    return {"path": str(path), "name": name, "n_params": n_params}


@dg.asset(group_name=GROUP, kinds={"peft", "trl"}, code_version="2", pool=TRAINING_POOL)
def adapter_weights(
    context: dg.AssetExecutionContext,
    trainer: TrainerResource,
    training_plan: TrainingPlanResource,
    mlflow: MlflowResource,
    base_model: dict,
    jsonl_export: dict,
    fit_assessment: dict,
    task: dict,
) -> dg.Output:
    """The LoRA adapter, trained by the standalone trainer with the planned preset (method by the
    task unless the plan says otherwise). Refuses to start unless every blocking gate upstream
    passed on the exact materializations it reads."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.fit.pilot import pilot_privacy
    from ft_pipeline.core.training import manifest
    from ft_pipeline.core.training.privacy import total_privacy

    gates = require_gates(context)
    with user_failure(ValueError):
        spec = task_config(task)
        training = training_plan.training_config(spec.method, spec.privacy)
    training.base_model = base_model["path"]
    # Same config on the same data trains into the same directory, so a killed run resumes
    # from its last checkpoint when the asset is materialized again.
    data_sha = file_metadata(Path(jsonl_export["path"]))["sha256"].value
    output_dir = paths.pipeline_home() / "models" / "adapter_weights" / f"{training.fingerprint()}-{data_sha[:12]}"
    # A preset that continues another (init_adapter: adapters/<preset>) is a recipe: the stages it
    # continues are trained first on this same export, unless their adapter already was.
    preset = training_plan.preset_path(spec.method)
    with user_failure(FileNotFoundError, ValueError):
        stages = recipe.plan(training, preset, Path(jsonl_export["path"]), max_steps=training_plan.max_steps,
                             base_model=training.base_model)
    records = _train_stages(context, trainer, stages, Path(jsonl_export["path"]))
    this_stage = recipe.Stage(preset.stem, preset, training, output_dir)
    # The ids the trainer is about to read, as digests, written before it starts: an erasure that
    # rewrites the export mid-training must still find this adapter (and refuse its promotion), and
    # one after a killed run must find its checkpoints (core/erasure/adapters.py).
    trained_on = manifest.training_manifest(Path(jsonl_export["path"]), training.method, training.init_adapter)
    stage_names = [*records, this_stage.record(trained_on["export_sha256"], {})]
    manifest.write_training_manifest(output_dir, {**trained_on, "stages": stage_names})
    metrics = trainer.launch(context, training, Path(jsonl_export["path"]), output_dir)
    # The data's whole budget: this run's epsilon plus what the fit assessment's pilots spent on it.
    privacy_total = total_privacy(metrics.get("privacy"), pilot_privacy(fit_assessment))
    records.append(this_stage.record(trained_on["export_sha256"], metrics))

    history = [(h["step"], h["loss"]) for h in metrics.get("history", []) if h.get("loss") is not None]
    curve = plots.line_chart({"train loss": history}, "Training loss", "step", "loss") if history else None
    context.add_output_metadata({
        **file_metadata(output_dir),
        **task_metadata(task),
        "method": training.method,
        "steps": metrics.get("steps"),
        "final_loss": metrics.get("final_loss"),
        "tokens_per_second": metrics.get("tokens_per_s"),
        "peak_memory_mb": round((metrics.get("peak_memory_bytes") or 0) / 2**20, 1),
        "resumed_from_step": metrics.get("resumed_from") or 0,
        "wall_seconds": metrics.get("wall_seconds"),
        "gates_verified": len(gates),
        "stages": dg.MetadataValue.json([{k: r[k] for k in ("stage", "method", "adapter", "reused", "steps")}
                                         for r in records]),
        **({"privacy": dg.MetadataValue.json(metrics["privacy"])} if metrics.get("privacy") else {}),
        **({"privacy_total": dg.MetadataValue.json(privacy_total)} if privacy_total else {}),
        **({"loss_curve": dg.MetadataValue.md(plots.png_to_markdown(curve, "loss curve"))} if curve else {}),
    })
    mlflow.log_training(context, task=task, training=training, metrics=metrics, adapter_dir=output_dir,
                        export_sha256=data_sha, fit_assessment=fit_assessment,
                        preset=str(training_plan.preset_path(spec.method)))
    # An explicit Output: with Dagster Pipes in play (subprocess / accelerate / ecs), a bare
    # return value is refused.
    return dg.Output({"path": str(output_dir), "metrics": metrics, "config": training.to_dict(),
                      "stages": records, "dagster_run_id": context.run_id, "privacy_total": privacy_total})


def _train_stages(context: dg.AssetExecutionContext, trainer: TrainerResource, stages: list, export: Path) -> list[dict]:
    """Trains each earlier stage of a recipe into the adapter folder the next one continues (or
    reuses it, trained on this export already); returns what lineage records of each."""
    from ft_pipeline.core.training import manifest

    records: list[dict] = []
    for stage in stages:
        trained_on = manifest.training_manifest(export, stage.config.method, stage.config.init_adapter)
        if stage.reuse:
            context.log.info(f"recipe stage {stage.name}: reusing {stage.output.name}, trained on this export")
            records.append(stage.record(trained_on["export_sha256"]))
            continue
        context.log.info(f"recipe stage {stage.name}: training {stage.config.method} first, the next stage continues it")
        # Until it is replaced, the old adapter there still holds what it was trained on: erasure
        # must find both sets of ids while training runs (the exact manifest follows).
        old = manifest.read_training_manifest(stage.output) or {}
        records.append(stage.record(trained_on["export_sha256"], {}))
        manifest.write_training_manifest(stage.output, {
            **trained_on, "stages": records,
            "trained_on": sorted(set(trained_on["trained_on"]) | set(old.get("trained_on", [])))})
        metrics = trainer.launch(context, stage.config, export, stage.output)
        records[-1] = stage.record(trained_on["export_sha256"], metrics)
        manifest.write_training_manifest(stage.output, {**trained_on, "stages": records})
    return records
