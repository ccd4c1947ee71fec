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
        "## Assets, from the raw file to the release",
        "| asset | run | materialized | code version | sha256 | config |",
        "|---|---|---|---|---|---|",
    ]
    for a in lineage.get("assets", []):
        asset = f"{a['asset']} [{a['partition']}]" if a.get("partition") else a["asset"]
        if not a.get("materialized"):
            lines.append(f"| {asset} | — | never | | | |")
            continue
        config = json.dumps(a.get("config") or {}, sort_keys=True)
        lines.append(f"| {asset} | `{a['run_id']}` | {a['timestamp']} | {a.get('code_version')} | `{a.get('sha256')}` | `{config}` |")
        if a.get("metadata", {}).get("source_sha256"):
            for file, digest in a["metadata"]["source_sha256"].items():
                lines.append(f"| ↳ source file `{file}` | | | | `{digest}` | |")
    lines += ["", "## Checks", "| check | asset | blocking | result | run |", "|---|---|---|---|---|"]
    for c in lineage.get("checks", []):
        asset = f"{c['asset']} [{c['partition']}]" if c.get("partition") else c["asset"]
        lines.append(f"| {c['check']} | {asset} | {'yes' if c['blocking'] else 'no'} | {'passed' if c['passed'] else c['status']} | `{c.get('run_id')}` |")
    erasures = lineage.get("erasures") or []
    if erasures:
        lines += ["", "## Erasures after this release (right to be forgotten)",
                  "The model was trained before these; the erasure sensor requests a retrain.",
                  "| when | records removed | request id |", "|---|---:|---|"]
        for e in erasures:
            lines.append(f"| {e['at']} | {e['records_removed']} | `{e['request_id']}` |")
    return "\n".join(lines) + "\n"
