"""Training: the standalone trainer (train: main(config)), its one config dataclass (config), a
file per method (sft, dpo, grpo), GRPO rewards (rewards), the export reader (data), the model a
run starts from (model_setup), checkpoints and final files (checkpoints), the base model
(base_model), parameter and token counts (model_stats) and the cost estimate (cost).
Mirrors ft_pipeline/defs/training/."""
