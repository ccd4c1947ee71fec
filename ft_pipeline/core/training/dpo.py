"""Direct preference optimisation: trl DPOTrainer on preference_train.jsonl.

With a LoRA adapter the reference policy is the same base model with the adapter switched off,
so no second copy of the weights is loaded.
"""
from __future__ import annotations


def build_trainer(config, model, tokenizer, train_ds, eval_ds, common: dict, peft_config, callbacks):
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(**common, max_length=config.max_length, beta=config.dpo_beta)
    return DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
