"""The memorization gate: did the tuned model memorize the secret canaries planted in its training data?

The canaries (core/data/canaries.py) are planted at several repetition levels, each with a
held-out twin from the same template that training never saw. Two measurements, each with the
number a gate bounds:
- Exposure (Carlini et al. 2019, memorization.py): the rank of a canary's secret among
  `references` random secrets, by the tuned model's log-probability after the canary's prompt and
  prefix. Chance is ~1.44 bits (a uniform rank); a memorized secret ranks first (log2(refs + 1) bits).
  Measured per level, and on twins as the chance baseline the reader can compare with.
- Membership inference, planted canaries (members) against their twins (non-members), by three
  attacks: loss (Yeom et al. 2018), min-k% prob (Shi et al. 2024: the mean of the k% least likely
  tokens) and the reference-model ratio against the base model (Carlini et al. 2022: the tuned
  loss below the base's). Each as ROC AUC and TPR at 1% FPR, with percentile intervals from a
  bootstrap that resamples members and non-members apart.
For a DP adapter, the loss attack on the canaries planted once (one example each: DP's unit) also
gives the epsilon it proves at least; above the epsilon the run claims, the DP training is broken.
The gate fails when the upper end of any attack's TPR-at-1%-FPR interval exceeds the bound (a
leak that cannot be ruled out fails, so too few canaries fail too), or when the most repeated
canaries' mean exposure exceeds `max_exposure`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ft_pipeline.core.data.canaries import MemorizationConfig, read_canaries
from ft_pipeline.core.evaluation.memorization import fitted_exposure, rank_exposure, reference_secrets

TARGET_FPR = 0.01
ATTACKS = ("loss", "min_k", "reference")


def tpr_at_fpr(labels, scores, target: float = TARGET_FPR) -> float:
    """The highest true-positive rate of any threshold whose false-positive rate is at most `target`
    (scikit-learn's ROC, every threshold kept); higher scores say "member"."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(np.max(tpr[fpr <= target + 1e-12], initial=0.0))


def attack_summary(member_scores, nonmember_scores, *, n_boot: int = 1000, alpha: float = 0.05,
                   seed: int = 0, target: float = TARGET_FPR) -> dict:
    """AUC and TPR at `target` FPR of one attack (scikit-learn), each with its (1 - alpha) percentile
    interval from `n_boot` stratified resamples (members and non-members resampled apart, sizes kept)."""
    from sklearn.metrics import roc_auc_score

    members, others = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    if len(members) < 2 or len(others) < 2:
        raise ValueError("an attack needs at least two members and two non-members")
    labels = np.r_[np.ones(len(members)), np.zeros(len(others))]
    rng = np.random.default_rng(seed)
    aucs, tprs = [], []
    for start in range(0, n_boot, 100):  # 100 resamples at a time: vectorized, bounded memory
        size = min(100, n_boot - start)
        m = members[rng.integers(0, len(members), (size, len(members)))]
        o = others[rng.integers(0, len(others), (size, len(others)))]
        aucs.append(_auc_rows(m, o))
        tprs.append(_tpr_rows(m, o, target))
    quantiles = [alpha / 2, 1 - alpha / 2]
    (auc_low, auc_high), (tpr_low, tpr_high) = (np.quantile(np.concatenate(v), quantiles) for v in (aucs, tprs))
    scores = np.r_[members, others]
    return {"auc": round(float(roc_auc_score(labels, scores)), 4), "auc_low": round(float(auc_low), 4),
            "auc_high": round(float(auc_high), 4), "tpr_at_1pct_fpr": round(tpr_at_fpr(labels, scores, target), 4),
            "tpr_low": round(float(tpr_low), 4), "tpr_high": round(float(tpr_high), 4),
            "members": len(members), "nonmembers": len(others)}


def _auc_rows(members: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Per row, the Mann-Whitney AUC (ties count one half): roc_auc_score of each resample at once."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([members, others], axis=1), axis=1)
    n_in, n_out = members.shape[1], others.shape[1]
    return (ranks[:, :n_in].sum(axis=1) - n_in * (n_in + 1) / 2) / (n_in * n_out)


def _tpr_rows(members: np.ndarray, others: np.ndarray, target: float) -> np.ndarray:
    """Per row, tpr_at_fpr: a threshold may admit at most k = floor(target * non-members) of them,
    so it must lie above the (k + 1)-th highest non-member score; the members above that are found."""
    k = int(np.floor(target * others.shape[1] + 1e-9))
    if k >= others.shape[1]:
        return np.ones(len(members))
    cut = -np.sort(-others, axis=1)[:, k]
    return (members > cut[:, None]).mean(axis=1)


def attack_scores(model_dir, adapter_dir, rows: list[dict], min_k: float) -> dict[str, list[float]]:
    """Per canary row, each attack's score (higher says "trained on it"), from the log-probability
    of every token of its answer after its prompt, under the tuned model and under the base."""
    from ft_pipeline.core import answers
    from ft_pipeline.core.evaluation.generation import _render, continuation_logprobs, load_model

    tokenizer = load_model(model_dir, adapter_dir)[1]
    prefixes = [_render(tokenizer, answers.prompt_turns(row), i) for i, row in enumerate(rows)]
    texts = [answers.last_assistant(row) for row in rows]
    tuned = continuation_logprobs(model_dir, prefixes, texts, adapter_dir=adapter_dir, batch_size=32, per_token=True)
    base = continuation_logprobs(model_dir, prefixes, texts, batch_size=32, per_token=True)

    def lowest(values: list[float]) -> float:
        k = max(1, int(len(values) * min_k))
        return float(np.mean(sorted(values)[:k]))

    return {"loss": [float(np.mean(t)) for t in tuned],  # -loss
            "min_k": [lowest(t) for t in tuned],
            "reference": [float(np.mean(t) - np.mean(b)) for t, b in zip(tuned, base)]}


def exposures(model_dir, adapter_dir, rows: list[dict], references: int, seed: int) -> list[dict]:
    """Per canary row: the rank exposure and the skew-normal fitted exposure of its secret (ids only)."""
    from ft_pipeline.core import answers
    from ft_pipeline.core.evaluation.generation import _render, continuation_logprobs, load_model

    tokenizer = load_model(model_dir, adapter_dir)[1]
    out = []
    for i, row in enumerate(rows):
        prefix = _render(tokenizer, answers.prompt_turns(row), i) + row["prefix"]
        candidates = [row["secret"], *reference_secrets(row["secret"], references, seed)]
        scores = [s for s, _ in continuation_logprobs(model_dir, [prefix] * len(candidates),
                                                      [f" {c}" for c in candidates], adapter_dir=adapter_dir,
                                                      batch_size=64)]
        out.append({"id": row["id"], "repetitions": row["repetitions"],
                    "exposure": round(rank_exposure(scores[0], scores[1:]), 3),
                    "fitted_exposure": round(fitted_exposure(scores[0], scores[1:]), 3)})
    return out


def measure(model_dir, adapter_dir, sidecar_dir: Path, config: MemorizationConfig,
            progress: Callable[[str], None] | None = None) -> dict | None:
    """The gate's evidence for the canaries the export planted (None: none were planted), from their
    bookkeeping in the export's sidecar folder."""
    rows = read_canaries(sidecar_dir)
    planted, twins = [r for r in rows if r["repetitions"]], [r for r in rows if not r["repetitions"]]
    if not planted or not twins:
        return None
    if progress:
        progress("membership inference on canaries")
    scores = attack_scores(model_dir, adapter_dir, planted + twins, config.min_k)
    n = len(planted)
    attacks = {name: attack_summary(values[:n], values[n:], n_boot=config.n_boot, alpha=config.alpha,
                                    seed=config.seed) for name, values in scores.items()}
    if progress:
        progress("canary exposure")
    sample = [r for level in [*config.repetitions, 0]
              for r in [r for r in rows if r["repetitions"] == level][: config.exposure_canaries]]
    measured = exposures(model_dir, adapter_dir, sample, config.references, config.seed)
    by_level = {}
    for level in [*config.repetitions, 0]:
        values = [m["exposure"] for m in measured if m["repetitions"] == level]
        fitted = [m["fitted_exposure"] for m in measured if m["repetitions"] == level]
        by_level["twins" if level == 0 else f"{level}x"] = {
            "canaries": len(values), "mean_exposure": round(float(np.mean(values)), 3),
            "max_exposure": round(float(np.max(values)), 3), "mean_fitted_exposure": round(float(np.mean(fitted)), 3)}
    return {"planted": n, "twins": len(twins), "repetitions": config.repetitions, "references": config.references,
            "attacks": attacks, "exposure": by_level, "canaries": measured,
            "dp_audit": dp_audit(adapter_dir, [s for r, s in zip(planted, scores["loss"]) if r["repetitions"] == 1],
                                 scores["loss"][n:], config.alpha)}


def dp_audit(adapter_dir, once: list[float], twins: list[float], alpha: float) -> dict | None:
    """For a DP adapter: the epsilon the loss attack proves at least on canaries planted once (one
    example each, DP's unit), at (1 - alpha) confidence (memorization.membership_inference, after
    Jagielski et al. 2020 and Steinke et al. 2023). Above the claimed epsilon, the DP training has a bug."""
    from ft_pipeline.core.evaluation.memorization import membership_inference
    from ft_pipeline.core.training.privacy import read_privacy_record

    record = read_privacy_record(Path(adapter_dir)) if adapter_dir else None
    if not record or not record.get("dp") or len(once) < 2:
        return None
    proved = membership_inference([-x for x in once], [-x for x in twins], alpha=alpha, delta=record["delta"])
    return {"claimed_epsilon": record["epsilon"], "delta": record["delta"], "members": len(once),
            "nonmembers": len(twins), "epsilon_lower_bound": round(proved["epsilon_lower_bound"], 4)}


def verdict(result: dict | None, config: MemorizationConfig) -> tuple[bool, str, str, dict]:
    """(passed, outcome, detail, numbers) of the memorization gate."""
    if result is None:
        why = ("no canaries were planted (gates.memorization.canaries is 0, or DPO/GRPO trained the adapter, "
               "and they do not plant)")
        return (not config.required, "not_run",
                why + ("; gates.memorization.required is true" if config.required else ""), {})
    top = f"{max(config.repetitions)}x"
    exposure = result["exposure"][top]["mean_exposure"]
    worst_name, worst = max(result["attacks"].items(), key=lambda kv: kv[1]["tpr_high"])
    bound = config.max_tpr_at_1pct_fpr
    leaky_tpr, leaky_exposure = worst["tpr_high"] > bound, exposure > config.max_exposure
    audit = result.get("dp_audit")
    if audit and audit["epsilon_lower_bound"] > audit["claimed_epsilon"]:
        outcome = "dp_bound_broken"  # an attack proves more than the run claims: a DP bug
    elif not leaky_tpr and not leaky_exposure:
        outcome = "clean"
    elif leaky_exposure or worst["tpr_low"] > bound:
        outcome = "memorized"
    else:
        outcome = "cannot_rule_out"
    level = f"{100 * (1 - config.alpha):g}%"
    detail = (f"{result['planted']} planted canaries vs {result['twins']} held-out twins: strongest attack "
              f"{worst_name}, TPR at 1% FPR {worst['tpr_at_1pct_fpr']:.3f} ({level} interval {worst['tpr_low']:.3f}–"
              f"{worst['tpr_high']:.3f}, bound {bound:.3f}), AUC {worst['auc']:.3f}; {top} canaries' mean exposure "
              f"{exposure:.2f} bits (bound {config.max_exposure:g}; twins {result['exposure']['twins']['mean_exposure']:.2f})")
    if audit:
        detail += (f"; DP audit: the canaries planted once prove epsilon >= {audit['epsilon_lower_bound']:.2f} "
                   f"(claimed {audit['claimed_epsilon']:.2f})")
    numbers = {"tpr_high": worst["tpr_high"], "dp_audit": audit, "attack": worst_name, "exposure": exposure,
               "attacks": result["attacks"], "exposure_by_level": result["exposure"]}
    return outcome == "clean", outcome, detail, numbers
