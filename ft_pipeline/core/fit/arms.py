"""The fit assessment's arms: the cheaper alternatives to fine-tuning, as prompts for the base model.

    zero_shot           the task's system prompt with its answer instructions (the prompt-only baseline)
    few_shot            the same plus k fixed training examples as earlier turns (labels spread out)
    retrieved_few_shot  the same plus the k training examples most like the question (BM25)
    rag                 the same plus the k knowledge-folder chunks most like the question (BM25)

Every arm answers the same held-out questions. A prompt that would outgrow the model's context
loses its least relevant examples or chunks first; how many were trimmed is reported per arm.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ft_pipeline.core.answers import answer_label, last_assistant, prompt_turns
from ft_pipeline.core.fit.retrieval import Bm25Index, Chunk

Fits = Callable[[list[dict]], bool]  # does this chat prompt (plus the answer budget) fit the context?


@dataclass
class ArmPrompts:
    name: str
    prompts: list[list[dict]]
    context: list[list[str]] = field(default_factory=list)  # per prompt: the example ids or chunk names used
    trimmed: int = 0  # prompts that lost examples or chunks to fit the context


def question_text(record: dict) -> str:
    """What retrieval matches on: the user's turns of the prompt."""
    return "\n".join(m["content"] for m in prompt_turns(record) if m["role"] == "user")


def exchange(record: dict) -> list[dict]:
    """A training record as a worked example: its user/assistant turns, ending with the answer."""
    turns = [{"role": m["role"], "content": m["content"]} for m in record.get("messages") or []
             if m["role"] in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "assistant":
        raise ValueError(f"few-shot record {record.get('id')!s} has no final assistant answer")
    return turns


def build_prompt(record: dict, system_prompt: str, shots: list[dict] = (), documents: list[Chunk] = ()) -> list[dict]:
    """system prompt (+ reference documents), the worked examples, then the question's own turns
    (a system turn of the record's is replaced by `system_prompt`)."""
    system = system_prompt
    if documents:
        listed = "\n".join(f"[{i}] ({c.source}) {c.text}" for i, c in enumerate(documents, 1))
        system = (system + "\n\n" if system else "") + (
            "Answer using these reference documents where they apply:\n" + listed)
    turns = [{"role": "system", "content": system}] if system else []
    for shot in shots:
        turns.extend(exchange(shot))
    turns.extend({"role": m["role"], "content": m["content"]} for m in prompt_turns(record) if m["role"] != "system")
    return turns


def fixed_shots(task, train: list[dict], k: int) -> list[dict]:
    """k training examples with as many different labels as possible (first seen first), so a
    classifier's few-shot prompt is not k examples of the most common class."""
    chosen, seen = [], set()
    for record in train:
        label = answer_label(task, last_assistant(record)) if task.type in ("classification", "structured") else None
        if label is not None and label in seen:
            continue
        chosen.append(record)
        seen.add(label)
        if len(chosen) == k:
            return chosen
    rest = [r for r in train if r not in chosen]
    return chosen + rest[: k - len(chosen)]


def _fit(record: dict, system_prompt: str, shots: list[dict], documents: list[Chunk], fits: Fits):
    """The prompt with as many of the (ranked) shots/documents as fit; (prompt, kept, trimmed?)."""
    while True:
        prompt = build_prompt(record, system_prompt, shots, documents)
        if (not shots and not documents) or fits(prompt):
            return prompt, shots or documents, False
        if shots:
            shots = shots[:-1]
        else:
            documents = documents[:-1]
        if not shots and not documents:
            return build_prompt(record, system_prompt), [], True


def build_arms(task, names: list[str], train: list[dict], test: list[dict], system_prompt: str, *, k: int,
               knowledge: list[Chunk] | None = None, rag_chunks: int = 3, fits: Fits = lambda _: True,
               warn: Callable[[str], None] = lambda _: None) -> dict[str, ArmPrompts]:
    """The prompts of each named arm for every held-out record. `rag` is skipped (with a warning)
    when there is no knowledge; the few-shot arms when there are no training examples."""
    arms: dict[str, ArmPrompts] = {}
    questions = [question_text(r) for r in test]
    for name in names:
        if name == "rag" and not knowledge:
            warn("arm rag skipped: the task names no knowledge folder")
            continue
        if name in ("few_shot", "retrieved_few_shot") and not train:
            warn(f"arm {name} skipped: no training examples")
            continue
        if name == "zero_shot":
            ranked = [[] for _ in test]
        elif name == "few_shot":
            ranked = [fixed_shots(task, train, k)] * len(test)
        elif name == "retrieved_few_shot":
            hits = Bm25Index([question_text(r) for r in train]).top_k(questions, k)
            ranked = [[train[i] for i in row] for row in hits]
        else:
            hits = Bm25Index([c.text for c in knowledge]).top_k(questions, rag_chunks)
            ranked = [[knowledge[i] for i in row] for row in hits]
        arm = ArmPrompts(name, [])
        for record, items in zip(test, ranked):
            shots = items if name != "rag" else []
            documents = items if name == "rag" else []
            prompt, kept, trimmed = _fit(record, system_prompt, list(shots), list(documents), fits)
            if trimmed or len(kept) < len(items):
                arm.trimmed += 1
            arm.prompts.append(prompt)
            arm.context.append([f"{c.source}#{c.index}" if isinstance(c, Chunk) else str(c.get("id")) for c in kept])
        if arm.trimmed:
            warn(f"arm {name}: {arm.trimmed} of {len(test)} prompts outgrew the model's context and lost "
                 "examples or chunks (least relevant first)")
        arms[name] = arm
    return arms
