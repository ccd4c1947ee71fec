"""What gets served, without loading a model: registry versions to model ids (and refusals),
the vLLM command the same versions give, the CLI's one-line errors, the day's traffic summary."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from ft_pipeline.core.release import registry
from ft_pipeline.core.serving import server, traffic
from ft_pipeline.core.serving.engine import AdapterError
from ft_pipeline.core.serving.vllm import vllm_command
from ft_pipeline_tests.core.serving.helpers import publish_version, write_task


def fake_version(home, tmp_path, rank=4) -> str:
    """A published version whose adapter folder holds only its config (no model is loaded here)."""
    adapter = tmp_path / f"adapter-{rank}"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}))
    return publish_version(home, tmp_path / "base", write_task(tmp_path), adapter)


def test_current_is_served_under_the_name_and_pinned_versions_under_name_colon_version(ft_home, tmp_path):
    fake_version(ft_home, tmp_path), fake_version(ft_home, tmp_path, rank=16)
    plan = server.plan(ft_home / "registry", "ticket-router", ["v1"])
    assert [(a.name, a.version) for a in plan.adapters] == [
        ("ticket-router", "ticket-router/v2"), ("ticket-router:v1", "ticket-router/v1")]
    assert plan.base_model == str(tmp_path / "base")


def test_unknown_versions_and_versions_trained_on_erased_records_are_refused(ft_home, tmp_path):
    version = fake_version(ft_home, tmp_path)
    with pytest.raises(server.ServeError, match="no version 'v9'"):
        server.plan(ft_home / "registry", "ticket-router", ["v9"])
    folder = ft_home / "registry" / "ticket-router" / version
    (folder / registry.MARKS).write_text(json.dumps({"requests": [{"request_id": "r-1", "at": "now", "records": 1}]}))
    with pytest.raises(server.ServeError, match="erased by request r-1"):
        server.plan(ft_home / "registry", "ticket-router")
    with pytest.raises(AdapterError, match="erased"):  # nor loaded at run time
        server.registry_resolver(ft_home / "registry")("x", str(folder))


def test_a_changed_task_file_is_not_silently_used_to_check_answers(ft_home, tmp_path):
    fake_version(ft_home, tmp_path)
    plan = server.plan(ft_home / "registry", "ticket-router")
    (tmp_path / "task.yaml").write_text((tmp_path / "task.yaml").read_text().replace("account", "returns"))
    with pytest.raises(server.ServeError, match="changed since"):
        server.load_task(plan, None, ft_home / "registry")
    assert server.load_task(plan, str(tmp_path / "task.yaml"), ft_home / "registry").name == "ticket-router"


def test_runtime_loads_only_accept_registry_version_folders(ft_home, tmp_path):
    fake_version(ft_home, tmp_path)
    resolve = server.registry_resolver(ft_home / "registry")
    folder = ft_home / "registry" / "ticket-router" / "v1"
    assert resolve("x", str(folder / "adapter")).version == "ticket-router/v1"
    for outside in (tmp_path, folder / "..", ft_home / "registry"):
        with pytest.raises(AdapterError, match="version folder of the model registry"):
            resolve("x", str(outside))


def test_vllm_command_serves_the_same_adapters_with_runtime_updates(tmp_path):
    adapters = {}
    for name, rank in (("m", 4), ("m:v1", 12)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps({"r": rank}))
        adapters[name] = tmp_path / name
    argv, env = vllm_command("/models/base", adapters, "127.0.0.1", 8001)
    assert argv[:3] == ["vllm", "serve", "/models/base"]
    assert argv[argv.index("--lora-modules") + 1:argv.index("--lora-modules") + 3] == [
        f"m={tmp_path / 'm'}", f"m:v1={tmp_path / 'm:v1'}"]
    assert argv[argv.index("--max-lora-rank") + 1] == "16"  # covers rank 12, rounded to a rank vLLM accepts
    assert argv[argv.index("--max-loras") + 1] == "2" and "--enable-lora" in argv
    assert argv[argv.index("--port") + 1] == "8001" and env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    # as the guard launches it: room for a rollout's candidate beside current, of a rank up to 64
    argv, _ = vllm_command("/models/base", adapters, "127.0.0.1", 8001, min_rank=40, spare_loras=1)
    assert argv[argv.index("--max-lora-rank") + 1] == "64" and argv[argv.index("--max-loras") + 1] == "3"


def test_serve_mistakes_are_one_line_and_exit_2(ft_home, tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "ft_pipeline.cli", "serve", *a], capture_output=True, text=True)
    out = run("--name", "nothing")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no current version" in out.stderr
    fake_version(ft_home, tmp_path)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    out = run("--engine", "vllm")
    assert out.returncode == 2 and "vllm is not installed" in out.stderr and "--enable-lora" in out.stderr
    for args, says in ((("--upstream", "ftp://vllm:8001"), "not an http(s)://HOST:PORT"),
                       (("--upstream", "http://127.0.0.1:1", "--engine", "vllm"), "choose one")):
        out = run(*args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and says in out.stderr, out.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        out = run("--port", str(taken.getsockname()[1]))
    assert out.returncode == 2 and "--port" in out.stderr and "Traceback" not in out.stderr


def test_traffic_summary_counts_without_text(ft_home):
    traffic.record({"status": 200, "version": "m/v1", "pii_masked_request": {"EMAIL_ADDRESS": 1}, "latency_ms": 10})
    traffic.record({"status": 422, "version": "m/v2", "error": "answer_check_failed", "latency_ms": 30})
    summary = traffic.summarize(traffic.today())
    assert summary["requests"] == 2 and summary["by_version"] == {"m/v1": 1, "m/v2": 1}
    assert summary["pii_masked"] == {"EMAIL_ADDRESS": 1} and summary["answers_withheld"] == 1
    assert summary["by_status"] == {"200": 1, "422": 1} and summary["latency_ms_p50"] == 20.0
