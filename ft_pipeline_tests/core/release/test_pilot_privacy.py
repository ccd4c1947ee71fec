"""The fit assessment's pilots spend privacy too: with `fit.pilot: true` and a DP task, two pilots
train with the same privacy block on a quarter and half of the same records, so the data's total
epsilon is the sum over the three runs (basic composition). Real DP-SGD on the tiny Llama: the
pilots record what they spent, and the release reports the run's epsilon and the total."""
import json
import math

import pytest

from ft_pipeline.core.fit import pilot
from ft_pipeline.core.release import model_card, release
from ft_pipeline.core.tracking import payloads
from ft_pipeline.core.training.privacy import spent, total_line, total_privacy
from ft_pipeline.core.training.train import train
from ft_pipeline_tests.core.training.helpers import tiny_config, write_export

DP = {"dp": True, "target_epsilon": 3}


@pytest.fixture(scope="module")
def dp_pilot_and_run(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("pilot-dp")
    export = write_export(root / "export")
    config = tiny_config(tiny_model_dir, max_steps=4, privacy=DP)
    # The pilot's score is the fit assessment's business (generation on held-out items); here a
    # fixed one, since only the privacy the pilots spent is under test.
    curve = pilot.run_pilot(config, export, score=lambda adapter: {"metric": 0.5, "low": 0.4, "high": 0.6, "n": 4},
                            workdir=root)
    fit = {"pilot": pilot.extrapolate(curve, 0.9, "accuracy", config.max_steps)}
    metrics = train(config, export, root / "adapter")
    return {"fit": fit, "metrics": metrics, "root": root}


def test_each_dp_pilot_records_the_epsilon_it_spent(dp_pilot_and_run):
    curve = dp_pilot_and_run["fit"]["pilot"]["curve"]
    assert [p["privacy"]["run"] for p in curve] == ["pilot 25%", "pilot 50%"]
    for p in curve:
        record = p["privacy"]
        assert record["dp"] and 0 < record["epsilon"] <= 3 and record["train_examples"] == p["examples"]
        assert record["delta"] == pytest.approx(1 / p["examples"])  # delta defaults to 1 / the pilot's examples
    assert "DP pilots spent ε = " in release_fit_markdown(dp_pilot_and_run["fit"])


def release_fit_markdown(fit: dict) -> str:
    from ft_pipeline.core.fit.fit import render_markdown

    return render_markdown({"metric": "accuracy", "arms": {}, "target": 0.9, "requests_per_month": 1000,
                            "recommendation": "fine_tune", "reasons": [], "pilot": fit["pilot"],
                            "fine_tune": {"prompt_tokens": 10, "usd_per_month": 1.0}})


def test_the_total_over_the_data_is_the_sum_over_the_run_and_its_pilots(dp_pilot_and_run):
    run = dp_pilot_and_run["metrics"]["privacy"]
    pilots = [p["privacy"] for p in dp_pilot_and_run["fit"]["pilot"]["curve"]]
    total = total_privacy(run, pilot.pilot_privacy(dp_pilot_and_run["fit"]))
    assert total["bounded"] and total["runs"] == 3
    assert total["epsilon"] == pytest.approx(run["epsilon"] + sum(p["epsilon"] for p in pilots), rel=1e-12)
    assert total["delta"] == pytest.approx(run["delta"] + sum(p["delta"] for p in pilots), rel=1e-12)
    assert total["epsilon"] > run["epsilon"] and math.isfinite(total["epsilon"])
    # MLflow's training run carries both, beside the loss curve
    logged = payloads.privacy_metrics(run, dp_pilot_and_run["fit"])
    assert logged == {"privacy.epsilon": run["epsilon"], "privacy.delta": run["delta"],
                      "privacy.total_epsilon": total["epsilon"], "privacy.total_delta": total["delta"]}


def test_the_lineage_card_and_evidence_report_the_runs_epsilon_and_the_total(dp_pilot_and_run):
    from ft_pipeline.core.release.evidence_sections import annex_iv
    from ft_pipeline_tests.core.release.test_release import TASK

    run = dp_pilot_and_run["metrics"]["privacy"]
    total = total_privacy(run, pilot.pilot_privacy(dp_pilot_and_run["fit"]))
    adapter_weights = {"config": {"method": "sft"}, "metrics": dp_pilot_and_run["metrics"], "privacy_total": total}
    staged = release.Staged(dp_pilot_and_run["root"], 1, 1)
    lineage = {"name": TASK.name, "version": "v1", "promoted_at": "2026-12-01T10:30:00+00:00", "run_id": "r",
               **release.record(TASK, {"sha256": "f" * 64, "path": "t.yaml"}, adapter_weights, {"verdicts": {}, "variants": {}}, {},
                                staged)}
    lineage = json.loads(json.dumps(lineage))  # as lineage.json holds it
    assert lineage["training"]["privacy"]["epsilon"] == run["epsilon"]
    assert lineage["training"]["privacy_total"]["epsilon"] == total["epsilon"]
    card = model_card.render(lineage)
    assert f"spent ε = {run['epsilon']:.2f}" in card
    assert f"including the fit assessment's 2 pilot run(s): ε = {total['epsilon']:.2f}" in card
    section = annex_iv(lineage, {"sources": []}, {}, [])[1]["summary"]
    assert f"epsilon {run['epsilon']:.3g}" in section and f"ε = {total['epsilon']:.2f}" in section


def test_a_pilot_without_dp_or_without_a_record_leaves_the_total_unbounded():
    run = {"dp": True, "epsilon": 2.0, "delta": 1e-3, "steps": 4, "train_examples": 32}
    plain = total_privacy(run, [spent(None, "pilot 25%"), spent(run, "pilot 50%")])
    assert not plain["bounded"] and plain["epsilon"] is None
    old = pilot.pilot_privacy({"pilot": {"curve": [{"fraction": 0.25}]}})  # before pilots recorded it
    assert total_privacy(run, old)["bounded"] is False
    assert total_privacy(None, [spent(None, "pilot 25%")]) is None  # no DP anywhere: nothing to report
    assert total_line(plain) == "total over the data: unbounded (pilot 25%: no DP guarantee on record, on the same records)"
