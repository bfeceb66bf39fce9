"""Shared preprocessing of a FeatureTable's dense and categorical columns for every ranker.

Dense features are median-imputed (with a "was missing" indicator where training had gaps)
and optionally standardised; categoricals become one-hot columns (few levels) or integer
codes with 0 as the "unknown / missing" bucket (many levels). Everything is learned from the
training table only and round-trips through plain JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import NotFittedError
from ..features import FeatureTable

__all__ = ["Column", "TabularEncoder", "as_text", "Source"]

#: What an encoder reads: a FeatureTable (fast: per-key values) or a plain frame of feature columns.
Source = FeatureTable | pd.DataFrame

CategoricalMode = Literal["onehot", "codes", "mixed"]
ROLES = ("dense", "missing", "onehot", "code")


@dataclass(frozen=True)
class Column:
    """One encoded column: its display name, the source feature it comes from, and its role."""

    name: str
    feature: str
    role: str
    level: str | None = None


def _dense(source: Source, names: list[str]) -> np.ndarray:
    """These dense columns as a float64 (rows, len(names)) array."""
    if isinstance(source, pd.DataFrame):
        return source[names].to_numpy(dtype=np.float64, copy=True) if names else np.zeros((len(source), 0))
    out = np.empty((len(source), len(names)), dtype=np.float64)
    for k, name in enumerate(names):
        out[:, k] = source.column(name)
    return out


def _categorical(source: Source, name: str) -> pd.Categorical:
    if isinstance(source, pd.DataFrame):
        values = source[name]
        return values.array if isinstance(values.dtype, pd.CategoricalDtype) else pd.Categorical(
            values.to_numpy(dtype=object))
    return source.column(name)


def as_text(values: pd.Series | np.ndarray) -> np.ndarray:
    """Categorical values as an object array of str, with None for missing."""
    s = pd.Series(values, copy=False).astype(object)
    missing = s.isna().to_numpy()
    out = s.astype(str).to_numpy(dtype=object)
    out[missing] = None
    return out


class TabularEncoder:
    """Turns the `frame` of a FeatureTable into model inputs.

    categorical: "onehot" (categoricals with more than `onehot_max_levels` levels are dropped),
        "codes" (every categorical as an integer code) or "mixed" (one-hot when few levels, codes otherwise).
    max_levels: keep at most this many most frequent levels per categorical (the rest are unknown).
    min_count: levels seen fewer times in training are unknown.
    max_categories: categoricals with more distinct training levels than this are not used.
    impute / standardize / missing_indicators: dense handling (trees need neither of the first two).
    log_skewed: log1p-transform non-negative, heavily right-skewed dense columns (counts, days)
        before imputing and standardising, so a few huge values do not dominate a linear model.
    exclude: feature names never used.
    """

    def __init__(
        self,
        categorical: CategoricalMode = "mixed",
        onehot_max_levels: int = 16,
        max_levels: int | None = None,
        min_count: int = 1,
        max_categories: int | None = None,
        impute: bool = True,
        standardize: bool = True,
        missing_indicators: bool = True,
        log_skewed: bool = False,
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.categorical = categorical
        self.onehot_max_levels = onehot_max_levels
        self.max_levels = max_levels
        self.min_count = min_count
        self.max_categories = max_categories
        self.impute = impute
        self.standardize = standardize
        self.missing_indicators = missing_indicators
        self.log_skewed = log_skewed
        self.exclude = exclude

    # ---------------------------------------------------------------- fit
    def fit(self, features: FeatureTable) -> "TabularEncoder":
        """Learn medians, scales and vocabularies from the training rows."""
        if self.categorical not in ("onehot", "codes", "mixed"):
            raise ValueError(f"categorical must be 'onehot', 'codes' or 'mixed', got {self.categorical!r}")
        if self.onehot_max_levels < 1 or self.min_count < 1 or (self.max_levels is not None and self.max_levels < 1):
            raise ValueError("onehot_max_levels, min_count and max_levels must be >= 1")
        fs = features.feature_set
        skip = set(self.exclude)
        dense = [c for c in fs.dense if c not in skip and c in features]
        cats = [c for c in fs.categorical if c not in skip and c in features]

        x = _dense(features, dense)
        x = np.where(np.isfinite(x), x, np.nan)
        nan = np.isnan(x)
        self.log_ = [c for c, col in zip(dense, x.T) if self.log_skewed and _skewed(col[~np.isnan(col)])]
        for c in self.log_:
            k = dense.index(c)
            x[:, k] = np.log1p(x[:, k])
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(nan.all(axis=0), 0.0, x), axis=0) if x.shape[1] else np.zeros(0)
        med = np.where(np.isfinite(med), med, 0.0)
        self.dense_ = dense
        self.medians_ = med.astype(float)
        self.missing_ = [c for c, m in zip(dense, nan.any(axis=0)) if m] if self.missing_indicators else []
        block = self._dense_raw(features, impute=True)  # standardisation statistics on the imputed values
        if self.standardize and block.shape[1]:
            mean = block.mean(axis=0)
            scale = block.std(axis=0)
            self.means_ = mean.astype(float)
            self.scales_ = np.where(scale > 1e-12, scale, 1.0).astype(float)
        else:
            self.means_ = np.zeros(block.shape[1])
            self.scales_ = np.ones(block.shape[1])

        self.levels_: dict[str, list[str]] = {}
        self.onehot_, self.coded_ = [], []
        for c in cats:
            cat = features.column(c)
            codes = np.asarray(cat.codes)
            counts = np.bincount(codes[codes >= 0], minlength=len(cat.categories))
            merged: dict[str, int] = {}
            for text, k in zip(as_text(pd.Series(np.asarray(cat.categories, dtype=object), dtype=object)), counts):
                if text is not None:
                    merged[text] = merged.get(text, 0) + int(k)
            order = sorted(((k, v) for k, v in merged.items() if v >= self.min_count), key=lambda kv: (-kv[1], kv[0]))
            if self.max_levels is not None:
                order = order[: self.max_levels]
            levels = [k for k, _ in order]
            if not levels or (self.max_categories is not None and len(levels) > self.max_categories):
                continue
            few = len(levels) <= self.onehot_max_levels
            if self.categorical == "codes" or (self.categorical == "mixed" and not few):
                self.coded_.append(c)
            elif few:
                self.onehot_.append(c)
            else:
                continue  # "onehot" mode drops high-cardinality columns
            self.levels_[c] = levels
        self._set_lookups()
        return self

    def _set_lookups(self) -> None:
        self._index = {c: pd.Index(v, dtype=object) for c, v in self.levels_.items()}
        self._codes = {c: {lvl: k + 1 for k, lvl in enumerate(v)} for c, v in self.levels_.items()}
        self._maps: dict[tuple[str, pd.CategoricalDtype], np.ndarray] = {}  # level code per category

    def _level_codes(self, name: str, cat: pd.Categorical) -> np.ndarray:
        """Level codes (1..n, 0 unknown or missing) of a Categorical's values (looked up per distinct
        category set: a dtype hashes and compares by its categories)."""
        key = (name, cat.dtype)
        held = self._maps.get(key)
        # unordered dtypes compare equal whatever the categories' order: the codes need that order too
        if held is None or not (held[0] is cat.categories or held[0].equals(cat.categories)):
            codes = self._codes[name]
            lookup = np.array([codes.get(v if type(v) is str else str(v), 0) for v in cat.categories] + [0],
                              dtype=np.int64)
            if len(self._maps) > 256:
                self._maps = {}
            held = self._maps[key] = (cat.categories, lookup)
        return held[1][np.asarray(cat.codes)]

    def _check(self) -> None:
        if not hasattr(self, "dense_"):
            raise NotFittedError("this TabularEncoder is not fitted yet")

    # ---------------------------------------------------------------- columns
    @property
    def features(self) -> list[str]:
        """Source features the encoder reads (dense first, then categorical)."""
        self._check()
        return self.dense_ + self.onehot_ + self.coded_

    @property
    def dense_features(self) -> list[str]:
        self._check()
        return list(self.dense_)

    @property
    def categorical_features(self) -> list[str]:
        self._check()
        return self.onehot_ + self.coded_

    @property
    def columns(self) -> list[Column]:
        """Encoded columns in `matrix` order: dense, missing indicators, one-hot levels, codes."""
        self._check()
        cols = [Column(c, c, "dense") for c in self.dense_]
        cols += [Column(f"{c} (missing)", c, "missing") for c in self.missing_]
        cols += [Column(f"{c}={lvl}", c, "onehot", lvl) for c in self.onehot_ for lvl in self.levels_[c]]
        cols += [Column(c, c, "code") for c in self.coded_]
        return cols

    def column_features(self) -> np.ndarray:
        """The source feature of each encoded column (object array)."""
        return np.array([c.feature for c in self.columns], dtype=object)

    def n_levels(self, feature: str) -> int:
        """Known levels of a categorical (codes run 1..n; 0 is unknown)."""
        self._check()
        return len(self.levels_[feature])

    # ---------------------------------------------------------------- transform
    def _dense_raw(self, source: Source, impute: bool) -> np.ndarray:
        x = _dense(source, self.dense_)
        raw_missing = np.isnan(x[:, [self.dense_.index(c) for c in self.missing_]]) if self.missing_ else None
        x[~np.isfinite(x)] = np.nan
        for c in self.log_:
            k = self.dense_.index(c)
            x[:, k] = np.log1p(np.maximum(x[:, k], 0.0))
        cols = [x]
        if raw_missing is not None:
            cols.append(raw_missing.astype(np.float64))
        if impute and self.dense_:
            nan = np.isnan(x)
            x[nan] = np.broadcast_to(self.medians_, x.shape)[nan]
        return np.hstack(cols) if len(cols) > 1 else x

    def dense_matrix(self, source: Source) -> np.ndarray:
        """Dense values (+ missing indicators), imputed and standardised as configured: float64 (n, d)."""
        self._check()
        x = self._dense_raw(source, impute=self.impute)
        if self.standardize and x.shape[1]:
            x = (x - self.means_) / self.scales_
        return x

    def code_matrix(self, source: Source, columns: list[str] | None = None) -> np.ndarray:
        """Integer codes (1..n_levels; 0 = unknown or missing) of the coded categoricals: int64 (n, c)."""
        self._check()
        columns = self.coded_ if columns is None else columns
        out = np.zeros((len(source), len(columns)), dtype=np.int64)
        for j, c in enumerate(columns):
            out[:, j] = self._level_codes(c, _categorical(source, c))
        return out

    def onehot_matrix(self, source: Source) -> sp.csr_matrix:
        """One-hot levels of the one-hot categoricals (unknown = all zeros): CSR float64 (n, sum levels)."""
        self._check()
        n = len(source)
        codes = self.code_matrix(source, self.onehot_)
        widths = np.array([len(self.levels_[c]) for c in self.onehot_], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(widths)])[:-1] if len(widths) else np.zeros(0, dtype=np.int64)
        rows, cols = np.nonzero(codes)
        col_index = starts[cols] + codes[rows, cols] - 1
        data = np.ones(len(rows), dtype=np.float64)
        return sp.csr_matrix((data, (rows, col_index)), shape=(n, int(widths.sum())))

    def matrix(self, source: Source, sparse: bool = False) -> np.ndarray | sp.csr_matrix:
        """All encoded columns in `columns` order (codes as floats): dense ndarray or CSR."""
        dense = self.dense_matrix(source)
        onehot = self.onehot_matrix(source)
        codes = self.code_matrix(source).astype(np.float64)
        if sparse:
            return sp.hstack([sp.csr_matrix(dense), onehot, sp.csr_matrix(codes)], format="csr")
        return np.hstack([dense, onehot.toarray(), codes])

    def linear(self, source: Source, plan: "LinearPlan") -> np.ndarray:
        """sum over encoded columns of weight x value, per row (a linear model's score without the intercept).

        On a FeatureTable each block is encoded on its own keys and only the block's sum is gathered
        per row: a member's 40 user features cost 40 values, not 40 x 200.
        """
        self._check()
        if isinstance(source, pd.DataFrame):
            return np.asarray(self.matrix(source, sparse=True) @ plan.weights).ravel()
        total = np.zeros(len(source))
        for block in source.blocks:
            dense = [name for name in block.columns if name in plan.dense]
            cats = [name for name in block.columns if name in plan.categorical]
            if not dense and not cats:
                continue
            part = plan.dense_part(dense, [block.columns[n] for n in dense], block.size)
            for name in cats:
                part = part + plan.categorical[name](block.columns[name])
            total += part if block.index is None else part[block.index]
        return total

    def linear_plan(self, weights: np.ndarray) -> "LinearPlan":
        """The encoder under a linear model's `weights`: per dense feature its affine map, per categorical
        its weight per level."""
        self._check()
        weights = np.asarray(weights, dtype=np.float64)
        if len(weights) != len(self.columns):
            raise ValueError(f"{len(weights)} weights for {len(self.columns)} encoded columns")
        nd, nm = len(self.dense_), len(self.missing_)
        means = self.means_ if self.standardize else np.zeros(nd + nm)
        scales = self.scales_ if self.standardize else np.ones(nd + nm)
        logs = set(self.log_)
        dense: dict[str, tuple[float, float, float, bool, float, float]] = {}
        for k, c in enumerate(self.dense_):
            m = self.missing_.index(c) if c in self.missing_ else -1
            dense[c] = (weights[k] / scales[k], -weights[k] * means[k] / scales[k],
                        self.medians_[k] if self.impute else np.nan, c in logs,
                        0.0 if m < 0 else weights[nd + m] / scales[nd + m],
                        0.0 if m < 0 else -weights[nd + m] * means[nd + m] / scales[nd + m])
        categorical: dict[str, object] = {}
        start = nd + nm
        for c in self.onehot_:
            levels = len(self.levels_[c])
            table = np.concatenate([[0.0], weights[start:start + levels]])
            start += levels
            categorical[c] = lambda values, c=c, table=table: table[self._level_codes(c, values)]
        for c in self.coded_:
            w = weights[start]
            start += 1
            categorical[c] = lambda values, c=c, w=w: self._level_codes(c, values) * w
        return LinearPlan(weights, dense, categorical)

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """Configuration and fitted state as JSON-ready values."""
        self._check()
        return {
            "config": {"categorical": self.categorical, "onehot_max_levels": self.onehot_max_levels,
                       "max_levels": self.max_levels, "min_count": self.min_count,
                       "max_categories": self.max_categories, "impute": self.impute,
                       "standardize": self.standardize, "missing_indicators": self.missing_indicators,
                       "log_skewed": self.log_skewed, "exclude": list(self.exclude)},
            "dense": self.dense_, "log": self.log_, "medians": [float(v) for v in self.medians_], "missing": self.missing_,
            "means": [float(v) for v in self.means_], "scales": [float(v) for v in self.scales_],
            "onehot": self.onehot_, "coded": self.coded_, "levels": self.levels_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "TabularEncoder":
        """Rebuild a fitted encoder from `to_dict` output (ValueError when inconsistent)."""
        cfg = dict(state["config"])
        cfg["exclude"] = tuple(cfg.get("exclude", ()))
        enc = cls(**cfg)
        enc.dense_ = [str(c) for c in state["dense"]]
        enc.log_ = [str(c) for c in state["log"]]
        enc.medians_ = np.asarray(state["medians"], dtype=float)
        enc.missing_ = [str(c) for c in state["missing"]]
        enc.means_ = np.asarray(state["means"], dtype=float)
        enc.scales_ = np.asarray(state["scales"], dtype=float)
        enc.onehot_ = [str(c) for c in state["onehot"]]
        enc.coded_ = [str(c) for c in state["coded"]]
        enc.levels_ = {str(k): [str(v) for v in vs] for k, vs in state["levels"].items()}
        width = len(enc.dense_) + len(enc.missing_)
        if len(enc.medians_) != len(enc.dense_) or len(enc.means_) != width or len(enc.scales_) != width:
            raise ValueError("encoder statistics do not match its dense columns")
        if (set(enc.levels_) != set(enc.onehot_) | set(enc.coded_) or not set(enc.missing_) <= set(enc.dense_)
                or not set(enc.log_) <= set(enc.dense_)):
            raise ValueError("encoder vocabularies do not match its categorical columns")
        enc._set_lookups()
        return enc


@dataclass(frozen=True)
class LinearPlan:
    """A linear model's weights over an encoder's columns, as maps from each source feature's values to its
    contribution: dense (weight, shift, fill, log, missing weight, missing shift), categorical functions."""

    weights: np.ndarray
    dense: dict[str, tuple[float, float, float, bool, float, float]]
    categorical: dict[str, object]

    def dense_part(self, names: list[str], columns: list[np.ndarray], size: int) -> np.ndarray:
        """The summed contribution of these dense features over `size` keys (one pass over a matrix)."""
        if not names:
            return np.zeros(size)
        params = np.array([self.dense[n] for n in names], dtype=np.float64)
        x = np.empty((size, len(names)))
        for j, values in enumerate(columns):
            x[:, j] = values
        missing = np.isnan(x)
        x[~np.isfinite(x)] = np.nan
        logs = np.flatnonzero(params[:, 3] > 0)
        if len(logs):
            x[:, logs] = np.log1p(np.maximum(x[:, logs], 0.0))
        nan = np.isnan(x)
        x[nan] = np.broadcast_to(params[:, 2], x.shape)[nan]
        out = (x * params[:, 0] + missing * params[:, 4]).sum(axis=1)
        return out + (params[:, 1].sum() + params[:, 5].sum())


def _skewed(values: np.ndarray) -> bool:
    """Non-negative, spread over more than a decade, and with a long right tail (skewness > 2)."""
    if len(values) < 3 or values.min() < 0 or values.max() <= 10:
        return False
    sd = values.std()
    if sd <= 0:
        return False
    return float(((values - values.mean()) ** 3).mean() / sd ** 3) > 2.0
