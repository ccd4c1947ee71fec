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
    return _epoch_seeded(SFTTrainer)(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def _epoch_seeded(trainer_class):
    """The trainer with a length-grouped order that is a function of (seed, epoch) alone.
    transformers' LengthGroupedSampler draws each epoch's order from the global RNG when the epoch
    starts. A run resumed in the middle of a later epoch draws it before the checkpoint's RNG state
    is restored (that happens after the skipped batches), so it trained the rest of the epoch on
    another order: killed after checkpoint 18 of 16-step epochs, losses 2% and adapter tensors 25%
    off an unkilled run, while a resume inside the first epoch matched exactly (attack/test_kill_trainer.py)."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
        def __init__(self, batch_size: int, lengths: list[int], seed: int):
            super().__init__(batch_size, lengths=lengths)
            self.seed, self.epoch = seed, 0

        def set_epoch(self, epoch: int) -> None:  # the trainer calls it before every epoch, resumed or not
            self.epoch = epoch

        def __iter__(self):
            self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
            return super().__iter__()

    class Trainer(trainer_class):
        def _get_train_sampler(self, train_dataset=None):
            sampler = super()._get_train_sampler(train_dataset)
            if type(sampler) is LengthGroupedSampler:
                seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
                return EpochSeededLengthGroupedSampler(sampler.batch_size, sampler.lengths, seed)
            return sampler

    return Trainer
