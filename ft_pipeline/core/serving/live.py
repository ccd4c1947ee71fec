"""A rollout on live requests, inside `ft-pipeline serve`: the same routing, the same answers
(app.complete) and the same gate and decision (rollout.judge) as a replay, on the requests clients
send while it runs.

A version is in rollout from a `held` step (promotion published it beside current:
rollout.hold_new_versions) or a live `<mode>_started` (`ft-pipeline rollout --live`) until its
`switched` or `rolled_back`.
The server looks for one at start and then every few seconds, loads it as `<name>:<version>`, and
routes the requests for `<name>`:

- shadow: the incumbent answers the client; the candidate answers a copy in the background.
- canary: the request id's hash (rollout.in_canary; a client's X-Request-Id, else the completion
  id) decides who answers the client; the other version answers a copy in the background.

Copies run on one background thread, after the client's answer is on its way, and are never
returned nor logged as traffic. A request refused before the model read it (limits, rate, unknown
model) pairs nothing. Once a step has enough pairs and labels (rollout.too_few: `rollout.min_requests`,
`rollout.min_labelled_per_step`), rollout.judge moves a stepwise
canary to its next share (`rollout.steps`), or switches `current` or rolls the candidate back, and
the server serves the outcome: the candidate as `<name>`, or the incumbent alone.

Each pair and label is also appended to the rollout's evidence file (live_evidence.py), so a server
stopped mid-step and started again resumes at the same step with the pairs it had.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from ft_pipeline.core.release import registry
from ft_pipeline.core.release.rollout_config import RolloutConfig, RolloutConfigError
from ft_pipeline.core.serving import live_evidence, protocol, rollout, server, traffic
from ft_pipeline.core.serving.app import ServeState, complete, create_app
from ft_pipeline.core.serving.engine import Adapter
from ft_pipeline.core.serving.guard import Limits, RateLimiter, Redaction
from ft_pipeline.core.tracking.models import mirror_alias

log = logging.getLogger("ft_pipeline.serve")
NOT_READ_BY_THE_MODEL = (400, 404, 413, 429)  # refused by the guard first: both versions would be alike
MAX_QUEUED_COPIES = 256
PROGRESS_STEPS = 3  # `progress` steps recorded before the gate (the rates so far), so the record shows it filling


def in_rollout(root: Path, name: str) -> tuple[str, dict, int] | None:
    """(version, the step its rollout began with, the canary step it reached) of the newest version
    in a live rollout not decided yet, or None. A restarted server finds its rollout here again."""
    current = registry.current_version(root, name)
    for version in reversed(registry.versions(root, name)):
        if version == current:
            continue
        steps = [e for e in registry.rollout_events(registry.model_root(root, name) / version) if e.get("event") != "forced"]
        begun = [k for k, e in enumerate(steps) if e.get("event") == "held" or str(e.get("event")).endswith("_started")]
        if not begun:
            continue
        first, since = steps[begun[-1]], steps[begun[-1]:]
        if (first["event"] == "held" or first.get("live")) and not any(e.get("event") in registry.FINAL_STEPS for e in since):
            return version, first, sum(e.get("event") == "step" for e in since)
    return None


def start(root: Path, name: str, version: str, task, mode: str | None = None, share: float | None = None) -> dict:
    """Records a live `<mode>_started` for `version` against `current` (`ft-pipeline rollout --live`);
    the running server (or the next one started) picks it up."""
    incumbent = registry.current_version(root, name)
    folder = registry.resolve(root, name, version)
    if incumbent == version:
        raise rollout.RolloutError(f"{name} {version} is already current: roll out a version that is not")
    try:
        config = task.sections.rollout.with_overrides(mode, share)
    except RolloutConfigError as exc:
        raise rollout.RolloutError(f"--{exc.field.split('.')[-1]}: {exc.why}") from None
    canary = config.mode == "canary"
    event = registry.record_rollout(folder, {
        "event": f"{config.mode}_started", "version": version, "incumbent": incumbent, "live": True, "mode": config.mode,
        "share": config.shares()[0] if canary else None, **({"steps": config.steps} if canary and config.steps else {}),
        "min_requests": config.min_requests})
    mirror_alias(name, version, "challenger")
    return event


@dataclass
class LiveRollout:
    root: Path
    name: str
    version: str
    incumbent: str
    task: object
    config: RolloutConfig
    candidate_id: str  # the model id the candidate is loaded under: `<name>:<version>`
    on_done: Callable[[dict], None] = lambda summary: None
    started_at: str = ""  # the `at` of the step this rollout began with: names its evidence on disk
    stage: int = 0  # the canary step now running (config.shares()[stage])
    paired: rollout.Paired = field(default_factory=rollout.empty)  # the pairs of this step
    ids: list = field(default_factory=list)
    labels: dict = field(default_factory=dict)  # request id -> label from /v1/feedback
    outcome: dict | None = None

    def __post_init__(self):
        self._lock = threading.Lock()
        self._copies = ThreadPoolExecutor(1, thread_name_prefix="rollout")
        self.evidence = live_evidence.evidence_file(self.name, self.version)
        pairs, self.labels = live_evidence.load(self.evidence, self.started_at, self.stage)
        for pair in pairs:  # a restarted server: the pairs this step had before the stop
            self._add(pair["incumbent"], pair["candidate"], pair["request_id"], pair["canary"])

    @property
    def share(self) -> float:
        return self.config.shares()[self.stage]

    def canary(self, request_id: str) -> bool:
        return self.config.mode == "canary" and rollout.in_canary(request_id, self.share, f"{self.name}/{self.version}")

    def handle(self, state, body: protocol.ChatCompletionRequest, client: str, request_id: str | None = None) -> dict:
        """Answers a request for `<name>` as the rollout routes it; the paired copy is queued."""
        cid = protocol.completion_id()
        canary = self.outcome is None and self.canary(request_id or cid)
        served: dict = {}

        def record(entry: dict) -> None:
            traffic.record(entry)
            served.update(entry)

        try:
            answer = complete(state, body.model_copy(update={"model": self.candidate_id}) if canary else body, client,
                              log=record, cid=cid)
            answer["model"] = body.model  # what the client asked for; system_fingerprint names the version
            return answer
        finally:
            # Bounded: under more load than copies can keep up with, requests go unpaired rather than
            # queue without end (the gate waits for more pairs instead).
            if self.outcome is None and served.get("status") not in NOT_READ_BY_THE_MODEL \
                    and self._copies._work_queue.qsize() < MAX_QUEUED_COPIES:
                self._copies.submit(self._pair, replace(state, rate=RateLimiter(0)), body, served, canary)

    def label(self, request_id: str, label: str) -> None:
        with self._lock:
            self.labels[request_id] = label
            live_evidence.record_label(self.evidence, self.started_at, request_id, label)

    def _add(self, incumbent: dict, candidate: dict, request_id: str, canary: bool) -> None:
        self.paired.incumbent.add(incumbent, self.config.refusal_pattern)
        self.paired.candidate.add(candidate, self.config.refusal_pattern)
        self.ids.append(request_id)
        self.paired.requests += 1
        self.paired.answered_by_candidate += canary

    def _pair(self, state, body, served: dict, canary: bool) -> None:
        try:
            copy = rollout._answer(state, body.model_copy(update={"stream": False}),
                                   self.name if canary else self.candidate_id)
            incumbent, candidate = (copy, served) if canary else (served, copy)
            with self._lock:
                if self.outcome is not None:
                    return
                live_evidence.record_pair(self.evidence, self.started_at, self.stage, served.get("request_id"), canary,
                                          incumbent, candidate)
                self._add(incumbent, candidate, served.get("request_id"), canary)
                n, labelled = len(self.ids), len(set(self.ids) & set(self.labels))
                if why := rollout.too_few(n, labelled, self.config):  # the step holds, as a replay's would
                    if n % max(1, self.config.min_requests // PROGRESS_STEPS) == 0:  # the record fills as pairs come in
                        short = n >= self.config.min_requests  # enough pairs, too few labels: `waiting`, and why
                        self._step({"event": "waiting" if short else "progress", "paired_requests": n, "labelled": labelled,
                                    **({"reason": why} if short else {}),
                                    **({"step": self.stage + 1, "share": self.share} if len(self.config.shares()) > 1 else {}),
                                    "rates": {"incumbent": self.paired.incumbent.rates(),
                                              "candidate": self.paired.candidate.rates()}})
                    return
                self.paired.labels = [self.labels.get(i) for i in self.ids]
                summary = rollout.judge(self.root, self.name, self.version, self.incumbent, self.task,
                                        self.paired, self.config, self._step, self.stage)
                if summary["advanced"]:  # the next share, judged afresh on the pairs to come
                    self.stage, self.paired, self.ids = self.stage + 1, rollout.empty(), []
                    return
                self.outcome = summary
            self.on_done(self.outcome)
        except Exception as exc:  # noqa: BLE001 - a copy must never take the server down
            log.error("rollout of %s %s: a paired copy failed: %s", self.name, self.version, type(exc).__name__)

    def _step(self, event: dict) -> dict:
        """One step of the version's rollout log, as a replay records it, marked live."""
        folder = registry.model_root(self.root, self.name) / self.version
        return registry.record_rollout(folder, {"version": self.version, "incumbent": self.incumbent, "live": True, **event})

    def wait(self, timeout: float = 60.0) -> None:
        """Until the queued copies are paired (tests, shutdown)."""
        self._copies.submit(lambda: None).result(timeout=timeout)


