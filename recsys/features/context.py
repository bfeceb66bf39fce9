"""Context features of a moment: season, upcoming holiday, time of day, day of week, device."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..holidays import next_holiday
from .spec import Feature

__all__ = ["context_features", "CONTEXT_FEATURES", "DEVICE_FEATURE"]

_SEASONS = np.array(["winter", "winter", "spring", "spring", "spring", "summer", "summer", "summer",
                     "autumn", "autumn", "autumn", "winter"], dtype=object)
_DAYPARTS = np.array(["night"] * 6 + ["morning"] * 6 + ["afternoon"] * 5 + ["evening"] * 5 + ["night"] * 2,
                     dtype=object)
_DAYS = np.array(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], dtype=object)

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


def context_features(timestamps, devices=None) -> pd.DataFrame:
    """Context features for each moment (and device, when known)."""
    values = pd.to_datetime(np.asarray(timestamps)).to_numpy(dtype="datetime64[ns]")
    # a request's rows share one moment: compute each distinct moment once
    moments, inverse = np.unique(values, return_inverse=True)
    ts = pd.DatetimeIndex(moments)
    holiday, days = next_holiday(ts)
    hour = ts.hour.to_numpy()
    dow = ts.day_of_week.to_numpy()
    out = pd.DataFrame({
        "season_of_year": _SEASONS[ts.month.to_numpy() - 1][inverse],
        "upcoming_holiday": np.asarray(holiday, dtype=object)[inverse],
        "days_to_holiday": np.asarray(days, dtype=float)[inverse],
        "hour_of_day": hour.astype(float)[inverse],
        "daypart": _DAYPARTS[hour][inverse],
        "day_of_week": _DAYS[dow][inverse],
        "is_weekend": (dow >= 5).astype(float)[inverse],
    })
    if devices is not None:
        out["device"] = np.asarray(devices, dtype=object)
    return out
