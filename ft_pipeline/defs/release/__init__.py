"""Release assets: eval_report (the release gates are its checks), promoted_model (with the
erasure check); lineage (what a release records) and erasure_events. The logic lives in
ft_pipeline/core/release/."""
