"""Small PNG charts for reports and Dagster metadata.

Charts are embedded in markdown metadata as base64 data URIs, so they must stay small: 6×3.5 in
at 80 dpi is 480×280 px, a few tens of KB. Figures are built on the object API with the Agg
canvas — no pyplot global state, safe in threads and without a display.
"""
from __future__ import annotations

import base64
import io

FIGSIZE = (6, 3.5)
DPI = 80


def bar_chart(values: dict[str, float], title: str) -> bytes:
    fig, ax = _figure(title)
    if values:
        names = list(values)
        bars = ax.bar(range(len(names)), [values[n] for n in names], color="#4C72B0")
        crowded = len(names) > 4
        ax.set_xticks(range(len(names)), names, rotation=20 if crowded else 0, ha="right" if crowded else "center")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.margins(y=0.15)
    else:
        _no_data(ax)
    return _png(fig)


def grouped_bars(table: dict[str, dict[str, float]], title: str) -> bytes:
    """One cluster of bars per group, one bar per variant (the inner key)."""
    fig, ax = _figure(title)
    groups = list(table)
    variants = list(dict.fromkeys(v for row in table.values() for v in row))
    if groups and variants:
        width = 0.8 / len(variants)
        for i, variant in enumerate(variants):
            xs = [g + (i - (len(variants) - 1) / 2) * width for g in range(len(groups))]
            ax.bar(xs, [table[g].get(variant, 0.0) for g in groups], width, label=variant)
        ax.set_xticks(range(len(groups)), groups, rotation=45, ha="right", fontsize=7)
        if len(variants) > 1:
            ax.legend(fontsize=7)
    else:
        _no_data(ax)
    return _png(fig)


def interval_bars(groups: dict[str, dict[str, dict]], title: str) -> bytes:
    """One bar per attribute=group with its interval as an error bar, from
    {attribute: {group: {n, metric, low, high, small}}}; groups too small to judge are grey."""
    fig, ax = _figure(title)
    rows = [(f"{a}={g} (n={r['n']})", r) for a, by_group in groups.items() for g, r in by_group.items()]
    if rows:
        xs = range(len(rows))
        metric = [r["metric"] for _, r in rows]
        errors = [[max(r["metric"] - r["low"], 0) for _, r in rows], [max(r["high"] - r["metric"], 0) for _, r in rows]]
        colors = ["#BBBBBB" if r.get("small") else "#4C72B0" for _, r in rows]
        ax.bar(xs, metric, color=colors, yerr=errors, capsize=3, error_kw={"linewidth": 1})
        ax.set_xticks(xs, [name for name, _ in rows], rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, 1.05)
    else:
        _no_data(ax)
    return _png(fig)


