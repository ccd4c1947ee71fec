"""Generation on CPU (or one GPU) with transformers + peft: one base model in memory and every
served adapter on top of it, switched per request with peft's `set_adapter`.

This is the engine the tests and CPU machines run; on GPUs `serve --engine vllm` hands the same
adapters to vLLM and answers through upstream.py's UpstreamEngine, which has the same methods, so
the app, its guard and a live rollout run one code path over either. One generation runs at a
time (the active adapter is a property of the shared model), and the requests that queue behind
it for the same adapter are answered together by the next one, as a left-padded batch of up to
`max_batch` rows.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
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
    version: str = ""  # the adapter version that answered (a swap in place may land while a request waits)


class Engine:
    def __init__(self, base_model_dir: str | Path, base_id: str, max_batch: int = 8):
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
        self.max_batch = max_batch
        self.batch_sizes: Counter = Counter()  # how many batches of each size ran (bounded: sizes <= max_batch)
        self._queue: list[_Job] = []
        self._queued = threading.Condition()
        threading.Thread(target=self._serve_queue, name="generate", daemon=True).start()

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

    def models(self) -> list[Adapter]:
        """What /v1/models lists."""
        return list(self.adapters.values())

    # --- generation ----------------------------------------------------------------------
    def render(self, messages: list[dict]) -> list[int]:
        return render_chat(self.tokenizer, messages)

    def guide(self, task, wants_json: bool, schema: dict | None):
        """What keeps the answer in the task's form here: an lm-format-enforcer parser (or None)."""
        from ft_pipeline.core.serving.guard import parser_for

        return parser_for(task, wants_json, schema)

    def warm_up(self) -> None:
        self.vocabulary()

    def problem(self) -> str | None:
        """Why this engine cannot answer now (/health), or None: the model is in this process."""
        return None

    def vocabulary(self):
        """The tokenizer's table for guided decoding, built on first use (about a second for a
        50k-token vocabulary)."""
        if self._vocabulary is None:
            from ft_pipeline.core.serving.decoding import tokenizer_data

            self._vocabulary = tokenizer_data(self.tokenizer)
        return self._vocabulary

    def generate(self, name: str, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, parser=None, stops: list[str] = (),
                 messages: list[dict] | None = None) -> Generation:
        """Queues the request and waits for its answer. Requests that wait together for the same
        adapter, with the same sampling and both guided or both free, are answered by one batched
        `generate` (a request with a seed runs alone, so its seed decides its answer). `messages`
        (what `prompt_ids` render) is for an engine that renders upstream; this one reads the ids."""
        if name not in self.adapters:
            raise AdapterError(f"no model named {name!r} is served", status=404)
        sampling = (temperature, top_p) if temperature > 0 else None
        job = _Job(name, list(prompt_ids), max_new_tokens, sampling, seed, parser, list(stops))
        with self._queued:
            self._queue.append(job)
            self._queued.notify()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _serve_queue(self) -> None:
        while True:
            with self._queued:
                while not self._queue:
                    self._queued.wait()
                key = self._queue[0].key()
                batch = [job for job in self._queue if job.key() == key][:self.max_batch]
                self._queue = [job for job in self._queue if job not in batch]
            self.batch_sizes[len(batch)] += 1
            try:
                for job, result in zip(batch, self._run(batch)):
                    job.result = result
            except BaseException as exc:  # handed to each waiting request, which raises it
                for job in batch:
                    job.error = exc
            finally:
                for job in batch:
                    job.done.set()

    def _run(self, batch: list["_Job"]) -> list[Generation]:
        import torch

        from ft_pipeline.core.serving.decoding import AllowedTokens

        first, pad = batch[0], self.tokenizer.pad_token_id
        width = max(len(job.prompt_ids) for job in batch)
        # Left padding: every row's answer starts at the same column.
        ids = torch.tensor([[pad] * (width - len(j.prompt_ids)) + j.prompt_ids for j in batch])
        mask = torch.tensor([[0] * (width - len(j.prompt_ids)) + [1] * len(j.prompt_ids) for j in batch])
        sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None} if first.sampling is None \
            else {"do_sample": True, "temperature": first.sampling[0], "top_p": first.sampling[1]}
        guide = {}
        if first.parser is not None:
            rows = [AllowedTokens(self.vocabulary(), job.parser) for job in batch]
            guide = {"prefix_allowed_tokens_fn": lambda row, sequence: rows[row](row, sequence)}
        with self._lock, torch.inference_mode():
            if first.name not in self._slots:
                raise AdapterError(f"no model named {first.name!r} is served", status=404)
            if first.seed is not None:
                torch.manual_seed(first.seed)
            self.model.set_adapter(self._slots[first.name])
            version = self.adapters[first.name].version
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max(j.max_new_tokens for j in batch),
                                      pad_token_id=pad, eos_token_id=self.tokenizer.eos_token_id, **sampling, **guide)
        return [self._finish(job, out[i, width:].tolist(), version) for i, job in enumerate(batch)]

    def _finish(self, job: "_Job", new: list[int], version: str) -> Generation:
        """A row's answer: up to its end-of-answer token, else cut at its own max_new_tokens (a
        batch generates as long as its longest budget)."""
        eos = self.tokenizer.eos_token_id
        ended = eos in new[:job.max_new_tokens]
        new = new[:new.index(eos) + 1] if ended else new[:job.max_new_tokens]
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        cut = min((text.find(s) for s in job.stops if s and s in text), default=-1)
        if cut >= 0:
            text, ended = text[:cut], True
        return Generation(text, "stop" if ended else "length", len(job.prompt_ids), len(new), version)


def render_chat(tokenizer, messages: list[dict]) -> list[int]:
    """The chat prompt's token ids, as the adapter was trained on it (and as vLLM renders it)."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass(eq=False)
class _Job:
    name: str
    prompt_ids: list[int]
    max_new_tokens: int
    sampling: tuple[float, float] | None  # (temperature, top_p), None: greedy
    seed: int | None
    parser: object
    stops: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    result: Generation | None = None
    error: BaseException | None = None

    def key(self):
        """Jobs with equal keys may share a batch."""
        return (self.name, self.sampling, self.parser is not None) if self.seed is None else id(self)
