"""production_traffic: every request and its answer, redacted, with the version that answered, one
JSONL file per UTC day under $FT_PIPELINE_HOME/traffic/. Drift checks and retraining read it. Labels
sent later through /v1/feedback are lines of their own (`event: feedback`, the request id, the label
redacted).

Only redacted text is written here: the request as the redaction engine returned it, the answer as
the client received it. Refused requests are logged without their text (it may be the oversized
or malformed thing that was refused). A log is appended to, not rewritten: each entry is one
write() of one line on a file opened with O_APPEND, so concurrent writers never interleave lines
and a crash loses at most the line being written.
"""
from __future__ import annotations

import json
import os
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from ft_pipeline.core.paths import pipeline_home

_lock = threading.Lock()


def traffic_dir() -> Path:
    return pipeline_home() / "traffic"


def day_file(day: str) -> Path:
    return traffic_dir() / f"{day}.jsonl"


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def record(entry: dict) -> Path:
    """Appends one entry (already redacted) to today's file, stamped with the time."""
    entry = {"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **entry}
    path = day_file(entry["at"][:10])
    line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode()
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return path


def find(request_id: str, recent_days: int = 7) -> dict | None:
    """The logged request with this id in the last `recent_days` day files (newest first), or None.
    A cheap substring test skips the lines that cannot be it before any is parsed."""
    needle = json.dumps(request_id)
    for day in reversed(days()[-recent_days:]):
        with open(day_file(day), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if needle in line:
                    entry = json.loads(line)
                    if entry.get("request_id") == request_id and entry.get("event") != "feedback":
                        return entry
    return None


def feedback_since(since: str) -> int:
    """Labelled feedback entries stamped after `since` (an ISO 8601 UTC time)."""
    count = 0
    for day in (d for d in days() if d >= since[:10]):
        with open(day_file(day), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"feedback"' in line:
                    entry = json.loads(line)
                    count += entry.get("event") == "feedback" and entry.get("at", "") > since
    return count


def days() -> list[str]:
    return sorted(p.stem for p in traffic_dir().glob("*.jsonl")) if traffic_dir().is_dir() else []


def summarize(day: str) -> dict:
    """Counts for one day (no text): requests, by status and by version that answered, values
    masked per entity type, answers withheld, latency percentiles."""
    import numpy as np

    path = day_file(day)
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    entries = [e for e in lines if e.get("event") != "feedback"]
    masked: Counter = Counter()
    for e in entries:
        masked.update(e.get("pii_masked_request") or {})
        masked.update(e.get("pii_masked_answer") or {})
    latencies = [e["latency_ms"] for e in entries if isinstance(e.get("latency_ms"), (int, float))]
    return {
        "day": day,
        "requests": len(entries),
        "feedback": len(lines) - len(entries),
        "by_status": dict(Counter(str(e.get("status")) for e in entries)),
        "by_version": dict(Counter(e["version"] for e in entries if e.get("version"))),
        "pii_masked": dict(masked),
        "answers_withheld": sum(e.get("error") == "answer_check_failed" for e in entries),
        "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_ms_p95": float(np.percentile(latencies, 95)) if latencies else None,
    }
