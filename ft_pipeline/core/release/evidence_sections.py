"""The evidence bundle's contents, each built only from what the registry already holds for a
version (lineage.json, MODEL_CARD.md, the merged weights' headers) and the erasure log: the
datasheet, the training-compute estimate with the EU AI Act fine-tuner verdict, the gates with
their intervals, and the Annex IV sections. Pure functions of their inputs: the same version gives
the same text (evidence.py writes and hashes it).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from ft_pipeline.core.training.privacy import total_line

FLOPS_PER_PARAM_TOKEN = 6  # forward + backward of a dense transformer (Kaplan et al. 2020)
# Training compute of base models, 6 * parameters * pre-training tokens, from their model cards.
BASE_COMPUTE = {
    "smollm2-135m": (6 * 135e6 * 2e12, "SmolLM2-135M: 135M parameters, 2T tokens (HuggingFaceTB model card)"),
    "smollm2-360m": (6 * 362e6 * 4e12, "SmolLM2-360M: 362M parameters, 4T tokens (HuggingFaceTB model card)"),
    "smollm2-1.7b": (6 * 1.71e9 * 11e12, "SmolLM2-1.7B: 1.71B parameters, 11T tokens (HuggingFaceTB model card)"),
    "qwen2.5-0.5b": (6 * 0.49e9 * 18e12, "Qwen2.5-0.5B: 0.49B parameters, 18T tokens (Qwen2.5 technical report)"),
    "qwen2.5-1.5b": (6 * 1.54e9 * 18e12, "Qwen2.5-1.5B: 1.54B parameters, 18T tokens (Qwen2.5 technical report)"),
}
ONE_THIRD = 1 / 3


def datasheet(lineage: dict) -> dict:
    """Sources with digests, redaction counts per entity type, quarantine reasons, label-gate and
    bias verdicts: what the lineage recorded (`null` where the release predates a field)."""
    assets = [a for a in lineage.get("assets", []) if a.get("materialized")]
    meta = lambda name: [a.get("metadata") or {} for a in assets if a["asset"] == name]  # noqa: E731
    sources = [{"partition": a.get("partition"), "source": (a.get("metadata") or {}).get("source"),
                "files_sha256": (a.get("metadata") or {}).get("source_sha256"), "records": (a.get("metadata") or {}).get("records"),
                "quarantined": (a.get("metadata") or {}).get("quarantined")} for a in assets if a["asset"] == "raw_dataset"]
    entities, reasons = {}, {}
    for m in meta("raw_dataset") + meta("redacted_dataset"):
        for key, total in (("entities_redacted", entities), ("quarantine_reasons", reasons)):
            for kind, n in (m.get(key) or {}).items():
                total[kind] = total.get(kind, 0) + int(n)
    redacted = meta("redacted_dataset")
    checks = lineage.get("checks", [])
    pick = lambda *names: [{k: c.get(k) for k in ("check", "asset", "partition", "passed", "description")}  # noqa: E731
                           for c in checks if c["check"] in names]
    bias = meta("bias_report")
    export = [a for a in assets if a["asset"] == "jsonl_export"]
    return {
        "sources": sources,
        "redaction": {"entities_redacted": dict(sorted(entities.items())) if redacted else None,
                      "recorded": any("entities_redacted" in m for m in redacted)},
        "quarantine_reasons": dict(sorted(reasons.items())),
        "label_gate": pick("labels_are_verified", "annotators_agree"),
        "bias_audit": {"verdict": bias[0].get("verdict") if bias else None,
                       "failed_attributes": bias[0].get("failed_attributes") if bias else None,
                       "checks": pick("bias_is_within_bounds")},
        "export": {"sha256": export[0].get("sha256") if export else None,
                   "sidecars_sha256": (export[0].get("metadata") or {}).get("sidecars_sha256") if export else None,
                   "checks": [c for c in pick(*{c["check"] for c in checks if c["asset"] == "jsonl_export"})]},
    }


def safetensors_parameters(folder: Path) -> int | None:
    """Parameters in a folder's *.safetensors, read from their headers (no weights loaded)."""
    total, found = 0, False
    for path in sorted(Path(folder).glob("*.safetensors")):
        with open(path, "rb") as fh:
            size = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(size))
        for name, tensor in header.items():
            if name != "__metadata__":
                n = 1
                for dim in tensor["shape"]:
                    n *= dim
                total, found = total + n, True
    return total if found else None


def compute(lineage: dict, version_dir: Path) -> dict:
    """6 * parameters * tokens of the fine-tune, against a third of the base model's training compute."""
    training = lineage.get("training") or {}
    params = training.get("total_params") or safetensors_parameters(Path(version_dir) / "merged")
    tokens = training.get("train_tokens")
    flops = FLOPS_PER_PARAM_TOKEN * params * tokens if params and tokens else None
    base = str(training.get("base_model") or "")
    key = next((k for k in BASE_COMPUTE if k in base.lower().replace("_", "-")), None)
    base_flops, base_source = BASE_COMPUTE[key] if key else (None, None)
    out = {"parameters": params, "train_tokens": tokens, "formula": "6 * parameters * tokens",
           "flops": flops, "base_model": base, "base_training_flops": base_flops, "base_source": base_source}
    if flops is None:
        why = "the release does not record the tokens it trained on" if not tokens else "the parameter count is unknown"
        return {**out, "ratio": None, "gpai_provider": "unknown", "verdict": f"unknown: {why}"}
    if base_flops is None:
        return {**out, "ratio": None, "gpai_provider": "unknown",
                "verdict": f"unknown: the base model {base!r} is not in the table of known training compute "
                           "(core/release/evidence_sections.py BASE_COMPUTE); ask its provider"}
    ratio = flops / base_flops
    under = ratio < ONE_THIRD
    return {**out, "ratio": ratio, "gpai_provider": "no" if under else "yes",
            "verdict": (f"the modification used {ratio:.3g} of the base model's training compute, "
                        + ("under one third: a downstream modifier, not the provider of a general-purpose AI model"
                           if under else "at least one third: the modifier becomes the provider of a GPAI model"))}


