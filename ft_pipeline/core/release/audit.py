"""Renders a release's lineage trail (frozen in the registry at promotion) for an auditor."""
from __future__ import annotations

import json


def render(lineage: dict, fmt: str = "md") -> str:
    if fmt == "json":
        return json.dumps(lineage, indent=2, default=str)
    lines = [
        f"# Audit trail — {lineage['name']} {lineage['version']}",
        "",
        f"Promoted {lineage['promoted_at']} in run `{lineage['run_id']}` at code version `{lineage.get('code_version')}`.",
        "",
    ]
    task = lineage.get("task")
    if task:
        lines += ["## The task it was trained and evaluated for",
                  f"`{task['name']}` ({task['type']}; primary metric {task['metric']}, target {task['target']}), "
                  f"defined by `{task['path']}`, sha256 `{task['sha256']}`. Every asset below records the sha256 of "
                  "the task definition it read.", ""]
    lines += [
        "## Assets, from the raw file to the release",
        "| asset | run | materialized | code version | sha256 | task sha256 | config |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in lineage.get("assets", []):
        asset = f"{a['asset']} [{a['partition']}]" if a.get("partition") else a["asset"]
        if not a.get("materialized"):
            lines.append(f"| {asset} | — | never | | | | |")
            continue
        config = json.dumps(a.get("config") or {}, sort_keys=True)
        task_digest = (a.get("metadata") or {}).get("task_sha256")
        lines.append(f"| {asset} | `{a['run_id']}` | {a['timestamp']} | {a.get('code_version')} | `{a.get('sha256')}` | "
                     f"{f'`{task_digest[:16]}`' if task_digest else ''} | `{config}` |")
        if a.get("metadata", {}).get("source_sha256"):
            for file, digest in a["metadata"]["source_sha256"].items():
                lines.append(f"| ↳ source file `{file}` | | | | `{digest}` | | |")
    lines += ["", "## Checks", "| check | asset | blocking | result | run |", "|---|---|---|---|---|"]
    for c in lineage.get("checks", []):
        asset = f"{c['asset']} [{c['partition']}]" if c.get("partition") else c["asset"]
        lines.append(f"| {c['check']} | {asset} | {'yes' if c['blocking'] else 'no'} | {'passed' if c['passed'] else c['status']} | `{c.get('run_id')}` |")
    erasures = lineage.get("erasures") or []
    if erasures:
        lines += ["", "## Erasures that reached this version (right to erasure)",
                  "Its training data held records these requests erased: `rollback` refuses it, and a retrain "
                  "promotes a clean version.",
                  "| request id | when | records of its training data | request reached: files / records / model versions | weights |",
                  "|---|---|---:|---|---|"]
        for e in erasures:
            weights = f"retired {e['retired_at']}" if e.get("retired_at") else "kept"
            lines.append(f"| `{e['request_id']}` | {e['at']} | {e['training_records_erased']} | "
                         f"{e.get('files_rewritten', '?')} / {e.get('records_erased', '?')} / {e.get('models_marked', '?')} | {weights} |")
    lines += rollout_lines(lineage.get("rollout") or [])
    return "\n".join(lines) + "\n"


def rollout_lines(events: list[dict]) -> list[str]:
    """The version's rollout: each step, and for a gate each verdict that decided it."""
    if not events:
        return []
    lines = ["", "## Rollout (online gate against the incumbent on the same requests)",
             "| when | step | against | result |", "|---|---|---|---|"]
    for e in events:
        if e["event"] == "gate":
            failed = [v["gate"] for v in e["verdicts"] if not v["passed"]]
            result = f"{'passed' if e['passed'] else 'failed: ' + ', '.join(failed)} ({e['paired_requests']} paired requests" + \
                (f" at step {e['step']} of {e['steps']}, share {e['share']:g})" if e.get("step") else ")")
        elif e["event"] == "step":
            result = f"share {e['from_share']:g} -> {e['share']:g} (step {e['step']} of {e['steps']})"
        elif e["event"] == "rolled_back":
            result = f"current stays {e['incumbent']}: {e['reason']}"
        elif e["event"] == "switched":
            result = f"current moved {e['from']} -> {e['to']}"
        elif e["event"] == "waiting":  # the step held: not judged, nothing switched or rolled back
            result = f"not judged: {e['reason']}"
        elif e["event"] == "progress":
            result = f"{e['paired_requests']} paired requests so far ({e['labelled']} labelled)"
        elif e["event"] == "held":
            result = "published beside current, waiting for its rollout"
        elif e["event"] == "forced":
            result = f"{e['command']} forced past the rollback of {e['overrides']}"
        else:
            result = ("live requests" if e.get("live") else f"{e.get('requests')} requests") + \
                (f", share {e['share']}" if e.get("share") else "")
        lines.append(f"| {e['at']} | {e['event']} | {e.get('incumbent')} | {result} |")
    for e in (e for e in events if e["event"] == "gate"):
        lines += ["", f"Gate of {e['at']}:", "", "| gate | result | outcome | why |", "|---|---|---|---|"]
        lines += [f"| {v['gate']} | {'PASS' if v['passed'] else 'FAIL'} | {v['outcome']} | {v['detail']} |"
                  for v in e["verdicts"]]
    return lines


def reach(entry: dict) -> dict:
    """What one erasure request reached, in counts, from its erasure log entry."""
    return {"files_rewritten": entry.get("files_rewritten", 0), "records_erased": entry.get("records_erased", 0),
            "models_marked": len(entry.get("models_marked", [])), "models_retired": len(entry.get("models_retired", []))}


def render_erasures(entries: list[dict], fmt: str = "md") -> str:
    """Every erasure request and what it reached: counts per kind of artifact, model versions,
    digests of the record ids (never the ids or values themselves)."""
    if fmt == "json":
        return json.dumps(entries, indent=2, sort_keys=True) + "\n"
    lines = ["# Erasure requests", ""]
    if not entries:
        return "\n".join(lines + ["None.", ""])
    lines += ["| request id | when | criteria (ids / values) | records erased | files rewritten | stored values | "
              "model versions marked | retired | current trained on erased data | sources re-ingested |",
              "|---|---|---|---:|---:|---:|---|---|---|---:|"]
    for e in entries:
        criteria = e.get("criteria", {})
        values = sum(v.get("objects", 0) for v in e.get("stored_values", {}).values())
        lines.append(
            f"| `{e['request_id']}` | {e['at']} | {criteria.get('ids', 0)} / {criteria.get('values', 0)} | "
            f"{e.get('records_erased', e.get('records_removed', 0))} | {e.get('files_rewritten', 0)} | {values} | "
            f"{', '.join(e.get('models_marked', [])) or '—'} | {', '.join(e.get('models_retired', [])) or '—'} | "
            f"{', '.join(e.get('current_trained_on_erased_data', [])) or '—'} | {e.get('sources_marked_stale', 0)} |")
    for e in entries:
        reached = {**e.get("files", {}), **e.get("stored_values", {})}
        if reached:
            lines += ["", f"## `{e['request_id']}`: records removed per kind of artifact", "| kind | files | records |", "|---|---:|---:|"]
            lines += [f"| {kind} | {c.get('files', c.get('objects', 0))} | {c['records']} |" for kind, c in reached.items()]
    return "\n".join(lines) + "\n"
