"""Serving wiring: the model server as a resource the pipeline can start, health-check and stop
(`ft-pipeline serve` in a subprocess), and production_traffic, the redacted request log by day.
The logic lives in ft_pipeline/core/serving/."""
