"""Rolling a new version out: shadow or canary against `current`, judged by the online gate, then
switched to or rolled back by itself.

- shadow: every request is answered by the incumbent (returned) and copied to the candidate,
  whose answer is scored and discarded (Seldon's mirror).
- canary: the candidate answers the requests whose id hashes below `share` (KServe's
  canaryTrafficPercent, but stable per request id rather than random per request); the incumbent
  answers a shadow copy of those same requests, so the gate compares the two on the same requests.
  The other requests are the incumbent's alone and do not enter the gate.
- a stepwise canary (`rollout.steps`, Argo Rollouts' setWeight steps, Flagger's stepWeight): the
  gate judges each step on that step's own pairs; a pass moves the candidate to the next share (a
  `step` in the log, with the gate's numbers), a fail rolls it back at that step, and only a pass
  at the last step makes it `current`. A request id under a share stays under every larger one.
- a step is judged only on enough evidence (`too_few`): `rollout.min_requests` pairs and, once
  labels come in, `rollout.min_labelled_per_step` labelled ones. Until then it holds: a replay that
  ends short records `waiting` with the counts, switching nothing and rolling nothing back.

Both answers go through the server's own path (app.complete: limits, redaction of the request,
guided decoding, the task's answer check, redaction of the answer). The gate passing moves
`current` to the candidate (MLflow `champion` follows); failing leaves `current` where it was and
marks the candidate rolled back with the failed gates (Argo Rollouts' failed analysis). Each step
is a line of the candidate's rollout.jsonl in the registry, which `ft-pipeline audit` shows.
`ft-pipeline rollout --replay FILE` replays recorded requests through all of this in process;
live.py runs the same routing and the same `judge` on a running server's live requests.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ft_pipeline.core.release import registry
from ft_pipeline.core.serving import online_gate, server
from ft_pipeline.core.release.rollout_config import RolloutConfig, RolloutConfigError
from ft_pipeline.core.serving.online_gate import Arm

MAX_REPLAY_REQUESTS = 100_000


class RolloutError(Exception):
    """A rollout that cannot start as asked (unknown version, bad replay file): one line."""


def in_canary(request_id: str, share: float, salt: str) -> bool:
    """Whether the candidate answers this request: the first 8 bytes of sha256(salt, id) read as a
    fraction of 2^64, below `share`. The same id always lands on the same side for one rollout."""
    digest = hashlib.sha256(f"{salt}\0{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2 ** 64


@dataclass
class Replayed:
    request: object  # protocol.ChatCompletionRequest
    request_id: str
    label: str | None


def read_replay(path: Path, task) -> tuple[list[Replayed], int]:
    """(requests, lines skipped) from a JSONL of OpenAI chat requests, each optionally with `label`
    (the answer it should have got) and `request_id` (else its line number). Lines of a
    production_traffic log whose request was refused (logged without text) are skipped."""
    from pydantic import ValidationError

    from ft_pipeline.core import answers
    from ft_pipeline.core.serving.protocol import ChatCompletionRequest

    path = Path(path)
    if not path.is_file():
        raise RolloutError(f"--replay {path}: no such file")
    items, skipped = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            fail = lambda field, why: RolloutError(f"{path} line {number}: field {field}: {why}")  # noqa: E731
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RolloutError(f"{path} line {number}: not JSON ({exc.msg})") from None
            if not isinstance(data, dict):
                raise fail("(line)", "must be a JSON object (an OpenAI chat completion request)")
            if "messages" not in data and ("status" in data or data.get("event") == "feedback"):
                skipped += 1  # a refused request or a label in a traffic log: nothing to replay
                continue
            if isinstance(data.get("response_format"), str):  # as the traffic log records it
                data["response_format"] = {"type": data["response_format"]}
            label = data.pop("label", None)
            if label is not None and (not isinstance(label, str) or answers.check_answer(task, label)):
                raise fail("label", f"{answers.check_answer(task, label) if isinstance(label, str) else 'must be text'} "
                                    f"(a label is the answer the {task.name} task expects)")
            try:
                request = ChatCompletionRequest.model_validate({**data, "model": "", "stream": False})
            except ValidationError as exc:  # the location and the rule, never the value
                first = exc.errors()[0]
                raise fail(".".join(str(p) for p in first.get("loc", ())) or "(line)", first.get("msg", "invalid")) from None
            items.append(Replayed(request, str(data.get("request_id") or data.get("id") or f"line-{number}"), label))
            if len(items) > MAX_REPLAY_REQUESTS:
                raise RolloutError(f"{path}: more than {MAX_REPLAY_REQUESTS:,} requests; split the file")
    if not items:
        raise RolloutError(f"{path}: no request to replay")
    return items, skipped


@dataclass
class Paired:
    incumbent: Arm
    candidate: Arm
    labels: list
    requests: int  # every request replayed
    answered_by_candidate: int  # returned to the client: canary requests (0 in shadow mode)


def empty() -> Paired:
    return Paired(Arm(), Arm(), [], 0, 0)


def labelled(paired: Paired) -> int:
    return sum(label is not None for label in paired.labels)


def too_few(pairs: int, labels: int, config: RolloutConfig) -> str | None:
    """Why a step cannot be judged yet, or None. The same rule holds a replayed and a live step: a
    gate on a handful of requests (or of labels) would switch or roll back on noise."""
    if pairs < config.min_requests:
        return f"{pairs} paired requests; a step needs at least {config.min_requests} (rollout.min_requests)"
    if 0 < labels < config.min_labelled_per_step:
        return (f"{labels} of {pairs} paired requests labelled; the task metric needs at least "
                f"{config.min_labelled_per_step} (rollout.min_labelled_per_step)")
    return None


def replay(state, items: list[Replayed], incumbent: str, candidate: str, config: RolloutConfig, salt: str,
           decide: Callable[[Paired, int], dict]) -> tuple[dict, int, int]:
    """Runs each request through app.complete as the rollout routes it, step by step: at a step
    before the last, `decide(pairs of the step, step index)` judges once the step has enough
    (`too_few`), and the next requests go to the next share; the last step judges on all the
    requests left (and `decide` holds a step the replay left short). (its summary, requests
    replayed, answered by the candidate)."""
    shares, stage, paired = config.shares(), 0, empty()
    requests = answered = 0
    for item in items:
        canary = config.mode == "canary" and in_canary(item.request_id, shares[stage], salt)
        requests += 1
        if config.mode == "canary" and not canary:
            continue  # the incumbent's alone, as before the rollout: nothing to compare
        served, shadow = (candidate, incumbent) if canary else (incumbent, candidate)
        entries = {model: _answer(state, item.request, model) for model in (served, shadow)}
        paired.incumbent.add(entries[incumbent], config.refusal_pattern)
        paired.candidate.add(entries[candidate], config.refusal_pattern)
        paired.labels.append(item.label)
        answered += canary
        if stage < len(shares) - 1 and not too_few(len(paired.labels), labelled(paired), config):
            summary = decide(paired, stage)
            if not summary["advanced"]:
                return summary, requests, answered  # rolled back at this step
            stage, paired = stage + 1, empty()
    return decide(paired, stage), len(items), answered


def _answer(state, request, model: str) -> dict:
    """One guarded completion by `model`; its log entry whether answered, withheld or failed."""
    from ft_pipeline.core.serving.app import complete
    from ft_pipeline.core.serving.engine import AdapterError
    from ft_pipeline.core.serving.guard import GuardError

    entry: dict = {}
    try:
        complete(state, request.model_copy(update={"model": model}), "rollout", log=entry.update)
    except (GuardError, AdapterError):
        pass  # withheld or refused: the entry says how
    except Exception:  # noqa: BLE001 - a candidate that crashes counts as an error, and the rollout goes on
        entry.setdefault("status", 500)
    return entry


def run(root: Path, name: str, version: str, replay_path: Path, *, mode: str | None = None,
        share: float | None = None, task_file: str | None = None, on_step: Callable[[dict], None] = lambda e: None) -> dict:
    """Rolls `version` out against `current` on the replayed requests; returns the summary."""
    from ft_pipeline.core.serving.app import ServeState
    from ft_pipeline.core.serving.guard import Limits, Redaction
    from ft_pipeline.core.task import TaskError
    from ft_pipeline.core.tracking.models import mirror_alias

    try:
        plan = server.plan(root, name, [version])
        incumbent = registry.current_version(root, name)
        if incumbent == version:
            raise RolloutError(f"{name} {version} is already current: roll out a version that is not")
        task = server.load_task(plan, task_file, root)
        config = RolloutConfig.from_dict(task.rollout, task.source_path or "task").with_overrides(mode, share)
    except (server.ServeError, TaskError, registry.RegistryError) as exc:
        raise RolloutError(str(exc)) from None
    except RolloutConfigError as exc:
        raise RolloutError(f"--{exc.field.split('.')[-1]}: {exc.why}") from None
    items, skipped = read_replay(replay_path, task)
    folder = registry.resolve(root, name, version)
    engine = server.load_engine(plan)
    state = ServeState(engine, task, Redaction(task), _no_loading, Limits(requests_per_minute=0))

    def step(event: dict) -> dict:
        event = registry.record_rollout(folder, {"version": version, "incumbent": incumbent, **event})
        on_step(event)
        return event

    shares = config.shares() if config.mode == "canary" else None
    step({"event": f"{config.mode}_started", "mode": config.mode, "share": shares[0] if shares else None,
          **({"steps": config.steps} if shares and config.steps else {}), "replay": str(replay_path), "requests": len(items)})
    mirror_alias(name, version, "challenger")
    summary, requests, answered = replay(
        state, items, plan.adapters[0].name, plan.adapters[1].name, config, f"{name}/{version}",
        lambda paired, stage: judge(root, name, version, incumbent, task, paired, config, step, stage))
    return {"model": name, "candidate": version, "incumbent": incumbent, "mode": config.mode,
            "share": shares[-1] if shares else None, "requests": requests, "skipped": skipped,
            "answered_by_candidate": answered, **summary}


def judge(root: Path, name: str, version: str, incumbent: str, task, paired: Paired, config: RolloutConfig,
          step: Callable[[dict], dict], stage: int = 0) -> dict:
    """The online gate on the paired answers of one step, then the next step, the switch or the
    rollback, each recorded with the gate's numbers: the one decision both a replay and a live
    rollout (live.py) end in. Only a pass at the last step switches `current`. A step with too few
    pairs or labels (`too_few`) is not judged: `waiting` is recorded and nothing changes."""
    from ft_pipeline.core.tracking.models import mirror_alias

    shares = config.shares()
    at = {"step": stage + 1, "steps": len(shares), "share": shares[stage]} if len(shares) > 1 else {}
    rates = {"incumbent": paired.incumbent.rates(), "candidate": paired.candidate.rates()}
    if why := too_few(len(paired.labels), labelled(paired), config):  # the step holds: no gate, no decision
        step({"event": "waiting", "reason": why, "paired_requests": len(paired.labels), "labelled": labelled(paired),
              "min_requests": config.min_requests, "min_labelled_per_step": config.min_labelled_per_step, **at})
        return {"paired_requests": len(paired.labels), "passed": False, "advanced": False, "waiting": why,
                "failed_gates": [], "current": registry.current_version(root, name), "rates": rates, "verdicts": {},
                **({"step": stage + 1, "steps": len(shares)} if at else {})}
    verdicts = online_gate.online_gate(task, paired.incumbent, paired.candidate, paired.labels, config)
    failed = [v for v in verdicts.values() if not v.passed]
    numbers = {v.name: {k: v.numbers[k] for k in ("difference", "low", "high", "tolerance") if k in v.numbers}
               for v in verdicts.values()}
    step({"event": "gate", "passed": not failed, "paired_requests": len(paired.labels), **at,
          "labelled": sum(label is not None for label in paired.labels), "rates": rates, "numbers": numbers,
          # a list: the log is written with sorted keys, and the gates read best in their own order
          "verdicts": [{"gate": v.name, "passed": v.passed, "outcome": v.outcome, "detail": v.detail} for v in verdicts.values()]})
    now = registry.current_version(root, name)
    advanced = not failed and now == incumbent and stage < len(shares) - 1
    if not failed and now != incumbent:  # someone moved current meanwhile: this gate did not judge that one
        failed_reason = f"current moved from {incumbent} to {now} during the rollout; not switched"
        step({"event": "rolled_back", "reason": failed_reason, **at})
    elif advanced:  # Argo's next setWeight: the next requests go to the next share, judged afresh
        step({"event": "step", "step": stage + 2, "steps": len(shares), "from_share": shares[stage],
              "share": shares[stage + 1], "paired_requests": len(paired.labels), "numbers": numbers})
    elif not failed:
        registry.set_current(root, name, version)
        mirror_alias(name, version)
        step({"event": "switched", "from": incumbent, "to": version, **at})
    else:
        reason = "; ".join(f"{v.name}: {v.outcome}" for v in failed)
        step({"event": "rolled_back", "reason": reason, "failed_gates": [v.name for v in failed], **at})
    return {"paired_requests": len(paired.labels), "passed": not failed and now == incumbent and not advanced,
            "advanced": advanced, "waiting": None, "failed_gates": [v.name for v in failed], "current": registry.current_version(root, name),
            "rates": rates, "verdicts": verdicts, **({"step": stage + 1, "steps": len(shares)} if at else {})}


def _no_loading(lora_name: str, lora_path: str):
    from ft_pipeline.core.serving.engine import AdapterError

    raise AdapterError("a rollout serves only its two versions")
