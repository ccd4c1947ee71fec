"""The fit assessment end to end, outside Dagster: build each arm's prompts, let the base model
answer the held-out items, score each arm with the task's metric and an interval, price it at the
task's request volume, optionally run the pilot learning curve, and decide (fit.assess).

The fit_assessment asset calls `run_assessment` and only reports.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ft_pipeline.core import answers
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.core.fit import arms as arm_prompts
from ft_pipeline.core.evaluation import evaluation
from ft_pipeline.core.fit import fit, pilot
from ft_pipeline.core.fit.fit_config import FitConfig
from ft_pipeline.core.evaluation.generation import generate, load_model
from ft_pipeline.core.fit.prompts import baseline_system_prompt, label_set
from ft_pipeline.core.task import TaskConfig

ProgressFor = Callable[[str], Callable[[int, int], None]]


@dataclass
class Assessment:
    decision: dict  # fit.assess's verdict, with arms, fine_tune and pilot
    predictions: list[dict]  # {id, <arm>: answer (preference: 1.0 / 0.0 win)} per held-out item
    test_ids: list[str]
    system_prompt: str
    labels: list[str] | None
    few_shot_ids: list[str]
    cost: dict  # the planned training run's estimate (cost.estimate_cost)
    train_tokens: int = 0  # tokens in the training split (the base model's tokenizer)
    size_guidance: dict = dataclasses.field(default_factory=dict)  # cost.model_size_guidance

    def as_dict(self) -> dict:
        """The decision and what the evaluation reuses (held-out ids, labels, the system prompt)."""
        return {**self.decision, "system_prompt": self.system_prompt, "few_shot_ids": self.few_shot_ids,
                "labels": self.labels, "test_ids": self.test_ids, "cost": self.cost,
                "size_guidance": self.size_guidance}

    def write(self, task: TaskConfig, out: Path) -> tuple[str, str]:
        """arm_predictions.jsonl and fit_assessment.md (the report, then its charts) under `out`;
        returns (report, charts) as markdown: the arms with intervals and cost, the pilot curve."""
        from ft_pipeline.core import plots
        from ft_pipeline.core.jsonl import atomic_jsonl, atomic_text

        with atomic_jsonl(out / "arm_predictions.jsonl") as writer:
            for row in self.predictions:
                writer.write(row)
        decision = self.decision
        chart = plots.arms_chart(decision["arms"], decision["fine_tune"], task.target, task.metric)
        figures = plots.png_to_markdown(chart, "arms: metric with intervals, and cost")
        if decision.get("pilot"):
            points = [(p["examples"], p["metric"]) for p in decision["pilot"]["curve"]]
            target = [(points[0][0], task.target), (points[-1][0] * 2, task.target)]
            curve = plots.line_chart({f"pilot {task.metric}": points, "target": target}, "Pilot learning curve",
                                     "training examples", task.metric)
            figures += "\n\n" + plots.png_to_markdown(curve, "pilot learning curve")
        report = fit.render_markdown(decision)
        with atomic_text(out / "fit_assessment.md") as fh:
            fh.write(report + "\n" + figures + "\n")
        return report, figures


def run_assessment(task: TaskConfig, config: FitConfig, export_dir: Path, base_model: str, training, *,
                   n_params: int | None, max_items: int = 0, progress: ProgressFor, log: Callable[[str], None],
                   warn: Callable[[str], None], workdir: Path) -> Assessment:
    from ft_pipeline.core.training import model_stats
    from ft_pipeline.core.training.cost import estimate_cost, model_size_guidance

    export_dir = Path(export_dir)
    train = list(iter_jsonl(export_dir / "train.jsonl"))
    limit = max_items or config.max_items
    _, tokenizer = load_model(base_model)
    n_params, how = _parameters(n_params, base_model, warn)
    train_texts = (m["content"] for r in train for m in r["messages"])
    tokenizer_dir = Path(base_model) if Path(base_model).is_dir() else None
    n_train_tokens = model_stats.count_tokens(train_texts, tokenizer_dir)
    cost = {**estimate_cost(training, n_train_tokens, n_params), "parameters_from": how}

    def tokens(prompts: list[list[dict]]) -> list[int]:
        return [len(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=False))
                for p in prompts]

    if task.type == "preference":
        assessment = _preference(task, config, export_dir, base_model, training, cost, tokens, limit, progress, warn)
    else:
        assessment = _generated(task, config, export_dir, base_model, training, cost, tokens, tokenizer, train, limit,
                                progress, log, warn, workdir)
    assessment.train_tokens = n_train_tokens
    assessment.size_guidance = model_size_guidance(len(train), n_train_tokens, task.type)
    return assessment


def _generated(task, config, export_dir, base_model, training, cost, tokens, tokenizer, train, limit, progress, log,
               warn, workdir) -> Assessment:
    """Tasks with generated answers: every arm's prompts answered by the base model and scored."""
    test = list(iter_jsonl(export_dir / "test.jsonl"))
    test = test[:limit] if limit else test
    if not test:
        raise ValueError(f"{export_dir / 'test.jsonl'}: no held-out items to measure the arms on")
    labels = label_set(task, train)
    system_prompt = baseline_system_prompt(task, labels)
    k = config.k(task.few_shot)
    knowledge = None
    if task.knowledge and "rag" in config.arms:
        from ft_pipeline.core.fit.retrieval import load_knowledge, redacted_knowledge

        knowledge = load_knowledge(task.knowledge, config.chunk_words, config.overlap_words)
        knowledge = redacted_knowledge(knowledge, task.sections.redaction)
        log(f"knowledge: {len(knowledge)} chunks from {task.knowledge}")
    context_limit = _context_limit(base_model, tokenizer)

    def fits(prompt: list[dict]) -> bool:
        return tokens([prompt])[0] + task.max_new_tokens <= context_limit

    names = list(config.arms)
    if "rag" in names and not task.knowledge and "arms" not in task.fit:  # the default list, no folder: say so once
        names.remove("rag")
        log("arm rag not measured: the task names no knowledge folder")
    built = arm_prompts.build_arms(task, names, train, test, system_prompt, k=k, knowledge=knowledge,
                                   rag_chunks=config.rag_chunks, fits=fits, warn=warn)
    budget = {"max_new_tokens": task.max_new_tokens, "stop_after_json": task.type == "structured"}
    answered = {}
    for name, arm in built.items():
        log(f"arm {name}: {len(arm.prompts)} held-out items")
        answered[name] = generate(base_model, arm.prompts, progress=progress(f"arm {name}"), **budget)
    scored = evaluation.evaluate_variants(task, test, answered, labels=labels)
    results = {}
    for name, arm in built.items():
        answer_tokens = _mean(len(t) for t in tokenizer(answered[name], add_special_tokens=False)["input_ids"])
        results[name] = _arm_result(task, config, scored.scores[name], scored.variants[name],
                                    _mean(tokens(arm.prompts)), answer_tokens, arm.trimmed)
    tuned_prompt = _mean(tokens([answers.prompt_turns(r) for r in test]))
    reference_tokens = _mean(len(t) for t in tokenizer([answers.last_assistant(r) or "" for r in test],
                                                       add_special_tokens=False)["input_ids"])
    fine_tune = _fine_tune_cost(task, config, cost, tuned_prompt, reference_tokens)

    curve = None
    if config.pilot:
        curve = _pilot(task, config, export_dir, base_model, training, test, labels, workdir, log, warn)
    decision = fit.assess(results, target=task.target, metric=task.metric, fine_tune=fine_tune,
                          requests_per_month=task.requests_per_month, pilot=curve, alpha=config.alpha)
    predictions = [{"id": r["id"], **{name: answered[name][i] for name in built}} for i, r in enumerate(test)]
    few_shot = arm_prompts.fixed_shots(task, train, k) if "few_shot" in built else []
    return Assessment(decision, predictions, [r["id"] for r in test], system_prompt, labels,
                      [str(s["id"]) for s in few_shot], cost)


