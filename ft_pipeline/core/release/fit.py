"""Should this task be fine-tuned at all?

Fine-tuning is the expensive answer. The cheaper ones come first: if a well-instructed base model
already meets the target, prompt engineering is enough; if its failures come from facts it cannot
know (fresh or proprietary knowledge), retrieval fixes them and tuning would not. Fine-tuning earns
its cost when the model knows enough but does not answer in the required format or labelling
consistently — exactly what a few hundred supervised examples teach.
"""
from __future__ import annotations

KNOWLEDGE_TASKS = ("knowledge", "qa", "question_answering", "open_qa")


def build_prompt(messages: list[dict], system_prompt: str | None, few_shot: list[dict] = ()) -> list[dict]:
    """The prompt-only baseline's turns: `system_prompt` (replacing any system turn), then each
    few-shot record's user/assistant exchange, then the conversation itself."""
    system = [m for m in messages if m["role"] == "system"]
    turns = [system[0]] if system and not system_prompt else []
    if system_prompt:
        turns.append({"role": "system", "content": system_prompt})
    for index, shot in enumerate(few_shot):
        exchange = [m for m in shot.get("messages") or [] if m["role"] in ("user", "assistant")]
        if not exchange or exchange[-1]["role"] != "assistant":
            raise ValueError(f"few-shot record {shot.get('id', index)!s} has no final assistant answer")
        turns.extend({"role": m["role"], "content": m["content"]} for m in exchange)
    turns.extend(m for m in messages if m["role"] != "system")
    return turns


def assess_fit(baseline: dict, target: float, *, task_profile: dict, near_margin: float = 0.05,
               metric: str = "exact_match") -> dict:
    """Recommends prompt_engineering, rag or fine_tune from the prompt-only baseline's metrics on
    the held-out split (as evaluation.evaluate_variants reports them) and the target exact match.

    task_profile: {"task": "classification" | "knowledge" | ..., "needs_fresh_facts": bool}.
    `near_margin`: a baseline this close to the target with well-formed answers is sent to prompt
    engineering (few-shot, sharper instructions) rather than to training.
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError("target must be within [0, 1]")
    em = float(baseline[metric])
    json_valid = float(baseline.get("json_valid", 1.0))
    schema = float(baseline.get("schema_valid", 1.0))
    intent = float(baseline.get("intent_acc", baseline.get("field_accuracy", em)))
    n = baseline.get("n")
    measured = f"on {n} held-out examples" if n else "on the held-out split"
    task = str(task_profile.get("task", "classification"))
    # Of the answers that were well-formed, how many were still wrong: those are label (or fact)
    # failures, the rest are format failures.
    format_failures = round(1.0 - schema, 4)
    content_failures = round(max(schema - em, 0.0), 4)
    profile = {"format_failures": format_failures, "content_failures": content_failures}

    def verdict(recommendation: str, reasons: list[str]) -> dict:
        return {"recommendation": recommendation, "reasons": reasons, "baseline": baseline, "target": target,
                "failure_profile": profile, "task_profile": dict(task_profile)}

    if em >= target:
        return verdict("prompt_engineering", [
            f"prompt-only baseline exact match {em:.3f} {measured} meets the target {target:.3f}; "
            "training would add cost without a needed gain",
        ])
    if task_profile.get("needs_fresh_facts") or task in KNOWLEDGE_TASKS:
        why = "answers depend on facts that change" if task_profile.get("needs_fresh_facts") else f"the task is {task}"
        reasons = [
            f"prompt-only baseline exact match {em:.3f} {measured} is below the target {target:.3f}",
            f"{why}: the missing part is knowledge, which retrieval supplies at answer time and "
            "fine-tuning would freeze into the weights",
        ]
        if format_failures > content_failures:
            reasons.append(f"{format_failures:.1%} of answers also break the format (schema valid {schema:.1%}): "
                           "fix that with format instructions first, re-assess after retrieval is in place")
        else:
            reasons.append(f"answers were well-formed in {schema:.1%} of cases (JSON valid {json_valid:.1%}), "
                           "so format is not the gap")
        return verdict("rag", reasons)
    gap = target - em
    if gap <= near_margin and schema >= 0.95:
        return verdict("prompt_engineering", [
            f"prompt-only baseline exact match {em:.3f} {measured} is within {near_margin:.2f} of the target "
            f"{target:.3f} with schema-valid answers {schema:.1%}: sharper instructions or few-shot examples should close it",
        ])
    reasons = [f"prompt-only baseline exact match {em:.3f} {measured} is {gap:.3f} below the target {target:.3f}"]
    if format_failures > 0:
        reasons.append(
            f"{format_failures:.1%} of answers break the required format (JSON valid {json_valid:.1%}, "
            f"schema valid {schema:.1%}): output consistency is what supervised fine-tuning teaches"
        )
    if content_failures > 0:
        reasons.append(
            f"{content_failures:.1%} of answers are well-formed but mislabelled (intent accuracy {intent:.3f}): "
            f"the {task} label boundaries are learned from examples, not retrieved facts"
        )
    return verdict("fine_tune", reasons)


def render_markdown(assessment: dict) -> str:
    baseline = assessment["baseline"]
    lines = [
        "# Fit assessment",
        "",
        f"**Recommendation: {assessment['recommendation'].replace('_', ' ')}** "
        f"(target exact match {assessment['target']:.3f})",
        "",
        "| metric | prompt-only baseline |",
        "|---|---:|",
    ]
    for key in ("exact_match", "intent_acc", "json_valid", "schema_valid", "rouge_l"):
        if key in baseline:
            lines.append(f"| {key} | {baseline[key]:.3f} |")
    lines += ["", "## Why", ""] + [f"- {reason}" for reason in assessment["reasons"]]
    return "\n".join(lines) + "\n"