class Watcher:
    """Looks for a version in rollout at most every `every_s` seconds and builds its LiveRollout
    with `begin(version, the step it began with, the canary step reached)`; holds it until it decided."""

    def __init__(self, root: Path, name: str, begin: Callable[[str, dict, int], LiveRollout | None], every_s: float = 5.0):
        self.root, self.name, self.begin, self.every_s = root, name, begin, every_s
        self.live: LiveRollout | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> LiveRollout | None:
        if self.live is not None and self.live.outcome is None:
            return self.live
        with self._lock:
            if time.monotonic() - self._checked >= self.every_s:
                self._checked = time.monotonic()
                found = in_rollout(self.root, self.name)
                self.live = self.begin(*found) if found else self.live
        return self.live if self.live is not None and self.live.outcome is None else None


def live_rollouts(state, root: Path, name: str, task, every_s: float = 5.0):
    """The server's watch for a version in rollout (live.py): loads it as `<name>:<version>`, and
    once its gate decided, serves the outcome."""
    def begin(version: str, started: dict, stage: int):
        try:
            if started["event"] == "held":  # promotion held it back: its rollout starts with this server
                started = start(root, name, version, task)
            config = task.sections.rollout
            # as it was started (--mode, --share), whatever the task file says now
            config = replace(config, mode=started.get("mode") or config.mode, share=started.get("share") or config.share,
                             steps=started.get("steps") or [])
            candidate_id = f"{name}:{version}"
            adapter = server.version_adapter(root, name, version, candidate_id)
            loaded_here = candidate_id not in state.engine.adapters
            if loaded_here:
                state.engine.load(adapter)
        except Exception as exc:  # noqa: BLE001 - a rollout that cannot start never stops the serving
            log.error("cannot roll %s %s out: %s", name, version, str(exc)[:300])
            return None

        def done(summary: dict) -> None:
            if summary["passed"]:  # `<name>` answers with the candidate from now on, without a gap
                state.engine.load(Adapter(name, adapter.path, adapter.version), replace=True)
            if loaded_here:  # a rolled-back version is not served under any id
                state.engine.unload(candidate_id)
            print(f"rollout of {name} {version}: {'switched' if summary['passed'] else 'rolled back'}; "
                  f"current is {summary['current']}", file=sys.stderr, flush=True)

        resumed = f", resumed at step {stage + 1} of {len(config.shares())}" if stage else ""
        print(f"rolling {name} {version} out live ({config.mode}{resumed}) against {registry.current_version(root, name)}",
              file=sys.stderr, flush=True)
        return LiveRollout(root, name, version, registry.current_version(root, name), task, config, candidate_id, done,
                                started_at=started.get("at", ""), stage=stage)

    return Watcher(root, name, begin, every_s)


def serve(plan_: server.Plan, task, root: Path, host: str, port: int, limits=None, engine=None,
          rollouts: bool = True) -> None:
    """Loads the base model and the adapters (or serves `engine`: an upstream.UpstreamEngine),
    warms the guard up, and serves until stopped. `rollouts=False`: this server leaves live
    rollouts to a guard in front of it."""
    import uvicorn

    engine = engine or server.load_engine(plan_)
    redaction = Redaction(task)
    redaction.warm_up()
    engine.warm_up()
    state = ServeState(engine, task, redaction, server.registry_resolver(root), limits or Limits())
    if rollouts:
        state.rollout = live_rollouts(state, root, plan_.name, task)
        state.rollout()  # a version already in rollout starts with the server
    served = ", ".join(f"{a.name} ({a.version})" for a in plan_.adapters)
    print(f"serving {served} on http://{host}:{port}/v1", file=sys.stderr, flush=True)
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
