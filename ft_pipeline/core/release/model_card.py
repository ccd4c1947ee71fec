"""The model card: what a reviewer needs to decide whether this model may be used."""
from __future__ import annotations

from ft_pipeline.core.training.privacy import total_line


def render(lineage: dict) -> str:
    training = lineage.get("training", {})
    evaluation = lineage.get("evaluation", {})
    task = lineage.get("task", {})
    lines = [
        f"# Model card — {lineage['name']} {lineage['version']}",
        "",
        f"Promoted {lineage['promoted_at']} by run `{lineage['run_id']}`; code version `{lineage.get('code_version', 'unknown')}`.",
        "",
        "## Task",
        f"- Type: {task.get('type', 'unknown')}; primary metric: {task.get('metric', 'unknown')} "
        f"(target {task.get('target', 'unknown')})",
        f"- Task definition: `{task.get('path', 'unknown')}`, sha256 `{(task.get('sha256') or '')[:16]}`",
        "",
        "## Model",
        f"- Base model: `{training.get('base_model')}`",
        f"- Method: {training.get('method')} with LoRA (rank {training.get('lora_r')}, alpha {training.get('lora_alpha')})",
        f"- Training steps: {training.get('steps')}, final loss: {training.get('final_loss')}",
        privacy_line(training.get("privacy"), training.get("privacy_total")),
        *stage_lines(training.get("stages")),
        "",
        "## Data (sha256 of every artifact on the way)",
        "| asset | sha256 | run |",
        "|---|---|---|",
    ]
    for asset in lineage.get("assets", []):
        lines.append(f"| {asset['asset']} | `{(asset.get('sha256') or '')[:16]}` | `{asset['run_id'][:8]}` |")
    lines += ["", "## Compliance gates", "| check | asset | result |", "|---|---|---|"]
    for check in lineage.get("checks", []):
        lines.append(f"| {check['check']} | {check['asset']} | {'passed' if check['passed'] else 'FAILED'} |")
    variants = evaluation.get("variants", {})
    names = sorted({m for metrics in variants.values() for m, v in metrics.items() if isinstance(v, float)})
    primary = task.get("metric")
    names = ([primary] if primary in names else []) + [m for m in names if m != primary]
    lines += ["", "## Evaluation (held-out test split)", "| variant | " + " | ".join(names) + " |",
              "|---|" + "---:|" * len(names)]
    for variant, metrics in variants.items():
        lines.append(f"| {variant} | " + " | ".join(f"{metrics.get(m, 0.0):.3f}" for m in names) + " |")
    lines += memorization_lines(evaluation)
    lines += [
        "",
        "## Intended use and limits",
        task.get("description") or "(the task file gives no description)",
        "",
        "Trained only on redacted text: personal data was replaced by placeholders before training, and",
        "a leakage probe looked for planted canaries and personal data in the model's outputs.",
        "",
    ]
    return "\n".join(lines)


def stage_lines(stages: list[dict] | None) -> list[str]:
    """A recipe's stages (SFT, then GRPO on its adapter): the model is the last one's adapter, and
    it carries what every earlier stage learned, so each is named with its data and steps."""
    if not stages or len(stages) < 2:
        return []
    return [f"- Trained in {len(stages)} stages, each on the export `{(stages[-1].get('export_sha256') or '')[:16]}`:"] + [
        f"  {i}. {s['method']} (preset `{s['preset']}`, adapter `{s['adapter']}`"
        f"{', reused' if s.get('reused') else ''}): {s.get('steps')} steps, final loss {s.get('final_loss')}"
        for i, s in enumerate(stages, 1)]


def privacy_line(privacy: dict | None, total: dict | None = None) -> str:
    line = _run_privacy(privacy)
    composed = total_line(total)
    return f"{line}; {composed}" if composed else line


def _run_privacy(privacy: dict | None) -> str:
    if not privacy or not privacy.get("dp"):
        return "- Differential privacy: none (the adapter may memorize what redaction missed)"
    return (f"- Differential privacy: DP-SGD (Opacus), spent ε = {privacy['epsilon']:.2f} at δ = {privacy['delta']:.2g} "
            f"(target ε {privacy['target_epsilon']:g}), per-example clip norm {privacy['max_grad_norm']:g}, noise "
            f"multiplier {privacy['noise_multiplier']:.3f}, {privacy['steps']} steps at sampling rate "
            f"{privacy['sample_rate']:.3g} ({privacy['sampling']}); privacy unit: {privacy['privacy_unit']}")


def memorization_lines(evaluation: dict) -> list[str]:
    """The memorization gate's attacks, each with its intervals, and the canaries' exposure by level."""
    verdict = (evaluation.get("verdicts") or {}).get("no_canary_memorization")
    result = evaluation.get("memorization")
    lines = ["", "## Memorization (planted secret canaries)"]
    if verdict:
        lines.append(f"- Gate no_canary_memorization: {'PASS' if verdict['passed'] else 'FAIL'} ({verdict['outcome']}): "
                     f"{verdict['detail']}")
    if not result:
        return lines + ["- No canaries were planted: memorization was not measured (gates.memorization.canaries)."]
    lines += ["", "| attack | AUC | interval | TPR at 1% FPR | interval |", "|---|---:|---|---:|---|"]
    for name, a in result["attacks"].items():
        lines.append(f"| {name} | {a['auc']:.3f} | {a['auc_low']:.3f}–{a['auc_high']:.3f} | {a['tpr_at_1pct_fpr']:.3f} | "
                     f"{a['tpr_low']:.3f}–{a['tpr_high']:.3f} |")
    lines += ["", "| canaries | n | mean exposure (bits) | max |", "|---|---:|---:|---:|"]
    for level, e in result["exposure"].items():
        lines.append(f"| {level} | {e['canaries']} | {e['mean_exposure']:.2f} | {e['max_exposure']:.2f} |")
    return lines


NOTICE_START = "<!-- erasure notice -->"


def with_erasure_notice(card: str, marks: dict) -> str:
    """The card with its erasure notice (re-rendered from erasure.json, so writing it twice gives
    the same card) in place of any earlier one."""
    body = card.split(NOTICE_START)[0].rstrip("\n")
    retired = marks.get("retired_at")
    lines = [
        NOTICE_START,
        "## Erasure notice",
        "",
        "**This version was trained on records that have since been erased (right to erasure).** It must",
        "not serve, and `ft-pipeline rollback` refuses to return to it; a retrain on the remaining data",
        "promotes a clean version.",
        f"Weights retired (deleted) {retired}; this card and the lineage are kept." if retired else
        "Its weights are kept until retired (`ft-pipeline forget --retire`).",
        "",
        "| erasure request | when | records of its training data erased |",
        "|---|---|---:|",
        *(f"| `{r['request_id']}` | {r['at']} | {r['records']} |" for r in marks["requests"]),
        "",
    ]
    return body + "\n\n" + "\n".join(lines)
