"""Training assets: base_model, adapter_weights; resources (the trainer, launched in-process, as a
Pipes subprocess, under accelerate, on Ray Train, or on ECS; the training plan). The logic lives in
ft_pipeline/core/training/."""
