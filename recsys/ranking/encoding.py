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

from ..features import FeatureTable, NotFittedError

__all__ = ["Column", "TabularEncoder", "as_text"]

CategoricalMode = Literal["onehot", "codes", "mixed"]
ROLES = ("dense", "missing", "onehot", "code")
_SMALL = 2048  # frames up to this many rows are encoded with dict look-ups


@dataclass(frozen=True)
class Column:
    """One encoded column: its display name, the source feature it comes from, and its role."""

    name: str
    feature: str
    role: str
    level: str | None = None


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
        frame, fs = features.frame, features.feature_set
        skip = set(self.exclude)
        dense = [c for c in fs.dense if c not in skip and c in frame.columns]
        cats = [c for c in fs.categorical if c not in skip and c in frame.columns]

        x = frame[dense].to_numpy(dtype=np.float64) if dense else np.zeros((len(frame), 0))
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
        block = self._dense_raw(frame, impute=True)  # standardisation statistics on the imputed values
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
            codes, uniques = pd.factorize(frame[c], use_na_sentinel=True)
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            merged: dict[str, int] = {}
            for text, k in zip(as_text(pd.Series(uniques, dtype=object)), counts):
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
    def _dense_raw(self, frame: pd.DataFrame, impute: bool) -> np.ndarray:
        x = frame[self.dense_].to_numpy(dtype=np.float64, copy=True) if self.dense_ else np.zeros((len(frame), 0))
        x[~np.isfinite(x)] = np.nan
        for c in self.log_:
            k = self.dense_.index(c)
            x[:, k] = np.log1p(np.maximum(x[:, k], 0.0))
        cols = [x]
        if self.missing_:
            cols.append(np.isnan(frame[self.missing_].to_numpy(dtype=np.float64)).astype(np.float64))
        if impute and self.dense_:
            nan = np.isnan(x)
            x[nan] = np.broadcast_to(self.medians_, x.shape)[nan]
        return np.hstack(cols) if len(cols) > 1 else x

    def dense_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Dense values (+ missing indicators), imputed and standardised as configured: float64 (n, d)."""
        self._check()
        x = self._dense_raw(frame, impute=self.impute)
        if self.standardize and x.shape[1]:
            x = (x - self.means_) / self.scales_
        return x

    def code_matrix(self, frame: pd.DataFrame, columns: list[str] | None = None) -> np.ndarray:
        """Integer codes (1..n_levels; 0 = unknown or missing) of the coded categoricals: int64 (n, c)."""
        self._check()
        columns = self.coded_ if columns is None else columns
        out = np.zeros((len(frame), len(columns)), dtype=np.int64)
        small = len(frame) <= _SMALL
        for j, c in enumerate(columns):
            if small:  # a request's few hundred rows: plain dict look-ups beat pandas' per-call overhead
                values = frame[c].to_numpy(dtype=object)
                missing = pd.isna(values)
                codes = self._codes[c]
                out[:, j] = [0 if m else codes.get(v if type(v) is str else str(v), 0)
                             for v, m in zip(values, missing)]
                continue
            # factorize once (fast on any dtype), then look up only the distinct values
            codes, uniques = pd.factorize(frame[c], use_na_sentinel=True)
            lookup = self._index[c].get_indexer(as_text(pd.Series(uniques, dtype=object))) + 1
            out[:, j] = np.append(lookup, 0)[codes]
        return out

    def onehot_matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """One-hot levels of the one-hot categoricals (unknown = all zeros): CSR float64 (n, sum levels)."""
        self._check()
        n = len(frame)
        codes = self.code_matrix(frame, self.onehot_)
        widths = np.array([len(self.levels_[c]) for c in self.onehot_], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(widths)])[:-1] if len(widths) else np.zeros(0, dtype=np.int64)
        rows, cols = np.nonzero(codes)
        col_index = starts[cols] + codes[rows, cols] - 1
        data = np.ones(len(rows), dtype=np.float64)
        return sp.csr_matrix((data, (rows, col_index)), shape=(n, int(widths.sum())))

    def matrix(self, frame: pd.DataFrame, sparse: bool = False) -> np.ndarray | sp.csr_matrix:
        """All encoded columns in `columns` order (codes as floats): dense ndarray or CSR."""
        dense = self.dense_matrix(frame)
        onehot = self.onehot_matrix(frame)
        codes = self.code_matrix(frame).astype(np.float64)
        if sparse:
            return sp.hstack([sp.csr_matrix(dense), onehot, sp.csr_matrix(codes)], format="csr")
        return np.hstack([dense, onehot.toarray(), codes])

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


def _skewed(values: np.ndarray) -> bool:
    """Non-negative, spread over more than a decade, and with a long right tail (skewness > 2)."""
    if len(values) < 3 or values.min() < 0 or values.max() <= 10:
        return False
    sd = values.std()
    if sd <= 0:
        return False
    return float(((values - values.mean()) ** 3).mean() / sd ** 3) > 2.0
