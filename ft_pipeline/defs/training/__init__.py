"""Training assets: base_model, fit_assessment (with fine_tuning_is_warranted and
training_cost_within_budget), adapter_weights; resources (the trainer, launched in-process, as a
Pipes subprocess, under accelerate, or on ECS; the training plan). The logic lives in
ft_pipeline/core/training/ and ft_pipeline/core/fit/ (the fit assessment)."""
