"""Time-series CV folds and the per-user stratified split: hand-computed cases and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data import Dataset, DataError
from recsys.splits import Fold, TimeSeriesCV, stratified_split, time_cut

T0 = pd.Timestamp("2025-01-01 12:00:00")


def _daily_dataset(days: int = 30) -> Dataset:
    """One play per day at noon, days 0..days-1; item i1 was added on day 20."""
    items = pd.DataFrame({"item_id": ["i0", "i1"], "title": ["Old", "New"],
                          "added_at": [T0 - pd.Timedelta(days=100), T0 + pd.Timedelta(days=20)]})
    events = pd.DataFrame({
        "user_id": ["u"] * days,
        "item_id": ["i0"] * days,
        "timestamp": [T0 + pd.Timedelta(days=d) for d in range(days)],
        "watch_fraction": [0.9] * days,
    })
    return Dataset.from_frames(None, items, events)


# ------------------------------------------------------------ time series
def test_folds_hand_computed():
    ds = _daily_dataset(30)
    cv = TimeSeriesCV(n_folds=3, test_days=5, gap_days=1, min_train_days=10)
    folds = list(cv.split(ds))
    assert [f.index for f in folds] == [0, 1, 2]
    assert cv.get_n_splits() == 3
    end = pd.Timestamp("2025-01-30 12:00:01")  # last event (day 29) floored to the second + 1 s
    assert folds[2].test_end == end
    assert folds[2].test_start == end - pd.Timedelta(days=5)
    assert folds[0].test_start == pd.Timestamp("2025-01-15 12:00:01")
    assert folds[0].train_end == pd.Timestamp("2025-01-14 12:00:01")
    assert all(f.train_start == T0 for f in folds)
    # fold 0 trains on days 0..13; day 14 is in the gap; tests on days 15..19
    f0 = folds[0]
    assert f0.train.events["timestamp"].tolist() == [T0 + pd.Timedelta(days=d) for d in range(14)]
    assert f0.test.events["timestamp"].tolist() == [T0 + pd.Timedelta(days=d) for d in range(15, 20)]
    assert len(folds[1].train.events) == 19 and len(folds[2].train.events) == 24
    assert folds[2].test.events["timestamp"].iloc[-1] == ds.end
    # train is as_of: the title added on day 20 is unknown to fold 0's training data
    assert f0.train.items["item_id"].tolist() == ["i0"]
    assert folds[2].train.items["item_id"].tolist() == ["i0", "i1"]
    assert set(folds[0].test.items["item_id"]) == {"i0", "i1"}
    plan = cv.plan(ds)
    assert plan["train_events"].tolist() == [14, 19, 24]
    assert plan["gap_events"].tolist() == [1, 1, 1]
    assert plan["test_events"].tolist() == [5, 5, 5]
    assert isinstance(folds[0], Fold) and "dataset" not in repr(folds[0])


def test_no_gap_windows_tile_the_end():
    ds = _daily_dataset(30)
    folds = list(TimeSeriesCV(n_folds=4, test_days=3, min_train_days=7).split(ds))
    for a, b in zip(folds, folds[1:]):
        assert a.test_end == b.test_start
    for f in folds:
        assert f.train_end == f.test_start
    assert sum(len(f.test.events) for f in folds) == 12


def test_span_too_short_is_a_clear_error():
    ds = _daily_dataset(10)  # spans 9 days + 1 s
    with pytest.raises(DataError, match=r"need 16\.00 days"):
        list(TimeSeriesCV(n_folds=2, test_days=3, gap_days=0, min_train_days=10).split(ds))
    # just enough: 9 days + 1 s of data, 3 folds of 2 days and 3 training days
    assert len(TimeSeriesCV(n_folds=3, test_days=2, min_train_days=3).folds(ds)) == 3


@pytest.mark.parametrize("kwargs", [
    {"n_folds": 0}, {"n_folds": 1.5}, {"n_folds": True}, {"test_days": 0}, {"test_days": -1},
    {"gap_days": -0.5}, {"min_train_days": 0}, {"test_days": float("nan")}, {"gap_days": "1"},
])
def test_bad_cv_settings(kwargs):
    with pytest.raises(ValueError):
        TimeSeriesCV(**kwargs)


def test_split_needs_a_dataset():
    with pytest.raises(TypeError):
        list(TimeSeriesCV().split(pd.DataFrame()))


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 40 * 86400), min_size=1, max_size=40),
    n_folds=st.integers(1, 4),
    test_days=st.floats(0.25, 6),
    gap_days=st.floats(0, 3),
    min_train_days=st.floats(0.25, 8),
)
def test_folds_never_leak(offsets, n_folds, test_days, gap_days, min_train_days):
    events = pd.DataFrame({
        "user_id": [f"u{i % 3}" for i in range(len(offsets))],
        "item_id": "i",
        "timestamp": [T0 + pd.Timedelta(seconds=s) for s in offsets],
        "watch_fraction": 0.5,
    })
    ds = Dataset.from_frames(None, pd.DataFrame({"item_id": ["i"], "title": ["T"]}), events)
    cv = TimeSeriesCV(n_folds, test_days, gap_days, min_train_days)
    span = ds.end.floor("s") + pd.Timedelta(seconds=1) - ds.start
    if span < pd.Timedelta(days=cv.required_days):
        with pytest.raises(DataError):
            cv.folds(ds)
        return
    folds = list(cv.split(ds))
    assert len(folds) == n_folds
    assert folds[-1].test_end > ds.end  # the last event is inside the last test window
    assert ds.end.floor("s") + pd.Timedelta(seconds=1) == folds[-1].test_end
    prev_train = -1
    for i, fold in enumerate(folds):
        assert fold.train_end <= fold.test_start < fold.test_end
        assert fold.test_start - fold.train_end == pd.Timedelta(days=gap_days)
        assert fold.train_end - fold.train_start >= pd.Timedelta(days=min_train_days)
        if i:
            assert folds[i - 1].test_end == fold.test_start
        train_t, test_t = fold.train.events["timestamp"], fold.test.events["timestamp"]
        if len(train_t) and len(test_t):
            assert train_t.max() < test_t.min()
        assert (train_t < fold.train_end).all()
        assert ((test_t >= fold.test_start) & (test_t < fold.test_end)).all()
        assert len(train_t) >= prev_train  # expanding window
        prev_train = len(train_t)
    # every event at or after the first test start lands in exactly one test window
    first = folds[0].test_start
    assert sum(len(f.test.events) for f in folds) == int((ds.events["timestamp"] >= first).sum())


# ------------------------------------------------------------ stratified
def _ratings_dataset(counts: dict[str, int]) -> Dataset:
    rows = []
    t = 0
    for user, n in counts.items():
        for j in range(n):
            rows.append({"user_id": user, "item_id": f"m{j}", "timestamp": T0 + pd.Timedelta(minutes=t),
                         "rating": float(1 + j % 5)})
            t += 1
    n_items = max(counts.values())
    items = pd.DataFrame({"item_id": [f"m{j}" for j in range(n_items)], "title": "T"})
    users = pd.DataFrame({"user_id": list(counts) + ["lurker"]})
    return Dataset.from_frames(users, items, pd.DataFrame(rows))


def _per_user(ds: Dataset) -> dict[str, int]:
    return ds.events["user_id"].value_counts().to_dict()


def test_stratified_counts_hand_computed():
    ds = _ratings_dataset({"a": 4, "b": 1, "c": 10, "d": 2})
    train, test = stratified_split(ds, test_ratio=0.25, seed=0)
    # a: round(1.0)=1; b: single interaction stays in train; c: round(2.5)=3; d: round(0.5)=1
    assert _per_user(test) == {"a": 1, "c": 3, "d": 1}
    assert _per_user(train) == {"a": 3, "b": 1, "c": 7, "d": 1}
    train2, test2 = stratified_split(ds, test_ratio=0.25, seed=0, min_train=2)
    # with min_train=2, d (2 interactions) cannot spare one; a keeps 3 >= 2
    assert _per_user(test2) == {"a": 1, "c": 3}
    assert train.users["user_id"].tolist() == test.users["user_id"].tolist() == ["a", "b", "c", "d", "lurker"]
    assert len(train.items) == len(test.items) == 10
    train9, test9 = stratified_split(ds, test_ratio=0.9, seed=0)
    # c: round(9)=9 -> 9 test, 1 train; a: round(3.6)=4 capped at 3
    assert _per_user(test9) == {"a": 3, "c": 9, "d": 1}


def test_stratified_is_seeded():
    ds = _ratings_dataset({"a": 40, "b": 30})
    key = lambda d: sorted(zip(d.events["user_id"], d.events["item_id"]))  # noqa: E731
    assert key(stratified_split(ds, seed=3)[1]) == key(stratified_split(ds, seed=3)[1])
    assert key(stratified_split(ds, seed=3)[1]) != key(stratified_split(ds, seed=4)[1])


def test_stratified_implicit_keeps_impressions_in_train_and_pairs_together():
    events = pd.DataFrame({
        "user_id": ["u"] * 8,
        "item_id": ["a", "a", "b", "c", "d", "x", "y", "a"],
        "timestamp": [T0 + pd.Timedelta(hours=h) for h in range(8)],
        "watch_fraction": [0.5, 0.9, 0.95, 0.05, 0.3, 0.0, 0.0, 0.0],
    })
    items = pd.DataFrame({"item_id": list("abcdxy"), "title": "T"})
    searches = pd.DataFrame({"user_id": ["u"], "timestamp": [T0], "query": ["space"]})
    ds = Dataset.from_frames(None, items, events, searches)
    for seed in range(20):
        train, test = stratified_split(ds, test_ratio=0.5, seed=seed)
        # 4 played pairs (a, b, c, d): 2 held out; impressions (x, y and a's unplayed one) stay in train
        assert test.events["item_id"].nunique() == 2
        assert (test.events["watch_fraction"] > 0).all()
        held = set(test.events["item_id"])
        assert not held & set(train.events.loc[train.events["watch_fraction"] > 0, "item_id"])
        assert {"x", "y"} <= set(train.events["item_id"])
        if "a" in held:
            assert len(test.events[test.events["item_id"] == "a"]) == 2
        assert len(train.events) + len(test.events) == 8
        assert len(train.searches) == 1 and len(test.searches) == 0


def test_stratified_errors():
    ds = _ratings_dataset({"a": 4})
    for bad in (0, 1, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError):
            stratified_split(ds, test_ratio=bad)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError):
            stratified_split(ds, min_train=bad)
    with pytest.raises(TypeError):
        stratified_split(ds.events)
    unplayed = Dataset.from_frames(
        None, pd.DataFrame({"item_id": ["i"], "title": ["T"]}),
        pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [T0], "watch_fraction": [0.0]}),
    )
    with pytest.raises(DataError, match="no interactions"):
        stratified_split(unplayed)


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 12), st.sampled_from([0.0, 0.05, 0.5, 1.0])),
                   min_size=1, max_size=80),
    ratio=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**31),
    min_train=st.integers(1, 3),
)
def test_stratified_partitions_each_users_interactions(pairs, ratio, seed, min_train):
    events = pd.DataFrame({
        "user_id": [f"u{u}" for u, _, _ in pairs],
        "item_id": [f"i{i}" for _, i, _ in pairs],
        "timestamp": [T0 + pd.Timedelta(minutes=k) for k in range(len(pairs))],
        "watch_fraction": [w for _, _, w in pairs],
    })
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(13)], "title": "T"})
    ds = Dataset.from_frames(None, items, events)
    if len(ds.plays()) == 0:
        with pytest.raises(DataError):
            stratified_split(ds, ratio, seed, min_train)
        return
    train, test = stratified_split(ds, ratio, seed, min_train)
    cols = ["user_id", "item_id", "timestamp", "watch_fraction"]
    # exact partition of all events: nothing lost, nothing duplicated
    both = pd.concat([train.events[cols], test.events[cols]]).sort_values(["timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(both, ds.events[cols].reset_index(drop=True))
    assert (test.events["watch_fraction"] > 0).all()
    train_plays = train.plays()
    held = set(zip(test.events["user_id"], test.events["item_id"]))
    assert not held & set(zip(train_plays["user_id"], train_plays["item_id"]))
    plays = ds.plays()
    n_pairs = plays.drop_duplicates(["user_id", "item_id"]).groupby("user_id").size()
    n_test = test.events.drop_duplicates(["user_id", "item_id"]).groupby("user_id").size()
    for user, n in n_pairs.items():
        t = int(n_test.get(user, 0))
        if n >= min_train + 1:
            assert 1 <= t <= n - min_train
            assert t == min(max(int(np.floor(ratio * n + 0.5)), 1), n - min_train)
        else:
            assert t == 0


# ------------------------------------------------------------ time cut
def test_time_cut_hand_computed():
    ds = _ratings_dataset({"a": 4, "b": 1, "c": 10, "d": 2})  # 17 ratings at minutes 0..16: a 0-3, b 4, c 5-14, d 15-16
    fold = time_cut(ds, test_ratio=0.25)  # round(4.25) = 4 latest ratings -> the cut is minute 13
    assert fold.train_end == fold.test_start == T0 + pd.Timedelta(minutes=13)
    assert fold.test_end == T0 + pd.Timedelta(minutes=16, seconds=1)
    assert len(fold.train.events) == 13 and fold.train.events["timestamp"].max() == T0 + pd.Timedelta(minutes=12)
    assert fold.test.events[["user_id", "item_id"]].values.tolist() == [["c", "m8"], ["c", "m9"], ["d", "m0"],
                                                                        ["d", "m1"]]
    assert len(time_cut(ds, test_ratio=0.01).test.events) == 1  # round(0.17) = 0, but at least one is held out
    assert len(time_cut(ds, test_ratio=0.99).train.events) == 1  # and at least one is kept


def test_time_cut_puts_every_tie_of_the_cut_moment_in_test():
    minutes = [0, 1, 2, 2, 2, 3]
    events = pd.DataFrame({"user_id": list("abcdef"), "item_id": "m0", "rating": 5.0,
                           "timestamp": [T0 + pd.Timedelta(minutes=m) for m in minutes]})
    ds = Dataset.from_frames(None, pd.DataFrame({"item_id": ["m0"], "title": ["T"]}), events)
    fold = time_cut(ds, test_ratio=0.5)  # 3 latest: the cut is minute 2, whose three ratings all go to test
    assert fold.train_end == T0 + pd.Timedelta(minutes=2)
    assert sorted(fold.test.events["user_id"]) == ["c", "d", "e", "f"] and len(fold.train.events) == 2


def test_time_cut_errors():
    ds = _ratings_dataset({"a": 1})
    with pytest.raises(DataError, match="1 interaction"):
        time_cut(ds)
    same = _ratings_dataset({"a": 3})
    same = Dataset.from_frames(same.users, same.items, same.events.assign(timestamp=T0))
    with pytest.raises(DataError, match="nothing would be left to train on"):
        time_cut(same, test_ratio=0.3)
    for bad in (0, 1, 1.5, float("nan"), "0.2"):
        with pytest.raises(ValueError, match="test_ratio"):
            time_cut(_ratings_dataset({"a": 4}), test_ratio=bad)


@settings(max_examples=40, deadline=None)
@given(minutes=st.lists(st.integers(0, 30), min_size=2, max_size=40), ratio=st.floats(0.01, 0.95))
def test_time_cut_never_leaks_and_splits_every_event_once(minutes, ratio):
    events = pd.DataFrame({"user_id": [f"u{i % 3}" for i in range(len(minutes))], "item_id": [f"m{i}" for i in
                                                                                            range(len(minutes))],
                           "timestamp": [T0 + pd.Timedelta(minutes=m) for m in minutes], "rating": 4.0})
    items = pd.DataFrame({"item_id": [f"m{i}" for i in range(len(minutes))], "title": "T"})
    ds = Dataset.from_frames(None, items, events)
    try:
        fold = time_cut(ds, test_ratio=ratio)
    except DataError:  # every interaction at one moment, or all the latest ones at the first moment
        assert len(set(minutes)) == 1 or sorted(minutes)[len(minutes) - max(1, min(len(minutes) - 1, int(
            np.floor(ratio * len(minutes) + 0.5))))] == min(minutes)
        return
    train, test = fold.train.events, fold.test.events
    assert len(train) + len(test) == len(ds.events) and len(train) >= 1
    assert (train["timestamp"] < fold.train_end).all() and (test["timestamp"] >= fold.test_start).all()
    wanted = max(1, min(len(minutes) - 1, int(np.floor(ratio * len(minutes) + 0.5))))
    assert len(test) >= wanted  # ties with the cut moment may add to it, never take away
