"""The online gate: a candidate version against the incumbent on the same requests, with the paired
statistics of the release gates (release/statistics.py) and their rule: the end of the interval
on the bad side must stay within the tolerance. A point estimate alone never passes.

    schema_valid      share of answers the task's check accepts (and returned)   may fall by at most
    task_metric       the task's primary metric on requests that carry a label   may fall by at most
    refusal_rate      answers that read as a refusal (rollout.refusal_pattern)    may rise by at most
    pii_filter_hits   answers the redaction engine had to mask something in       may rise by at most
    error_rate        requests that failed (5xx, an engine or adapter failure)    may rise by at most
    p95_latency       p95 of candidate / p95 of incumbent - 1 (paired bootstrap)  may rise by at most

Too few paired requests fail the gate (`enough_requests`): an interval on 10 requests rules out
nothing, and "no evidence of harm" is not a pass. Thresholds: the task file's `rollout:` section
(core/release/rollout_config.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ft_pipeline.core import user_regex
from ft_pipeline.core.evaluation.gates import GateVerdict
from ft_pipeline.core.release.rollout_config import RolloutConfig
from ft_pipeline.core.evaluation.statistics import Comparison, compare_binary, compare_bootstrap

CANDIDATE, INCUMBENT = "candidate", "incumbent"


@dataclass
class Arm:
    """One version's answers to the paired requests, as numbers (and the answer texts, for the task
    metric only: they are never stored)."""

    valid: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    pii: list[float] = field(default_factory=list)
    error: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    def add(self, entry: dict, refusal_pattern: str) -> None:
        """One guarded completion's log entry (app.complete): status, the answer as returned, masks."""
        status, answer = int(entry.get("status") or 500), entry.get("answer") or ""
        self.valid.append(float(status == 200))
        refused = bool(answer) and user_regex.search(refusal_pattern, answer, "rollout.refusal_pattern") is not None
        self.refused.append(float(refused))
        self.pii.append(float(sum((entry.get("pii_masked_answer") or {}).values()) > 0))
        self.error.append(float(status >= 500 or entry.get("error") == "adapter_error"))
        self.latency_ms.append(float(entry.get("latency_ms") or 0.0))
        self.answers.append(answer)

    def rates(self) -> dict:
        n = len(self.valid)
        mean = lambda xs: round(sum(xs) / n, 4) if n else None  # noqa: E731
        return {"schema_valid": mean(self.valid), "refusal_rate": mean(self.refused), "pii_filter_hits": mean(self.pii),
                "error_rate": mean(self.error), "p95_latency_ms": round(p95(self.latency_ms), 1) if n else None}


def p95(values) -> float:
    return float(np.percentile(values, 95)) if len(values) else 0.0


def online_gate(task, incumbent: Arm, candidate: Arm, labels: list[str | None],
                config: RolloutConfig) -> dict[str, GateVerdict]:
    """Every online gate's verdict on the paired requests (aligned lists)."""
    n = len(candidate.valid)
    if len(incumbent.valid) != n or len(labels) != n:
        raise ValueError("the arms are not aligned request by request")
    enough = GateVerdict("enough_requests", n >= config.min_requests, "enough" if n >= config.min_requests else "too_few",
                         f"{n} paired requests; the gate needs at least {config.min_requests}",
                         {"n": n, "min_requests": config.min_requests})
    if n == 0:
        return {enough.name: enough}
    names = (CANDIDATE, INCUMBENT)
    binary = lambda a, b, metric: compare_binary(a, b, alpha=config.alpha, names=names, metric=metric)  # noqa: E731
    verdicts = [
        enough,
        _no_worse("schema_valid", binary(candidate.valid, incumbent.valid, "schema-valid rate"),
                  config.max_schema_valid_loss, higher_is_better=True),
        _task_metric(task, incumbent, candidate, labels, config),
        _no_worse("refusal_rate", binary(candidate.refused, incumbent.refused, "refusal rate"),
                  config.max_refusal_increase, higher_is_better=False),
        _no_worse("pii_filter_hits", binary(candidate.pii, incumbent.pii, "answers with PII masked"),
                  config.max_pii_increase, higher_is_better=False),
        _no_worse("error_rate", binary(candidate.error, incumbent.error, "error rate"),
                  config.max_error_increase, higher_is_better=False),
    ]
    c, i = np.asarray(candidate.latency_ms), np.asarray(incumbent.latency_ms)
    latency = compare_bootstrap(lambda idx: p95(c[idx]) / max(p95(i[idx]), 1e-9), lambda idx: 1.0, n,
                                alpha=config.alpha, n_boot=config.n_boot, seed=config.seed, names=names,
                                metric="p95 latency, relative")
    verdicts.append(_no_worse("p95_latency", latency, config.max_p95_latency_increase, higher_is_better=False))
    return {v.name: v for v in verdicts}


def _task_metric(task, incumbent: Arm, candidate: Arm, labels, config: RolloutConfig) -> GateVerdict:
    from ft_pipeline.core.metrics import score

    labelled = [k for k, label in enumerate(labels) if label is not None]
    if not labelled:
        return GateVerdict("task_metric", True, "not_judged", "no paired request carries a label: the task metric "
                                                              "is not compared (the other gates still apply)")
    references = [labels[k] for k in labelled]
    scores = [score(task, [arm.answers[k] for k in labelled], references, labels=task.labels)
              for arm in (candidate, incumbent)]
    if task.binary_metric:
        comparison = compare_binary(scores[0].primary_items(), scores[1].primary_items(), alpha=config.alpha,
                                    names=(CANDIDATE, INCUMBENT), metric=task.metric)
    else:
        comparison = compare_bootstrap(scores[0].on, scores[1].on, len(labelled), alpha=config.alpha,
                                       n_boot=config.n_boot, seed=config.seed, names=(CANDIDATE, INCUMBENT),
                                       metric=task.metric)
    return _no_worse("task_metric", comparison, config.max_metric_loss, higher_is_better=True)


def _no_worse(name: str, c: Comparison, tolerance: float, *, higher_is_better: bool) -> GateVerdict:
    """Passes when the interval's end on the bad side stays within `tolerance` of no change."""
    bad_end = -c.low if higher_is_better else c.high  # how much worse the candidate may credibly be
    worse = -c.difference if higher_is_better else c.difference
    if bad_end <= tolerance:
        outcome, why = "within", f"a change for the worse of more than {tolerance:.3f} is ruled out"
    elif worse <= tolerance:
        outcome, why = "inconclusive", (f"a change for the worse of more than {tolerance:.3f} cannot be ruled out "
                                        f"(it could be {bad_end:.3f}); more requests would tell")
    else:
        outcome, why = "worse", f"the candidate is worse by {worse:.3f}, more than the {tolerance:.3f} tolerated"
    return GateVerdict(name, outcome == "within", outcome, f"{c.sentence()}; {why}", {**c.as_dict(), "tolerance": tolerance})
