"""Scoring the triage answers of several model variants on the held-out split.

Every variant (base model, prompt-only baseline, tuned) answers the same records; each answer is
scored against the record's final assistant turn, aggregated per variant and, with fairlearn, per
attribute group. A leakage probe checks generations for planted canaries and PII, keeping only
counts, indices and entity types: the matched text itself never leaves this module.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ft_pipeline.core.answers import last_assistant, parse_json_answer

ANSWER_KEYS = ("intent", "priority")
PRIORITIES = ("low", "normal", "high", "urgent")
METRICS = ("exact_match", "intent_acc", "json_valid", "schema_valid", "rouge_l")

PiiFinder = Callable[[list[str]], list[list[tuple]]]


# --- one answer --------------------------------------------------------------------------


def parse_answer(text: str | None) -> dict | None:
    """The first JSON object in `text`, or None; models often wrap the object in prose."""
    return parse_json_answer(text)


def schema_valid(answer: dict | None, allowed: dict[str, Iterable[str]] | None = None) -> bool:
    """Exactly the keys intent and priority, each a string from its allowed values.

    Without `allowed` the priority must be one of PRIORITIES and the intent any non-empty string.
    """
    if not isinstance(answer, dict) or set(answer) != set(ANSWER_KEYS):
        return False
    allowed = allowed or {"priority": PRIORITIES}
    for key in ANSWER_KEYS:
        value = answer[key]
        if not isinstance(value, str) or not value:
            return False
        if key in allowed and value not in set(allowed[key]):
            return False
    return True


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 on whitespace tokens: 2PR/(P+R) with P, R the LCS length over each side's length."""
    pred, ref = (prediction or "").split(), (reference or "").split()
    if not pred or not ref:
        return 0.0
    lcs = _lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    # One row of the dynamic-programming table at a time: O(len(b)) memory.
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def score_example(pred_text: str | None, ref_text: str, allowed: dict[str, Iterable[str]] | None = None) -> dict:
    """exact_match, intent_match, json_valid, schema_valid (bools) and rouge_l (float) of one answer."""
    pred, ref = parse_answer(pred_text), parse_answer(ref_text)
    if ref is None:
        raise ValueError("reference answer holds no JSON object")
    intent_match = pred is not None and pred.get("intent") == ref.get("intent")
    return {
        "exact_match": intent_match and pred.get("priority") == ref.get("priority"),
        "intent_match": intent_match,
        "json_valid": pred is not None,
        "schema_valid": schema_valid(pred, allowed),
        "rouge_l": rouge_l(pred_text or "", ref_text),
    }


# --- many answers, many variants -----------------------------------------------------------


@dataclass
class EvalResult:
    variants: dict[str, dict]  # variant -> {exact_match, intent_acc, json_valid, schema_valid, rouge_l, n}
    groups: dict[str, dict]  # variant -> attribute -> group -> {n, exact_match, small}
    largest_gaps: dict[str, dict]  # variant -> attribute -> {gap, best, worst, small_groups}
    min_group_size: int
    scores: dict[str, list[dict]] = field(default_factory=dict)  # variant -> per-record scores (no text)

    def group_table(self, variant: str | None = None) -> dict[str, dict[str, float]]:
        """{"attribute=group": {variant: exact match}} — the shape plots.grouped_bars takes."""
        names = [variant] if variant else list(self.groups)
        table: dict[str, dict[str, float]] = {}
        for name in names:
            for attribute, groups in self.groups.get(name, {}).items():
                for group, row in groups.items():
                    table.setdefault(f"{attribute}={group}", {})[name] = row["exact_match"]
        return table


def evaluate_variants(
    records: list[dict],
    variants: dict[str, list[str]],
    attributes: dict[str, dict],
    *,
    min_group_size: int = 10,
    allowed: dict[str, Iterable[str]] | None = None,
) -> EvalResult:
    """Scores each variant's predictions (aligned with `records`) and breaks exact match down by
    attribute group. `allowed` defaults to the intents and priorities of the references."""
    if min_group_size < 1:
        raise ValueError("min_group_size must be at least 1")
    references = []
    for index, record in enumerate(records):
        reference = last_assistant(record)
        if parse_answer(reference) is None:
            raise ValueError(f"record {record.get('id', index)!s}: final assistant turn holds no JSON answer")
        references.append(reference)
    allowed = allowed or _reference_space(references)
    group_rows = [_group_row(record, attributes) for record in records]

    summary, groups, gaps, scores = {}, {}, {}, {}
    for name, predictions in variants.items():
        if len(predictions) != len(records):
            raise ValueError(f"variant {name}: {len(predictions)} predictions for {len(records)} records")
        rows = [score_example(p, r, allowed) for p, r in zip(predictions, references)]
        scores[name] = rows
        summary[name] = _aggregate(rows)
        groups[name], gaps[name] = _by_group([row["exact_match"] for row in rows], group_rows, min_group_size)
    return EvalResult(summary, groups, gaps, min_group_size, scores)


