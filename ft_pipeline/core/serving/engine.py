"""Generation on CPU (or one GPU) with transformers + peft: one base model in memory and every
served adapter on top of it, switched per request with peft's `set_adapter`.

This is the engine the tests and CPU machines run; on GPUs `serve --engine vllm` hands the same
adapters to vLLM instead (see vllm.py). One generation runs at a time: the active adapter is a
property of the shared model, so two requests for different adapters cannot interleave.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path


class AdapterError(Exception):
    """An adapter that cannot be loaded, replaced or unloaded as asked (the client's mistake: 4xx)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Adapter:
    name: str  # the model id clients ask for
    path: Path  # the adapter folder
    version: str  # what answered, for the traffic log: "<registry name>/<version>"


@dataclass
class Generation:
    text: str
    finish_reason: str  # "stop": the model (or the guided grammar) ended the answer; "length": max tokens
    prompt_tokens: int
    completion_tokens: int


class Engine:
    def __init__(self, base_model_dir: str | Path, base_id: str):
        from ft_pipeline.core.training.base_model import load_model_and_tokenizer

        self.base_id = base_id  # the base model's id in /v1/models, every adapter's `parent`
        self.base, self.tokenizer = load_model_and_tokenizer(base_model_dir)
        self.base.eval()
        self.model = None  # the PeftModel, once the first adapter is loaded
        self.adapters: dict[str, Adapter] = {}
        self._slots: dict[str, str] = {}  # adapter name -> peft adapter name
        self._loaded = 0
        self._lock = threading.Lock()
        self._vocabulary = None

    # --- adapters ------------------------------------------------------------------------
    def load(self, adapter: Adapter, replace: bool = False) -> None:
        """Loads an adapter under its name. With `replace`, an adapter already under that name is
        swapped for the new one without a moment when the name answers 404."""
        from peft import PeftModel

        with self._lock:
            old = self._slots.get(adapter.name)
            if old and not replace:
                raise AdapterError(f"an adapter named {adapter.name!r} is already loaded "
                                   "(unload it first, or load it with load_inplace)")
            # peft slot names become module attribute names: a counter, never the client's name
            self._loaded += 1
            slot = f"adapter{self._loaded}"
            try:
                if self.model is None:
                    self.model = PeftModel.from_pretrained(self.base, adapter.path, adapter_name=slot)
                else:
                    self.model.load_adapter(adapter.path, adapter_name=slot)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise AdapterError(f"cannot load the adapter at {adapter.path}: {type(exc).__name__} "
                                   "(not a LoRA adapter for this base model)") from None
            self.model.eval()
            self.adapters[adapter.name], self._slots[adapter.name] = adapter, slot
            for stale in [s for s in self.model.peft_config if s not in self._slots.values()]:
                self.model.delete_adapter(stale)  # the replaced one, or the last one unloaded

    def unload(self, name: str) -> None:
        with self._lock:
            if name not in self.adapters:
                raise AdapterError(f"no adapter named {name!r} is loaded", status=404)
            slot = self._slots.pop(name)
            del self.adapters[name]
            # peft keeps at least one adapter: the last one stays in memory, unreachable by name,
            # until another is loaded
            if len(self.model.peft_config) > 1:
                self.model.delete_adapter(slot)

    # --- generation ----------------------------------------------------------------------
    def render(self, messages: list[dict]) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def vocabulary(self):
        """The tokenizer's table for guided decoding, built on first use (about a second for a
        50k-token vocabulary)."""
        if self._vocabulary is None:
            from ft_pipeline.core.serving.decoding import tokenizer_data

            self._vocabulary = tokenizer_data(self.tokenizer)
        return self._vocabulary

    def generate(self, name: str, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, parser=None, stops: list[str] = ()) -> Generation:
        import torch

        from ft_pipeline.core.serving.decoding import AllowedTokens

        if name not in self.adapters:
            raise AdapterError(f"no model named {name!r} is served", status=404)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else \
            {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        guide = {"prefix_allowed_tokens_fn": AllowedTokens(self.vocabulary(), parser)} if parser is not None else {}
        inputs = torch.tensor([prompt_ids])
        with self._lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            self.model.set_adapter(self._slots[name])
            out = self.model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                      max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                      eos_token_id=self.tokenizer.eos_token_id, **sampling, **guide)
        new = out[0, inputs.shape[1]:].tolist()
        ended = bool(new) and new[-1] == self.tokenizer.eos_token_id
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        cut = min((text.find(s) for s in stops if s and s in text), default=-1)
        if cut >= 0:
            text, ended = text[:cut], True
        return Generation(text, "stop" if ended or len(new) < max_new_tokens else "length", len(prompt_ids), len(new))
