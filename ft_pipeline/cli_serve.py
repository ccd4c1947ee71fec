"""ft-pipeline serve: the registry's `current` (and pinned versions) behind the OpenAI API, and a
version in rollout on its live requests; ft-pipeline rollout: a new version against `current` on
replayed requests through the online gate, or (--live) started on the server's live requests.
Same contract as cli.py: a user's mistake is a UserError, one line and exit code 2."""
from __future__ import annotations

import os
import sys

from ft_pipeline.cli_registry import _model_name, _registry
from ft_pipeline.runner import UserError


def add_parsers(sub) -> None:
    from ft_pipeline.core.serving.guard import Limits

    p = sub.add_parser("serve", help="serve the promoted model behind the OpenAI API (chat completions, LoRA adapters)")
    p.add_argument("--name", help="registry name (default: the task's name, or the only model)")
    p.add_argument("--task", help="task file whose answer check applies (default: the one the version was trained for)")
    p.add_argument("--version", action="append", default=[], metavar="V",
                   help="also serve version V as model id NAME:V (repeatable); NAME is always `current`")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--engine", choices=["local", "vllm"], default="local",
                   help="local: transformers + peft (CPU or one GPU); vllm: start `vllm serve` (CUDA) on a private "
                        "port, with the guard, the traffic log and live rollouts in front of it")
    p.add_argument("--upstream", metavar="URL",
                   help="put the guard in front of an OpenAI-compatible server already running at URL (a vLLM "
                        "started elsewhere; FT_PIPELINE_UPSTREAM_API_KEY is its key) instead of loading the model")
    p.add_argument("--no-live-rollout", action="store_true",
                   help="leave live rollouts to a guard in front of this server (serve --upstream)")
    p.add_argument("--max-tokens", type=int, default=Limits.max_tokens, help="the most one request may generate")
    p.add_argument("--requests-per-minute", type=int, default=Limits.requests_per_minute,
                   help="per client address (0: no limit)")
    p.add_argument("--force", action="store_true",
                   help="serve a version its online gate rolled back (the override is recorded in its audit trail)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("rollout", help="roll a version out against current on replayed requests (shadow or canary); "
                                       "it becomes current only if the online gate passes, else it is rolled back")
    p.add_argument("--name", help="registry name (default: the task's name, or the only model)")
    p.add_argument("--task", help="task file whose answer check and rollout: thresholds apply")
    p.add_argument("--version", required=True, help="the candidate version (promoted, not current)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--replay", help="JSONL of OpenAI chat requests, each optionally with a `label`")
    how.add_argument("--live", action="store_true",
                     help="roll out on live traffic: the running `ft-pipeline serve` (or the next started) routes its "
                          "requests and judges after rollout.min_requests")
    p.add_argument("--mode", choices=["shadow", "canary"], help="default: the task file's rollout.mode (canary)")
    p.add_argument("--share", type=float, help="canary: share of requests the candidate answers (default: rollout.share)")
    p.set_defaults(func=cmd_rollout)


