"""Scoring, per-group metrics, leakage probe, gates, report and plots of the evaluation."""
from __future__ import annotations

import base64
import importlib.util
import json
import re

import pytest

from pathlib import Path

from ft_pipeline.core import plots
from ft_pipeline.core.evaluation import evaluation, report
from ft_pipeline.core.evaluation.evaluation import evaluate_variants, leakage_probe
from ft_pipeline.core.task import TaskConfig

DEMO = TaskConfig.from_yaml(Path(__file__).resolve().parents[3] / "configs" / "tasks" / "demo-triage.yaml")
REF = '{"intent": "billing_dispute", "priority": "high"}'


def _record(i: int, intent: str = "billing_dispute", priority: str = "high") -> dict:
    return {
        "id": f"r{i}",
        "messages": [
            {"role": "user", "content": f"ticket {i}"},
            {"role": "assistant", "content": json.dumps({"intent": intent, "priority": priority})},
        ],
    }


def _constructed(n_north=20, n_south=20, n_island=3):
    """North answered right 90%, south 40%, a three-record island group always wrong."""
    records, preds, attributes = [], [], {}
    wrong = '{"intent": "address_change", "priority": "low"}'
    for region, n, right in (("north", n_north, 0.9), ("south", n_south, 0.4), ("island", n_island, 0.0)):
        for j in range(n):
            record = _record(len(records))
            records.append(record)
            preds.append(REF if j < round(n * right) else wrong)
            attributes[record["id"]] = {"region": region, "language": "en"}
    return records, preds, attributes


def _judged(task, records, variants, attributes, min_group_size=10, leakage=None):
    from ft_pipeline.core.evaluation.gates import GateConfig

    scores = evaluate_variants(task, records, variants).scores
    groups = report.item_groups([r["id"] for r in records], attributes)
    config = GateConfig(min_group_size=min_group_size, n_boot=400)
    return report.judge(task, scores, groups, config=config, leakage=leakage, capability=None), config


def test_groups_carry_intervals_and_small_groups_are_flagged_not_judged():
    records, preds, attributes = _constructed()
    judged, _ = _judged(DEMO, records, {"tuned": preds}, attributes)
    region = judged.groups_with_intervals["region"]
    assert region["north"]["n"] == 20 and region["north"]["metric"] == pytest.approx(0.9)
    assert region["north"]["low"] < 0.9 < region["north"]["high"]  # a Wilson interval around 18/20
    assert region["island"]["small"] is True and region["island"]["n"] == 3
    assert judged.variants["tuned"]["n"] == 43
    assert judged.variants["tuned"]["exact_match"] == pytest.approx((18 + 8) / 43, abs=1e-4)
    gap = judged.verdicts["no_group_gap_above_bound"]
    # north 0.9 vs south 0.4 on 20 each: a gap of 0.5 is not credibly above 0.35 at this size
    assert gap.passed and gap.outcome == "within" and "region=island (n=3" in gap.detail


def test_evaluate_variants_aggregates_every_metric_of_the_task():
    records = [_record(0), _record(1, "address_change", "low")]
    preds = [REF, 'I think {"intent": "address_change", "priority": "urgent", "x": 1}']
    result = evaluate_variants(DEMO, records, {"v": preds})
    assert result.variants["v"] == {"exact_match": 0.5, "field_accuracy": 0.75, "schema_valid": 0.5,
                                    "json_valid": 1.0, "n": 2}
    assert result.metric == "exact_match" and result.scores["v"].details["per_field"] == {"intent": 1.0, "priority": 0.5}


def test_evaluate_variants_rejects_misaligned_and_unfit_references():
    records = [_record(0), _record(1)]
    with pytest.raises(ValueError, match="variant base: 1 predictions for 2 records"):
        evaluate_variants(DEMO, records, {"base": [REF]})
    bad = {"id": "r9", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "no json"}]}
    with pytest.raises(ValueError, match="record r9: final assistant turn: not a JSON object"):
        evaluate_variants(DEMO, [bad], {"base": [REF]})


