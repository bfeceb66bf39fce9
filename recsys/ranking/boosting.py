"""Gradient-boosted trees ranker (LightGBM, binary or LambdaRank objective), explained by exact per-row SHAP values.

Chosen over scikit-learn's HistGradientBoosting and over a LambdaRank objective by measurement
(bench/rankers.py, docs/ranking.md): equal or better time-split AUC at a fraction of the fit
time, native categorical splits on integer codes, TreeSHAP contributions built in
(`pred_contrib=True`), and a plain-text model format that loads without unpickling. LambdaRank
(queries: a member's rows at one moment) is an option for candidate lists such as the per-user
random protocol's; its scores go through a sigmoid, an order rather than a calibrated P(watch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ..features import FeatureTable
from ..training_table import TrainingTable
from .base import (
    RANKERS, ArtifactError, Ranker, json_bytes, member_holdout, npz_bytes, read_json, read_npz, time_holdout,
)
from .encoding import TabularEncoder

__all__ = ["BoostingRanker", "OBJECTIVES"]

#: LightGBM objectives the ranker trains with, and the metric early stopping watches for each.
OBJECTIVES = {"binary": "binary_logloss", "lambdarank": "ndcg"}


def _lightgbm():
    try:
        import lightgbm
    except ImportError as exc:  # pragma: no cover - exercised only where lightgbm is absent
        raise ImportError("the gradient-boosting ranker needs LightGBM: pip install lightgbm") from exc
    return lightgbm


@RANKERS.register
class BoostingRanker(Ranker):
    """LightGBM gradient-boosted trees with early stopping on the latest rows.

    n_estimators: most boosting rounds; early stopping picks fewer.
    learning_rate, num_leaves, min_child_samples, subsample, colsample, reg_lambda: LightGBM's
        learning_rate, num_leaves, min_data_in_leaf, bagging_fraction, feature_fraction, lambda_l2.
    objective: "binary" (log-loss, P(watch)) or "lambdarank" (NDCG of each query, a member's rows at one
        moment; predictions are the sigmoid of the ranking score: an order, not a calibrated probability).
    early_stopping_rounds: stop when the validation log-loss (NDCG@10 for lambdarank) has not improved for
        this many rounds.
    valid_fraction: without `valid`, the latest fraction of rows (by time) is the stopping fold; when every
        row shares one moment (holdout rows), every row of a seeded random fraction of the members.
    refit: after stopping on a carved-out fold, retrain on every row for the chosen number of rounds.
    max_categories: categoricals with more training levels are not used (directors, composers: they
        identify titles and overfit a time split, see docs/ranking.md).
    exclude: features never used (ids by default: they overfit, see docs/ranking.md).
    n_jobs: threads. seed: every LightGBM seed.
    """

    name = "boosting"
    explanation_method = "TreeSHAP contributions (LightGBM pred_contrib, log-odds)"
    required_files = ("encoder.json", "lightgbm.txt", "importance.npz")

    def __init__(
        self,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample: float = 0.8,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int = 50,
        valid_fraction: float = 0.1,
        refit: bool = True,
        max_categories: int | None = 50,
        exclude: tuple[str, ...] = ("user_id", "item_id"),
        n_jobs: int = 2,
        seed: int = 0,
        objective: str = "binary",
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample = colsample
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.valid_fraction = valid_fraction
        self.refit = refit
        self.max_categories = max_categories
        self.exclude = exclude
        self.n_jobs = n_jobs
        self.seed = seed
        self.objective = objective

    def _params(self) -> dict[str, Any]:
        return {
            "objective": self.objective, "metric": OBJECTIVES[self.objective], "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample, "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample, "lambda_l2": self.reg_lambda,
            "cat_smooth": 10.0, "cat_l2": 10.0, "min_data_per_group": 50,
            "seed": self.seed, "num_threads": self.n_jobs, "deterministic": True, "force_row_wise": True,
            "verbosity": -1, **({"eval_at": [10]} if self.objective == "lambdarank" else {}),
        }

    # ---------------------------------------------------------------- fit
    def _fit(self, table: TrainingTable, valid: TrainingTable | None) -> None:
        lgb = _lightgbm()
        if self.n_estimators < 1 or not 0 <= self.valid_fraction < 1:
            raise ValueError("n_estimators must be >= 1 and valid_fraction in [0, 1)")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}")
        ranking = self.objective == "lambdarank"
        if ranking:  # LightGBM wants each query's rows together
            order = _query_order(table.features.rows)
            table = table.take(order)
            if valid is not None and len(valid):
                valid = valid.take(_query_order(valid.features.rows))
        enc = TabularEncoder(categorical="codes", impute=False, standardize=False, missing_indicators=False,
                             max_categories=self.max_categories,
                             exclude=tuple(self.exclude)).fit(table.features)
        if not enc.columns:
            raise ValueError("no usable features: every feature is excluded or has a single missing value")
        x = enc.matrix(table.features)
        y = np.asarray(table.label, dtype=np.float64)
        w = np.asarray(table.weight, dtype=np.float64)
        cats = [k for k, c in enumerate(enc.columns) if c.role == "code"]
        names = [f"f{k}" for k in range(len(enc.columns))]
        params = self._params()

        rows = table.features.rows
        query = _query_ids(rows) if ranking else None

        def dataset(rows, reference=None):
            return lgb.Dataset(x[rows], y[rows], weight=w[rows], categorical_feature=cats, feature_name=names,
                               reference=reference, free_raw_data=True,
                               group=_group_sizes(query[rows]) if ranking else None)

        everything = np.arange(len(y))
        train_rows, hold = everything, None
        if valid is None and self.early_stopping_rounds > 0 and self.valid_fraction > 0:
            try:
                train_rows, hold = time_holdout(rows["timestamp"].to_numpy(), self.valid_fraction)
            except ValueError:  # every row at one moment (holdout rows): stop on a random part of the members
                try:
                    train_rows, hold = member_holdout(rows["user_id"].to_numpy(), self.valid_fraction, self.seed)
                except ValueError:  # one member: no early stopping
                    train_rows, hold = everything, None
        d_train = dataset(train_rows)
        stop_on = None
        if valid is not None and len(valid) > 0:
            stop_on = lgb.Dataset(enc.matrix(valid.features), np.asarray(valid.label, dtype=np.float64),
                                  weight=np.asarray(valid.weight, dtype=np.float64), categorical_feature=cats,
                                  feature_name=names, reference=d_train,
                                  group=_group_sizes(_query_ids(valid.features.rows)) if ranking else None)
        elif hold is not None:
            stop_on = dataset(hold, reference=d_train)
        rounds = self.n_estimators
        if stop_on is not None and self.early_stopping_rounds > 0:
            booster = lgb.train(params, d_train, rounds, valid_sets=[stop_on],
                                callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
            rounds = max(1, int(booster.best_iteration or booster.current_iteration()))
            if hold is not None and self.refit:
                booster = lgb.train(params, dataset(everything), rounds)
        else:
            booster = lgb.train(params, d_train, rounds)
        self.best_iteration_ = rounds
        # keep exactly what `save` writes, so predictions before and after a round trip are identical
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
        self.encoder_ = enc
        self.column_importance_ = self.booster_.feature_importance(importance_type="gain").astype(np.float64)
        self._record_features(enc.dense_features, enc.categorical_features, [])

    # ---------------------------------------------------------------- predict / explain
    def _predict(self, features: FeatureTable) -> np.ndarray:
        from ..threads import limited

        raw = self.booster_.predict(self.encoder_.matrix(features), num_threads=1 if limited() else self.n_jobs)
        return expit(raw) if self.objective == "lambdarank" else raw

    def _explain(self, one: FeatureTable) -> tuple[pd.DataFrame, dict[str, Any]]:
        x = self.encoder_.matrix(one)
        contrib = np.asarray(self.booster_.predict(x, pred_contrib=True, num_threads=1))[0]
        per_column, baseline = contrib[:-1], float(contrib[-1])
        sums = pd.Series(per_column).groupby(self.encoder_.column_features()).sum()
        per_feature = {f: float(sums.get(f, 0.0)) for f in self.encoder_.features}
        return self._explanation_frame(one, per_feature), {
            "prediction": float(self.booster_.predict(x)[0]), "baseline": baseline,
            "units": "ranking score" if self.objective == "lambdarank" else "log-odds"}

    def _importance(self) -> dict[str, float]:
        sums = pd.Series(self.column_importance_).groupby(self.encoder_.column_features()).sum()
        return {f: float(sums.get(f, 0.0)) for f in self.encoder_.features}

    # ---------------------------------------------------------------- persistence
    def _files(self) -> dict[str, bytes]:
        return {"encoder.json": json_bytes(self.encoder_.to_dict()),
                "lightgbm.txt": self.booster_.model_to_string().encode("utf-8"),
                "importance.npz": npz_bytes(gain=self.column_importance_, rounds=np.array([self.best_iteration_]))}

    def _restore(self, files: dict[str, bytes]) -> None:
        lgb = _lightgbm()
        self.encoder_ = TabularEncoder.from_dict(read_json(files["encoder.json"], "encoder.json"))
        try:
            text = _checked_model_text(files["lightgbm.txt"].decode("utf-8"), len(self.encoder_.columns))
            self.booster_ = lgb.Booster(model_str=text)
        except (UnicodeDecodeError, ValueError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(f"lightgbm.txt is not a usable LightGBM model ({exc})", file="lightgbm.txt") from exc
        arrays = read_npz(files["importance.npz"], ("gain", "rounds"), "importance.npz")
        self.column_importance_ = arrays["gain"].astype(np.float64)
        self.best_iteration_ = int(arrays["rounds"][0])
        n_cols = len(self.encoder_.columns)
        if self.booster_.num_feature() != n_cols or len(self.column_importance_) != n_cols:
            raise ArtifactError(f"lightgbm.txt expects {self.booster_.num_feature()} inputs but encoder.json "
                                f"produces {n_cols}", file="lightgbm.txt")


def _query_ids(rows: pd.DataFrame) -> np.ndarray:
    """A LambdaRank query per row: its member at its moment."""
    return pd.MultiIndex.from_arrays([rows["user_id"].astype(str), rows["timestamp"]]).factorize()[0]


def _query_order(rows: pd.DataFrame) -> np.ndarray:
    """Row positions with each query's rows together (queries in order of first appearance, rows in place)."""
    return np.argsort(_query_ids(rows), kind="stable")


