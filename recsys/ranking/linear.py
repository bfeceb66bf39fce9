"""Logistic regression ranker: the explainable baseline of the design note.

Dense features are imputed, log-compressed when heavily skewed and standardised; categoricals
are one-hot encoded (columns with more than `onehot_max_levels` levels, such as member and title
ids or directors, are left out: they overfit a time split, see docs/ranking.md). A feature's
contribution to one prediction is coefficient x encoded value, in log-odds, summed over that
feature's columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from ..features import FeatureTable
from ..training_table import TrainingTable
from .base import RANKERS, ArtifactError, Ranker, json_bytes, npz_bytes, read_json, read_npz
from .encoding import TabularEncoder

__all__ = ["LogisticRanker"]

_IMPORTANCE_ROWS = 20_000


@RANKERS.register
class LogisticRanker(Ranker):
    """L2-regularised logistic regression on standardised dense and one-hot categorical features.

    C: inverse regularisation strength (scikit-learn's meaning).
    max_iter: L-BFGS iterations.
    onehot_max_levels: categoricals with more levels than this are not used.
    exclude: features never used.
    seed: seeds the row sample behind `feature_importance`.
    """

    name = "logistic"
    explanation_method = "coefficient x standardised value (log-odds)"
    required_files = ("encoder.json", "linear.npz")

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 1000,
        onehot_max_levels: int = 50,
        exclude: tuple[str, ...] = ("user_id", "item_id"),
        seed: int = 0,
    ) -> None:
        self.C = C
        self.max_iter = max_iter
        self.onehot_max_levels = onehot_max_levels
        self.exclude = exclude
        self.seed = seed

    def _fit(self, table: TrainingTable, valid: TrainingTable | None) -> None:
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C!r}")
        enc = TabularEncoder(categorical="onehot", onehot_max_levels=self.onehot_max_levels, log_skewed=True,
                             exclude=tuple(self.exclude)).fit(table.features)
        if not enc.columns:
            raise ValueError("no usable features: every feature is excluded or has a single missing value")
        x = enc.matrix(table.features, sparse=True)
        model = LogisticRegression(C=self.C, max_iter=self.max_iter, solver="lbfgs", random_state=self.seed)
        model.fit(x, np.asarray(table.label, dtype=int), sample_weight=np.asarray(table.weight, dtype=float))
        self.encoder_ = enc
        self.coef_ = model.coef_[0].astype(np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.n_iter_ = int(model.n_iter_[0])
        rng = np.random.default_rng(self.seed)
        sample = rng.choice(len(table), size=min(len(table), _IMPORTANCE_ROWS), replace=False)
        self.importance_ = self._mean_abs_contribution(x[np.sort(sample)])
        self._record_features(enc.dense_features, enc.categorical_features, [])
        self.plan_ = enc.linear_plan(self.coef_)

    def _mean_abs_contribution(self, x) -> np.ndarray:
        """Mean |sum of coefficient x value over a feature's columns| over rows, per source feature."""
        contrib = x.multiply(self.coef_).tocsr() if hasattr(x, "multiply") else x * self.coef_
        feats = self.encoder_.column_features()
        names = self.encoder_.features
        out = np.zeros(len(names))
        for k, name in enumerate(names):
            cols = np.flatnonzero(feats == name)
            out[k] = np.abs(np.asarray(contrib[:, cols].sum(axis=1)).ravel()).mean()
        return out

    def decision_function(self, features: FeatureTable) -> np.ndarray:
        """Log-odds of every row."""
        self._check_fitted()
        return self.encoder_.linear(features, self.plan_) + self.intercept_

    def _predict(self, features: FeatureTable) -> np.ndarray:
        return expit(self.decision_function(features))

    def _explain(self, one: FeatureTable) -> tuple[pd.DataFrame, dict[str, Any]]:
        x = self.encoder_.matrix(one)[0]
        contrib = pd.Series(x * self.coef_).groupby(self.encoder_.column_features()).sum()
        per_feature = {f: float(contrib.get(f, 0.0)) for f in self.encoder_.features}
        logit = self.intercept_ + float(np.dot(x, self.coef_))
        return self._explanation_frame(one, per_feature), {
            "prediction": float(expit(logit)), "baseline": self.intercept_, "units": "log-odds"}

    def coefficients(self) -> pd.DataFrame:
        """One row per encoded column: name, source feature, coefficient (per standard deviation for dense)."""
        self._check_fitted()
        cols = self.encoder_.columns
        return pd.DataFrame({"column": [c.name for c in cols], "feature": [c.feature for c in cols],
                             "coefficient": self.coef_})

    def _importance(self) -> dict[str, float]:
        return dict(zip(self.encoder_.features, self.importance_.tolist()))

    def _files(self) -> dict[str, bytes]:
        return {"encoder.json": json_bytes(self.encoder_.to_dict()),
                "linear.npz": npz_bytes(coef=self.coef_, intercept=np.array([self.intercept_]),
                                        importance=self.importance_)}

    def _restore(self, files: dict[str, bytes]) -> None:
        self.encoder_ = TabularEncoder.from_dict(read_json(files["encoder.json"], "encoder.json"))
        arrays = read_npz(files["linear.npz"], ("coef", "intercept", "importance"), "linear.npz")
        self.coef_ = arrays["coef"].astype(np.float64)
        self.intercept_ = float(arrays["intercept"][0])
        self.importance_ = arrays["importance"].astype(np.float64)
        if len(self.coef_) != len(self.encoder_.columns) or len(self.importance_) != len(self.encoder_.features):
            raise ArtifactError("linear.npz does not match encoder.json (coefficient count differs)", file="linear.npz")
        self.plan_ = self.encoder_.linear_plan(self.coef_)
