"""MLflow tracking for the assets: MlflowResource (resources), a thin layer over
ft_pipeline/core/tracking/ that adapter_weights, eval_report and promoted_model call."""