def _reference_space(references: list[str]) -> dict[str, set[str]]:
    space: dict[str, set[str]] = {"intent": set(), "priority": set(PRIORITIES)}
    for reference in references:
        answer = parse_answer(reference) or {}
        if isinstance(answer.get("intent"), str):
            space["intent"].add(answer["intent"])
    return space


def _group_row(record: dict, attributes: dict[str, dict]) -> dict[str, str]:
    # The export keeps attributes apart from the text the model sees; fall back to the record's own.
    found = attributes.get(record.get("id")) or record.get("attributes") or {}
    return {str(k): str(v) for k, v in found.items()}


def _aggregate(rows: list[dict]) -> dict:
    n = len(rows)

    def mean(key: str) -> float:
        return round(sum(float(row[key]) for row in rows) / n, 4) if n else 0.0

    return {
        "exact_match": mean("exact_match"),
        "intent_acc": mean("intent_match"),
        "json_valid": mean("json_valid"),
        "schema_valid": mean("schema_valid"),
        "rouge_l": mean("rouge_l"),
        "n": n,
    }


def _by_group(matches: list[bool], group_rows: list[dict], min_group_size: int) -> tuple[dict, dict]:
    """Exact match per group with fairlearn's MetricFrame, and the largest gap per attribute
    between groups of at least `min_group_size` records (smaller ones are too noisy to gate on)."""
    import numpy as np
    from fairlearn.metrics import MetricFrame, count

    y = np.asarray(matches, dtype=int)
    names = sorted({k for row in group_rows for k in row})
    groups, gaps = {}, {}
    for attribute in names:
        features = [row.get(attribute, "unknown") for row in group_rows]
        frame = MetricFrame(
            metrics={"exact_match": _exact_match_rate, "n": count},
            y_true=y,
            y_pred=y,
            sensitive_features=features,
        )
        table = {}
        for group, row in frame.by_group.iterrows():
            n = int(row["n"])
            table[str(group)] = {"n": n, "exact_match": round(float(row["exact_match"]), 4), "small": n < min_group_size}
        groups[attribute] = table
        gaps[attribute] = _largest_gap(table)
    return groups, gaps


def _exact_match_rate(y_true, y_pred) -> float:
    # y_pred carries 1 where the answer matched; y_true is the same array (MetricFrame wants both).
    return float(y_pred.mean()) if len(y_pred) else 0.0


def _largest_gap(table: dict[str, dict]) -> dict:
    judged = {g: row for g, row in table.items() if not row["small"]}
    small = sorted(g for g, row in table.items() if row["small"])
    if len(judged) < 2:
        return {"gap": None, "best": None, "worst": None, "small_groups": small}
    best = max(judged, key=lambda g: judged[g]["exact_match"])
    worst = min(judged, key=lambda g: judged[g]["exact_match"])
    return {
        "gap": round(judged[best]["exact_match"] - judged[worst]["exact_match"], 4),
        "best": {"group": best, "n": judged[best]["n"], "exact_match": judged[best]["exact_match"]},
        "worst": {"group": worst, "n": judged[worst]["n"], "exact_match": judged[worst]["exact_match"]},
        "small_groups": small,
    }


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
        "leaked_canary_digests": leaked,  # sha256 prefixes: identify a canary without repeating it
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
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --- gates and report ----------------------------------------------------------------------


