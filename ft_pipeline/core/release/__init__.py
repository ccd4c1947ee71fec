"""Deciding, measuring and releasing: whether to fine-tune at all (fit, with its arms, retrieval,
pilot and assessment), generation from base and tuned models (generation), scoring and release
gates (evaluation, metrics, statistics, group_statistics, gates, capability), the release itself
(release: stage, smoke-test, publish), the versioned registry with rollback (registry), the model
card (model_card) and the auditor's trail (audit).
Mirrors ft_pipeline/defs/release/."""
