"""ROC and calibration points agree with scikit-learn; candidate recall counts held-out positives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from recsys.evaluation.curves import calibration_points, candidate_recall, roc_points


def test_roc_points_thin_the_curve_and_keep_the_auc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = np.clip(0.3 * y + rng.normal(0.4, 0.2, 5000), 0, 1)
    roc = roc_points(y, p, max_points=51)
    assert len(roc["fpr"]) == 51 and roc["fpr"][0] == 0 and roc["fpr"][-1] == 1 and roc["tpr"][-1] == 1
    assert np.all(np.diff(roc["tpr"]) >= 0)
    assert roc["auc"] == pytest.approx(roc_auc_score(y, p))
    assert roc_points([1, 1], [0.2, 0.3])["auc"] is None
    with pytest.raises(ValueError):
        roc_points([0, 2], [0.1, 0.2])


def test_calibration_of_a_calibrated_score_is_near_the_diagonal():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, 20000) < p).astype(int)
    cal = calibration_points(y, p, n_bins=10)
    assert sum(cal["count"]) == 20000 and len(cal["count"]) == len(cal["observed"]) == 10
    assert cal["ece"] < 0.03
    assert np.allclose(cal["predicted"], cal["observed"], atol=0.05)
    skewed = calibration_points(y, p ** 3, n_bins=10)
    assert skewed["ece"] > 0.1 and skewed["brier"] > cal["brier"]


def test_candidate_recall_counts_hits_per_list_and_member():
    truth = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["1", "2", "3"]})
    lists = {"x": pd.DataFrame({"user_id": ["a", "b"], "item_id": ["1", "9"]}),
             "y": pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["1", "2", "3"]})}
    rec = candidate_recall(lists, truth)
    assert rec["x"] == {"recall": pytest.approx(1 / 3), "member_recall": pytest.approx(0.25), "hits": 1}
    assert rec["y"]["recall"] == 1.0 and rec["y"]["member_recall"] == 1.0
