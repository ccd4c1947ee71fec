"""Deciding, measuring and releasing: whether to fine-tune at all (fit), generation from base and
tuned models (generation), scoring and release gates (evaluation), the versioned registry with
rollback (registry), the model card (model_card) and the auditor's trail (audit).
Mirrors ft_pipeline/defs/release/."""