def _arm_result(task, config, scores, values: dict, prompt_tokens: float, answer_tokens: float, trimmed: int) -> dict:
    low, high = fit.interval(scores, binary=task.binary_metric, alpha=config.alpha)
    return {**values, "metric": values[task.metric], "low": low, "high": high, "n": values["n"],
            "prompt_tokens": round(prompt_tokens, 1), "answer_tokens": round(answer_tokens, 1), "trimmed": trimmed,
            "usd_per_month": fit.monthly_usd(prompt_tokens, answer_tokens, task.requests_per_month,
                                             config.usd_per_million_tokens)}


def _fine_tune_cost(task, config, cost: dict, prompt_tokens: float, answer_tokens: float) -> dict:
    serving = fit.monthly_usd(prompt_tokens, answer_tokens, task.requests_per_month, config.usd_per_million_tokens)
    return {"one_off_usd": cost["usd"], "serving_usd_per_month": serving, "amortize_months": config.amortize_months,
            "usd_per_month": serving + cost["usd"] / config.amortize_months,
            "prompt_tokens": round(prompt_tokens, 1), "answer_tokens": round(answer_tokens, 1)}


def _pilot(task, config, export_dir, base_model, training, test, labels, workdir, log, warn) -> dict | None:
    if training.method != "sft":
        warn(f"pilot skipped: it trains SFT only, and this run trains {training.method}")
        return None
    items = test[: config.pilot_items] if config.pilot_items else test
    prompts = [answers.prompt_turns(r) for r in items]  # what the tuned model is asked, as in evaluation

    def score(adapter_dir: str) -> dict:
        answered = generate(base_model, prompts, adapter_dir=adapter_dir, max_new_tokens=task.max_new_tokens,
                            stop_after_json=task.type == "structured")
        result = evaluation.evaluate_variants(task, items, {"pilot": answered}, labels=labels)
        low, high = fit.interval(result.scores["pilot"], binary=task.binary_metric, alpha=config.alpha)
        return {"metric": result.variants["pilot"][task.metric], "low": low, "high": high, "n": len(items)}

    # The pilot trains the model the run will train, whatever the preset file names.
    training = dataclasses.replace(training, base_model=base_model)
    curve = pilot.run_pilot(training, export_dir, score=score, half_steps=config.pilot_steps, workdir=workdir, log=log)
    return pilot.extrapolate(curve, task.target, task.metric, training.max_steps)


