"""The file registry mirrored in MLflow's model registry. The file registry decides (gates,
rollback refusals, erasure); MLflow shows what it decided:

- each registry version vN is a model version of the registered model named like the task,
  tagged registry_version=vN: the PEFT adapter logged with mlflow.transformers and a local
  base_model_path, so neither logging nor loading fetches anything from a hub;
- alias `champion` is the registry's `current` (promotion sets it, rollback moves it); `challenger`
  a version in rollout. Stages are deprecated in MLflow, so aliases only;
- a version or run trained on an erased record is tagged erased=true with the requests, and with
  --retire its weights are deleted from the artifact store, as the file registry deletes its own.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from ft_pipeline.core.tracking import runs

VERSION_TAG = "registry_version"
CHAMPION, CHALLENGER = "champion", "challenger"


def find_version(client, name: str, version: str):
    """The MLflow model version mirroring registry version `version` (vN), or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    return next((mv for mv in found if mv.tags.get(VERSION_TAG) == version), None)


def register_release(client, payload: dict, uri: str) -> str:
    """payload: experiment, run_key, run_name, name, version, version_dir, base_model_path, tags.
    Logs the release's adapter and model card into its training run, registers the version and
    points `champion` at it (payload alias `challenger`: that one instead); returns the MLflow version number."""
    mv = find_version(client, payload["name"], payload["version"])
    if mv is None:
        run_id = runs.run_for(client, payload, uri).info.run_id
        version_dir = Path(payload["version_dir"])
        card = version_dir / "MODEL_CARD.md"
        if card.is_file():
            client.log_artifact(run_id, str(card), f"release/{payload['version']}")
        # Registering resolves models:/m-... through the fluent API's store, so both happen inside.
        with fluent_uri(uri):
            model_uri = _log_adapter(uri, run_id, version_dir / "adapter", payload["base_model_path"], payload["version"])
            mv = _register(client, payload["name"], model_uri, run_id,
                           {**payload.get("tags", {}), VERSION_TAG: payload["version"]})
    if payload.get("alias") == CHALLENGER:  # published beside current: waits for its rollout
        client.set_registered_model_alias(payload["name"], CHALLENGER, mv.version)
        return mv.version
    client.set_registered_model_alias(payload["name"], CHAMPION, mv.version)
    aliases = client.get_registered_model(payload["name"]).aliases
    if str(aliases.get(CHALLENGER)) == str(mv.version):  # a challenger that won is the champion now
        client.delete_registered_model_alias(payload["name"], CHALLENGER)
    return mv.version


def set_alias(client, payload: dict, uri: str) -> str:
    """payload: name, version (vN), alias. Rollback moves `champion`; a rollout sets `challenger`."""
    mv = find_version(client, payload["name"], payload["version"])
    if mv is None:
        raise LookupError(f"{payload['name']} {payload['version']} was never mirrored to MLflow; alias "
                          f"{payload['alias']} not moved")
    client.set_registered_model_alias(payload["name"], payload["alias"], mv.version)
    aliases = client.get_registered_model(payload["name"]).aliases
    # a rollout's winner (a SQLite store gives alias versions as ints, a server as text)
    if payload["alias"] == CHAMPION and str(aliases.get(CHALLENGER)) == str(mv.version):
        client.delete_registered_model_alias(payload["name"], CHALLENGER)
    return mv.version


def mark_erased(client, payload: dict, uri: str) -> dict:
    """payload: request_id, at, retire, versions [{name, version}], digests (of the erased ids).
    Tags every mirrored version and every training run whose training_ids.json holds one of the
    digests; with retire deletes their adapter artifacts. Returns what it reached, as counts."""
    erased = set(payload["digests"])
    reached = {"versions": 0, "runs": 0}
    marked_runs = set()
    for v in payload["versions"]:
        mv = find_version(client, v["name"], v["version"])
        if mv is None:
            continue
        for key, value in _erasure_tags(mv.tags, payload).items():
            client.set_model_version_tag(v["name"], mv.version, key, value)
        if payload["retire"]:
            _delete(_model_artifacts(client, mv.source))
            client.set_model_version_tag(v["name"], mv.version, "weights_retired_at", payload["at"])
        if mv.run_id:
            marked_runs.add(mv.run_id)
        reached["versions"] += 1
    for experiment in client.search_experiments(filter_string="tags.ft_pipeline = 'true'"):
        for run in client.search_runs([experiment.experiment_id], filter_string="tags.`ft_pipeline.asset` = 'adapter_weights'"):
            if run.info.run_id in marked_runs or erased & _training_digests(client, run.info.run_id):
                marked_runs.add(run.info.run_id)
    for run_id in marked_runs:
        for key, value in _erasure_tags(client.get_run(run_id).data.tags, payload).items():
            client.set_tag(run_id, key, value)
        if payload["retire"]:
            _delete(client.get_run(run_id).info.artifact_uri, "adapter")
    reached["runs"] = len(marked_runs)
    return reached


