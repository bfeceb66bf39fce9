"""Rating predictors behind the report's RMSE / MAE: hand-computed fits and the report section."""

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.ratings import BaselineRating, GlobalMeanRating, rating_report
from recsys.features.builder import NotFittedError


def _events(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


def test_baseline_matches_hand_computed_alternating_updates():
    ev = _events([("a", "x", 5.0), ("a", "y", 3.0), ("b", "x", 4.0)])
    model = BaselineRating(reg_user=1.0, reg_item=1.0, epochs=1).fit(ev)
    mu = 4.0
    bx, by = (1.0 + 0.0) / (1 + 2), (-1.0) / (1 + 1)  # items first, with zero user biases
    ba = ((5 - mu - bx) + (3 - mu - by)) / (1 + 2)
    bb = (4 - mu - bx) / (1 + 1)
    assert model.mean_ == mu
    np.testing.assert_allclose(model.predict(["a", "b", "a"], ["x", "x", "y"]),
                               [mu + ba + bx, mu + bb + bx, mu + ba + by])
    # unknown member / title: zero bias, never an error
    np.testing.assert_allclose(model.predict(["zed", "a"], ["x", "nope"]), [mu + bx, mu + ba])


def test_no_regularisation_recovers_additive_ratings_exactly():
    users, items = [f"u{i}" for i in range(6)], [f"i{j}" for j in range(5)]
    bu, bi = np.linspace(-1, 1, 6), np.linspace(-0.5, 0.5, 5)
    ev = _events([(u, i, 3.0 + bu[a] + bi[b]) for a, u in enumerate(users) for b, i in enumerate(items)])
    model = BaselineRating(reg_user=0.0, reg_item=0.0, epochs=50).fit(ev)
    np.testing.assert_allclose(model.predict(ev["user_id"], ev["item_id"]), ev["rating"], atol=1e-9)


def test_unfitted_and_bad_input_errors():
    with pytest.raises(NotFittedError):
        BaselineRating().predict(["a"], ["x"])
    with pytest.raises(NotFittedError):
        GlobalMeanRating().predict(["a"], ["x"])
    with pytest.raises(ValueError, match="rating"):
        BaselineRating().fit(pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "watch_fraction": [0.9]}))
    with pytest.raises(ValueError, match="epochs"):
        BaselineRating(epochs=0).fit(_events([("a", "x", 4.0)]))


def test_report_section_on_a_movielens_layout(tmp_path):
    from recsys.data.loaders import load_dataset
    from recsys.evaluation.protocol import stratified_folds
    from test_movielens_pipeline import write_ml100k

    write_ml100k(tmp_path, seed=3)
    data = load_dataset(f"movielens:{tmp_path}")
    folds = stratified_folds(data, test_ratio=0.25, seed=0)
    out = rating_report(folds, n_boot=200, seed=0)
    assert set(out) == {"global_mean", "baseline"}
    test = folds[0].test_events
    y = test["rating"].to_numpy(dtype=float)
    mean = folds[0].train.events["rating"].mean()
    assert out["global_mean"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((y - mean) ** 2))))
    assert out["global_mean"]["ratings"] == len(y)
    for name in out:
        low, high = out[name]["rmse_ci"]
        assert low <= out[name]["rmse"] <= high
        assert out[name]["mae"] <= out[name]["rmse"]
    # biases learned from the data beat the constant on data with real user/title effects
    assert out["baseline"]["rmse"] < out["global_mean"]["rmse"]


def test_no_section_for_implicit_feedback():
    from recsys.evaluation.protocol import EvalFold
    from recsys.data import Dataset

    users = pd.DataFrame({"user_id": ["a"]})
    items = pd.DataFrame({"item_id": ["x"], "title": ["X"]})
    ev = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "timestamp": [pd.Timestamp("2025-01-01")],
                       "watch_fraction": [0.9]})
    data = Dataset.from_frames(users, items, ev)
    fold = EvalFold(0, data, pd.Timestamp("2025-02-01"), ev[["user_id", "item_id"]], ev)
    assert rating_report([fold]) is None
