"""A small holiday calendar: which holiday comes next, and in how many days (vectorised)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["HOLIDAYS", "holiday_dates", "next_holiday", "days_until"]

# (name, month, day). Thanksgiving moves; it is computed per year below.
HOLIDAYS: tuple[tuple[str, int, int], ...] = (
    ("new_year", 1, 1),
    ("valentines", 2, 14),
    ("independence_day", 7, 4),
    ("halloween", 10, 31),
    ("thanksgiving", 11, 0),
    ("christmas", 12, 25),
)


def _thanksgiving(year: int) -> pd.Timestamp:
    first = pd.Timestamp(year=year, month=11, day=1)
    offset = (3 - first.weekday()) % 7  # Thursday
    return first + pd.Timedelta(days=offset + 21)


def holiday_dates(years) -> pd.DataFrame:
    """Every holiday of the given years (and the next year's, so 'next' always exists)."""
    rows = []
    years = sorted(set(int(y) for y in years))
    for year in range(years[0], years[-1] + 2):
        for name, month, day in HOLIDAYS:
            date = _thanksgiving(year) if name == "thanksgiving" else pd.Timestamp(year=year, month=month, day=day)
            rows.append((date, name))
    return pd.DataFrame(rows, columns=["date", "holiday"]).sort_values("date").reset_index(drop=True)


def next_holiday(times) -> tuple[np.ndarray, np.ndarray]:
    """For each time, the next holiday on or after its date and the whole days until it (0 on the day)."""
    times = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(times)))
    if len(times) == 0:
        return np.array([], dtype=object), np.array([], dtype=np.int64)
    days = times.normalize()
    cal = holiday_dates(days.year.unique())
    pos = np.searchsorted(cal["date"].to_numpy(), days.to_numpy(), side="left")
    names = cal["holiday"].to_numpy()[pos]
    delta = (cal["date"].to_numpy()[pos] - days.to_numpy()).astype("timedelta64[D]").astype(np.int64)
    return names, delta


def days_until(holiday: str, times) -> np.ndarray:
    """Whole days from each time's date to the next `holiday` on or after it (0 on the day)."""
    times = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(times)))
    if len(times) == 0:
        return np.array([], dtype=np.int64)
    days = times.normalize()
    cal = holiday_dates(days.year.unique())
    dates = cal.loc[cal["holiday"] == holiday, "date"].to_numpy()
    if len(dates) == 0:
        raise ValueError(f"unknown holiday {holiday!r}; known: {[name for name, _, _ in HOLIDAYS]}")
    pos = np.searchsorted(dates, days.to_numpy(), side="left")
    return (dates[pos] - days.to_numpy()).astype("timedelta64[D]").astype(np.int64)
