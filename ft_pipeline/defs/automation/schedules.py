"""A weekly retrain picks up whatever arrived in the configured source since the last one."""
import dagster as dg

from ft_pipeline.defs.automation.jobs import retrain_job

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=retrain_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00, when nobody waits on the CPUs
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain every Monday at 03:00 UTC through every gate.",
)
