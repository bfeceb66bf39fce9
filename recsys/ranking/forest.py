"""Random forest ranker: the non-linear baseline of the design note, explainable by path contributions.

Trained with scikit-learn, then exported to flat node arrays (children, split feature,
threshold, P(watch) at every node) that are all prediction, explanation and persistence need:
no pickled estimator. A prediction is the mean leaf value over trees; its explanation follows
each tree's path and credits every change of node value to the feature split on
(treeinterpreter's decomposition: prediction = root mean + sum of contributions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from ..features import FeatureTable
from ..training_table import TrainingTable
from .base import RANKERS, ArtifactError, Ranker, json_bytes, npz_bytes, read_json, read_npz
from .encoding import TabularEncoder

__all__ = ["ForestRanker"]

_CHUNK = 8192  # rows routed through all trees at once


@RANKERS.register
class ForestRanker(Ranker):
    """Random forest on imputed dense features, one-hot (few levels) and integer-coded (many levels) categoricals.

    n_estimators, max_depth, min_samples_leaf, max_features, max_samples: scikit-learn's meaning
        (max_samples is the bootstrap fraction per tree; smaller is faster).
    onehot_max_levels: categoricals with at most this many levels are one-hot, others integer codes.
    max_categories: categoricals with more training levels are not used (directors, composers: they
        identify titles and overfit a time split, see docs/ranking.md).
    exclude: features never used (member and title ids by default: a forest only memorises them).
    n_jobs: training threads. seed: the forest's random_state.
    """

    name = "forest"
    explanation_method = "path contributions through every tree (probability points)"
    required_files = ("encoder.json", "forest.npz")

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int | None = 12,
        min_samples_leaf: int = 20,
        max_features: float | str = "sqrt",
        max_samples: float | None = 0.5,
        onehot_max_levels: int = 16,
        max_categories: int | None = 50,
        exclude: tuple[str, ...] = ("user_id", "item_id"),
        n_jobs: int = 2,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.onehot_max_levels = onehot_max_levels
        self.max_categories = max_categories
        self.exclude = exclude
        self.n_jobs = n_jobs
        self.seed = seed

    # ---------------------------------------------------------------- fit
    def _fit(self, table: TrainingTable, valid: TrainingTable | None) -> None:
        enc = TabularEncoder(categorical="mixed", onehot_max_levels=self.onehot_max_levels, standardize=False,
                             max_categories=self.max_categories,
                             exclude=tuple(self.exclude)).fit(table.features)
        if not enc.columns:
            raise ValueError("no usable features: every feature is excluded or has a single missing value")
        x = enc.matrix(table.features).astype(np.float32)
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, max_samples=self.max_samples, bootstrap=True,
            n_jobs=self.n_jobs, random_state=self.seed)
        forest.fit(x, np.asarray(table.label, dtype=int), sample_weight=np.asarray(table.weight, dtype=float))
        positive = int(np.flatnonzero(forest.classes_ == 1)[0])
        self.encoder_ = enc
        self._set_arrays(_export(forest, positive), forest.feature_importances_.astype(np.float64))
        self._record_features(enc.dense_features, enc.categorical_features, [])

    def _set_arrays(self, nodes: dict[str, np.ndarray], importance: np.ndarray) -> None:
        self.left_, self.right_ = nodes["left"], nodes["right"]
        self.feature_, self.threshold_ = nodes["feature"], nodes["threshold"]
        self.value_, self.roots_ = nodes["value"], nodes["roots"]
        self.depth_ = int(nodes["depth"][0])
        self.column_importance_ = importance
        # routing copies in which a leaf loops to itself (split on column 0 at +inf): no masks per level
        leaf = self.feature_ < 0
        own = np.arange(len(self.feature_), dtype=np.int64)
        self._go_left = np.where(leaf, own, self.left_)
        self._go_right = np.where(leaf, own, self.right_)
        self._split = np.where(leaf, 0, self.feature_)
        self._cut = np.where(leaf, np.inf, self.threshold_)

    # ---------------------------------------------------------------- predict
    def _route(self, x: np.ndarray, record: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Leaf of every (row, tree); with `record`, also the per-column path contributions (rows x columns)."""
        n, t = len(x), len(self.roots_)
        d = x.shape[1]
        node = np.tile(self.roots_, n)
        base = np.repeat(np.arange(n, dtype=np.int64) * d, t)
        flat = x.ravel()
        contrib = np.zeros(n * d) if record else None
        for _ in range(self.depth_):
            col = self._split[node]
            nxt = np.where(flat[base + col] <= self._cut[node], self._go_left[node], self._go_right[node])
            if record:
                np.add.at(contrib, base + col, self.value_[nxt] - self.value_[node])
            node = nxt
        return node.reshape(n, t), None if contrib is None else contrib.reshape(n, d)

    def _inputs(self, features: FeatureTable) -> np.ndarray:
        # scikit-learn compares float32 inputs with float64 thresholds: do exactly the same
        return self.encoder_.matrix(features).astype(np.float32).astype(np.float64)

    def _predict(self, features: FeatureTable) -> np.ndarray:
        x = self._inputs(features)
        out = np.empty(len(x))
        for lo in range(0, len(x), _CHUNK):
            leaves, _ = self._route(x[lo:lo + _CHUNK])
            out[lo:lo + _CHUNK] = self.value_[leaves].mean(axis=1)
        return out

    def _explain(self, one: FeatureTable) -> tuple[pd.DataFrame, dict[str, Any]]:
        x = self._inputs(one)
        leaves, contrib = self._route(x, record=True)
        per_column = contrib[0] / len(self.roots_)
        sums = pd.Series(per_column).groupby(self.encoder_.column_features()).sum()
        per_feature = {f: float(sums.get(f, 0.0)) for f in self.encoder_.features}
        return self._explanation_frame(one, per_feature), {
            "prediction": float(self.value_[leaves[0]].mean()),
            "baseline": float(self.value_[self.roots_].mean()), "units": "probability"}

    def _importance(self) -> dict[str, float]:
        sums = pd.Series(self.column_importance_).groupby(self.encoder_.column_features()).sum()
        return {f: float(sums.get(f, 0.0)) for f in self.encoder_.features}

    # ---------------------------------------------------------------- persistence
    def _files(self) -> dict[str, bytes]:
        return {"encoder.json": json_bytes(self.encoder_.to_dict()),
                "forest.npz": npz_bytes(left=self.left_, right=self.right_, feature=self.feature_,
                                        threshold=self.threshold_, value=self.value_, roots=self.roots_,
                                        depth=np.array([self.depth_]), importance=self.column_importance_)}

    def _restore(self, files: dict[str, bytes]) -> None:
        self.encoder_ = TabularEncoder.from_dict(read_json(files["encoder.json"], "encoder.json"))
        a = read_npz(files["forest.npz"], ("left", "right", "feature", "threshold", "value", "roots", "depth",
                                           "importance"), "forest.npz")
        n_nodes, n_cols = len(a["value"]), len(self.encoder_.columns)
        ok = (all(len(a[k]) == n_nodes for k in ("left", "right", "feature", "threshold"))
              and len(a["importance"]) == n_cols and len(a["roots"]) > 0 and len(a["depth"]) == 1
              and 0 <= int(a["depth"][0]) <= min(n_nodes, 10_000)
              and a["feature"].max(initial=-1) < n_cols
              and np.all((a["roots"] >= 0) & (a["roots"] < n_nodes))
              and np.all(a["left"] < n_nodes) and np.all(a["right"] < n_nodes)
              and np.all((a["feature"] < 0) | ((a["left"] >= 0) & (a["right"] >= 0))))
        if not ok:
            raise ArtifactError("forest.npz node arrays are inconsistent with each other or with encoder.json",
                                file="forest.npz")
        nodes = {k: a[k] for k in ("left", "right", "feature", "threshold", "value", "roots", "depth")}
        self._set_arrays(nodes, a["importance"].astype(np.float64))


