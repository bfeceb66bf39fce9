"""Rating prediction for explicit-feedback data: the design note's "metric for ratings" (RMSE, MAE).

The ranking models estimate P(watch), not a star rating, so RMSE and MAE are measured on the
classic rating predictors, which puts the numbers beside published MovieLens tables:

- `GlobalMeanRating`: every rating predicted as the training mean (the floor).
- `BaselineRating`: mean + user bias + item bias, regularised, fitted by alternating least
  squares (Koren 2010, "Factor in the neighbors", eq. 2; Surprise's `BaselineOnly` with its
  defaults: 10 epochs, reg_i = 10, reg_u = 15). Unknown users or titles get a zero bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..features.builder import NotFittedError
from .metrics import mae, rating_errors_by_user, rmse

__all__ = ["GlobalMeanRating", "BaselineRating", "rating_report"]


def _ratings(events: pd.DataFrame, what: str) -> pd.DataFrame:
    if "rating" not in events.columns:
        raise ValueError(f"{what}: no 'rating' column (rating prediction needs explicit feedback)")
    rated = events.loc[events["rating"].notna(), ["user_id", "item_id", "rating"]]
    if len(rated) == 0:
        raise ValueError(f"{what}: no rated events")
    return rated


@dataclass
class GlobalMeanRating:
    """Predicts the mean training rating for everything."""

    def fit(self, events: pd.DataFrame) -> "GlobalMeanRating":
        self.mean_ = float(_ratings(events, "training events")["rating"].mean())
        return self

    def predict(self, user_ids: Any, item_ids: Any) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise NotFittedError("this GlobalMeanRating is not fitted yet: call fit(events) first")
        return np.full(len(np.asarray(user_ids)), self.mean_)


@dataclass
class BaselineRating:
    """mean + b_user + b_item with L2 penalties, by alternating closed-form updates."""

    reg_user: float = 15.0
    reg_item: float = 10.0
    epochs: int = 10

    def fit(self, events: pd.DataFrame) -> "BaselineRating":
        if self.reg_user < 0 or self.reg_item < 0 or self.epochs < 1:
            raise ValueError("reg_user and reg_item must be >= 0 and epochs >= 1")
        rated = _ratings(events, "training events")
        self.users_ = pd.Index(pd.unique(rated["user_id"]))
        self.items_ = pd.Index(pd.unique(rated["item_id"]))
        u = self.users_.get_indexer(rated["user_id"])
        i = self.items_.get_indexer(rated["item_id"])
        r = rated["rating"].to_numpy(dtype=float)
        self.mean_ = float(r.mean())
        bu, bi = np.zeros(len(self.users_)), np.zeros(len(self.items_))
        n_u = np.bincount(u, minlength=len(bu))
        n_i = np.bincount(i, minlength=len(bi))
        for _ in range(self.epochs):
            bi = np.bincount(i, weights=r - self.mean_ - bu[u], minlength=len(bi)) / (self.reg_item + n_i)
            bu = np.bincount(u, weights=r - self.mean_ - bi[i], minlength=len(bu)) / (self.reg_user + n_u)
        self.user_bias_, self.item_bias_ = bu, bi
        return self

    def predict(self, user_ids: Any, item_ids: Any) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise NotFittedError("this BaselineRating is not fitted yet: call fit(events) first")
        u = self.users_.get_indexer(pd.Index(np.asarray(user_ids, dtype=object)))
        i = self.items_.get_indexer(pd.Index(np.asarray(item_ids, dtype=object)))
        return (self.mean_ + np.where(u >= 0, self.user_bias_[np.maximum(u, 0)], 0.0)
                + np.where(i >= 0, self.item_bias_[np.maximum(i, 0)], 0.0))


RATING_MODELS = {"global_mean": GlobalMeanRating, "baseline": BaselineRating}


def rating_report(folds, n_boot: int = 1000, seed: int = 0) -> dict[str, Any] | None:
    """RMSE and MAE of each rating model over every fold's rated test events, or None without ratings.

    Pooled over all test ratings (the published convention), with 95% percentile-bootstrap
    intervals that resample members (each with all of their ratings); per-fold values too.
    """
    usable = [f for f in folds if "rating" in f.test_events.columns and f.test_events["rating"].notna().any()
              and "rating" in f.train.events.columns and f.train.events["rating"].notna().any()]
    if not usable:
        return None
    out: dict[str, Any] = {}
    for name, model_cls in RATING_MODELS.items():
        errors, per_fold = [], []
        for fold in usable:
            model = model_cls().fit(fold.train.events)
            test = _ratings(fold.test_events, "test events")
            pred = model.predict(test["user_id"].to_numpy(), test["item_id"].to_numpy())
            y = test["rating"].to_numpy(dtype=float)
            per_fold.append({"fold": fold.index, "rmse": rmse(y, pred), "mae": mae(y, pred), "ratings": len(y)})
            errors.append(pd.DataFrame({"user_id": test["user_id"].to_numpy(), "rating": y, "prediction": pred,
                                        "fold": fold.index}))
        pooled = pd.concat(errors, ignore_index=True)
        y, p = pooled["rating"].to_numpy(), pooled["prediction"].to_numpy()
        by_user = rating_errors_by_user(pooled)
        low_high = _bootstrap_over_members(by_user, n_boot, seed)
        out[name] = {"rmse": rmse(y, p), "mae": mae(y, p), "ratings": int(len(y)),
                     "rmse_ci": low_high["rmse"], "mae_ci": low_high["mae"], "per_fold": per_fold}
    return out


def _bootstrap_over_members(by_user: pd.DataFrame, n_boot: int, seed: int) -> dict[str, list[float]]:
    """95% intervals of the pooled RMSE and MAE when the members are resampled with replacement."""
    n = by_user["n"].to_numpy(dtype=float)
    sq = by_user["mse"].to_numpy() * n
    ab = by_user["mae"].to_numpy() * n
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(n), size=(n_boot, len(n)))
    counts = n[pick].sum(axis=1)
    boot_rmse = np.sqrt(sq[pick].sum(axis=1) / counts)
    boot_mae = ab[pick].sum(axis=1) / counts
    return {"rmse": [float(v) for v in np.percentile(boot_rmse, [2.5, 97.5])],
            "mae": [float(v) for v in np.percentile(boot_mae, [2.5, 97.5])]}