def mirror_alias(name: str, version: str, alias: str = CHAMPION, warn=None) -> None:
    """Moves `alias` to registry version `version` in MLflow (rollback: champion; a rollout:
    challenger), or queues the move; nothing when no store is in use."""
    from ft_pipeline.core.tracking import queue

    if queue.in_use():
        queue.submit("set_alias", {"name": name, "version": version, "alias": alias}, **({"warn": warn} if warn else {}))


def mirror_erasure(journal: dict, digests: list[str], warn=None) -> None:
    """An erasure request's marks (core.erasure.requests journal: request, time, retire, the model
    versions it reached) and the digests of the ids it erased, sent or queued as mark_erased."""
    from ft_pipeline.core.tracking import queue

    if queue.in_use():
        versions = [{"name": m["name"], "version": m["version"]} for m in journal["models"]]
        queue.submit("mark_erased", {"request_id": journal["request_id"], "at": journal["at"],
                                     "retire": journal["retire"], "versions": versions, "digests": sorted(digests)},
                     **({"warn": warn} if warn else {}))


def _erasure_tags(tags: dict, payload: dict) -> dict:
    """erased=true, and every request that reached it (a version can meet several), in order."""
    requests = [r for r in tags.get("erasure_requests", "").split(",") if r]
    if payload["request_id"] not in requests:
        requests.append(payload["request_id"])
    return {"erased": "true", "erasure_requests": ",".join(requests), "erased_at": tags.get("erased_at", payload["at"])}


def _training_digests(client, run_id: str) -> set[str]:
    """The digests of the record ids the run's adapter was trained on (none once retired)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "adapter/training_ids.json", tmp)
        except Exception:  # noqa: BLE001 - no such artifact: trained untracked, or already retired
            return set()
        return set(json.loads(Path(path).read_text()).get("trained_on", []))


def _log_adapter(uri: str, run_id: str, adapter: Path, base_model_path: str, version: str) -> str:
    """The PEFT adapter as an mlflow.transformers model whose base weights stay at base_model_path."""
    import mlflow
    import peft
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not adapter.is_dir():
        raise FileNotFoundError(f"{adapter}: the release's adapter is gone (retired?); nothing to log")
    if not Path(base_model_path).is_dir():  # a hub id: no local base to reference, so the files as they are
        from mlflow import MlflowClient

        MlflowClient(uri).log_artifacts(run_id, str(adapter), f"release/{version}/adapter")
        return f"runs:/{run_id}/release/{version}/adapter"
    base = AutoModelForCausalLM.from_pretrained(base_model_path, dtype="auto")
    tokenizer_dir = adapter if (adapter / "tokenizer_config.json").is_file() else base_model_path
    model = {"model": PeftModel.from_pretrained(base, adapter), "tokenizer": AutoTokenizer.from_pretrained(tokenizer_dir)}
    with mlflow.start_run(run_id=run_id):
        # The requirements given, not inferred: inference loads the model again in a subprocess.
        info = mlflow.transformers.log_model(
            model, name=f"adapter-{version}", task="text-generation", base_model_path=str(Path(base_model_path).resolve()),
            pip_requirements=[f"transformers=={transformers.__version__}", f"peft=={peft.__version__}",
                              f"torch=={torch.__version__.split('+')[0]}"])
    return info.model_uri


@contextlib.contextmanager
def fluent_uri(uri: str):
    """MLflow's fluent API (log_model, load_model) pointed at `uri` for the block only.
    mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI for subprocesses, which would pin
    every later operation of this process, and its children, to this store: both the module
    setting and the environment are put back afterwards."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _register(client, name: str, model_uri: str, run_id: str, tags: dict):
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Mirrored from the ft_pipeline file registry, "
                                       "which stays the source of truth (ft-pipeline audit).")
    # A tracking server checks that a models:/m-... source is the logged model named by model_id.
    model_id = model_uri.split("/", 1)[1] if model_uri.startswith("models:/m-") else None
    return client.create_model_version(name, model_uri, run_id=run_id, tags={k: str(v) for k, v in tags.items()},
                                       model_id=model_id)


def _model_artifacts(client, source: str) -> str | None:
    """Where a logged model's files are (its models:/m-... source), or None."""
    if source.startswith("models:/m-"):
        return client.get_logged_model(source.split("/", 1)[1].strip("/")).artifact_location
    return source if "://" in source else None


def _delete(artifact_uri: str | None, path: str | None = None) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if artifact_uri:
        try:
            get_artifact_repository(artifact_uri).delete_artifacts(path)
        except FileNotFoundError:  # deleted by an earlier, interrupted attempt
            pass