def arms_chart(arms: dict[str, dict], fine_tune: dict, target: float, metric: str) -> bytes:
    """The fit assessment at a glance: each arm's metric with its interval against the target line
    (left), and each option's monthly cost, the fine-tuned estimate included (right)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGSIZE[0] * 1.4, FIGSIZE[1]), dpi=DPI)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    names = list(arms)
    xs = range(len(names))
    values = [arms[a]["metric"] for a in names]
    errors = [[max(v - arms[a]["low"], 0) for a, v in zip(names, values)],
              [max(arms[a]["high"] - v, 0) for a, v in zip(names, values)]]
    colors = ["#55A868" if arms[a]["low"] >= target else "#4C72B0" for a in names]
    left.bar(xs, values, color=colors, yerr=errors, capsize=3, error_kw={"linewidth": 1})
    left.axhline(target, color="#C44E52", linestyle="--", linewidth=1, label=f"target {target:.2f}")
    left.set_xticks(xs, names, rotation=20, ha="right", fontsize=7)
    left.set_ylim(0, 1.05)
    left.set_title(f"{metric}, 95% intervals", fontsize=9)
    left.legend(fontsize=7)
    costs = {**{a: arms[a]["usd_per_month"] for a in names}, "fine_tune": fine_tune["usd_per_month"]}
    bars = right.bar(range(len(costs)), list(costs.values()), color=["#4C72B0"] * len(names) + ["#8172B2"])
    right.bar_label(bars, fmt="$%.0f", fontsize=7)
    right.set_xticks(range(len(costs)), list(costs), rotation=20, ha="right", fontsize=7)
    right.set_title("USD per month", fontsize=9)
    right.margins(y=0.15)
    for ax in (left, right):
        ax.tick_params(labelsize=7)
    return _png(fig)


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, xlabel: str, ylabel: str) -> bytes:
    fig, ax = _figure(title)
    drawn = False
    for name, points in series.items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=name, linewidth=1.2)
            drawn = True
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if drawn and len(series) > 1:
        ax.legend(fontsize=7)
    if not drawn:
        _no_data(ax)
    return _png(fig)


def rollout_series(events: list[dict]) -> tuple[list[tuple[float, float]], list[dict], float]:
    """From the last rollout in a version's log: (minutes since its start, candidate's share) at each
    change, its gate steps, and its first share."""
    from datetime import datetime

    begun = [k for k, e in enumerate(events) if str(e.get("event")).endswith("_started")]
    events = events[begun[-1]:] if begun else []
    if not events:
        return [], [], 0.0
    t0 = datetime.fromisoformat(events[0]["at"])
    first = events[0].get("share") or 1.0  # shadow: a copy of every request
    share, points, minutes = first, [(0.0, first)], 0.0
    for e in events[1:]:
        minutes = (datetime.fromisoformat(e["at"]) - t0).total_seconds() / 60
        share = e["share"] if e["event"] == "step" else \
            {"rolled_back": 0.0, "switched": 1.0}.get(e["event"], share)  # the outcome serves every request
        if share != points[-1][1]:
            points.append((minutes, share))
    if minutes > points[-1][0]:
        points.append((minutes, share))  # drawn as a step function: until the last step recorded
    return points, [e for e in events if e["event"] == "gate" and e.get("numbers")], first


def rollout_chart(events: list[dict]) -> bytes:
    """A rollout from its log (registry.rollout_events): the candidate's share of the traffic over
    time (left), and at each gate the candidate-minus-incumbent difference on the task metric (on
    the schema-valid rate where no request carried a label) with its interval and the tolerated
    fall (right)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGSIZE[0] * 1.4, FIGSIZE[1]), dpi=DPI)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    points, gates, first = rollout_series(events)
    if points:
        left.step([x for x, _ in points], [100 * y for _, y in points], where="post", color="#4C72B0")
        left.set_ylim(0, 105)
        left.set_xlabel("minutes since the rollout started", fontsize=8)
        left.set_ylabel("% of requests to the candidate", fontsize=8)
    else:
        _no_data(left)
    left.set_title("candidate's share", fontsize=9)
    if gates:
        metric = "task_metric" if all("difference" in g["numbers"].get("task_metric", {}) for g in gates) else "schema_valid"
        rows = [g["numbers"][metric] for g in gates]
        xs = range(len(rows))
        for x, r, g in zip(xs, rows, gates):  # a point and its interval: a difference of 0 still shows
            right.errorbar([x], [r["difference"]], yerr=[[max(r["difference"] - r["low"], 0)], [max(r["high"] - r["difference"], 0)]],
                           fmt="o", capsize=4, color="#55A868" if g["passed"] else "#C44E52")
        right.set_xlim(-0.5, len(rows) - 0.5)
        right.axhline(-rows[0]["tolerance"], color="#C44E52", linestyle="--", linewidth=1, label="tolerated fall")
        right.axhline(0, color="#888888", linewidth=0.8)
        right.set_xticks(xs, [f"step {g.get('step', 1)} ({100 * g.get('share', first):g}%)" for g in gates], fontsize=7)
        right.set_title(f"{metric}, candidate - incumbent, intervals", fontsize=9)
        right.legend(fontsize=7)
    else:
        _no_data(right)
    for ax in (left, right):
        ax.tick_params(labelsize=7)
    return _png(fig)


def png_to_markdown(png_bytes: bytes, title: str = "chart") -> str:
    """A markdown image with the PNG inline, as MetadataValue.md renders it."""
    alt = title.replace("[", "(").replace("]", ")")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png_bytes).decode('ascii')})"


def _figure(title: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    return fig, ax


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _png(fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
