"""The ranker contract: fit on a weighted training table, predict P(watch), explain one prediction, persist.

Every ranker (logistic regression, random forest, gradient boosting, deep network) subclasses
`Ranker`: typed configuration in the constructor (stored as-is, no logic), `fit(table, valid)
-> self`, fitted attributes ending in `_`, and `save`/`load` as plain files (JSON, npz, a
LightGBM text model, safetensors) under a small JSON manifest. Nothing is ever unpickled:
a directory of artifacts may come from a user.
"""

from __future__ import annotations

import abc
import inspect
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..artifacts import json_bytes, read_component, read_json, read_npz, npz_bytes, write_component
from ..data.errors import DataError
from ..errors import ArtifactError, NotFittedError
from ..features import FeatureTable, Ragged
from ..features.table import categorical_values
from ..registry import Registry
from ..training_table import TrainingTable

__all__ = [
    "RANKERS",
    "Ranker",
    "ArtifactError",
    "NotFittedError",
    "EXPLANATION_COLUMNS",
    "IMPORTANCE_COLUMNS",
    "FORMAT",
    "FORMAT_VERSION",
    "load_ranker",
    "format_value",
    "time_holdout",
    "member_holdout",
    "json_bytes",
    "npz_bytes",
    "read_json",
    "read_npz",
]

FORMAT = "recsys.ranker"
FORMAT_VERSION = 2
EXPLANATION_COLUMNS: tuple[str, ...] = ("feature", "value", "contribution")
IMPORTANCE_COLUMNS: tuple[str, ...] = ("feature", "importance")


def _load_rankers() -> None:
    from . import linear, forest, boosting, deep  # noqa: F401,I001  (each registers its class, in this order)


#: Rankers by name: configuration, command line, app pickers and the contract tests read it.
RANKERS: Registry = Registry("ranker", loader=_load_rankers)


def _jsonable(value: Any) -> Any:
    """Constructor arguments as JSON values (tuples become lists; numpy scalars become Python)."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"configuration value {value!r} is not finite")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"configuration value {value!r} ({type(value).__name__}) cannot be saved as JSON")


def format_value(value: Any) -> str:
    """A feature value as short human-readable text (missing values say so)."""
    if value is None:
        return "missing"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "missing"
        v = float(value)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        if pd.isna(value):
            return "missing"
    except (TypeError, ValueError):
        pass
    return str(value)


def format_list(ragged: Ragged, row: int, limit: int = 5) -> str:
    """One row of a ragged id list as text: the first `limit` entries and how many more."""
    ids = ragged.values[ragged.offsets[row]:ragged.offsets[row + 1]]
    ids = ids[ids != 0]
    if len(ids) == 0:
        return "(none)"
    names = [ragged.vocab[i] if 0 <= i < len(ragged.vocab) else "?" for i in ids[:limit]]
    more = len(ids) - limit
    return ", ".join(names) + (f" (+{more} more)" if more > 0 else "")


def time_holdout(times: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions into (train, valid): valid holds the latest `fraction` of rows by time.

    Rows sharing the cut's timestamp all go to the validation side, so no moment is split.
    """
    times = np.asarray(times, dtype="datetime64[ns]")
    n = len(times)
    n_valid = int(round(n * fraction))
    if n_valid < 1 or n_valid >= n:
        raise ValueError(f"a {fraction:.0%} time holdout of {n} rows leaves one side empty")
    cut = np.sort(times)[n - n_valid]
    valid = times >= cut
    if valid.all():
        valid = times > cut
    if valid.all() or not valid.any():
        raise ValueError("every row has the same timestamp: a time holdout is impossible")
    return np.flatnonzero(~valid), np.flatnonzero(valid)


