"""Reads an MLflow store with MlflowClient, as an ML engineer would, and checks it against what
the pipeline materialized: the run, its history, evaluation and artifacts, the release's alias."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import dagster as dg

from ft_pipeline_tests.conftest import read_jsonl

NAME = "northwind-triage"


def store_uri(home: Path | None = None) -> str:
    home = Path(home or os.environ["FT_PIPELINE_HOME"])
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"


def client(uri: str | None = None):
    from mlflow import MlflowClient

    uri = uri or store_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def champion(name: str = NAME, uri: str | None = None) -> str:
    """The registry version (vN) MLflow's `champion` alias points at."""
    return client(uri).get_model_version_by_alias(name, "champion").tags["registry_version"]


def training_runs(mlflow, name: str = NAME) -> list:
    experiment = mlflow.get_experiment_by_name(name)
    return mlflow.search_runs([experiment.experiment_id], filter_string="tags.`ft_pipeline.asset` = 'adapter_weights'")


def assert_tracked(home: Path, result, instance, source, version: str, uri: str | None = None,
                   stores: list[Path] = ()) -> None:
    """`stores`: where the store keeps its files (default: the SQLite store under `home`)."""
    mlflow = client(uri or store_uri(home))
    [run] = training_runs(mlflow)
    run_id, tags, params, metrics = run.info.run_id, run.data.tags, run.data.params, run.data.metrics
    export = instance.get_latest_materialization_event(dg.AssetKey("jsonl_export")).asset_materialization.metadata
    trained = result.asset_value(dg.AssetKey("adapter_weights"))
    report = result.asset_value(dg.AssetKey("eval_report"))

    # params and tags: which task, preset, method and data, by digest; which Dagster run and sources
    assert params["task"] == NAME and params["method"] == "sft" and params["preset"].endswith("tiny.yaml")
    assert params["export_sha256"] == tags["export_sha256"] == export["sha256"].value
    assert params["data_sha256.0"] == export["redacted_sha256"].value[str(source)]
    assert params["train.max_steps"] == str(trained["config"]["max_steps"])
    assert tags["dagster.run_id"] == trained["dagster_run_id"] and tags["dagster.partition_keys"] == str(source)

    # the per-step loss and learning rate as metric history, as the trainer logged them
    logged = [h for h in trained["metrics"]["history"] if "loss" in h]
    loss = mlflow.get_metric_history(run_id, "loss")
    assert [(m.step, round(m.value, 5)) for m in loss] == [(h["step"], round(h["loss"], 5)) for h in logged]
    assert len(loss) >= 2 and len(mlflow.get_metric_history(run_id, "learning_rate")) == len(logged)
    assert metrics["final_loss"] == trained["metrics"]["final_loss"]

    # evaluation: every variant's metric and the paired comparisons with their intervals
    metric = report["metric"]
    for variant, values in report["variants"].items():
        assert metrics[f"eval.{variant}.{metric}"] == values[metric]
    for comparison, stats in report["comparisons"].items():
        assert (metrics[f"eval.{comparison}.low"], metrics[f"eval.{comparison}.high"]) == (stats["low"], stats["high"])

    # artifacts: the adapter byte for byte, the plots, the eval report and the release's model card
    files = {f.path for folder in ("adapter", "plots", "evaluation", f"release/{version}")
             for f in mlflow.list_artifacts(run_id, folder)}
    assert {"adapter/adapter_model.safetensors", "adapter/training_ids.json", "plots/loss_curve.png",
            "plots/eval_by_variant.png", "evaluation/eval_report.md", f"release/{version}/MODEL_CARD.md"} <= files
    with tempfile.TemporaryDirectory() as tmp:
        got = Path(mlflow.download_artifacts(run_id, "adapter/adapter_model.safetensors", tmp)).read_bytes()
    assert got == (Path(trained["path"]) / "adapter_model.safetensors").read_bytes()

    # the fit assessment's arms, as child runs
    fit = result.asset_value(dg.AssetKey("fit_assessment"))
    children = mlflow.search_runs([run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'")
    assert {c.data.tags["ft_pipeline.arm"] for c in children} == set(fit["arms"]) and children
    for child in children:
        arm = fit["arms"][child.data.tags["ft_pipeline.arm"]]
        assert child.data.metrics[f"{metric}.low"] == arm["low"] and child.data.metrics[metric] == arm["metric"]

    # the release: a model version of this run, `champion`, loadable offline from its local base
    mv = mlflow.get_model_version_by_alias(NAME, "champion")
    assert mv.tags["registry_version"] == version and mv.run_id == run_id
    assert_loads_as_released(uri or store_uri(home), home / "registry" / NAME / version)

    # never a record id or record text: the database and every artifact, as bytes
    assert holding(stores or [home / "mlflow"], records_of(home)) == []


def holding(stores: list[Path], needles: list[bytes]) -> list[str]:
    """Files under `stores` that hold any needle."""
    assert len(needles) > 20  # not vacuous
    files = [f for s in stores for f in ([s] if s.is_file() else s.rglob("*")) if f.is_file()]
    assert files
    return [str(f) for f in files if any(n in f.read_bytes() for n in needles)]


def assert_loads_as_released(uri: str, version_dir: Path) -> None:
    """mlflow.transformers loads the champion (base from its local path, nothing from a hub) and
    it answers exactly like the registry's merged weights."""
    import mlflow
    import torch
    from transformers import AutoModelForCausalLM

    from ft_pipeline.core.tracking.models import fluent_uri

    with fluent_uri(uri):  # not mlflow.set_tracking_uri: it would pin every later test to this store
        pipeline = mlflow.transformers.load_model(f"models:/{NAME}@champion")
    ids = pipeline.tokenizer(["my card was charged twice, please refund"], return_tensors="pt")
    with torch.inference_mode():
        loaded = pipeline.model(**ids).logits
        merged = AutoModelForCausalLM.from_pretrained(version_dir / "merged")(**ids).logits
    assert torch.allclose(loaded, merged, atol=1e-4)


def records_of(home: Path) -> list[bytes]:
    """Every record id and every user turn (redacted, longer than 24 characters) of the export."""
    rows = [r for p in (home / "data" / "jsonl_export").glob("*/*.jsonl") for r in read_jsonl(p) if "id" in r]
    ids = {str(r["id"]) for r in rows}
    texts = {m["content"] for r in rows for m in r.get("messages", []) if m["role"] == "user" and len(m["content"]) > 24}
    return [s.encode() for s in ids | texts] + [json.dumps(t)[1:-1].encode() for t in texts]
