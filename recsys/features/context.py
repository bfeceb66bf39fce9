"""Context features of a moment: season, upcoming holiday, time of day, day of week, device.

Computed once per distinct moment (a request's rows share one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..holidays import HOLIDAYS, next_holiday
from .group import FeatureGroup
from .history import History
from .rows import Rows
from .spec import Feature
from .table import Block, categorical, categorical_values
from .titles import TitleTables

__all__ = ["ContextFeatures", "context_features", "CONTEXT_FEATURES", "DEVICE_FEATURE"]

_SEASONS = np.array(["winter", "winter", "spring", "spring", "spring", "summer", "summer", "summer",
                     "autumn", "autumn", "autumn", "winter"], dtype=object)
_DAYPARTS = np.array(["night"] * 6 + ["morning"] * 6 + ["afternoon"] * 5 + ["evening"] * 5 + ["night"] * 2,
                     dtype=object)
_DAYS = np.array(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], dtype=object)
_LEVELS = {
    "season_of_year": pd.CategoricalDtype(["winter", "spring", "summer", "autumn"]),
    "upcoming_holiday": pd.CategoricalDtype([name for name, _, _ in HOLIDAYS]),
    "daypart": pd.CategoricalDtype(["night", "morning", "afternoon", "evening"]),
    "day_of_week": pd.CategoricalDtype(list(_DAYS)),
}

CONTEXT_FEATURES: tuple[Feature, ...] = (
    Feature("season_of_year", "context", "categorical", "Meteorological season (northern hemisphere)."),
    Feature("upcoming_holiday", "context", "categorical", "The next holiday on or after this day."),
    Feature("days_to_holiday", "context", "dense", "Whole days until that holiday (0 on the day)."),
    Feature("hour_of_day", "context", "dense", "Hour of the day, 0-23 (UTC)."),
    Feature("daypart", "context", "categorical", "Morning, afternoon, evening or night."),
    Feature("day_of_week", "context", "categorical", "Day of the week."),
    Feature("is_weekend", "context", "dense", "1 on Saturday and Sunday."),
)
DEVICE_FEATURE = Feature("device", "context", "categorical", "Device the member is watching on.")


_SEASON_CODE = np.array([_LEVELS["season_of_year"].categories.get_loc(v) for v in _SEASONS])
_DAYPART_CODE = np.array([_LEVELS["daypart"].categories.get_loc(v) for v in _DAYPARTS])
_HOLIDAY_CODE = {name: k for k, name in enumerate(_LEVELS["upcoming_holiday"].categories)}
_CACHE_LIMIT = 4096


class _MomentCache:
    """Context values of moments already seen (a pure function of the moment; bounded)."""

    def __init__(self) -> None:
        self.values: dict[int, tuple[int, int, float, int, int, int]] = {}

    def lookup(self, moments: np.ndarray) -> np.ndarray:
        """(season, holiday, days, hour, daypart, weekday) per moment (datetime64[ns]), as an (m, 6) array."""
        keys = moments.view(np.int64).tolist()
        known = self.values
        found = {k: known.get(k) for k in set(keys)}
        missing = [k for k, v in found.items() if v is None]
        if missing:
            ts = pd.DatetimeIndex(np.asarray(missing, dtype=np.int64).view("datetime64[ns]"))
            holiday, days = next_holiday(ts)
            hour, dow, month = ts.hour.to_numpy(), ts.day_of_week.to_numpy(), ts.month.to_numpy()
            new = {k: (int(_SEASON_CODE[mo - 1]), _HOLIDAY_CODE[hol], float(d), int(h), int(_DAYPART_CODE[h]), int(w))
                   for k, mo, hol, d, h, w in zip(missing, month, holiday, days, hour, dow)}
            found.update(new)
            if len(known) + len(new) > _CACHE_LIMIT:
                self.values = known = {}  # replaced, not cleared: a concurrent reader keeps its own
            known.update(new)
        return np.array([found[k] for k in keys], dtype=np.float64).reshape(len(keys), 6)


def _moment_columns(moments: np.ndarray, cache: _MomentCache | None = None) -> dict[str, object]:
    """The context features of distinct moments (datetime64[ns])."""
    v = (cache or _MomentCache()).lookup(np.asarray(moments, dtype="datetime64[ns]"))
    code = v.astype(np.int64)

    def cat(name: str, column: int) -> pd.Categorical:
        return pd.Categorical.from_codes(code[:, column], dtype=_LEVELS[name], validate=False)

    return {
        "season_of_year": cat("season_of_year", 0),
        "upcoming_holiday": cat("upcoming_holiday", 1),
        "days_to_holiday": v[:, 2].copy(),
        "hour_of_day": v[:, 3].copy(),
        "daypart": cat("daypart", 4),
        "day_of_week": cat("day_of_week", 5),
        "is_weekend": (code[:, 5] >= 5).astype(float),
    }


def context_features(timestamps, devices=None) -> pd.DataFrame:
    """Context features for each moment (and device, when given), as a frame of plain values."""
    values = pd.to_datetime(np.asarray(timestamps)).to_numpy(dtype="datetime64[ns]")
    moments, inverse = np.unique(values, return_inverse=True)
    cols = _moment_columns(moments)
    out = pd.DataFrame({name: (categorical_values(v) if isinstance(v, pd.Categorical) else v)[inverse]
                        for name, v in cols.items()})
    if devices is not None:
        out["device"] = np.asarray(devices, dtype=object)
    return out


class ContextFeatures(FeatureGroup):
    """Season, upcoming holiday and the days until it, hour, daypart, weekday and weekend; the device
    when the events record one."""

    name = "context"

    def fit(self, dataset: Dataset, titles: TitleTables) -> "ContextFeatures":
        self.has_device_ = dataset.has("events", "device")
        self.features_ = CONTEXT_FEATURES + ((DEVICE_FEATURE,) if self.has_device_ else ())
        self.moments_ = _MomentCache()
        return self

    def compute(self, rows: Rows, history: History, titles: TitleTables) -> list[Block]:
        blocks = [Block("moment", rows.moment, _moment_columns(rows.m_time, self.moments_), len(rows.m_time))]
        if self.has_device_:
            device = rows.device if rows.device is not None else categorical(np.full(len(rows), None, dtype=object))
            blocks.append(Block("device", None, {"device": device}, len(rows)))
        return blocks