def member_holdout(members: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions into (train, valid): valid holds every row of a seeded random `fraction` of the
    members, for tables whose rows share one moment (the per-user random protocol's), where no time cut exists."""
    members = np.asarray(members, dtype=object)
    uniques, code = np.unique(members.astype(str), return_inverse=True)
    n_valid = int(round(len(uniques) * fraction))
    if n_valid < 1 or n_valid >= len(uniques):
        raise ValueError(f"a {fraction:.0%} member holdout of {len(uniques)} members leaves one side empty")
    held = np.zeros(len(uniques), dtype=bool)
    held[np.random.default_rng(seed).choice(len(uniques), size=n_valid, replace=False)] = True
    return np.flatnonzero(~held[code]), np.flatnonzero(held[code])


# ------------------------------------------------------------------ checks
def check_training_table(table: Any, what: str = "table", *, need_both_classes: bool = True) -> TrainingTable:
    """A usable training table: labels 0/1 (both present), finite non-negative weights, aligned lengths."""
    if not isinstance(table, TrainingTable):
        raise TypeError(f"{what} must be a recsys TrainingTable (build_training_table), got {type(table).__name__}")
    n = len(table.label)
    if len(table.features) != n or len(table.weight) != n:
        raise DataError(f"{what}: {len(table.features)} feature rows, {n} labels and {len(table.weight)} weights "
                        "do not line up", column="label")
    if n == 0:
        raise DataError(f"{what} has no rows to learn from", column="label")
    label = np.asarray(table.label)
    bad = ~np.isin(label, (0, 1))
    if bad.any():
        raise DataError(f"{what}: labels must be 0 or 1", column="label", examples=label[bad][:5].tolist())
    if need_both_classes and (label.min() == label.max()):
        raise DataError(f"{what} holds only {'positives' if label[0] == 1 else 'negatives'}: "
                        "a ranker needs both classes", column="label")
    weight = np.asarray(table.weight, dtype=float)
    bad = ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        raise DataError(f"{what}: sample weights must be finite and >= 0", column="weight",
                        examples=weight[bad][:5].tolist())
    if weight.sum() <= 0:
        raise DataError(f"{what}: sample weights sum to zero", column="weight")
    return table


def as_feature_table(features: Any) -> FeatureTable:
    """A FeatureTable (a TrainingTable's features are taken as they are)."""
    if isinstance(features, TrainingTable):
        return features.features
    if not isinstance(features, FeatureTable):
        raise TypeError(f"expected a recsys FeatureTable, got {type(features).__name__}")
    return features


# ------------------------------------------------------------------ the contract
class Ranker(abc.ABC):
    """Scores (member, title, moment) rows with P(watch).

    Subclasses set `name` (their key in RANKERS, which they join with `@RANKERS.register`), keep
    their constructor to plain attribute assignment and implement `_fit`, `_predict`,
    `_explain`, `_importance`, `_files` and `_restore`.
    """

    name: ClassVar[str] = ""
    explanation_method: ClassVar[str] = ""
    required_files: ClassVar[tuple[str, ...]] = ()

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as JSON-ready values."""
        params = inspect.signature(type(self).__init__).parameters
        return {name: _jsonable(getattr(self, name)) for name in params if name != "self"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "features_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(table) or load(directory)")

    # ---------------------------------------------------------------- public API
    def fit(self, table: TrainingTable, valid: TrainingTable | None = None) -> "Ranker":
        """Learn P(watch) from `table` (its `weight` are sample weights); `valid` steers early stopping."""
        check_training_table(table, "table")
        if valid is not None:
            check_training_table(valid, "valid", need_both_classes=False)
            self._check_columns(valid.features, table.features.feature_set, what="valid")
        self._fit(table, valid)
        self.training_ = {"rows": int(len(table)), "positives": int(np.asarray(table.label).sum()),
                          "window": [None if t is None else str(t) for t in table.window]}
        return self

    def predict_proba(self, features: FeatureTable) -> np.ndarray:
        """P(watch) for every row of `features`, as float64 in [0, 1]."""
        self._check_fitted()
        features = as_feature_table(features)
        self._check_columns(features)
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        p = np.asarray(self._predict(features), dtype=np.float64)
        return np.clip(p, 0.0, 1.0)

    def explain(self, features: FeatureTable, row: int, top: int = 10) -> pd.DataFrame:
        """The `top` feature contributions to the prediction of one row, largest magnitude first.

        Columns: feature, value (human-readable text), contribution (see `attrs["units"]`).
        `attrs` also holds the prediction, the baseline, the method and each feature's description.
        """
        self._check_fitted()
        features = as_feature_table(features)
        self._check_columns(features)
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)):
            raise TypeError(f"row must be an integer position, got {row!r}")
        if not 0 <= int(row) < len(features):
            raise IndexError(f"row {row} is out of range for {len(features)} feature rows")
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
            raise ValueError(f"top must be a positive integer, got {top!r}")
        one = features.take(np.array([int(row)]))
        frame, attrs = self._explain(one)
        frame = frame.assign(order=frame["contribution"].abs()).sort_values(
            ["order", "feature"], ascending=[False, True], kind="mergesort")
        out = frame.head(int(top))[list(EXPLANATION_COLUMNS)].reset_index(drop=True)
        out["contribution"] = out["contribution"].astype(float)
        fs = features.feature_set
        out.attrs.update({"method": self.explanation_method, **attrs,
                          "descriptions": {f: fs[f].description for f in out["feature"] if f in fs}})
        return out

    def feature_importance(self) -> pd.DataFrame:
        """Global importance per source feature (normalised to sum to 1), most important first."""
        self._check_fitted()
        imp = self._importance()
        values = np.clip(np.asarray(list(imp.values()), dtype=float), 0.0, None)
        total = values.sum()
        frame = pd.DataFrame({"feature": list(imp.keys()), "importance": values / total if total > 0 else values})
        out = frame.sort_values(["importance", "feature"], ascending=[False, True], kind="mergesort")
        return out.reset_index(drop=True)

    # ---------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the model files and then `manifest.json` with their checksums (each atomically) into `directory`."""
        self._check_fitted()
        return write_component(directory, FORMAT, FORMAT_VERSION, self._files(), {
            "name": self.name, "class": type(self).__name__, "config": self.get_config(),
            "features": self.features_, "training": self.training_, "versions": _versions()})

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Ranker":
        """Read a ranker saved by `save`; `Ranker.load` accepts any kind, a subclass only its own."""
        component = read_component(directory, FORMAT, FORMAT_VERSION)
        path = str(component.folder / "manifest.json")
        name = component.get("name")
        klass = RANKERS.get(name) if isinstance(name, str) and name in RANKERS else None
        if klass is None:
            raise ArtifactError(f"unknown ranker {name!r} (known: {list(RANKERS.names())})", file=path)
        if cls is not Ranker and not issubclass(klass, cls):
            raise ArtifactError(f"the artifact holds a {name!r} ranker, not a {cls.name or cls.__name__!r} one",
                                file=path)
        features, config = component.get("features"), component.get("config")
        if not isinstance(features, dict) or not isinstance(config, dict):
            raise ArtifactError("manifest lacks its features or config", file=path)
        absent = [f for f in klass.required_files if not component.has(f)]
        if absent:
            raise ArtifactError(f"the manifest lists no {absent} file(s), which a {name} ranker needs", file=path)
        files = {f: component.read(f) for f in component.manifest["files"]}
        params = inspect.signature(klass.__init__).parameters
        config = {k: tuple(v) if isinstance(v, list) and k in params and isinstance(params[k].default, tuple) else v
                  for k, v in config.items()}
        try:
            ranker = klass(**config)
        except TypeError as exc:
            raise ArtifactError(f"the saved configuration does not fit {klass.__name__}: {exc}", file=path) from exc
        try:
            ranker.features_ = {k: list(v) for k, v in features.items()}
            ranker.training_ = component.get("training") or {}
            ranker._restore(files)
        except ArtifactError as err:
            if err.file and not os.path.isabs(err.file):  # name the damaged file with its folder
                raise ArtifactError(err.problem, file=str(component.folder / err.file), hint=err.hint) from err
            raise
        except Exception as exc:  # anything else a damaged file can provoke
            raise ArtifactError(f"could not restore the {name} ranker: {type(exc).__name__}: {exc}",
                                file=str(component.folder)) from exc
        return ranker

    # ---------------------------------------------------------------- helpers for subclasses
    def _record_features(self, dense: list[str], categorical: list[str], sparse: list[str]) -> None:
        """The source features the fitted model reads (checked at predict time, saved in the manifest)."""
        self.features_ = {"dense": list(dense), "categorical": list(categorical), "sparse": list(sparse)}

    def _check_columns(self, features: FeatureTable, expected: Any = None, what: str = "features") -> None:
        """Every column the model reads must be there (extra columns are ignored)."""
        if expected is None:
            need = self.features_["dense"] + self.features_["categorical"]
            need_sparse = self.features_["sparse"]
        else:
            need, need_sparse = expected.dense + expected.categorical, []
        missing = [c for c in need if c not in features]
        missing += [s for s in need_sparse if s not in features.sparse]
        if missing:
            raise DataError(f"{what} lack {len(missing)} feature(s) the ranker uses: {missing[:8]}",
                            column=missing[0], hint="build features with the same FeatureBuilder settings and data "
                                                    "layout the ranker was trained on")

    def _explanation_frame(self, one: FeatureTable, contributions: dict[str, float]) -> pd.DataFrame:
        """Rows of (feature, readable value, contribution) for a one-row table."""
        rows = []
        for name, c in contributions.items():
            if name in one.sparse:
                value = format_list(one.sparse[name], 0)
            elif name in one:
                column = one.column(name)
                value = format_value((categorical_values(column) if isinstance(column, pd.Categorical)
                                      else column)[0])
            else:
                value = "missing"
            rows.append((name, value, float(c)))
        return pd.DataFrame(rows, columns=list(EXPLANATION_COLUMNS))

    # ---------------------------------------------------------------- to implement
    @abc.abstractmethod
    def _fit(self, table: TrainingTable, valid: TrainingTable | None) -> None:
        """Fit and set fitted attributes (including `features_` via `_record_features`)."""

    @abc.abstractmethod
    def _predict(self, features: FeatureTable) -> np.ndarray:
        """P(watch) of every row."""

    @abc.abstractmethod
    def _explain(self, one: FeatureTable) -> tuple[pd.DataFrame, dict[str, Any]]:
        """All feature contributions for a one-row table, and attrs (prediction, baseline, units)."""

    @abc.abstractmethod
    def _importance(self) -> dict[str, float]:
        """Non-negative global importance per source feature."""

    @abc.abstractmethod
    def _files(self) -> dict[str, bytes]:
        """The model's files (name -> content), manifest excluded."""

    @abc.abstractmethod
    def _restore(self, files: dict[str, bytes]) -> None:
        """Rebuild fitted attributes from `_files` output (raise ArtifactError on bad content)."""


def load_ranker(directory: str | os.PathLike) -> Ranker:
    """Load any saved ranker (the manifest says which)."""
    return Ranker.load(directory)


def _versions() -> dict[str, str]:
    import sklearn

    from importlib.metadata import PackageNotFoundError, version

    try:
        recsys_version = version("recsys")
    except PackageNotFoundError:
        recsys_version = "unknown"
    return {"recsys": recsys_version, "numpy": np.__version__, "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__}
