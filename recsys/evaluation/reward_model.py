"""What a member does with a title shown in a slot, learned from logged impressions: the reward model
of the direct and doubly robust estimators.

Three LightGBM models on the ranker's point-in-time features plus the slot and whether a slot above
was played: P(play), minutes per play and videos per play (the play and the episodes it
autoplayed). They are cross-fitted: members are split in `folds` by a hash of their id, and each
member's predictions come from the models fitted on the other folds, so a doubly robust correction
never divides a model's own training residual.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from ..errors import NotFittedError
from ..features import FeatureTable
from ..ranking.encoding import TabularEncoder
from .estimators import RewardPredictions

__all__ = ["RewardModel", "member_folds"]


def member_folds(user_ids: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each member's fold, from a hash of (seed, member id): stable whatever else is in the log."""
    return np.array([zlib.crc32(f"{seed}:{u}".encode()) % folds for u in user_ids.astype(str)], dtype=np.int64)


class RewardModel:
    """Cross-fitted P(play | title, slot, play above) and minutes and videos per play.

    n_estimators, learning_rate, num_leaves, min_child_samples: LightGBM's most rounds, learning_rate,
        num_leaves and min_data_in_leaf for the play model (the per-play models use 20 rows per leaf).
    early_stopping_rounds: every model stops when the loss of a fifth of its training members, held out
        (by a hash of their id), has not improved for this many rounds; a rare-event model that runs on
        fits its own members' plays and under-predicts new members'.
    folds: cross-fitting folds over members. seed: the fold hash and LightGBM's seeds. n_jobs: threads.
    """

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 0.05, num_leaves: int = 15,
                 min_child_samples: int = 100, early_stopping_rounds: int = 30, folds: int = 2, seed: int = 0,
                 n_jobs: int = 2) -> None:
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.folds = folds
        self.seed = seed
        self.n_jobs = n_jobs

    def _params(self, objective: str, min_data: int) -> dict[str, Any]:
        return {"objective": objective, "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "min_data_in_leaf": min_data, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
                "lambda_l2": 1.0, "seed": self.seed, "num_threads": self.n_jobs, "deterministic": True,
                "force_row_wise": True, "verbosity": -1}

    def _design(self, features: FeatureTable, slot: np.ndarray, above: np.ndarray) -> np.ndarray:
        return np.column_stack([self.encoder_.matrix(features), slot.astype(float), above.astype(float)])

    def _train(self, lgb, objective: str, min_data: int, x: np.ndarray, y: np.ndarray, train: np.ndarray,
               valid: np.ndarray, codes: list[int]):
        """One LightGBM model, stopped early on the held-out members' loss (with too few of them to stop on,
        a tenth of the rounds)."""
        data = lgb.Dataset(x[train], y[train], categorical_feature=codes, free_raw_data=True)
        if valid.sum() < 20:
            return lgb.train(self._params(objective, min_data), data, num_boost_round=max(1, self.n_estimators // 10))
        held = lgb.Dataset(x[valid], y[valid], categorical_feature=codes, reference=data, free_raw_data=True)
        return lgb.train(self._params(objective, min_data), data, num_boost_round=self.n_estimators,
                         valid_sets=[held], callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])

    def fit(self, features: FeatureTable, user_ids: np.ndarray, slot: np.ndarray, above: np.ndarray,
            played: np.ndarray, minutes: np.ndarray, videos: np.ndarray) -> "RewardModel":
        """Fit on logged impressions (one row per shown slot; `features` in the same order)."""
        import lightgbm as lgb

        n = len(features)
        for name, values in (("user_ids", user_ids), ("slot", slot), ("above", above), ("played", played),
                             ("minutes", minutes), ("videos", videos)):
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} rows, the features {n}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2 for cross-fitting, got {self.folds}")
        played = np.asarray(played, dtype=bool)
        if played.sum() < 2 * self.folds or (~played).sum() < 2 * self.folds:
            raise ValueError("the log needs plays and non-plays in every fold to fit the reward model")
        self.encoder_ = TabularEncoder(categorical="codes", impute=False, standardize=False, missing_indicators=False,
                                       max_categories=50, exclude=("user_id", "item_id")).fit(features)
        x = self._design(features, slot, above)
        codes = [k for k, c in enumerate(self.encoder_.columns) if c.role == "code"]
        fold = member_folds(np.asarray(user_ids), self.folds, self.seed)
        self.models_: list[tuple[Any, Any, Any]] = []
        self.rounds_: list[int] = []
        stop = member_folds(np.asarray(user_ids), 5, self.seed + 1) == 0  # early-stopping members
        for f in range(self.folds):
            train, valid = (fold != f) & ~stop, (fold != f) & stop
            play = self._train(lgb, "binary", self.min_child_samples, x, played.astype(float), train, valid, codes)
            hits = played
            per_play = [self._train(lgb, "regression", 20, x, np.asarray(target, dtype=float), train & hits,
                                    valid & hits, codes) for target in (minutes, videos)]
            self.models_.append((play, per_play[0], per_play[1]))
            self.rounds_.append(int(play.best_iteration or play.current_iteration()))
        return self

    def predict(self, features: FeatureTable, user_ids: np.ndarray, slot: np.ndarray, shape: tuple[int, int],
                rows: np.ndarray) -> RewardPredictions:
        """Predictions for the rows of one list per session: `rows` (n,) flat positions in an (S, K)
        `shape` grid (session * K + slot), `features` and `user_ids` in the same order; slots without a
        row get zero."""
        if not hasattr(self, "models_"):
            raise NotFittedError("this RewardModel is not fitted yet; call fit() first")
        fold = member_folds(np.asarray(user_ids), self.folds, self.seed)
        out = {key: np.zeros(shape) for key in ("click", "click_after", "minutes", "videos")}
        for above, key in ((0, "click"), (1, "click_after")):
            x = self._design(features, slot, np.full(len(features), above))
            values = np.zeros(len(features))
            for f, (play, minutes, videos) in enumerate(self.models_):
                mine = fold == f
                if mine.any():
                    values[mine] = play.predict(x[mine])
                    if above == 0:
                        out["minutes"].flat[rows[mine]] = np.maximum(minutes.predict(x[mine]), 0.0)
                        out["videos"].flat[rows[mine]] = np.maximum(videos.predict(x[mine]), 1.0)
            out[key].flat[rows] = values
        return RewardPredictions(**out)
