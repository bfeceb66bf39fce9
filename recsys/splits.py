"""Train/test protocols: expanding-window time-series CV (the default) and a per-user random split.

Why time-series CV (design note): viewing has seasonality (weekends, holidays, new
releases) and the system forecasts what a member will watch next, so a model must only
learn from the past of the period it is scored on. A random split lets the model peek at
the future and flatters every metric. The per-user random split exists only to reproduce
the common public MovieLens benchmark tables (per-user random 75/25); the single time cut
(`time_cut`: the latest share of all interactions held out) reproduces their temporal ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterator

import numpy as np
import pandas as pd

from .data.dataset import Dataset
from .data.errors import DataError

__all__ = ["Fold", "TimeSeriesCV", "stratified_split", "time_cut"]


def _check_number(name: str, value: object, *, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Fold:
    """One time-series CV fold: train on events before `train_end`, test on [test_start, test_end).

    Events in the gap [train_end, test_start) belong to neither side.
    """

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    dataset: Dataset = field(repr=False, compare=False)

    @cached_property
    def train(self) -> Dataset:
        """What was knowable before `train_end` (`Dataset.as_of`): events, users, titles."""
        return self.dataset.as_of(self.train_end)

    @cached_property
    def test(self) -> Dataset:
        """Events in the test window (`Dataset.between`); user and title metadata kept whole."""
        return self.dataset.between(self.test_start, self.test_end)

    def as_dict(self) -> dict[str, object]:
        return {
            "fold": self.index,
            "train_start": self.train_start,
            "train_end": self.train_end,
            "test_start": self.test_start,
            "test_end": self.test_end,
        }


@dataclass(frozen=True)
class TimeSeriesCV:
    """Expanding-window time-series cross-validation over a Dataset's event time span.

    The last `n_folds` windows of `test_days` tile the end of the data; fold k trains on
    everything before `train_end_k = test_start_k - gap` (the window grows with k) and
    tests on [test_start_k, test_start_k + test_days). The last fold's test window ends
    just after the last event (its time floored to the second, plus one second).
    Fold 0 must keep at least `min_train_days` of history, else `split` raises DataError.
    """

    n_folds: int = 3
    test_days: float = 7.0
    gap_days: float = 0.0
    min_train_days: float = 14.0

    def __post_init__(self) -> None:
        if isinstance(self.n_folds, bool) or not isinstance(self.n_folds, (int, np.integer)) or self.n_folds < 1:
            raise ValueError(f"n_folds must be an integer >= 1, got {self.n_folds!r}")
        _check_number("test_days", self.test_days, minimum=0.0, strict=True)
        _check_number("gap_days", self.gap_days, minimum=0.0, strict=False)
        _check_number("min_train_days", self.min_train_days, minimum=0.0, strict=True)

    def get_n_splits(self, dataset: Dataset | None = None) -> int:
        return int(self.n_folds)

    @property
    def required_days(self) -> float:
        """The shortest event span these settings need: min_train + gap + n_folds * test."""
        return self.min_train_days + self.gap_days + self.n_folds * self.test_days

    def folds(self, dataset: Dataset) -> list[Fold]:
        """All folds, oldest first (train/test datasets are built lazily on access)."""
        if not isinstance(dataset, Dataset):
            raise TypeError(f"expected a Dataset, got {type(dataset).__name__}")
        if len(dataset.events) == 0:
            raise DataError("cannot build time-series folds: the dataset has no events", file=dataset.name,
                            column="timestamp")
        start: pd.Timestamp = dataset.start
        data_end = dataset.end.floor("s") + pd.Timedelta(seconds=1)
        test = pd.Timedelta(days=self.test_days)
        gap = pd.Timedelta(days=self.gap_days)
        first_train_end = data_end - self.n_folds * test - gap
        span_days = (data_end - start) / pd.Timedelta(days=1)
        if first_train_end - start < pd.Timedelta(days=self.min_train_days):
            raise DataError(
                f"events span {span_days:.2f} days but {self.n_folds} fold(s) of {self.test_days:g} test days "
                f"with a {self.gap_days:g}-day gap and at least {self.min_train_days:g} training days need "
                f"{self.required_days:.2f} days",
                file=dataset.name, column="timestamp",
                hint="use fewer folds, shorter test windows, a smaller gap or min_train_days, or more data",
            )
        out = []
        for k in range(self.n_folds):
            test_end = data_end - (self.n_folds - 1 - k) * test
            test_start = test_end - test
            out.append(Fold(k, start, test_start - gap, test_start, test_end, dataset))
        return out

    def split(self, dataset: Dataset) -> Iterator[Fold]:
        """Yield the folds oldest first; each has `.train` and `.test` Datasets."""
        yield from self.folds(dataset)

    def plan(self, dataset: Dataset) -> pd.DataFrame:
        """One row per fold with its boundaries and event counts (cheap: no Datasets built)."""
        times = dataset.events["timestamp"].to_numpy()  # sorted by Dataset.from_frames
        rows = []
        for fold in self.folds(dataset):
            train_n = int(np.searchsorted(times, fold.train_end.to_datetime64(), side="left"))
            lo = int(np.searchsorted(times, fold.test_start.to_datetime64(), side="left"))
            hi = int(np.searchsorted(times, fold.test_end.to_datetime64(), side="left"))
            rows.append({**fold.as_dict(), "train_events": train_n, "gap_events": lo - train_n, "test_events": hi - lo})
        return pd.DataFrame(rows)


def stratified_split(
    dataset: Dataset, test_ratio: float = 0.25, seed: int = 0, min_train: int = 1
) -> tuple[Dataset, Dataset]:
    """Per-user random split of interactions: the protocol of the public MovieLens benchmark tables.

    Interactions are rated events (explicit data) or plays, watch_fraction > 0 (implicit).
    They are split by (user, item) pair, so repeat plays of one title never straddle train
    and test. A user with n pairs and n >= min_train + 1 holds out
    clip(round_half_up(test_ratio * n), 1, n - min_train) pairs chosen uniformly at random;
    users with fewer pairs keep them all in train. Pairs are ordered by (user_id, item_id)
    before drawing, so the split depends only on the data and `seed`, not on row order.

    Returns (train, test): train has every event except the held-out interactions
    (impressions without a play stay in train) plus all searches; test has only the held-out
    interactions. Both keep the full users and items tables. Ignores time: use TimeSeriesCV
    to measure forecasting.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"expected a Dataset, got {type(dataset).__name__}")
    ratio = _check_number("test_ratio", test_ratio, minimum=0.0, strict=True)
    if ratio >= 1:
        raise ValueError(f"test_ratio must be < 1, got {test_ratio!r}")
    if isinstance(min_train, bool) or not isinstance(min_train, (int, np.integer)) or min_train < 1:
        raise ValueError(f"min_train must be an integer >= 1, got {min_train!r}")
    events = dataset.events
    plays = dataset.plays()
    if len(plays) == 0:
        raise DataError("cannot split: the dataset has no interactions (ratings or plays)", file=dataset.name,
                        column="watch_fraction" if dataset.feedback == "implicit" else "rating")
    user_codes, _ = pd.factorize(plays["user_id"], sort=True)
    item_codes, item_uniques = pd.factorize(plays["item_id"], sort=True)
    pair_key = user_codes.astype(np.int64) * len(item_uniques) + item_codes
    pair_keys, pair_of_event = np.unique(pair_key, return_inverse=True)  # sorted by (user, item)
    pair_user = pair_keys // len(item_uniques)
    n_per_user = np.bincount(pair_user)
    eligible = n_per_user >= min_train + 1
    wanted = np.floor(ratio * n_per_user + 0.5).astype(np.int64)
    n_test = np.where(eligible, np.clip(wanted, 1, np.maximum(n_per_user - min_train, 1)), 0)

    rng = np.random.default_rng(seed)
    keys = rng.random(len(pair_keys))
    order = np.lexsort((keys, pair_user))
    starts = np.concatenate(([0], np.cumsum(n_per_user)[:-1]))
    rank = np.empty(len(pair_keys), dtype=np.int64)
    rank[order] = np.arange(len(pair_keys)) - starts[pair_user[order]]
    test_pair = rank < n_test[pair_user]

    held_out = np.zeros(len(events), dtype=bool)
    held_out[events.index.get_indexer(plays.index)] = test_pair[pair_of_event]
    train = replace(dataset, events=events.loc[~held_out].reset_index(drop=True))
    test = replace(dataset, events=events.loc[held_out].reset_index(drop=True), searches=dataset.searches.iloc[:0].copy())
    return train, test


