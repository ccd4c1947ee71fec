"""The fit assessment asset and its blocking checks (fine_tuning_is_warranted,
training_cost_within_budget); the logic lives in ft_pipeline/core/fit/."""
