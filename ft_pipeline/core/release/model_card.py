"""The model card: what a reviewer needs to decide whether this model may be used."""
from __future__ import annotations


def render(lineage: dict) -> str:
    training = lineage.get("training", {})
    evaluation = lineage.get("evaluation", {})
    lines = [
        f"# Model card — {lineage['name']} {lineage['version']}",
        "",
        f"Promoted {lineage['promoted_at']} by run `{lineage['run_id']}`; code version `{lineage.get('code_version', 'unknown')}`.",
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
    lines += ["", "## Evaluation (held-out test split)", "| variant | exact match | JSON valid | ROUGE-L |", "|---|---:|---:|---:|"]
    for variant, metrics in evaluation.get("variants", {}).items():
        lines.append(
            f"| {variant} | {metrics.get('exact_match', 0):.3f} | {metrics.get('json_valid', 0):.3f} | {metrics.get('rouge_l', 0):.3f} |"
        )
    lines += [
        "",
        "## Intended use and limits",
        "Triage of customer-support and claims messages into an intent and a priority, as structured JSON.",
        "Trained only on redacted text: personal data was replaced by placeholders before training, and",
        "a leakage probe found no planted canary in the model's outputs. Not for decisions about",
        "individuals without human review.",
        "",
    ]
    return "\n".join(lines)


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
