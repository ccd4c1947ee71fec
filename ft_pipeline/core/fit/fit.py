"""Should this task be fine-tuned at all? Decided from measured alternatives, not from a flag.

Every cheaper arm (arms.py: zero-shot, few-shot, retrieved few-shot, RAG) answers the same
held-out items; each is scored with the task's primary metric and a confidence interval, and
priced at the user's request volume. The recommendation is the cheapest arm whose interval's
lower end reaches the target — prompt engineering for the prompt arms, RAG for the retrieval
one — and fine-tuning only when no arm does. Its monthly cost is the tuned model's shorter
prompts plus the one-off training cost spread over `amortize_months`.
"""
from __future__ import annotations

from ft_pipeline.core.metrics import Scores
from ft_pipeline.core.evaluation.statistics import bootstrap_interval, wilson

RECOMMENDS = {"zero_shot": "prompt_engineering", "few_shot": "prompt_engineering",
              "retrieved_few_shot": "prompt_engineering", "rag": "rag"}
LABELS = {"zero_shot": "zero-shot", "few_shot": "few-shot", "retrieved_few_shot": "retrieved few-shot",
          "rag": "RAG", "fine_tune": "fine-tuned"}


def interval(scores: Scores, *, binary: bool, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The primary metric's (1 - alpha) interval: Wilson for a share of right answers, a percentile
    bootstrap over items otherwise (macro-F1 recomputed on each resample)."""
    import numpy as np

    n = scores.n or len(scores.primary_items())
    if n == 0:
        return 0.0, 1.0
    if binary and scores.metric != "macro_f1":
        return wilson(int(round(sum(scores.primary_items()))), n, alpha)
    return bootstrap_interval(lambda idx: scores.on(idx), np.arange(n), alpha=alpha, n_boot=n_boot,
                              rng=np.random.default_rng(seed))


def monthly_usd(prompt_tokens: float, answer_tokens: float, requests_per_month: int, usd_per_million: float) -> float:
    return (prompt_tokens + answer_tokens) * requests_per_month * usd_per_million / 1e6


def assess(arms: dict[str, dict], *, target: float, metric: str, fine_tune: dict, requests_per_month: int,
           pilot: dict | None = None, alpha: float = 0.05) -> dict:
    """The recommendation from measured arms.

    arms: {arm: {"metric", "low", "high", "n", "usd_per_month", "prompt_tokens", ...}}.
    fine_tune: {"usd_per_month", "one_off_usd", "prompt_tokens"}: the tuned option's cost.
    Returns {"recommendation", "winner", "reasons", "best_alternative", ...}.
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError("target must be within [0, 1]")
    if not arms:
        raise ValueError("no arm was measured")
    reaching = sorted((a for a, r in arms.items() if r["low"] >= target), key=lambda a: (arms[a]["usd_per_month"], a))
    best = max(arms, key=lambda a: (arms[a]["metric"], -arms[a]["usd_per_month"]))
    volume = f"{requests_per_month:,} requests a month"
    level = f"{100 * (1 - alpha):g}%"
    reasons = []

    def figures(name: str) -> str:
        r = arms[name]
        return (f"{LABELS[name]} {metric} {r['metric']:.3f} ({level} interval {r['low']:.3f}–{r['high']:.3f}, "
                f"n = {r['n']}), ${r['usd_per_month']:,.2f}/month at {volume}")

    if reaching:
        winner = reaching[0]
        reasons.append(f"{figures(winner)}: the interval's lower end reaches the target {target:.3f}, "
                       "so the cheaper option is enough")
        for other in reaching[1:]:
            reasons.append(f"{LABELS[other]} reaches it too but costs ${arms[other]['usd_per_month']:,.2f}/month")
        if fine_tune["usd_per_month"] < arms[winner]["usd_per_month"]:
            saving = arms[winner]["usd_per_month"] - fine_tune["usd_per_month"] + fine_tune["one_off_usd"] / fine_tune["amortize_months"]
            months = fine_tune["one_off_usd"] / saving if saving > 0 else float("inf")
            reasons.append(f"at this volume a tuned model's shorter prompts would cost ${fine_tune['usd_per_month']:,.2f}/month "
                           f"with training amortized (training ${fine_tune['one_off_usd']:,.2f} pays back in "
                           f"{months:.1f} months): worth it only once the target is proven out of reach or volume grows")
        recommendation = RECOMMENDS[winner]
    else:
        winner = "fine_tune"
        recommendation = "fine_tune"
        reasons.append(f"no cheaper arm reaches the target {target:.3f} with confidence; the strongest is {figures(best)}")
        near = [a for a, r in arms.items() if r["metric"] >= target]
        if near:
            reasons.append(", ".join(LABELS[a] for a in near) + " meets the target on the point estimate only: "
                           "the interval says it could be chance; more held-out items would settle it")
        reasons.append(f"fine-tuning: ${fine_tune['one_off_usd']:,.2f} once for training, then "
                       f"${fine_tune['usd_per_month']:,.2f}/month ({fine_tune['prompt_tokens']:.0f} prompt tokens "
                       f"a request against {arms[best]['prompt_tokens']:.0f} for {LABELS[best]})")
    if pilot and pilot.get("summary"):
        reasons.append(pilot["summary"])
    return {"recommendation": recommendation, "winner": winner, "reasons": reasons, "target": target,
            "metric": metric, "arms": arms, "best_alternative": best, "fine_tune": fine_tune,
            "requests_per_month": requests_per_month, "pilot": pilot, "level": level}


def arms_metadata(arms: dict[str, dict]) -> dict[str, dict]:
    """The `arms` metadata tools outside the project read: {arm: {metric, low, high, usd_per_month}}."""
    return {a: {"metric": r["metric"], "low": round(r["low"], 4), "high": round(r["high"], 4),
                "usd_per_month": round(r["usd_per_month"], 2)} for a, r in arms.items()}


def render_markdown(assessment: dict) -> str:
    metric, arms, level = assessment["metric"], assessment["arms"], assessment.get("level", "95%")
    lines = ["# Fit assessment", "",
             f"**Recommendation: {assessment['recommendation'].replace('_', ' ')}** "
             f"(target {metric} {assessment['target']:.3f}; at {assessment['requests_per_month']:,} requests a month)",
             "", f"| arm | {metric} | {level} interval | n | prompt tokens | $/month | trimmed |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for name, r in arms.items():
        lines.append(f"| {LABELS[name]} | {r['metric']:.3f} | {r['low']:.3f}–{r['high']:.3f} | {r['n']} | "
                     f"{r['prompt_tokens']:.0f} | {r['usd_per_month']:,.2f} | {r.get('trimmed', 0)} |")
    tuned = assessment["fine_tune"]
    lines.append(f"| fine-tuned (estimate) | | | | {tuned['prompt_tokens']:.0f} | {tuned['usd_per_month']:,.2f} | |")
    pilot = assessment.get("pilot") or {}
    if pilot.get("curve"):
        lines += ["", "## Pilot learning curve", "", f"| training share | examples | steps | {metric} | {level} interval |",
                  "|---:|---:|---:|---:|---|"]
        lines += [f"| {p['fraction']:.2f} | {p['examples']} | {p['steps']} | {p['metric']:.3f} | "
                  f"{p['low']:.3f}–{p['high']:.3f} |" for p in pilot["curve"]]
        private = [p["privacy"] for p in pilot["curve"] if (p.get("privacy") or {}).get("dp")]
        if private:  # the pilots' budget adds to the training run's (training/privacy.py total_privacy)
            lines += ["", "DP pilots spent " + ", ".join(f"ε = {p['epsilon']:.2f} at δ = {p['delta']:.2g} ({p['run']})"
                                                         for p in private)
                      + " on the training data; the release reports the total with the training run's."]
    lines += ["", "## Why", ""] + [f"- {reason}" for reason in assessment["reasons"]]
    return "\n".join(lines) + "\n"
