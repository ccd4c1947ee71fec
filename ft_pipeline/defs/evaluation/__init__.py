"""The eval_report asset and the release gates' blocking checks; the logic lives in
ft_pipeline/core/evaluation/."""