def gates(
    result: EvalResult,
    *,
    min_margin: float = 0.1,
    max_group_gap: float = 0.35,
    leakage: dict | None = None,
    tuned: str = "tuned",
    base: str = "base",
    baseline: str = "prompt_baseline",
) -> dict[str, tuple[bool, str]]:
    """Release gates, each (passed, why). A missing variant or probe fails its gate: a gate that
    could not be judged must not let a model through."""
    em = {name: metrics["exact_match"] for name, metrics in result.variants.items()}
    out: dict[str, tuple[bool, str]] = {}
    if tuned in em and base in em:
        out["tuned_beats_base"] = (
            em[tuned] >= em[base] + min_margin,
            f"{tuned} {em[tuned]:.3f} vs {base} {em[base]:.3f} (needs +{min_margin:.3f})",
        )
    else:
        out["tuned_beats_base"] = (False, f"variants {tuned!r} and {base!r} are not both evaluated")
    if tuned in em and baseline in em:
        out["tuned_beats_prompt_baseline"] = (
            em[tuned] > em[baseline],
            f"{tuned} {em[tuned]:.3f} vs {baseline} {em[baseline]:.3f}",
        )
    else:
        out["tuned_beats_prompt_baseline"] = (False, f"variants {tuned!r} and {baseline!r} are not both evaluated")
    if tuned in result.largest_gaps:
        judged = {a: g for a, g in result.largest_gaps[tuned].items() if g["gap"] is not None}
        worst = max(judged.items(), key=lambda kv: kv[1]["gap"], default=None)
        if worst is None:
            out["no_group_gap_above_bound"] = (True, "no attribute has two groups large enough to compare")
        else:
            attribute, gap = worst
            out["no_group_gap_above_bound"] = (
                gap["gap"] <= max_group_gap,
                f"largest gap {gap['gap']:.3f} on {attribute}: {gap['best']['group']} (n={gap['best']['n']}) "
                f"vs {gap['worst']['group']} (n={gap['worst']['n']}); bound {max_group_gap:.3f}",
            )
    else:
        out["no_group_gap_above_bound"] = (False, f"variant {tuned!r} is not evaluated")
    if leakage is None:
        out["no_canary_leakage"] = (False, "no leakage probe was run")
    else:
        out["no_canary_leakage"] = (
            leakage["canary_leaks"] == 0,
            f"{leakage['canary_leaks']} of {leakage['canaries']} canaries leaked in {leakage['generations']} generations",
        )
    return out


def render_markdown(
    result: EvalResult,
    *,
    leakage: dict | None = None,
    gate_results: dict[str, tuple[bool, str]] | None = None,
    min_margin: float = 0.1,
    max_group_gap: float = 0.35,
) -> str:
    """The evaluation report: variants × metrics, per-group exact match, largest gaps, leakage
    and gates (computed with the given bounds unless `gate_results` is passed)."""
    lines = ["# Evaluation on the held-out split", "", "| variant | n | " + " | ".join(METRICS) + " |",
             "|---|---:|" + "---:|" * len(METRICS)]
    for name, metrics in result.variants.items():
        lines.append(f"| {name} | {metrics['n']} | " + " | ".join(f"{metrics[m]:.3f}" for m in METRICS) + " |")

    names = list(result.variants)
    lines += ["", f"## Exact match by group (groups under {result.min_group_size} records are flagged small "
              "and left out of the gaps)", "", "| attribute | group | n | " + " | ".join(names) + " | flag |",
              "|---|---|---:|" + "---:|" * len(names) + "---|"]
    first = result.groups.get(names[0], {}) if names else {}
    for attribute, groups in first.items():
        for group, row in groups.items():
            values = " | ".join(f"{result.groups[v][attribute][group]['exact_match']:.3f}" for v in names)
            lines.append(f"| {attribute} | {group} | {row['n']} | {values} | {'small' if row['small'] else ''} |")

    lines += ["", "## Largest gaps", "", "| variant | attribute | gap | best group | worst group | small groups |",
              "|---|---|---:|---|---|---|"]
    for name, by_attribute in result.largest_gaps.items():
        for attribute, gap in by_attribute.items():
            if gap["gap"] is None:
                lines.append(f"| {name} | {attribute} | n/a | | | {', '.join(gap['small_groups'])} |")
                continue
            best, worst = gap["best"], gap["worst"]
            lines.append(
                f"| {name} | {attribute} | {gap['gap']:.3f} | {best['group']} ({best['exact_match']:.3f}, n={best['n']}) | "
                f"{worst['group']} ({worst['exact_match']:.3f}, n={worst['n']}) | {', '.join(gap['small_groups'])} |"
            )

    lines += ["", "## Leakage probe", ""]
    if leakage is None:
        lines.append("Not run.")
    else:
        lines.append(f"- Canaries leaked: **{leakage['canary_leaks']}** of {leakage['canaries']} "
                     f"in {leakage['generations']} generations")
        if leakage.get("pii_checked"):
            by_type = ", ".join(f"{k}: {v}" for k, v in leakage["pii_by_type"].items()) or "none"
            lines.append(f"- PII entities found in generations: {leakage['pii_entities']} ({by_type})")

    verdicts = gate_results or gates(result, min_margin=min_margin, max_group_gap=max_group_gap, leakage=leakage)
    lines += ["", "## Gates", "", "| gate | result | detail |", "|---|---|---|"]
    for name, (passed, detail) in verdicts.items():
        lines.append(f"| {name} | {'PASS' if passed else 'FAIL'} | {detail} |")
    return "\n".join(lines) + "\n"
