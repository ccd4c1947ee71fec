"""production_traffic: one partition per UTC day of the redacted request log that `ft-pipeline
serve` writes ($FT_PIPELINE_HOME/traffic/<day>.jsonl). Materializing a day records its counts (no
text) and, from the live server, which version serves now."""
import os

import dagster as dg

from ft_pipeline.core.serving import traffic
from ft_pipeline.defs.common import file_metadata
from ft_pipeline.defs.serving.resources import ModelServerResource

GROUP = "serving"
DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)  # today's partition is open


@dg.asset(group_name=GROUP, partitions_def=DAILY, kinds={"jsonl"}, code_version="1")
def production_traffic(context: dg.AssetExecutionContext, model_server: ModelServerResource) -> dict:
    """The day's production requests and answers, redacted, with the version that answered each:
    request counts by status and version, PII values masked, answers withheld by the guard, latency."""
    day = context.partition_key
    path = traffic.day_file(day)
    summary = traffic.summarize(day)
    live = model_server.health()
    context.add_output_metadata({
        **(file_metadata(path) if path.is_file() else {"path": dg.MetadataValue.path(str(path))}),
        "requests": summary["requests"],
        "by_version": dg.MetadataValue.json(summary["by_version"]),
        "by_status": dg.MetadataValue.json(summary["by_status"]),
        "pii_masked": dg.MetadataValue.json(summary["pii_masked"]),
        "answers_withheld": summary["answers_withheld"],
        "latency_ms_p50": summary["latency_ms_p50"],
        "latency_ms_p95": summary["latency_ms_p95"],
        "serving_now": dg.MetadataValue.json(live["models"] if live else {"server": f"not answering on {model_server.url}"}),
    })
    return {"path": str(path), **summary}


@dg.definitions
def serving() -> dg.Definitions:
    return dg.Definitions(
        assets=[production_traffic],
        resources={"model_server": ModelServerResource(
            name=os.environ.get("FT_PIPELINE_SERVE_NAME", ""),
            host=os.environ.get("FT_PIPELINE_SERVE_HOST", "127.0.0.1"),
            port=int(os.environ.get("FT_PIPELINE_SERVE_PORT", "8000")))},
    )
