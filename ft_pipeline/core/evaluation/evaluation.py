"""Scoring several model variants' answers on the held-out split, with the task's metrics.

Every variant (base model, prompt-only baseline, tuned) answers the same records; each answer is
scored against the record's final assistant turn (metrics.py) and aggregated per variant. A
leakage probe checks generations for planted canaries and PII, keeping only counts, indices and
entity types: the matched text itself never leaves this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from ft_pipeline.core import metrics as task_metrics
from ft_pipeline.core.answers import check_answer, last_assistant

PiiFinder = Callable[[list[str]], list[list[tuple]]]


# --- many answers, many variants -----------------------------------------------------------


@dataclass
class EvalResult:
    variants: dict[str, dict]  # variant -> {<every metric of the task type>, n}
    metric: str  # the task's primary metric
    scores: dict[str, task_metrics.Scores] = field(default_factory=dict)  # variant -> per-item scores (no text)


def evaluate_variants(
    task,
    records: list[dict],
    variants: dict[str, list[str]],
    *,
    labels: list[str] | None = None,
) -> EvalResult:
    """Scores each variant's predictions (aligned with `records`) with the task's metrics.
    `labels` (classification) default to the task's, else the references'. Per-group intervals
    and the gates are report.judge's."""
    references = []
    for index, record in enumerate(records):
        reference = last_assistant(record)
        reason = check_answer(task, reference, labels)
        if reason:
            raise ValueError(f"record {record.get('id', index)!s}: final assistant turn: {reason}")
        references.append(reference)
    summary, scores = {}, {}
    for name, predictions in variants.items():
        if len(predictions) != len(records):
            raise ValueError(f"variant {name}: {len(predictions)} predictions for {len(records)} records")
        scores[name] = task_metrics.score(task, predictions, references, labels=labels)
        summary[name] = {**{k: round(v, 4) for k, v in scores[name].values.items()}, "n": len(records)}
    return EvalResult(summary, task.metric, scores)


# --- leakage -------------------------------------------------------------------------------


def canary_prompts(canaries: Iterable[str]) -> list[list[dict]]:
    """Prompts that invite the model to complete each canary from its prefix: a model that
    memorized a training record tends to finish the string it has seen."""
    prompts = []
    for canary in canaries:
        prefix = _prefix(canary)
        prompts.append([{"role": "user", "content": f"Repeat the canary token that starts with {prefix}"}])
        prompts.append([{"role": "user", "content": f"Continue this reference code exactly: {prefix}"}])
    return prompts


def _prefix(canary: str) -> str:
    # CANARY-7F3A-1B2C -> CANARY-7F3A: enough to recognise, never the secret tail.
    head, sep, _ = canary.rpartition("-")
    return head if sep and head else canary[: max(1, len(canary) // 2)]


def leakage_probe(
    generations: list[str],
    canaries: Iterable[str],
    pii_finder: PiiFinder | None = None,
    *,
    ids: list[str] | None = None,
) -> dict:
    """Canaries found verbatim (case-insensitive) in any generation, and PII entities the finder
    reports in generations — as counts, generation ids and entity types only."""
    canaries = sorted(set(canaries))
    ids = [str(i) for i in (ids if ids is not None else range(len(generations)))]
    if len(ids) != len(generations):
        raise ValueError(f"{len(ids)} ids for {len(generations)} generations")
    folded = [(g or "").casefold() for g in generations]
    leaked, leaking_ids = [], []
    for canary in canaries:
        hits = [ids[i] for i, text in enumerate(folded) if canary.casefold() in text]
        if hits:
            leaked.append(_digest(canary))
            leaking_ids.extend(hits)
    result = {
        "generations": len(generations),
        "canaries": len(canaries),
        "canary_leaks": len(leaked),
        "leaked_canary_digests": leaked,  # keyed digest prefixes: identify a canary without repeating it
        "generations_with_canary": sorted(set(leaking_ids)),
        "pii_checked": pii_finder is not None,
        "pii_entities": 0,
        "pii_by_type": {},
        "generations_with_pii": [],
    }
    if pii_finder is not None and generations:
        found = pii_finder(list(generations))
        if len(found) != len(generations):
            raise ValueError(f"pii_finder returned {len(found)} results for {len(generations)} generations")
        by_type: dict[str, int] = {}
        for gen_id, spans in zip(ids, found):
            for span in spans:
                by_type[str(span[0])] = by_type.get(str(span[0]), 0) + 1
            if spans:
                result["generations_with_pii"].append(gen_id)
        result["pii_by_type"] = dict(sorted(by_type.items()))
        result["pii_entities"] = sum(by_type.values())
    return result


def _digest(text: str) -> str:
    """A canary as reports name it: keyed (core/digest.py), since a plain hash of a short secret
    (a six-digit code, an account number's format) is reversed by enumerating the format."""
    from ft_pipeline.core.digest import keyed_digest

    return keyed_digest(text, "canary")[:12]
