"""Memorization measurements: canary exposure and loss-based membership inference."""
import math
import random

import pytest

from ft_pipeline.core.evaluation import memorization as mem


def test_a_canary_splits_into_what_a_probe_shows_and_its_secret():
    assert mem.secret_span("CANARY-7F3A-1B2C") == ("CANARY-7F3A-", "1B2C")
    assert mem.secret_span("zq81x") == ("zq", "81x")


@pytest.mark.parametrize(("secret", "alphabet"), [("1B2C", set("0123456789ABCDEF")), ("4711", set("0123456789")),
                                                  ("qrst", set("abcdefghijklmnopqrstuvwxyz"))])
def test_reference_secrets_share_the_format_and_never_the_secret(secret, alphabet):
    refs = mem.reference_secrets(secret, 200, seed=3)
    assert len(set(refs)) == 200 and secret not in refs
    assert all(len(r) == len(secret) and set(r) <= alphabet for r in refs)
    assert refs == mem.reference_secrets(secret, 200, seed=3)  # same seed, same candidates


def test_more_references_than_the_format_holds_is_refused():
    with pytest.raises(ValueError, match="only 10 values"):
        mem.reference_secrets("7", 10)


def test_rank_exposure_reads_in_bits():
    refs = [float(i) for i in range(255)]
    assert mem.rank_exposure(1000.0, refs) == pytest.approx(8.0)  # first of 256: 8 bits
    assert mem.rank_exposure(-1.0, refs) == pytest.approx(0.0)  # last: nothing learned
    assert mem.rank_exposure(254.0, refs) == pytest.approx(7.0)  # a tie counts against the canary


def test_fitted_exposure_extrapolates_past_the_references():
    rng = random.Random(0)
    refs = [rng.gauss(0, 1) for _ in range(1000)]
    assert mem.fitted_exposure(0.0, refs) == pytest.approx(1.0, abs=0.3)  # a median candidate: 1 bit
    assert mem.fitted_exposure(7.0, refs) > math.log2(1001) + 5  # beyond what 1,000 samples can rank


def test_membership_inference_finds_nothing_where_there_is_nothing():
    rng = random.Random(1)
    result = mem.membership_inference([rng.gauss(2, 1) for _ in range(500)], [rng.gauss(2, 1) for _ in range(500)])
    assert abs(result["auc"] - 0.5) < 0.06 and result["epsilon_lower_bound"] == 0.0


def test_membership_inference_sees_memorized_training_examples():
    rng = random.Random(2)
    result = mem.membership_inference([rng.gauss(0.2, 0.1) for _ in range(500)], [rng.gauss(2, 0.5) for _ in range(500)])
    assert result["auc"] > 0.99 and result["tpr_at_fpr"]["0.01"] > 0.9 and result["epsilon_lower_bound"] > 3


def test_an_epsilon_dp_release_cannot_be_shown_above_its_epsilon():
    """Randomized response is exactly 1-DP per example: the attack's lower bound stays at or below 1."""
    rng, p = random.Random(4), math.e / (1 + math.e)
    members = [0.0 if rng.random() < p else 1.0 for _ in range(4000)]
    nonmembers = [1.0 if rng.random() < p else 0.0 for _ in range(4000)]
    result = mem.membership_inference(members, nonmembers)
    assert 0.5 < result["epsilon_lower_bound"] <= 1.0


def test_exposure_and_losses_on_a_real_model(tiny_model_dir, tmp_path):
    from ft_pipeline_tests.core.training.helpers import EXAMPLES, chat_row

    [result] = mem.canary_exposures(tiny_model_dir, ["CANARY-7F3A-1B2C"], references=63)
    assert set(result) == {"canary_digest", "references", "exposure", "fitted_exposure"}
    assert "1B2C" not in str(result) and result["references"] == 63
    assert 0.0 <= result["exposure"] <= 6.0 and math.isfinite(result["fitted_exposure"])
    losses = mem.answer_losses(tiny_model_dir, [chat_row(i, t, a) for i, (t, a) in enumerate(EXAMPLES)])
    assert len(losses) == 4 and all(math.isfinite(x) and x > 0 for x in losses)
