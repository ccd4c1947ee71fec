"""Supervised fine-tuning: trl SFTTrainer on the chat export, loss on the assistant answer only."""
from __future__ import annotations


def build_trainer(config, model, tokenizer, train_ds, eval_ds, common: dict, peft_config, callbacks):
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **common,
        max_length=config.max_length,
        # BFD packing puts several conversations in one row; trl then runs padding-free and passes
        # position_ids, from which transformers builds a block-diagonal mask, so packed examples
        # do not attend to each other (on sdpa/eager as on flash attention).
        packing=config.packing,
        packing_strategy="bfd",
        # Unpacked rows are padded to the longest in their batch; batching rows of similar length
        # (transformers' LengthGroupedSampler, still shuffled across groups) keeps that padding small.
        train_sampling_strategy="group_by_length" if config.group_by_length and not config.packing else "random",
        # Needs {% generation %} markers in the chat template (base_model.py installs them).
        assistant_only_loss=config.assistant_only_loss,
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
