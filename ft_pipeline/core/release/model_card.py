"""The model card: what a reviewer needs to decide whether this model may be used."""
from __future__ import annotations


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
