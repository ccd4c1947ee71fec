"""Measuring a model: generation from base and tuned models, scoring with the task's metric,
paired statistics, the release gates and their config, capability and memorization probes,
and the evaluation report."""
