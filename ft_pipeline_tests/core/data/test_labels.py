import pytest

from ft_pipeline.core.data import labels
from ft_pipeline.core.task import TaskConfig

TASK = TaskConfig(name="claims", type="structured", key_fields=["intent", "priority"])


def rec(i, verified=True, pair=None, intent="billing_dispute"):
    r = {
        "id": f"r{i}",
        "task": "chat",
        "messages": [
            {"role": "user", "content": "my card was charged twice"},
            {"role": "assistant", "content": f'{{"intent": "{intent}", "priority": "high"}}'},
        ],
        "label_verified": verified,
        "annotator": "ann-01" if verified else None,
        "verified_at": "2026-10-01T10:00:00Z" if verified else None,
    }
    if pair:
        r["labels"] = [{"annotator": "a", "label": pair[0]}, {"annotator": "b", "label": pair[1]}]
    return r


def test_coverage_counts_only_verified_with_timestamp():
    records = [rec(i) for i in range(19)] + [rec(19, verified=False)]
    report = labels.verify_labels(records)
    assert report.total == 20 and report.verified == 19
    assert report.coverage == pytest.approx(0.95)
    assert report.unverified_ids == ["r19"]


def test_verified_flag_without_timestamp_does_not_count():
    r = rec(0)
    r["verified_at"] = None
    assert labels.verify_labels([r]).verified == 0


@pytest.mark.parametrize(
    "pairs, expected",
    [
        ([("a", "a"), ("b", "b")], 1.0),
        ([("a", "b"), ("b", "a")], -1.0),
        # p_o = 0.5; both annotators say a/b half the time -> p_e = 0.5 -> kappa 0
        ([("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")], 0.0),
    ],
)
def test_cohens_kappa_known_values(pairs, expected):
    assert labels.cohens_kappa(pairs) == pytest.approx(expected)


def test_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("c", "c"), ("c", "a"), ("b", "b"), ("a", "a")]
    assert labels.cohens_kappa(pairs) == pytest.approx(cohen_kappa_score(*zip(*pairs)))


def test_kappa_none_without_pairs():
    assert labels.verify_labels([rec(0)]).kappa is None


def test_review_sample_is_stratified_and_includes_unverified():
    records = [rec(i, intent="billing_dispute") for i in range(50)]
    records += [rec(100 + i, intent="card_lost") for i in range(50)]
    records += [rec(200, verified=False)]
    rows = labels.review_sample(records, TASK, per_stratum=4)
    strata = {}
    for row in rows:
        strata.setdefault(row["stratum"], []).append(row["id"])
    assert set(strata) == {"billing_dispute|verified", "card_lost|verified", "billing_dispute|unverified"}
    assert len(strata["billing_dispute|verified"]) == 4
    assert strata["billing_dispute|unverified"] == ["r200"]
    assert set(rows[0]) == set(labels.REVIEW_COLUMNS)
    # deterministic for a seed
    assert rows == labels.review_sample(records, TASK, per_stratum=4)