def _export(forest: RandomForestClassifier, positive: int) -> dict[str, np.ndarray]:
    """All trees as one set of flat node arrays (child indices made global; -1 marks a leaf)."""
    lefts, rights, feats, thresholds, values, roots = [], [], [], [], [], []
    offset, depth = 0, 0
    for est in forest.estimators_:
        tree = est.tree_
        leaf = tree.children_left < 0
        counts = tree.value[:, 0, :]
        totals = counts.sum(axis=1)
        values.append(np.where(totals > 0, counts[:, positive] / np.where(totals > 0, totals, 1.0), 0.0))
        lefts.append(np.where(leaf, -1, tree.children_left + offset))
        rights.append(np.where(leaf, -1, tree.children_right + offset))
        feats.append(np.where(leaf, -1, tree.feature))
        thresholds.append(np.where(leaf, 0.0, tree.threshold))
        roots.append(offset)
        offset += tree.node_count
        depth = max(depth, int(tree.max_depth))
    return {"left": np.concatenate(lefts).astype(np.int64), "right": np.concatenate(rights).astype(np.int64),
            "feature": np.concatenate(feats).astype(np.int64), "threshold": np.concatenate(thresholds),
            "value": np.concatenate(values).astype(np.float64), "roots": np.asarray(roots, dtype=np.int64),
            "depth": np.array([depth], dtype=np.int64)}
