"""`ft-pipeline run`: the whole graph on your own data and task, in the Dagster instance at
DAGSTER_HOME, through the same jobs the sensors launch.

    ft-pipeline run data/bank/train.csv --task configs/tasks/bank-intents.yaml --max-steps 60

1. The task file and the sources are checked first (a column the task maps must exist in every
   local source): a user's mistake stops here, before any model is loaded.
2. The run takes its home's turn in the instance's run queue (defs/run_queue.py): the UI lists it,
   and it waits while another run of the home (CLI, UI or sensor) holds the home.
3. The sources become the active `raw_files` partitions: exactly what this run trains on. Other
   registered sources leave the active set (their history stays in the instance), except those a
   queued or in-progress run was started for.
4. A run that materializes `task` from the task file (the task in force from now on, for the
   sensors too), one `ingest_source` run per source (ingestion, redaction and the per-source
   gates), then one `retrain` run for everything downstream — bias audit, export, fit
   assessment, training, evaluation, promotion — through every gate.
The summary names the retrain run, the task's metric per variant, the gates that failed and the
promoted version.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from ft_pipeline.core import paths
from ft_pipeline.errors import UserError


@dataclass
class RunRequest:
    sources: list[str]
    task: str
    method: str = ""
    preset: str = ""
    max_steps: int = 0
    max_examples: int = 0
    base_model: str = ""
    override_reason: str = ""  # train against the fit assessment's recommendation, for this recorded reason
    engine: str = ""  # where the record-level steps run (local | ray); "" = the resource's default


@dataclass
class RunSummary:
    run_id: str | None = None
    success: bool = False
    metric: str = ""
    variants: dict = field(default_factory=dict)
    failed_gates: list[str] = field(default_factory=list)
    promoted: str | None = None
    eval_report: str | None = None
    failed_step: str | None = None
    failure: str | None = None  # why failed_step failed, one line
    ingest_runs: list[str] = field(default_factory=list)
    deactivated_sources: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "success": self.success, "metric": self.metric, "variants": self.variants,
                "failed_gates": self.failed_gates, "promoted": self.promoted, "eval_report": self.eval_report,
                "failed_step": self.failed_step, "failure": self.failure, "ingest_runs": self.ingest_runs,
                "deactivated_sources": self.deactivated_sources}


def check_request(request: RunRequest):
    """Everything that can be checked before any work starts; raises UserError naming file and field."""
    _check_recipe(request)  # first: it needs no Dagster import, so a missing input is told in a second
    from ft_pipeline.core.data.sources import InputError, format_of, source_columns
    from ft_pipeline.core.task import TaskConfig, TaskError, check_columns
    from ft_pipeline.defs.data.partitions import source_location
    from ft_pipeline.core.task_file import task_path as task_file

    from ft_pipeline.core.data.task_text import check_task_text

    try:
        task = TaskConfig.from_yaml(task_file(request.task))
        check_task_text(task)  # a name in the system prompt stops here, not at the export's gate
    except TaskError as exc:
        raise UserError(str(exc)) from None
    if request.method and request.method not in ("sft", "dpo", "grpo"):
        raise UserError(f"--method {request.method}: must be sft, dpo or grpo")
    if request.max_steps < 0 or request.max_examples < 0:
        raise UserError("--max-steps and --max-examples must be >= 0")
    if request.engine:
        from ft_pipeline.core.scale import EngineError, check_engine

        try:
            check_engine(request.engine)
            if request.engine == "ray" and os.environ.get("RAY_ADDRESS"):
                from ft_pipeline.core.scale.engines import connect

                connect()  # a cluster that does not answer stops here, in one line, before any ingest
        except EngineError as exc:
            raise UserError(f"--engine: {exc}") from None
    if os.environ.get("FT_PIPELINE_TRAINER_MODE") == "ray" and os.environ.get("RAY_ADDRESS"):
        from ft_pipeline.core.scale.engines import EngineError, connect

        try:
            connect()  # the trainer's cluster, checked before the data steps rather than after them
        except EngineError as exc:
            raise UserError(f"FT_PIPELINE_TRAINER_MODE=ray: {exc}") from None
    if not request.sources:
        raise UserError("give at least one source file (a path, a glob or an s3:// URI)")
    for source in request.sources:
        if source.startswith("s3://"):
            continue  # read (and its columns checked) by raw_dataset
        files = sorted(f for f in glob.glob(source_location(source), recursive=True) if os.path.isfile(f))
        if not files:
            raise UserError(f"{source}: no such file")
        for name in files:
            try:
                check_columns(task, source_columns(name, format_of(name)), name)
            except (TaskError, InputError) as exc:
                raise UserError(str(exc)) from None
    base_model = request.base_model
    if request.preset or task.privacy:  # the task's privacy: meets the preset (and --method) here
        from ft_pipeline.core.training.presets import training_config

        try:
            training = training_config(request.preset, request.method, task.method, privacy=task.privacy)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if request.preset:
            base_model = base_model or training.base_model
    _check_local_base_model(base_model, "--base-model" if request.base_model else f"{request.preset}: base_model")
    return task


def _check_recipe(request: RunRequest) -> None:
    """The adapter the chosen preset continues: there, or trainable by the preset of its name (a
    recipe: core/training/recipe.py). A task or --method mistake is left to the checks after it."""
    from ft_pipeline.core.task import TaskConfig, TaskError
    from ft_pipeline.core.training import recipe
    from ft_pipeline.core.training.config import TrainingConfig
    from ft_pipeline.core.training.presets import preset_path

    method = request.method if request.method in ("sft", "dpo", "grpo") else ""  # else: named below
    if not (request.preset or method):  # the task's own method picks the bundled preset
        try:
            method = TaskConfig.from_yaml(paths.REPO_ROOT / Path(request.task).expanduser()).method
        except (TaskError, OSError, ValueError):
            return
    preset = preset_path(request.preset, method)
    try:
        recipe.check(TrainingConfig.from_yaml(preset), preset)
    except FileNotFoundError:
        raise UserError(f"{preset}: no such training preset") from None
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _check_local_base_model(name: str, where: str) -> None:
    """A local base model that is not there, or holds no weights, stops the run before ingest (a
    bundled name is converted, and a hub id downloaded, by the base_model asset)."""
    from ft_pipeline.core.training import base_model, model_stats

    if not name or name in base_model.BUNDLED_MODELS:
        return
    try:
        path = base_model.ensure_base_model(name)
        if isinstance(path, Path):
            model_stats.count_parameters(path)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(f"{where}: {str(exc).removeprefix('base_model: ')}") from None


def partition_key(source: str) -> str:
    """Sources are registered as the user wrote them, relative paths from the repo root (under an
    alias when the name holds PII: core/data/source_names.py)."""
    from ft_pipeline.defs.data.partitions import partition_key_for

    if source.startswith("s3://"):
        return partition_key_for(source)
    path = Path(source).expanduser().resolve()
    try:
        return partition_key_for(str(path.relative_to(paths.REPO_ROOT)))
    except ValueError:
        return partition_key_for(str(path))


def activate_sources(instance, keys: list[str]) -> list[str]:
    """Makes `keys` the registered raw_files partitions, but never removes one that a queued or
    in-progress run uses; returns the ones it deactivated."""
    from ft_pipeline.defs.data.partitions import RAW_FILES, register_sources

    from ft_pipeline.defs.run_queue import partitions_in_use

    register_sources(instance, keys)
    in_use = partitions_in_use(instance)  # a sensor's ingest of one still running would die on it
    others = [k for k in instance.get_dynamic_partitions(RAW_FILES.name) if k not in keys and k not in in_use]
    for key in others:
        instance.delete_dynamic_partition(RAW_FILES.name, key)
    return others


def run_config(request: RunRequest, task_path: str) -> dict:
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}},
              "ops": {"task": {"config": {"path": task_path}}}}
    plan = {k: v for k, v in (("preset", request.preset), ("method", request.method),
                              ("max_steps", request.max_steps)) if v}
    if plan:
        config["resources"] = {"training_plan": {"config": plan}}
    if request.engine:
        config.setdefault("resources", {})["record_engine"] = {"config": {"engine": request.engine}}
    if request.max_examples:
        for op in ("fit_assessment", "eval_report"):
            config["ops"][op] = {"config": {"max_examples": request.max_examples}}
    if request.base_model:
        config["ops"]["base_model"] = {"config": {"name_or_path": request.base_model}}
    if request.override_reason:
        fit = config["ops"].setdefault("fit_assessment", {"config": {}})["config"]
        fit.update(override=True, override_reason=request.override_reason)
    return config


def _failed_gates(result) -> list[str]:
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    for event in result.all_events:
        if event.is_step_failure:
            description = event.step_failure_data.error.message if event.step_failure_data.error else ""
            if "gates not passed" in description:
                failed.append(event.step_key)
    return sorted(set(failed))


def _failed_step(result) -> str | None:
    steps = [e.step_key for e in result.all_events if e.is_step_failure]
    return steps[0] if steps else None


def _failure(result) -> str | None:
    """Why the first failed step failed, in one line: a dg.Failure's description (written for the
    user: file, field, what to do), else only the error's class (its message may quote data)."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description.splitlines()[0]
            error = data.error
            while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause  # Dagster's wrapper: the user code's own error is its cause
            name = error.cls_name if error else "an error"
            return f"{name} (the run log in the UI has the traceback)"
    return None