def _group_sizes(query: np.ndarray) -> np.ndarray:
    """Run lengths of consecutive equal query ids (LightGBM's `group`)."""
    if len(query) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, query[1:] != query[:-1]])
    return np.diff(np.r_[starts, len(query)])


_NODE_ARRAYS = ("split_feature", "threshold", "decision_type", "left_child", "right_child")


def _checked_model_text(text: str, n_features: int) -> str:
    """Validate a LightGBM text model before LightGBM parses it; returns it without `tree_sizes`.

    LightGBM trusts its model files: a damaged tree block can abort the process (parallel
    parsing) or index out of bounds (child ids). Every tree's arrays are checked here, and
    dropping `tree_sizes` makes LightGBM parse trees one by one, raising ordinary errors.
    """
    head, sep, rest = text.partition("\nTree=")
    if not text.startswith("tree\n") or not sep or "end of trees" not in rest:
        raise ValueError("not a LightGBM text model (no header, trees or end marker)")
    header = dict(line.split("=", 1) for line in head.splitlines()[1:] if "=" in line)
    if header.get("num_class") != "1" or header.get("num_tree_per_iteration") != "1":
        raise ValueError("not a binary LightGBM model")
    if header.get("max_feature_idx") != str(n_features - 1):
        raise ValueError(f"the model reads {header.get('max_feature_idx')!r} + 1 features, the encoder makes {n_features}")
    blocks = rest[: rest.index("end of trees")].split("\nTree=")
    for k, block in enumerate(blocks):
        lines = block.strip().splitlines()
        if not lines or lines[0].strip() != str(k):
            raise ValueError(f"tree {k} is missing or out of order")
        kv = dict(line.split("=", 1) for line in lines[1:] if "=" in line)

        def ints(key: str, n: int) -> np.ndarray:
            values = np.array(kv.get(key, "").split(), dtype=np.int64)
            if len(values) != n:
                raise ValueError(f"tree {k}: {key} has {len(values)} values, expected {n}")
            return values

        leaves = int(kv.get("num_leaves", "0"))
        if leaves < 1 or kv.get("is_linear", "0") != "0":
            raise ValueError(f"tree {k}: bad num_leaves or a linear tree")
        if len(np.array(kv.get("leaf_value", "").split(), dtype=np.float64)) != leaves:
            raise ValueError(f"tree {k}: leaf_value does not have {leaves} values")
        if leaves == 1:
            continue
        inner = leaves - 1
        for key in _NODE_ARRAYS:
            if key == "threshold":
                if len(np.array(kv.get(key, "").split(), dtype=np.float64)) != inner:
                    raise ValueError(f"tree {k}: threshold does not have {inner} values")
        feature = ints("split_feature", inner)
        decision = ints("decision_type", inner)
        children = np.concatenate([ints("left_child", inner), ints("right_child", inner)])
        if feature.min() < 0 or feature.max() >= n_features:
            raise ValueError(f"tree {k}: split on a feature the encoder does not make")
        if np.any(children >= inner) or np.any(~children[children < 0] >= leaves):
            raise ValueError(f"tree {k}: a child index is out of range")
        n_cat = int(kv.get("num_cat", "0"))
        categorical = (decision & 1) == 1
        if n_cat > 0:
            bounds = ints("cat_boundaries", n_cat + 1)
            if bounds[0] != 0 or np.any(np.diff(bounds) < 0):
                raise ValueError(f"tree {k}: cat_boundaries are not increasing from 0")
            ints("cat_threshold", int(bounds[-1]))
        if categorical.any():
            slots = np.array(kv["threshold"].split(), dtype=np.float64)[categorical]
            if n_cat == 0 or np.any(slots < 0) or np.any(slots >= n_cat) or np.any(slots != np.floor(slots)):
                raise ValueError(f"tree {k}: a categorical split points outside its category list")
    return "\n".join(line for line in text.split("\n") if not line.startswith("tree_sizes="))
