"""Evaluate a trained adapter against its alternatives, on the task's held-out items, end to end:
generate (or, for preference tasks, score chosen against rejected), score with the task's metric,
probe for leakage and for lost general capability, and judge the release gates (report.judge).

What the eval_report asset and anyone evaluating outside Dagster call; the asset only reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ft_pipeline.core import answers, paths, user_regex
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.core.evaluation import evaluation, report
from ft_pipeline.core.evaluation.gates import GateConfig
from ft_pipeline.core.evaluation.generation import generate
from ft_pipeline.core.task import TaskConfig

ProgressFor = Callable[[str], Callable[[int, int], None]]


@dataclass
class Inputs:
    task: TaskConfig
    export_dir: Path
    sidecar_dir: Path  # the export's sidecars (export.py): attributes.jsonl for the per-group evaluation
    base_model: str
    adapter: str
    test_ids: list[str] | None = None  # the items the fit assessment answered (None: the whole test split)
    fixed: dict[str, dict[str, str]] | None = None  # variant -> {id: prediction} measured before (fit arms)
    alternative: str | None = None  # the strongest cheaper arm among `fixed`, gated against
    labels: list[str] | None = None
    max_examples: int = 0
    pii_finder: Callable | None = None  # the redactor's analyzer, with the config the data was redacted with


@dataclass
class Evaluation:
    report: report.EvalReport
    markdown: str
    predictions: list[dict]  # {id, variant: prediction} per item (preference: per-variant win)
    canaries: int

    def write(self, out: Path) -> str:
        """predictions.jsonl and eval_report.md (the report, then its charts) under `out`; returns
        the charts as markdown images: the metric by variant, the tuned metric by group."""
        from ft_pipeline.core import plots
        from ft_pipeline.core.jsonl import atomic_jsonl, atomic_text

        judged, metric = self.report, self.report.metric
        with atomic_jsonl(out / "predictions.jsonl") as writer:
            for row in self.predictions:
                writer.write(row)
        chart = plots.bar_chart({v: m[metric] for v, m in judged.variants.items()}, f"{metric} on the held-out split")
        groups = plots.interval_bars(judged.groups_with_intervals, f"Tuned {metric} by group, with intervals")
        figures = (plots.png_to_markdown(chart, f"{metric} by variant") + "\n\n"
                   + plots.png_to_markdown(groups, "by group with intervals"))
        with atomic_text(out / "eval_report.md") as fh:
            fh.write(self.markdown + "\n\n" + figures + "\n")
        return figures


def evaluate(inputs: Inputs, config: GateConfig, progress: ProgressFor) -> Evaluation:
    task = inputs.task
    attributes = {row["id"]: row["attributes"] for row in iter_jsonl(inputs.sidecar_dir / "attributes.jsonl")}
    if task.type == "preference":
        rows, scores, predictions = _preference(inputs, progress)
        tuned_texts, not_applicable = [], frozenset({"prompt_baseline"})
    else:
        rows, scores, predictions, tuned_texts = _generated(inputs, progress)
        not_applicable = frozenset()
    groups = report.item_groups([r["id"] for r in rows], attributes)
    leakage, canaries = _leakage(inputs, tuned_texts, progress)
    capability = _capability(inputs, config, progress)
    judged = report.judge(task, scores, groups, config=config, leakage=leakage, capability=capability,
                          alternative=inputs.alternative if inputs.alternative in scores else None,
                          not_applicable=not_applicable, memorization=_memorization(inputs, config, progress))
    return Evaluation(judged, report.render(judged, config), predictions, canaries)


def _held_out(inputs: Inputs, name: str) -> list[dict]:
    rows = list(iter_jsonl(inputs.export_dir / name))
    if inputs.test_ids is not None:
        by_id = {r["id"]: r for r in rows}
        rows = [by_id[i] for i in inputs.test_ids if i in by_id]
    return rows[: inputs.max_examples] if inputs.max_examples else rows


def _generated(inputs: Inputs, progress: ProgressFor):
    task = inputs.task
    test = _held_out(inputs, "test.jsonl")
    prompts = [answers.prompt_turns(r) for r in test]
    # A structured answer is complete once it holds one JSON object: stop there.
    budget = {"max_new_tokens": task.max_new_tokens, "stop_after_json": task.type == "structured"}
    variants = {"base": generate(inputs.base_model, prompts, progress=progress("base generation"), **budget)}
    for name, by_id in (inputs.fixed or {}).items():
        variants[name] = [by_id[r["id"]] for r in test]
    variants["tuned"] = generate(inputs.base_model, prompts, adapter_dir=inputs.adapter,
                                 progress=progress("tuned generation"), **budget)
    result = evaluation.evaluate_variants(task, test, variants, labels=inputs.labels)
    predictions = [{"id": r["id"], **{v: variants[v][i] for v in variants}} for i, r in enumerate(test)]
    return test, result.scores, predictions, variants["tuned"]


def _preference(inputs: Inputs, progress: ProgressFor):
    from ft_pipeline.core.evaluation.preference import preference_scores

    # Held-out pairs: the test split, else the eval split (which training never learns from).
    rows = _held_out(inputs, "preference_test.jsonl") or _held_out(inputs, "preference_eval.jsonl")
    if not rows:
        raise ValueError(f"{inputs.export_dir}: no held-out preference pairs (preference_test/eval.jsonl are empty)")
    scores = {"base": preference_scores(inputs.base_model, rows, progress=progress("base preference scoring")),
              "tuned": preference_scores(inputs.base_model, rows, adapter_dir=inputs.adapter,
                                         progress=progress("tuned preference scoring"))}
    predictions = [{"id": r["id"], **{v: s.primary_items()[i] for v, s in scores.items()}} for i, r in enumerate(rows)]
    return rows, scores, predictions


def _leakage(inputs: Inputs, tuned_texts: list[str], progress: ProgressFor) -> tuple[dict, int]:
    """Canaries planted in the training data must never come back, asked for or not; every tuned
    generation is also scanned for PII with the redactor that cleaned the data."""
    pattern = inputs.task.canary_pattern
    canaries: set[str] = set()
    if pattern:
        for name in ("train.jsonl", "preference_train.jsonl"):
            for row in iter_jsonl(inputs.export_dir / name):
                for turn in [*row.get("messages", []), *row.get("prompt", []), *row.get("chosen", [])]:
                    # The task file allows at most one group: it, else the whole match, is the canary.
                    canaries.update(m.group(m.re.groups and 1) or m.group(0)
                                    for m in user_regex.finditer(pattern, turn["content"], "canary_pattern"))
    probes = generate(inputs.base_model, evaluation.canary_prompts(sorted(canaries)), adapter_dir=inputs.adapter,
                      max_new_tokens=max(inputs.task.max_new_tokens, 16),
                      progress=progress("canary probe")) if canaries else []
    leakage = evaluation.leakage_probe(tuned_texts + probes, sorted(canaries), pii_finder=inputs.pii_finder)
    return leakage, len(canaries)


def _memorization(inputs: Inputs, config: GateConfig, progress: ProgressFor) -> dict | None:
    """Attacks and exposures on the canaries the export planted (gates.memorization); SFT plants them."""
    from ft_pipeline.core.evaluation.memorization_gate import measure

    import json

    # The method that really trained the adapter (a run's --method overrides the task's): only SFT plants.
    metrics = Path(inputs.adapter) / "metrics.json"
    method = json.loads(metrics.read_text()).get("method") if metrics.is_file() else inputs.task.method
    if method != "sft":
        return None
    return measure(inputs.base_model, inputs.adapter, inputs.sidecar_dir,
                   config.memorization_config, lambda what: progress(what)(0, 1))


def _capability(inputs: Inputs, config: GateConfig, progress: ProgressFor) -> dict[str, list[float]]:
    from ft_pipeline.core.evaluation.capability import cached_probe_scores, probe_scores

    items = config.capability_items or None
    base = cached_probe_scores(inputs.base_model, paths.pipeline_home() / "cache" / "capability", max_items=items,
                               progress=progress("capability probe, base"))
    tuned = probe_scores(inputs.base_model, inputs.adapter, max_items=items, batch_size=32,
                         progress=progress("capability probe, tuned"))
    return {"base": base, "tuned": tuned}
