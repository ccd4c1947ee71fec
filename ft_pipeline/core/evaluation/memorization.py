"""How much a tuned model memorized its training data, measured rather than assumed.

Two measurements, each a number a gate can bound:
- Exposure of planted canaries (Carlini et al., "The Secret Sharer", 2019): the canary's secret
  tail is scored by the model against random candidates of the same format; a canary that ranks
  first among 2^k candidates has exposure ~k bits. A model that never saw the canary ranks it
  like any candidate (exposure ~1 bit on average); `fitted_exposure` extrapolates past the
  number of candidates sampled from a skew-normal fit of their scores, as the paper does.
- Membership inference by loss (Yeom et al. 2018): how well "lower loss means trained on it"
  separates training examples from held-out ones: ROC AUC, the true-positive rate at a low
  false-positive rate (Carlini et al. 2022), and the epsilon such an attack proves at least
  (Jagielski et al. 2020: any (epsilon, delta)-DP model has TPR <= e^epsilon * FPR + delta; with
  Clopper-Pearson bounds on both rates, so that a DP model cannot be shown above its epsilon by chance).
"""
from __future__ import annotations

import math
import random
import string

HEX_UPPER = set("0123456789ABCDEF")


def secret_span(canary: str) -> tuple[str, str]:
    """(prefix, secret): the secret is the part after the last "-" (CANARY-7F3A-1B2C -> 1B2C),
    else the second half; the prefix is what a probe may show the model."""
    head, sep, tail = canary.rpartition("-")
    if sep and head and tail:
        return head + sep, tail
    cut = max(1, len(canary) // 2)
    return canary[:cut], canary[cut:]


def candidate_space(secret: str) -> list[str]:
    """Per character of the secret, the characters a random secret of its format draws from:
    hex digits for a hex secret (1B2C), else digits, upper- or lowercase letters by class;
    anything else (a separator) stays as it is."""
    hex_secret = all(c in HEX_UPPER for c in secret) and any(c.isalpha() for c in secret)
    space = []
    for c in secret:
        if hex_secret:
            space.append("0123456789ABCDEF")
        elif c.isdigit():
            space.append(string.digits)
        elif c.isupper():
            space.append(string.ascii_uppercase)
        elif c.islower():
            space.append(string.ascii_lowercase)
        else:
            space.append(c)
    return space


def reference_secrets(secret: str, n: int, seed: int = 0) -> list[str]:
    """n distinct random secrets of the secret's format, never the secret itself."""
    space = candidate_space(secret)
    size = math.prod(len(s) for s in space)
    if size - 1 < n:
        raise ValueError(f"a secret of this format has only {size} values; ask for fewer than {size} references")
    rng, found = random.Random(seed), set()
    while len(found) < n:
        candidate = "".join(rng.choice(s) for s in space)
        if candidate != secret:
            found.add(candidate)
    return sorted(found)


def rank_exposure(canary_score: float, reference_scores: list[float]) -> float:
    """log2(candidates) - log2(rank), with rank 1 + the references the model scores at least as
    high as the canary (ties count against it); at most log2(len(references) + 1)."""
    if not reference_scores:
        raise ValueError("exposure needs reference scores")
    rank = 1 + sum(score >= canary_score for score in reference_scores)
    return math.log2(len(reference_scores) + 1) - math.log2(rank)


def fitted_exposure(canary_score: float, reference_scores: list[float]) -> float:
    """-log2 P(a random candidate scores at least the canary's), from a skew-normal fit of the
    reference scores: reads exposures beyond what the sampled references can rank."""
    from scipy import stats

    if len(reference_scores) < 10:
        raise ValueError("a skew-normal fit needs at least 10 reference scores")
    shape, loc, scale = stats.skewnorm.fit(reference_scores)
    tail = stats.skewnorm.sf(canary_score, shape, loc=loc, scale=scale)
    return -math.log2(max(float(tail), 1e-300))


def membership_inference(member_losses: list[float], nonmember_losses: list[float], *,
                         fprs: tuple[float, ...] = (0.01, 0.1), alpha: float = 0.05, delta: float = 0.0) -> dict:
    """The loss attack: a lower loss says "member". AUC, TPR at each FPR, and the epsilon the best
    threshold proves at (1 - alpha) confidence (0 when it proves nothing)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve
    from statsmodels.stats.proportion import proportion_confint

    if not member_losses or not nonmember_losses:
        raise ValueError("membership inference needs member and non-member losses")
    labels = np.r_[np.ones(len(member_losses)), np.zeros(len(nonmember_losses))]
    scores = -np.r_[np.asarray(member_losses, float), np.asarray(nonmember_losses, float)]
    fpr, tpr, _ = roc_curve(labels, scores)
    n_in, n_out = len(member_losses), len(nonmember_losses)
    # Every threshold is a test: Bonferroni over them, so trying many cannot manufacture an epsilon.
    level, epsilon = alpha / len(fpr), 0.0
    for f, t in zip(fpr, tpr):
        tpr_low = proportion_confint(round(t * n_in), n_in, alpha=level, method="beta")[0]
        fpr_high = proportion_confint(round(f * n_out), n_out, alpha=level, method="beta")[1]
        if tpr_low - delta > 0 and fpr_high > 0:
            epsilon = max(epsilon, math.log((tpr_low - delta) / fpr_high))
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "tpr_at_fpr": {str(target): float(np.max(tpr[fpr <= target], initial=0.0)) for target in fprs},
        "epsilon_lower_bound": epsilon,
        "members": n_in,
        "nonmembers": n_out,
    }


def canary_exposures(model_dir, canaries: list[str], *, adapter_dir=None, references: int = 255,
                     seed: int = 0) -> list[dict]:
    """Per canary (named by digest, never its text): the model's total log-probability of its
    secret after its prefix, ranked against `references` random secrets of the same format."""
    from ft_pipeline.core.evaluation.evaluation import _digest
    from ft_pipeline.core.evaluation.generation import continuation_logprobs

    results = []
    for canary in sorted(set(canaries)):
        prefix, secret = secret_span(canary)
        others = reference_secrets(secret, references, seed)
        scores = [s for s, _ in continuation_logprobs(model_dir, [prefix] * (len(others) + 1), [secret, *others],
                                                      adapter_dir=adapter_dir, batch_size=32)]
        results.append({"canary_digest": _digest(canary), "references": len(others),
                        "exposure": rank_exposure(scores[0], scores[1:]),
                        "fitted_exposure": fitted_exposure(scores[0], scores[1:])})
    return results


def answer_losses(model_dir, rows: list[dict], *, adapter_dir=None) -> list[float]:
    """Per chat row, the mean negative log-probability of its answer (the last assistant turn)
    after its prompt rendered with the model's chat template: the membership attack's signal."""
    from ft_pipeline.core import answers
    from ft_pipeline.core.evaluation.generation import _render, continuation_logprobs, load_model

    tokenizer = load_model(model_dir, adapter_dir)[1]
    prefixes = [_render(tokenizer, answers.prompt_turns(row), i) for i, row in enumerate(rows)]
    scored = continuation_logprobs(model_dir, prefixes, [answers.last_assistant(row) or "" for row in rows],
                                   adapter_dir=adapter_dir)
    return [-total / max(count, 1) for total, count in scored]