def run(request: RunRequest) -> RunSummary:
    """Runs the graph as the module docstring says; UserError for a mistake found up front."""
    from ft_pipeline.defs.instance import open_instance
    from ft_pipeline.defs.run_queue import home_turn

    task = check_request(request)
    instance = open_instance()
    # Runs of one home take turns, whole, in the instance's run queue (defs/run_queue.py): a run's
    # sources become the registered partitions its retrain trains on, so two at once would mix.
    with home_turn(instance, task.name) as turn:
        return _run(request, task, instance, turn)


def _run(request: RunRequest, task, instance, turn) -> RunSummary:
    import dagster as dg

    from ft_pipeline.definitions import defs
    from ft_pipeline.core.task_file import task_path as task_file

    summary = RunSummary(metric=task.metric)
    keys = [partition_key(s) for s in dict.fromkeys(request.sources)]
    summary.deactivated_sources = activate_sources(instance, keys)
    config = run_config(request, str(task_file(request.task)))

    declaring = defs.resolve_implicit_global_asset_job_def()
    declared = declaring.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("task")], raise_on_error=False, tags=turn.wait(declaring),
        run_config={"loggers": config["loggers"], "ops": {"task": config["ops"]["task"]}})
    if not declared.success:
        summary.run_id, summary.failed_step, summary.failure = declared.run_id, _failed_step(declared), _failure(declared)
        return summary
    for key in keys:
        engine = config.get("resources", {}).get("record_engine")
        ingesting = defs.resolve_job_def("ingest_source")
        ingest = ingesting.execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False, tags=turn.wait(ingesting),
            run_config={"loggers": config["loggers"], **({"resources": {"record_engine": engine}} if engine else {})})
        summary.ingest_runs.append(ingest.run_id)
        summary.failed_gates += _failed_gates(ingest)
        if not ingest.success:
            summary.run_id, summary.failed_step, summary.failure = ingest.run_id, _failed_step(ingest), _failure(ingest)
            summary.failed_gates = sorted(set(summary.failed_gates))
            return summary

    retrain_config = {**config, "ops": {k: v for k, v in config["ops"].items() if k != "task"}}
    retrain = defs.resolve_job_def("retrain")
    result = retrain.execute_in_process(
        instance=instance, run_config=retrain_config, raise_on_error=False, tags=turn.wait(retrain))
    summary.run_id, summary.success = result.run_id, result.success
    summary.failed_gates = sorted(set(summary.failed_gates + _failed_gates(result)))
    summary.failed_step = None if result.success else _failed_step(result)
    summary.failure = None if result.success else _failure(result)
    report = _latest_value(result, "eval_report")
    if report:
        summary.eval_report = report.get("path")
        summary.variants = {name: metrics.get(task.metric) for name, metrics in report.get("variants", {}).items()}
    promoted = _latest_value(result, "promoted_model")
    summary.promoted = promoted.get("version") if promoted else None
    return summary


def _latest_value(result, asset: str) -> dict | None:
    import dagster as dg

    try:
        return result.asset_value(dg.AssetKey(asset))
    except Exception:  # not materialized in this run (a gate stopped it first)
        return None
