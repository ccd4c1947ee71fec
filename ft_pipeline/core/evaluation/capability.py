"""General capability probe: did tuning break what the base model could already do?

A held-out set that is not the task, scored on base and tuned alike; the gate
`no_capability_regression` (gates.py) compares them item by item (exact McNemar, Newcombe interval).

The items are multiple choice with verifiable answers, generated here, deterministically, from
facts bundled in an installed package, for every country in it:
- capitals: "The capital of Kenya is" -> " Nairobi" among four capitals;
- continents: "Kenya is a country in" -> " Africa" among four continents;
from Faker's country table (`faker.providers.date_time.Provider.countries`: name, capital,
continent; 191 countries, 382 items). Faker is MIT-licensed (Copyright (c) 2012 Daniele Faraglia),
already a dependency, and the facts themselves are public knowledge: nothing is fetched at run
time, nothing comes from a model hub, nothing is copied into the repository.
Each item is scored as lm-evaluation-harness scores `acc_norm`: the log-likelihood of each choice
as a continuation of the prompt, divided by its length in bytes; the item is correct (1.0) when the
true answer scores highest (chance 0.25). Plain text, no chat template: the probe asks what the
weights still know, not whether the tuned model still chats the way it was taught not to.
Measured (bench/RESULTS.md): SmolLM2-135M-Instruct 0.694 (capitals 0.853, continents 0.534); the
same weights with Gaussian noise of 0.3 x each matrix's spread 0.262. Arithmetic and calendar items
were tried and dropped: the 135M model was near chance on them (0.30 and 0.21), so they could not
show a loss.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

from ft_pipeline.core.evaluation.generation import Progress, continuation_logprobs

SEED = 20240611  # fixed: the probe is the same set for every model and every run
CHOICES = 4  # chance is 0.25


@dataclass(frozen=True)
class ProbeItem:
    id: str
    family: str
    prompt: str
    choices: tuple[str, ...]  # each with its leading space: a continuation of the prompt
    answer: int  # index of the true choice


def probe_items() -> list[ProbeItem]:
    """The probe in a fixed order, each country's capital item then its continent item, so that
    any first `max_items` mix both kinds (382 items)."""
    from faker.providers.date_time import Provider

    rng = random.Random(SEED)
    countries = sorted({_mended(c.name): c for c in Provider.countries if c.capital and c.capital != c.name}.items())
    capital = {name: _mended(c.capital) for name, c in countries}
    capitals = sorted(set(capital.values()))
    continents = sorted({c.continent for _, c in countries})
    items = []
    for name, c in countries:
        items.append(_item(f"capital-{c.alpha_2_code}", "capitals", f"The capital of {name} is", capital[name],
                           rng.sample([x for x in capitals if x != capital[name]], CHOICES - 1), rng))
        items.append(_item(f"continent-{c.alpha_2_code}", "continents", f"{name} is a country in", c.continent,
                           rng.sample([x for x in continents if x != c.continent], CHOICES - 1), rng))
    return items


def probe_scores(model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None, *,
                 batch_size: int = 8, max_items: int | None = None,
                 progress: Progress | None = None) -> list[float]:
    """1.0 or 0.0 per probe item (in probe_items() order): does the model rank the true answer first?"""
    items = probe_items()[:max_items]
    prefixes = [item.prompt for item in items for _ in item.choices]
    continuations = [choice for item in items for choice in item.choices]
    scored = continuation_logprobs(model_dir, prefixes, continuations, adapter_dir=adapter_dir,
                                   batch_size=batch_size, progress=progress)
    scores, at = [], 0
    for item in items:
        normalized = [scored[at + j][0] / len(choice.encode()) for j, choice in enumerate(item.choices)]
        at += len(item.choices)
        scores.append(1.0 if max(range(len(normalized)), key=normalized.__getitem__) == item.answer else 0.0)
    return scores


def _mended(name: str) -> str:
    """Faker's table has a few names decoded twice ("LomÃ©" for Lomé): decode them once more."""
    try:
        return name.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return name


def _item(item_id: str, family: str, prompt: str, answer: str, wrong: list[str], rng: random.Random) -> ProbeItem:
    choices = [answer, *wrong]
    rng.shuffle(choices)
    return ProbeItem(item_id, family, prompt, tuple(f" {c}" for c in choices), choices.index(answer))


def cached_probe_scores(model_dir: str | os.PathLike, cache_dir: str | os.PathLike, *, max_items: int | None = None,
                        batch_size: int = 32, progress: Progress | None = None) -> list[float]:
    """probe_scores of a model without an adapter, computed once per model: the base model's
    answers do not change between runs, and the probe is the costliest part of an evaluation."""
    import hashlib
    import json
    from pathlib import Path

    from ft_pipeline.core.evaluation.generation import _stamp

    key = hashlib.sha256(json.dumps([str(model_dir), _stamp(model_dir), max_items, SEED]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    scores = probe_scores(model_dir, max_items=max_items, batch_size=batch_size, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(scores))
    tmp.replace(path)
    return scores