def time_cut(dataset: Dataset, test_ratio: float = 0.2) -> Fold:
    """One global cut in time: the latest `test_ratio` of all interactions are the test side.

    Interactions are rated events (explicit data) or plays (implicit), as in `stratified_split`.
    With n of them sorted by time, the cut is the moment of interaction n - m, where
    m = clip(round_half_up(test_ratio * n), 1, n - 1); the fold trains on everything before the cut
    (`Dataset.as_of`) and tests on every event from it to the end, so interactions tied with the cut's
    moment are all test and the test share can exceed `test_ratio` by those ties. The protocol of the
    public temporal MovieLens tables (e.g. RePlay's date split, last 20% of interactions).
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"expected a Dataset, got {type(dataset).__name__}")
    ratio = _check_number("test_ratio", test_ratio, minimum=0.0, strict=True)
    if ratio >= 1:
        raise ValueError(f"test_ratio must be < 1, got {test_ratio!r}")
    times = np.sort(dataset.plays()["timestamp"].to_numpy())
    column = "watch_fraction" if dataset.feedback == "implicit" else "rating"
    if len(times) < 2:
        raise DataError(f"cannot cut in time: the dataset has {len(times)} interaction(s) and needs at least 2",
                        file=dataset.name, column=column)
    n_test = int(np.clip(np.floor(ratio * len(times) + 0.5), 1, len(times) - 1))
    cut = pd.Timestamp(times[len(times) - n_test])
    if cut <= pd.Timestamp(times[0]):
        raise DataError(f"cannot cut in time: the latest {n_test:,} interactions start at the first moment of the "
                        f"data ({cut}), so nothing would be left to train on", file=dataset.name,
                        column="timestamp", hint="use a smaller test_ratio")
    data_end = dataset.end.floor("s") + pd.Timedelta(seconds=1)
    return Fold(0, dataset.start, cut, cut, max(data_end, cut + pd.Timedelta(seconds=1)), dataset)