def gates_table(lineage: dict) -> str:
    """Every release gate's verdict as recorded at promotion, with the sentence holding its interval."""
    verdicts = ((lineage.get("evaluation") or {}).get("verdicts") or {})
    lines = ["| gate | result | outcome | evidence (with intervals) |", "|---|---|---|---|"]
    lines += [f"| {name} | {'PASS' if v['passed'] else 'FAIL'} | {v['outcome']} | {v['detail']} |"
              for name, v in verdicts.items()]
    return "\n".join(lines) + "\n"


def annex_iv(lineage: dict, sheet: dict, flops: dict, erasures: list[dict]) -> list[dict]:
    """The AI Act's Annex IV headings, each `filled` (with the bundle files that fill it) or
    `not_applicable` with the reason."""
    task, training = lineage.get("task") or {}, lineage.get("training") or {}
    privacy = training.get("privacy") or {}

    def filled(heading, files, summary):
        return {"heading": heading, "status": "filled", "files": files, "summary": summary}

    def not_applicable(heading, reason):
        return {"heading": heading, "status": "not_applicable", "reason": reason}

    return [
        filled("1. General description of the AI system", ["model_card.md"],
               f"{lineage['name']} {lineage['version']}: a {task.get('type', 'unknown')} task "
               f"({task.get('description') or 'no description'}), LoRA on {training.get('base_model')}"),
        filled("2. Detailed description of the elements and of the development process",
               ["datasheet.json", "datasheet.md", "compute.json", "model_card.md"],
               f"{training.get('method')} LoRA, {training.get('steps')} steps; {len(sheet['sources'])} source partitions; "
               + (f"DP-SGD epsilon {privacy.get('epsilon'):.3g} at delta {privacy.get('delta'):.2g}" if privacy.get("dp")
                  else "no differential privacy")
               + (f"; {total_line(training.get('privacy_total'))}" if total_line(training.get("privacy_total")) else "")),
        filled("3. Monitoring, functioning and control", ["model_card.md", "run_log.jsonl"],
               "blocking gates before promotion; serving behind a guard, shadow/canary rollout with an online gate"),
        filled("4. Appropriateness of the performance metrics", ["gates.md"],
               f"primary metric {task.get('metric')} with paired intervals against base and the prompt-only baseline"),
        filled("5. Risk management system", ["gates.md", "datasheet.md"],
               "release gates on quality, group gaps, canary leakage, memorization and capability; the organisation's "
               "Article 9 process around them is outside this bundle"),
        filled("6. Changes through the lifecycle", ["run_log.jsonl", "erasure_ledger.jsonl"],
               f"{len(erasures)} erasure requests concern this version" if erasures else
               "no erasure request concerns this version; earlier versions stay in the registry"),
        not_applicable("7. Harmonised standards applied",
                       "no harmonised standard under Regulation (EU) 2024/1689 was applied to this model"),
        not_applicable("8. EU declaration of conformity",
                       "issued by the provider of a high-risk AI system after conformity assessment; a fine-tuned "
                       "model's evidence bundle is an input to it, not the declaration"),
        filled("9. Post-market monitoring", ["model_card.md"],
               "production traffic is logged redacted by day and feeds drift checks and retraining"),
    ]


def datasheet_markdown(sheet: dict) -> str:
    lines = ["# Datasheet", "", "## Sources", "| partition | records | quarantined | file sha256 |", "|---|---:|---:|---|"]
    for s in sheet["sources"]:
        digests = ", ".join(f"`{f}` `{d}`" for f, d in sorted((s["files_sha256"] or {}).items())) or "not recorded"
        lines.append(f"| {s['partition']} | {s['records']} | {s['quarantined']} | {digests} |")
    entities = sheet["redaction"]["entities_redacted"]
    lines += ["", "## Redaction (entities replaced, per type)",
              ", ".join(f"{k}: {v}" for k, v in entities.items()) or "none" if sheet["redaction"]["recorded"]
              else "not recorded in this release's lineage", "", "## Quarantine reasons",
              ", ".join(f"{k}: {v}" for k, v in sheet["quarantine_reasons"].items()) or "none", "",
              "## Label gate", *[f"- {c['check']} ({c['partition'] or 'all'}): {'passed' if c['passed'] else 'FAILED'} — "
                                 f"{c['description']}" for c in sheet["label_gate"]], "",
              "## Bias audit", f"verdict: {sheet['bias_audit']['verdict']}; failed attributes: "
                               f"{sheet['bias_audit']['failed_attributes']}",
              *[f"- {c['check']}: {'passed' if c['passed'] else 'FAILED'} — {c['description']}"
                for c in sheet["bias_audit"]["checks"]], ""]
    return "\n".join(lines)
