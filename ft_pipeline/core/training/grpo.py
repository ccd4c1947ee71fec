"""Group relative policy optimisation: sample num_generations answers per prompt, reward them
with the task's verifier against the dataset's reference answer (rewards.py), and push up the
better-than-group-mean ones."""
from __future__ import annotations

from ft_pipeline.core.training.rewards import reward_funcs


def build_trainer(config, model, tokenizer, train_ds, eval_ds, common: dict, peft_config, callbacks, *, task):
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        **common,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        # Reward logging per function (format vs correctness) is what tells a user GRPO is working.
        log_completions=False,
    )
    # A classification reward must parse against every label, not just those in one batch.
    labels = task.labels
    if task.type == "classification" and not labels:
        labels = sorted({reference.strip() for reference in train_ds["reference"]})
    # Evaluating GRPO means sampling on the eval set: too slow to be worth it here; the eval_report
    # asset measures the tuned model properly.
    return GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs(task, labels),
        args=args,
        train_dataset=train_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
