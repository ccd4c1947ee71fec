"""Dagster wiring only: each asset, check, sensor and schedule is a few lines that call ft_pipeline.core.

One folder per domain (data, training, release, automation), loaded by ft_pipeline/definitions.py.
Shared: the task asset (task), the no-bypass gate (gates), metadata helpers (common), resources.
"""