def test_groups_use_the_primary_metric_recomputed_per_group():
    task = TaskConfig(name="abc", type="classification", labels=["a", "b"], metric="macro_f1")
    truth, preds = ["a", "a", "b", "b", "a", "b"], ["a", "b", "b", "b", "a", "a"]
    records = [{"id": f"r{i}", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": t}]}
               for i, t in enumerate(truth)]
    attributes = {f"r{i}": {"site": "x" if i < 4 else "y"} for i in range(6)}
    judged, _ = _judged(task, records, {"tuned": preds}, attributes, min_group_size=2)
    # site x: a F1 2/3, b F1 0.8 -> 0.7333; site y: one a right, one b called a -> a 2/3, b 0 -> 1/3
    assert judged.groups_with_intervals["site"]["x"]["metric"] == pytest.approx(0.7333, abs=1e-4)
    assert judged.groups_with_intervals["site"]["y"]["metric"] == pytest.approx(0.3333, abs=1e-4)


def _regex_finder(texts):
    pattern = re.compile(r"\b\d{3}-\d{4}\b")
    return [[("PHONE_NUMBER", m.start(), m.end(), 0.9) for m in pattern.finditer(t)] for t in texts]


def test_leakage_probe_counts_canary_and_pii_without_raw_text(ft_home):
    canary, other = "CANARY-7F3A-1B2C", "CANARY-0000-9999"
    generations = [
        '{"intent": "billing_dispute", "priority": "high"}',
        f"the token is {canary}",
        "call me at 555-0100",
    ]
    report = leakage_probe(generations, [canary, other], pii_finder=_regex_finder, ids=["a", "b", "c"])
    assert report["canary_leaks"] == 1
    assert report["generations_with_canary"] == ["b"]
    assert report["pii_by_type"] == {"PHONE_NUMBER": 1}
    assert report["generations_with_pii"] == ["c"]
    serialized = json.dumps(report)
    assert "1B2C" not in serialized and "555-0100" not in serialized, "leakage report repeats raw text"
    # Named by a keyed digest: a plain sha256 of a canary's format is reversed by enumeration.
    import hashlib

    assert report["leaked_canary_digests"] != [hashlib.sha256(canary.encode()).hexdigest()[:12]]

    clean = leakage_probe(generations[:1], [canary])
    assert clean["canary_leaks"] == 0 and clean["pii_checked"] is False


@pytest.mark.skipif(importlib.util.find_spec("ft_pipeline.core.data.redaction") is None, reason="redaction not built yet")
def test_leakage_probe_with_real_redactor():
    from ft_pipeline.core.data.redaction import RedactionConfig, Redactor

    generations = ['{"intent": "billing_dispute", "priority": "high"}', "Write to jane.doe@example.com today"]
    report = leakage_probe(generations, [], pii_finder=Redactor(RedactionConfig()).find_pii)
    assert report["generations_with_pii"] == ["1"]
    assert report["pii_by_type"].get("EMAIL_ADDRESS") == 1
    assert "example.com" not in json.dumps(report), "leakage report repeats raw text"


def test_canary_prompts_ask_for_prefix_only():
    prompts = evaluation.canary_prompts(["CANARY-7F3A-1B2C"])
    assert prompts and all(p[-1]["role"] == "user" for p in prompts)
    assert all("CANARY-7F3A" in p[-1]["content"] and "1B2C" not in p[-1]["content"] for p in prompts)


def _three_variants(tuned_right: int, base_right: int, baseline_right: int, n: int = 10, leakage=None):
    records = [_record(i) for i in range(n)]
    wrong = '{"intent": "address_change", "priority": "low"}'
    attributes = {r["id"]: {"region": "north" if i < n // 2 else "south"} for i, r in enumerate(records)}

    def preds(k):
        return [REF if i < k else wrong for i in range(n)]

    return _judged(DEMO, records, {"base": preds(base_right), "prompt_baseline": preds(baseline_right),
                                   "tuned": preds(tuned_right)}, attributes, min_group_size=5, leakage=leakage)


def test_the_report_renders_the_verdicts_of_the_one_gate_implementation():
    leakage = leakage_probe(["x"], ["CANARY-7F3A-1B2C"], pii_finder=_regex_finder)
    judged, config = _three_variants(tuned_right=3, base_right=6, baseline_right=4, leakage=leakage)
    text = report.render(judged, config)
    for heading in ("| variant | n | exact_match", "## Is the tuned model better?", "## Tuned exact_match by group",
                    "## Leakage probe", "## General capability probe", "## Gates", "How to read this"):
        assert heading in text
    assert "| tuned_beats_base | FAIL |" in text and "| no_canary_leakage | PASS |" in text
    assert "| no_capability_regression | FAIL | not_run |" in text  # a probe not run fails closed
    assert "no credible difference between tuned and base" in text
    assert "| region | south | 5 |" in text
    assert set(judged.comparisons) >= {"tuned_vs_base", "tuned_vs_prompt_baseline"}
    assert set(judged.comparisons["tuned_vs_base"]) >= {"difference", "low", "high", "p_value", "n"}


def test_a_large_win_clears_the_gates_and_the_same_win_on_few_items_does_not():
    big, _ = _three_variants(tuned_right=380, base_right=100, baseline_right=200, n=400)
    assert big.verdicts["tuned_beats_base"].passed and big.verdicts["tuned_beats_prompt_baseline"].passed
    small, _ = _three_variants(tuned_right=6, base_right=4, baseline_right=5, n=10)
    assert not small.verdicts["tuned_beats_base"].passed
    assert small.verdicts["tuned_beats_base"].outcome in ("not_significant", "below_margin")


def test_plots_are_small_pngs_embedded_in_markdown():
    charts = [
        plots.bar_chart({"base": 0.2, "prompt_baseline": 0.4, "tuned": 0.9}, "exact match"),
        plots.grouped_bars({"region=north": {"base": 0.3, "tuned": 0.9}, "region=south": {"base": 0.2, "tuned": 0.8}}, "by group"),
        plots.line_chart({"train loss": [(1, 2.5), (2, 1.9), (3, 1.2)]}, "loss", "step", "loss"),
        plots.grouped_bars({}, "empty"),
    ]
    for png in charts:
        assert png.startswith(b"\x89PNG") and len(png) < 60_000
    markdown = plots.png_to_markdown(charts[0], "exact match")
    assert markdown.startswith("![exact match](data:image/png;base64,")
    assert base64.b64decode(markdown.split(",", 1)[1].rstrip(")")) == charts[0]
