"""Releasing a model: the registry, staging and promotion, the model card, the rollout config the
promotion reads, the audit trail and the evidence bundle."""
