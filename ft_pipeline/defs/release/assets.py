"""Release: a versioned, documented release of the evaluated adapter, only when every gate passed
(the gates are the evaluation's blocking checks, re-verified on the exact inputs)."""

from pathlib import Path

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.core.release import registry
from ft_pipeline.core.training.manifest import TRAINING_IDS, read_training_manifest
from ft_pipeline.defs.common import file_metadata, task_config, task_metadata
from ft_pipeline.defs.failures import user_failure
from ft_pipeline.defs.gates import require_gates
from ft_pipeline.defs.pools import REGISTRY_POOL
from ft_pipeline.defs.release.configs import PromotionConfig
from ft_pipeline.defs.release.lineage import collect_lineage
from ft_pipeline.defs.tracking.resources import MlflowResource

GROUP = "release"


@dg.asset(group_name=GROUP, kinds={"registry"}, code_version="1", pool=REGISTRY_POOL)
def promoted_model(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    mlflow: MlflowResource,
    base_model: dict,
    jsonl_export: dict,
    adapter_weights: dict,
    eval_report: dict,
    task: dict,
) -> dict:
    """The versioned release under $FT_PIPELINE_HOME/registry/<task name>/<version>/: adapter,
    merged weights, model card and lineage; `current` moves only after the smoke test passed."""
    from ft_pipeline.core.release import release

    gates = require_gates(context)
    spec = task_config(task)
    trained_on = _clean_training_data(adapter_weights)
    root = paths.pipeline_home() / "registry"
    with user_failure(release.ReleaseError):
        staged = release.stage(root, spec, base_model["path"], adapter_weights["path"], jsonl_export["path"],
                               config.smoke_examples)
    lineage = collect_lineage(context, name=spec.name, version=registry.next_version(root, spec.name))
    lineage.update(release.record(spec, task, adapter_weights, eval_report, gates, staged))
    # rollout.hold_new_versions: a new version waits beside current until its rollout passes
    hold = spec.sections.rollout.hold_new_versions and registry.current_version(root, spec.name) is not None
    path = release.publish(root, spec.name, staged, lineage, trained_on, make_current=not hold)
    context.add_output_metadata({
        **file_metadata(path / "adapter"),
        **task_metadata(task),
        "version": path.name,
        "registry_path": dg.MetadataValue.path(str(path)),
        "model_card": dg.MetadataValue.md((path / "MODEL_CARD.md").read_text()),
        "smoke_test": f"{staged.prompts} held-out prompts answered, {staged.well_formed} well-formed for the task",
        "current": registry.current_version(root, spec.name),  # this version unless it waits for a rollout
    })
    mlflow.register_release(context, task=task, adapter_weights=adapter_weights, version_dir=path,
                            base_model_path=base_model["path"], alias="challenger" if hold else "champion")
    return {"path": str(path), "name": spec.name, "version": path.name}


def _clean_training_data(adapter_weights: dict) -> dict:
    """The adapter's training ids (digests), which must hold no record erased since it trained:
    the release would otherwise serve a model that saw data its owner had erased."""
    from ft_pipeline.core.data.suppression import erased_digests

    manifest = read_training_manifest(Path(adapter_weights["path"]))
    if manifest is None:
        raise dg.Failure(f"refusing to promote: {adapter_weights['path']} has no {TRAINING_IDS} "
                         "(trained before training ids were kept); materialize adapter_weights again")
    erased = set(manifest["trained_on"]) & erased_digests()
    if erased:
        raise dg.Failure(f"refusing to promote: adapter_weights was trained on {len(erased)} records erased since "
                         "(ft-pipeline erasures); retrain on the current export first")
    return manifest