def _preference(task, config, export_dir, base_model, training, cost, tokens, limit, progress, warn) -> Assessment:
    """Preference tasks are scored, not generated: the zero-shot arm is the base model's preference
    accuracy with the task's system prompt; example-based arms do not apply."""
    from ft_pipeline.core.evaluation.preference import preference_scores

    rows = list(iter_jsonl(export_dir / "preference_test.jsonl")) or list(iter_jsonl(export_dir / "preference_eval.jsonl"))
    rows = rows[:limit] if limit else rows
    if not rows:
        raise ValueError(f"{export_dir}: no held-out preference pairs (preference_test/eval.jsonl are empty)")
    skipped = [a for a in config.arms if a != "zero_shot"]
    if skipped:
        warn(f"arms {', '.join(skipped)} skipped: a preference task's answers are compared, not generated")
    system_prompt = task.system_prompt.strip()
    prompted = [{**r, "prompt": ([{"role": "system", "content": system_prompt}] if system_prompt else [])
                 + [m for m in r["prompt"] if m["role"] != "system"]} for r in rows]
    scores = preference_scores(base_model, prompted, progress=progress("arm zero_shot"))
    prompt_tokens = _mean(tokens([r["prompt"] for r in prompted]))
    answer_tokens = _mean(len(str(r["chosen"][-1]["content"]).split()) * 1.3 for r in rows)
    values = {**{k: round(v, 4) for k, v in scores.values.items()}, "n": len(rows)}
    results = {"zero_shot": _arm_result(task, config, scores, values, prompt_tokens, answer_tokens, 0)}
    fine_tune = _fine_tune_cost(task, config, cost, _mean(tokens([r["prompt"] for r in rows])), answer_tokens)
    decision = fit.assess(results, target=task.target, metric=task.metric, fine_tune=fine_tune,
                          requests_per_month=task.requests_per_month, alpha=config.alpha)
    predictions = [{"id": r["id"], "zero_shot": v} for r, v in zip(rows, scores.primary_items())]
    return Assessment(decision, predictions, [r["id"] for r in rows], system_prompt, None, [], cost)


def _parameters(n_params: int | None, base_model: str, warn) -> tuple[int, str]:
    """Counted from the weights when local; a hub id is read for its size ('Qwen2.5-7B' -> 7e9)."""
    if n_params:
        return n_params, "counted"
    match = re.search(r"(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z])", Path(str(base_model)).name)
    if match:
        return int(float(match.group(1)) * (1e9 if match.group(2) in "bB" else 1e6)), "read from the model name"
    warn(f"cannot tell the size of {base_model}: the training cost estimate assumes 7B parameters")
    return 7_000_000_000, "assumed 7B"


def _context_limit(base_model: str, tokenizer) -> int:
    model, _ = load_model(base_model)
    limit = getattr(model.config, "max_position_embeddings", None) or 0
    tok_limit = getattr(tokenizer, "model_max_length", 0) or 0
    candidates = [x for x in (limit, tok_limit) if 0 < x < 10**7]
    return min(candidates) if candidates else 2048


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
