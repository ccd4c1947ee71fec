"""Drift: do a day of live requests still look like the data the serving version was trained on?

Three distances, each from scipy, each between 0 (same) and 1, each judged against the task
file's `drift:` section:

    length_ks        Kolmogorov-Smirnov statistic of request lengths in characters (ks_2samp)
    token_distance   Jensen-Shannon distance (base 2) of the word distributions of the user turns
    label_distance   Jensen-Shannon distance of the label mix: training labels against the labels
                     the model answered live (classification and structured tasks)

Both sides are redacted text (the export and the traffic log), and only counts leave here.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ft_pipeline.core import answers
from ft_pipeline.core.jsonl import iter_jsonl
from ft_pipeline.core.release.rollout_config import DriftConfig

WORD = re.compile(r"\w+")
MAX_SAMPLE = 20_000  # records read per side: enough for the distances, bounded memory


@dataclass
class Sample:
    texts: list[str] = field(default_factory=list)  # the user turns of each request, joined
    labels: list[str] = field(default_factory=list)  # labels where there is one


def user_text(messages: list[dict]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages or [] if m.get("role") == "user")


def training_sample(export_dir: Path, task) -> Sample:
    """The training split of the export: user turns and the label of each reference answer."""
    sample = Sample()
    for k, record in enumerate(iter_jsonl(Path(export_dir) / "train.jsonl")):
        if k >= MAX_SAMPLE:
            break
        sample.texts.append(user_text(record.get("messages")))
        label = answers.answer_label(task, answers.last_assistant(record))
        if label is not None:
            sample.labels.append(label)
    return sample


def traffic_sample(path: Path, task) -> Sample:
    """A day of production_traffic: requests logged with their (redacted) text, and the label of
    each answer returned."""
    sample = Sample()
    for entry in iter_jsonl(path):
        if len(sample.texts) >= MAX_SAMPLE:
            break
        if entry.get("messages"):
            sample.texts.append(user_text(entry["messages"]))
            label = answers.answer_label(task, entry.get("answer")) if entry.get("answer") else None
            if label is not None:
                sample.labels.append(label)
    return sample


def js_distance(a: Counter, b: Counter) -> float:
    from scipy.spatial.distance import jensenshannon

    keys = sorted(set(a) | set(b))
    if not keys or not sum(a.values()) or not sum(b.values()):
        return 0.0
    return float(jensenshannon([a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys], base=2))


def compare(train: Sample, live: Sample, config: DriftConfig) -> dict:
    """{n_train, n_live, judged, length_ks, length_p, token_distance, label_distance, drifted: [...]}"""
    from scipy.stats import ks_2samp

    result = {"n_train": len(train.texts), "n_live": len(live.texts), "judged": False, "drifted": []}
    if len(live.texts) < config.min_requests or not train.texts:
        result["why"] = f"{len(live.texts)} live requests with text; drift is judged from {config.min_requests}"
        return result
    ks = ks_2samp([len(t) for t in train.texts], [len(t) for t in live.texts])
    words = lambda texts: Counter(w for t in texts for w in WORD.findall(t.lower()))  # noqa: E731
    result.update(judged=True, length_ks=round(float(ks.statistic), 4), length_p=float(f"{ks.pvalue:.4g}"),
                  token_distance=round(js_distance(words(train.texts), words(live.texts)), 4),
                  label_distance=round(js_distance(Counter(train.labels), Counter(live.labels)), 4)
                  if train.labels and live.labels else None)
    limits = {"length_ks": config.max_length_ks, "token_distance": config.max_token_distance,
              "label_distance": config.max_label_distance}
    result["drifted"] = [name for name, limit in limits.items() if result[name] is not None and result[name] > limit]
    return result