def cmd_serve(args) -> int:
    from ft_pipeline.core.serving import live, server
    from ft_pipeline.core.serving.guard import Limits

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: must be within 1-65535")
    if args.max_tokens < 1 or args.requests_per_minute < 0:
        raise UserError("--max-tokens must be >= 1 and --requests-per-minute >= 0")
    if args.upstream and args.engine == "vllm":
        raise UserError("--upstream and --engine vllm: choose one (--engine vllm starts its own vLLM upstream)")
    if args.upstream:
        from urllib.parse import urlparse

        parsed = urlparse(args.upstream)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UserError(f"--upstream {args.upstream}: not an http(s)://HOST:PORT address")
    from ft_pipeline.core.release import registry

    root = _registry()
    try:
        name = _model_name(args)
        for version in dict.fromkeys([registry.current_version(root, name) or "", *args.version]):
            if version:  # a version its online gate rolled back is served only when forced (recorded)
                registry.refuse_rolled_back(root, name, version, "serve", args.force)
        plan = server.plan(root, name, args.version)
        if args.engine == "vllm":
            _vllm_argv(plan)  # vLLM missing: one line before anything loads
        task = server.load_task(plan, args.task, root)
        _check_port_free(args.host, args.port)  # before a model load, not after it
        limits = Limits(max_tokens=args.max_tokens, requests_per_minute=args.requests_per_minute)
        if args.engine == "vllm":
            return _serve_vllm(plan, task, root, args, limits)
        engine = _upstream_engine(plan, args.upstream, os.environ.get("FT_PIPELINE_UPSTREAM_API_KEY")) \
            if args.upstream else None
        live.serve(plan, task, root, args.host, args.port, limits, engine=engine, rollouts=not args.no_live_rollout)
    except (server.ServeError, registry.RegistryError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_rollout(args) -> int:
    """Prints the gate table to stderr and one JSON line last; exit 0 switched, 1 rolled back, 3 waiting
    (a step had too few requests or labels to judge: nothing changed)."""
    import json
    from pathlib import Path

    from ft_pipeline.core.evaluation.gates import gates_markdown
    from ft_pipeline.core.serving import rollout

    if args.live:
        return _start_live(args)
    try:
        summary = rollout.run(_registry(), _model_name(args), args.version, Path(args.replay), mode=args.mode,
                              share=args.share, task_file=args.task,
                              on_step=lambda e: print(f"{e['at']} {e['event']}", file=sys.stderr, flush=True))
    except rollout.RolloutError as exc:
        raise UserError(str(exc)) from None
    print(gates_markdown(summary.pop("verdicts")), file=sys.stderr)
    print(json.dumps(summary, sort_keys=True))
    if summary.get("waiting"):
        print(f"waiting at step {summary.get('step', 1)}: {summary['waiting']}", file=sys.stderr)
    return 0 if summary["passed"] else 3 if summary.get("waiting") else 1


def _start_live(args) -> int:
    """Records the live start; prints it as one JSON line."""
    import json

    from ft_pipeline.core.release import registry
    from ft_pipeline.core.serving import live, rollout, server

    root = _registry()
    try:
        name = _model_name(args)
        task = server.load_task(server.plan(root, name, [args.version]), args.task, root)
        event = live.start(root, name, args.version, task, args.mode, args.share)
    except (rollout.RolloutError, server.ServeError, registry.RegistryError) as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(event, sort_keys=True))
    return 0


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(f"--host {host} --port {port}: {exc.strerror or exc}") from None


def _vllm_argv(plan) -> list[str]:
    import shutil

    from ft_pipeline.core.serving.vllm import vllm_command
    from ft_pipeline.core.training.base_model import ensure_base_model

    argv, _ = vllm_command(str(ensure_base_model(plan.base_model)), {a.name: a.path for a in plan.adapters},
                           "127.0.0.1", 0)
    if shutil.which("vllm") is None:
        raise UserError("--engine vllm: vllm is not installed here (pip install vllm on a CUDA machine); "
                        f"it would run: {' '.join(argv)}")
    return argv


def _upstream_engine(plan, url: str, api_key: str | None = None):
    """The guard's engine on the server at `url`, serving the plan's adapters there."""
    from ft_pipeline.core.serving import server, upstream
    from ft_pipeline.core.serving.engine import AdapterError
    from ft_pipeline.core.training.base_model import ensure_base_model

    engine = upstream.UpstreamEngine(url, ensure_base_model(plan.base_model), plan.base_model, api_key)
    try:
        engine.attach(plan.adapters)
    except (upstream.UpstreamError, AdapterError) as exc:
        engine.close()
        raise server.ServeError(f"--upstream {url}: {exc}") from None
    return engine


def _serve_vllm(plan, task, root, args, limits) -> int:
    """vLLM on a private port, the guard on the public one; vLLM stops with the guard."""
    import signal

    from ft_pipeline.core import paths
    from ft_pipeline.core.release import registry
    from ft_pipeline.core.serving import live, server, vllm
    from ft_pipeline.core.training.base_model import ensure_base_model

    log_path = paths.ensure_dir(paths.pipeline_home() / "logs") / "vllm.log"
    # vLLM refuses an adapter above the rank it started with: cover every published version, so a
    # rollout's candidate loads at run time
    folders = [registry.model_root(root, plan.name) / v / "adapter" for v in registry.versions(root, plan.name)]
    min_rank = max((vllm.lora_rank(f) for f in folders if (f / "adapter_config.json").is_file()), default=0)
    # uvicorn re-raises the SIGTERM it stopped on once it is done; the default action would end this
    # process there and leave vLLM running, so SIGTERM unwinds through the `finally`s that stop it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"starting vllm serve on a private port (log: {log_path})", file=sys.stderr, flush=True)
    try:
        proc, url, key = vllm.launch(str(ensure_base_model(plan.base_model)), {a.name: a.path for a in plan.adapters},
                                     log_path, min_rank)
    except RuntimeError as exc:
        raise server.ServeError(f"--engine vllm: {exc}") from None
    try:
        live.serve(plan, task, root, args.host, args.port, limits, engine=_upstream_engine(plan, url, key))
    finally:
        vllm.stop(proc)
    return 0
