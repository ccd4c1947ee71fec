"""rollout: a promoted version rolled out against `current` on recorded requests (shadow or
canary), judged by the online gate, then switched to or rolled back. Each step is logged as an
observation of this asset while it runs; the materialization carries the gate table and a chart
of the rates compared; the check `candidate_passed_online_gate` says which way it went."""
from pathlib import Path

import dagster as dg

from ft_pipeline.core import paths
from ft_pipeline.defs.failures import user_failure
from ft_pipeline.defs.serving.assets import GROUP

CHECK = "candidate_passed_online_gate"


class RolloutConfig(dg.Config):
    name: str = ""  # registry name (default: the registry's only model)
    version: str  # the candidate: promoted, not current
    replay: str  # JSONL of OpenAI chat requests, each optionally with `label`
    mode: str = ""  # shadow | canary (default: the task file's rollout.mode)
    share: float = 0.0  # canary share (0: the task file's rollout.share)


@dg.asset(group_name=GROUP, kinds={"registry"}, code_version="1",
          check_specs=[dg.AssetCheckSpec(CHECK, asset="rollout",
                                         description="the candidate passed the online gate and became current")])
def rollout(context: dg.AssetExecutionContext, config: RolloutConfig):
    """The candidate against the incumbent on the same requests: schema-valid rate, the task metric
    on labelled requests, refusals, PII-filter hits, errors and p95 latency, with paired intervals."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.release import registry
    from ft_pipeline.core.evaluation.gates import check_result, gates_markdown
    from ft_pipeline.core.serving import rollout as core

    root = paths.pipeline_home() / "registry"
    names = registry.model_names(root)
    name = config.name or (names[0] if len(names) == 1 else "")
    if not name:
        raise dg.Failure(f"name the model to roll out (config name); the registry holds: {', '.join(names) or 'none'}")

    def step(event: dict) -> None:
        context.log_event(dg.AssetObservation(asset_key="rollout", metadata={
            "step": event["event"], "version": event["version"], "incumbent": str(event["incumbent"]),
            **({"reason": event["reason"]} if "reason" in event else {})}))

    with user_failure(core.RolloutError):
        summary = core.run(root, name, config.version, Path(config.replay), mode=config.mode or None,
                           share=config.share or None, on_step=step)
    verdicts = summary.pop("verdicts")
    rates = summary["rates"]
    chart = plots.grouped_bars({metric: {arm: rates[arm][metric] or 0.0 for arm in ("incumbent", "candidate")}
                                for metric in ("schema_valid", "refusal_rate", "pii_filter_hits", "error_rate")},
                               f"{name}: {summary['incumbent']} (incumbent) vs {config.version} (candidate)")
    yield dg.MaterializeResult(metadata={
        "candidate": config.version, "incumbent": summary["incumbent"], "current": summary["current"],
        "mode": summary["mode"], "paired_requests": summary["paired_requests"], "passed": summary["passed"],
        "failed_gates": dg.MetadataValue.json(summary["failed_gates"]),
        "rates": dg.MetadataValue.json(rates),
        "gates": dg.MetadataValue.md(gates_markdown(verdicts)),
        "comparison": dg.MetadataValue.md(plots.png_to_markdown(chart, "rates by version")),
        "steps": dg.MetadataValue.md(_steps_chart(root, name, config.version)),
        "registry_path": dg.MetadataValue.path(str(registry.resolve(root, name, config.version))),
    })
    outcome = f"{config.version} is current" if summary["passed"] else \
        f"waiting, not judged: {summary['waiting']}" if summary.get("waiting") else f"rolled back: current stays {summary['current']}"
    yield dg.AssetCheckResult(check_name=CHECK, passed=summary["passed"], description=outcome,
                              metadata={name: check_result(v)["metadata"]["outcome"] for name, v in verdicts.items()})


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Shows the steps of live rollouts (recorded by ft-pipeline serve) on the rollout asset: an "
                       "observation per step, a materialization when the online gate switched or rolled back.")
def live_rollout_sensor(context: dg.SensorEvaluationContext):
    """The server runs no Dagster: its rollout steps are lines of each version's rollout.jsonl,
    read here from where the cursor (lines seen per version) left off."""
    import json

    from ft_pipeline.core.release import registry

    root = paths.pipeline_home() / "registry"
    seen, events = json.loads(context.cursor or "{}"), []
    for name in registry.model_names(root):
        for version in registry.versions(root, name):
            steps = registry.rollout_events(root / name / version)
            for step in steps[seen.get(f"{name}/{version}", 0):]:
                if not step.get("live"):
                    continue  # a replay's steps are the rollout asset's own events
                events.append(dg.AssetObservation(asset_key="rollout", metadata={
                    "step": step["event"], "model": name, "version": version, "incumbent": str(step.get("incumbent")),
                    **{k: step[k] for k in ("reason", "paired_requests") if k in step}}))
                if step["event"] in registry.FINAL_STEPS:
                    events.append(dg.AssetMaterialization(asset_key="rollout", metadata={
                        "candidate": version, "incumbent": str(step.get("incumbent")), "live": True,
                        "passed": step["event"] == "switched", "current": str(registry.current_version(root, name)),
                        "failed_gates": dg.MetadataValue.json(step.get("failed_gates", [])),
                        "steps": dg.MetadataValue.md(_steps_chart(root, name, version)),
                        "registry_path": dg.MetadataValue.path(str(root / name / version))}))
            seen[f"{name}/{version}"] = len(steps)
    return dg.SensorResult(asset_events=events, cursor=json.dumps(seen, sort_keys=True))


def _steps_chart(root: Path, name: str, version: str) -> str:
    """The rollout as it went: share over time, and each step's gate with its interval."""
    from ft_pipeline.core import plots
    from ft_pipeline.core.release import registry

    return plots.png_to_markdown(plots.rollout_chart(registry.rollout_events(root / name / version)),
                                 f"{name} {version}: share and gate by step")
