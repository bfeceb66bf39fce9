"""Labels, negative downsampling, duration and propensity weights: hand-computed cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data import Dataset, DataError
from recsys.labels import (
    IGNORED,
    NEGATIVE,
    POSITIVE,
    DownsampleResult,
    LabelConfig,
    WeightConfig,
    correct_probability,
    downsample_negatives,
    duration_weights,
    label_counts,
    label_events,
    propensity_weights,
)


# ------------------------------------------------------------------ labels
def test_implicit_threshold_edges():
    wf = [0.0, 0.05, 0.0999, 0.1, 0.1001, 0.5, 0.7999, 0.8, 0.8001, 1.0]
    expected = [0, 0, 0, -1, -1, -1, -1, -1, 1, 1]
    labels = label_events(pd.DataFrame({"watch_fraction": wf}))
    assert labels.tolist() == expected
    assert labels.dtype == np.int8
    assert labels.name == "label"


def test_unplayed_impressions_can_be_ignored_instead():
    labels = label_events(pd.DataFrame({"watch_fraction": [0.0, 0.05, 0.9]}), LabelConfig(unplayed_is_negative=False))
    assert labels.tolist() == [IGNORED, NEGATIVE, POSITIVE]


def test_custom_thresholds():
    cfg = LabelConfig(positive_above=0.5, negative_below=0.3)
    labels = label_events(pd.DataFrame({"watch_fraction": [0.29, 0.3, 0.5, 0.51]}), cfg)
    assert labels.tolist() == [0, -1, -1, 1]


def test_explicit_ratings_threshold():
    ratings = [1.0, 3.0, 3.5, 3.99, 4.0, 4.5, 5.0, np.nan]
    labels = label_events(pd.DataFrame({"rating": ratings}))
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, -1]
    assert label_events(pd.DataFrame({"rating": [3.0, 4.0]}), LabelConfig(rating_threshold=3.0)).tolist() == [1, 1]


def test_mixed_rows_use_rating_only_without_watch_fraction():
    frame = pd.DataFrame({"watch_fraction": [0.9, np.nan, np.nan, 0.05], "rating": [1.0, 5.0, 2.0, 5.0]})
    assert label_events(frame).tolist() == [1, 1, 0, 0]


def test_labels_keep_index_and_work_on_dataset_events():
    frame = pd.DataFrame({"watch_fraction": [0.9, 0.0]}, index=[10, 3])
    assert label_events(frame).index.tolist() == [10, 3]
    ds = Dataset.from_frames(
        None,
        pd.DataFrame({"item_id": ["i1"], "title": ["T"]}),
        pd.DataFrame({"user_id": ["u", "u"], "item_id": ["i1", "i1"],
                      "timestamp": ["2025-01-02", "2025-01-01"], "watch_fraction": [0.95, 0.0]}),
    )
    assert label_events(ds.events).tolist() == [0, 1]


def test_label_counts():
    assert label_counts(pd.Series([1, 0, 0, -1], dtype=np.int8)) == {"positive": 1, "negative": 2, "ignored": 1}


def test_label_errors():
    with pytest.raises(DataError, match="watch_fraction"):
        label_events(pd.DataFrame({"user_id": ["u"]}))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        label_events(pd.DataFrame({"watch_fraction": [0.5, 1.2]}))
    with pytest.raises(DataError, match="not numbers"):
        label_events(pd.DataFrame({"rating": ["five"]}))
    with pytest.raises(TypeError):
        label_events([0.5])
    with pytest.raises(ValueError):
        LabelConfig(positive_above=0.1, negative_below=0.8)
    with pytest.raises(ValueError):
        LabelConfig(positive_above=1.5)
    with pytest.raises(ValueError):
        LabelConfig(rating_threshold=float("nan"))


fractions = st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.1, 0.8, 1.0]), st.just(np.nan)), max_size=60)


@settings(max_examples=100, deadline=None)
@given(wf=fractions, ratings=st.data())
def test_labels_only_minus_one_zero_one(wf, ratings):
    rating = ratings.draw(st.lists(st.one_of(st.floats(0.5, 5), st.just(np.nan)), min_size=len(wf), max_size=len(wf)))
    frame = pd.DataFrame({"watch_fraction": wf, "rating": rating})
    labels = label_events(frame).to_numpy()
    assert set(np.unique(labels)) <= {-1, 0, 1}
    w = np.asarray(wf, dtype=float)
    assert np.all(labels[w > 0.8] == 1)
    assert np.all(labels[(w >= 0.1) & (w <= 0.8)] == -1)
    assert np.all(labels[w < 0.1] == 0)


# ------------------------------------------------------------ downsampling
def _labeled(n_pos: int, n_neg: int, n_ign: int = 0, users: list[str] | None = None) -> pd.DataFrame:
    labels = [1] * n_pos + [0] * n_neg + [-1] * n_ign
    frame = pd.DataFrame({"label": np.array(labels, dtype=np.int8), "row": np.arange(len(labels))})
    if users is not None:
        frame["user_id"] = users
    return frame


@pytest.mark.parametrize(
    ("ratio", "kept"),
    [(2.0, 6), (5.0, 10), (0.5, 2), (1.0, 3), (1 / 3, 1)],  # 0.5 * 3 = 1.5 rounds up to 2
)
def test_global_downsampling_counts(ratio, kept):
    result = downsample_negatives(_labeled(3, 10, 4), ratio, seed=1)
    assert isinstance(result, DownsampleResult)
    assert result.positives == 3
    assert result.negatives_before == 10
    assert result.negatives_after == kept
    assert result.negatives_dropped == 10 - kept
    assert result.ignored_dropped == 4
    frame = result.frame
    assert (frame["label"] == 1).sum() == 3 and (frame["label"] == 0).sum() == kept
    assert (frame["label"] == -1).sum() == 0
    assert frame.index.is_monotonic_increasing  # original order and index kept
    assert result.negative_keep_rate == pytest.approx(kept / 10)


def test_balance_table():
    result = downsample_negatives(_labeled(3, 10, 4), 2.0, seed=0)
    bal = result.balance().set_index("stage")
    assert bal.loc["before"].to_dict() == {"positive": 3, "negative": 10, "ignored": 4}
    assert bal.loc["after"].to_dict() == {"positive": 3, "negative": 6, "ignored": 0}
    assert result.as_dict()["negatives_dropped"] == 4


def test_downsampling_is_deterministic_per_seed():
    frame = _labeled(50, 1000)
    a = downsample_negatives(frame, 2.0, seed=7).frame.index
    b = downsample_negatives(frame, 2.0, seed=7).frame.index
    c = downsample_negatives(frame, 2.0, seed=8).frame.index
    assert a.equals(b)
    assert not a.equals(c)
    users = [f"u{i % 5}" for i in range(1050)]
    fu = _labeled(50, 1000, users=users)
    assert downsample_negatives(fu, 2.0, 3, by="user_id").frame.index.equals(
        downsample_negatives(fu, 2.0, 3, by="user_id").frame.index)
    assert not downsample_negatives(fu, 2.0, 3, by="user_id").frame.index.equals(
        downsample_negatives(fu, 2.0, 4, by="user_id").frame.index)


def test_per_user_quota():
    # a: 2 positives, 10 negatives -> keeps round(2*2)=4; b: 0 positives, 5 negatives -> min_per_user=1;
    # c: 1 positive, 1 negative -> quota 2 capped at 1.
    users = ["a"] * 2 + ["c"] + ["a"] * 10 + ["b"] * 5 + ["c"]
    labels = [1, 1, 1] + [0] * 16
    frame = pd.DataFrame({"user_id": users, "label": labels})
    result = downsample_negatives(frame, 2.0, seed=0, by="user_id", min_per_user=1)
    negs = result.frame[result.frame["label"] == 0]["user_id"].value_counts().to_dict()
    assert negs == {"a": 4, "b": 1, "c": 1}
    assert result.negatives_after == 6 and result.negatives_before == 16
    none_for_b = downsample_negatives(frame, 2.0, seed=0, by="user_id", min_per_user=0)
    assert "b" not in set(none_for_b.frame.loc[none_for_b.frame["label"] == 0, "user_id"])


def test_importance_weights_global_and_per_user():
    frame = _labeled(3, 10)
    result = downsample_negatives(frame, 2.0, seed=0, reweight=True)
    w = result.frame.set_index("label", append=True)["weight"]
    assert np.allclose(result.frame.loc[result.frame["label"] == 1, "weight"], 1.0)
    assert np.allclose(result.frame.loc[result.frame["label"] == 0, "weight"], 10 / 6)
    # the kept negatives' weights add up to the original negative count
    assert result.frame.loc[result.frame["label"] == 0, "weight"].sum() == pytest.approx(10)
    assert len(w) == 9
    # an existing weight column is multiplied, not replaced
    frame2 = frame.assign(weight=2.0)
    out2 = downsample_negatives(frame2, 2.0, seed=0, reweight=True).frame
    assert np.allclose(out2.loc[out2["label"] == 0, "weight"], 20 / 6)
    assert np.allclose(out2.loc[out2["label"] == 1, "weight"], 2.0)
    # per user: a keeps 4 of 10 -> 2.5; b keeps 1 of 5 -> 5
    users = ["a"] * 2 + ["a"] * 10 + ["b"] * 5
    fu = pd.DataFrame({"user_id": users, "label": [1, 1] + [0] * 15})
    out = downsample_negatives(fu, 2.0, seed=0, by="user_id", reweight=True).frame
    neg = out[out["label"] == 0].groupby("user_id")["weight"].agg(["min", "max", "sum"])
    assert neg.loc["a"].tolist() == pytest.approx([2.5, 2.5, 10.0])
    assert neg.loc["b"].tolist() == pytest.approx([5.0, 5.0, 5.0])
    assert "weight" not in downsample_negatives(fu, 2.0, seed=0).frame.columns


def test_correct_probability():
    assert correct_probability(0.5, 0.1) == pytest.approx(0.5 / (0.5 + 5.0))
    assert correct_probability(0.3, 1.0) == pytest.approx(0.3)
    series = correct_probability(pd.Series([0.0, 1.0], index=[5, 6]), 0.5)
    assert series.index.tolist() == [5, 6] and series.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        correct_probability(0.5, 0.0)


def test_correct_probability_restores_base_rate():
    # A model that learned the downsampled base rate predicts it; correcting gives the original rate.
    result = downsample_negatives(_labeled(100, 900), 1.0, seed=0)
    p_sampled = 100 / (100 + result.negatives_after)
    assert correct_probability(p_sampled, result.negative_keep_rate) == pytest.approx(0.1)


@pytest.mark.parametrize("ratio", [0, -1, float("nan"), float("inf"), "2", True])
def test_bad_ratio(ratio):
    with pytest.raises(ValueError, match="ratio"):
        downsample_negatives(_labeled(1, 1), ratio, seed=0)


def test_downsampling_errors():
    with pytest.raises(DataError, match="label_events"):
        downsample_negatives(pd.DataFrame({"x": [1]}), 1.0, 0)
    with pytest.raises(DataError, match="user_id"):
        downsample_negatives(_labeled(1, 1), 1.0, 0, by="user_id")
    with pytest.raises(DataError, match="not 1, 0 or -1"):
        downsample_negatives(pd.DataFrame({"label": [1, 2]}), 1.0, 0)
    with pytest.raises(ValueError, match="min_per_user"):
        downsample_negatives(_labeled(1, 1, users=["a", "a"]), 1.0, 0, by="user_id", min_per_user=-1)


def test_downsampling_empty_classes():
    assert downsample_negatives(_labeled(0, 5), 2.0, 0).negatives_after == 0
    only_pos = downsample_negatives(_labeled(4, 0), 2.0, 0, reweight=True)
    assert only_pos.negatives_after == 0 and only_pos.negative_keep_rate == 1.0
    assert len(only_pos.frame) == 4


@settings(max_examples=80, deadline=None)
@given(
    labels=st.lists(st.sampled_from([-1, 0, 1]), max_size=200),
    n_users=st.integers(1, 6),
    ratio=st.floats(0.1, 6.0),
    seed=st.integers(0, 2**31),
    per_user=st.booleans(),
    min_per_user=st.integers(0, 3),
)
def test_downsampling_never_drops_positives(labels, n_users, ratio, seed, per_user, min_per_user):
    frame = pd.DataFrame({"label": np.array(labels, dtype=np.int8)})
    frame["user_id"] = [f"u{i % n_users}" for i in range(len(frame))]
    frame.index = frame.index * 3 + 11  # a non-default index must survive
    result = downsample_negatives(frame, ratio, seed, by="user_id" if per_user else None, min_per_user=min_per_user)
    kept = result.frame
    pos = frame.index[frame["label"] == 1]
    assert pos.isin(kept.index).all()
    assert kept.index.isin(frame.index).all() and kept.index.is_unique
    assert (kept["label"] != -1).all()
    n_pos, n_neg = int((frame["label"] == 1).sum()), int((frame["label"] == 0).sum())
    assert result.negatives_after == int((kept["label"] == 0).sum()) <= n_neg
    if not per_user:
        assert result.negatives_after == min(n_neg, math.floor(ratio * n_pos + 0.5))
    else:
        for user, group in frame.groupby("user_id"):
            p, n = int((group["label"] == 1).sum()), int((group["label"] == 0).sum())
            got = int(((kept["user_id"] == user) & (kept["label"] == 0)).sum())
            assert got == min(n, max(min_per_user, math.floor(ratio * p + 0.5)))


# ------------------------------------------------------------------ weights
ITEMS = pd.DataFrame({"item_id": ["movie", "episode", "short", "unknown"],
                      "duration_min": [120.0, 22.0, 5.0, np.nan]})


def test_weights_movie_vs_episode_fixed_reference():
    frame = pd.DataFrame({"item_id": ["movie", "episode"], "watch_fraction": [0.8, 0.8], "label": [1, 1]})
    w = duration_weights(frame, ITEMS, WeightConfig(reference_minutes=60.0))
    # sqrt(96 / 60) and sqrt(17.6 / 60)
    assert w.tolist() == pytest.approx([1.2649110640673518, 0.5416025603090641])
    assert w.iloc[0] > w.iloc[1]
    assert w.attrs["reference_minutes"] == 60.0 and w.attrs["missing"] == 0


def test_weights_median_reference_and_minutes_watched():
    frame = pd.DataFrame({"item_id": ["movie", "episode"], "minutes_watched": [96.0, 17.6], "label": [1, 1]})
    w = duration_weights(frame, None)
    # reference = median(96, 17.6) = 56.8
    assert w.attrs["reference_minutes"] == pytest.approx(56.8)
    assert w.tolist() == pytest.approx([math.sqrt(96 / 56.8), math.sqrt(17.6 / 56.8)])


def test_minutes_watched_preferred_over_fraction_times_duration():
    frame = pd.DataFrame({"item_id": ["movie", "movie"], "watch_fraction": [0.9, 0.9],
                          "minutes_watched": [30.0, np.nan], "label": [1, 1]})
    w = duration_weights(frame, ITEMS, WeightConfig(reference_minutes=30.0, power=1.0))
    assert w.tolist() == pytest.approx([1.0, 108 / 30])


def test_negatives_missing_caps_and_floors():
    frame = pd.DataFrame({
        "item_id": ["movie", "episode", "unknown", "movie", "short", "movie"],
        "watch_fraction": [0.05, 0.9, 0.9, 0.5, 0.9, 1.0],
        "minutes_watched": [np.nan, np.nan, np.nan, np.nan, 0.09, 2000.0],
        "label": [0, 1, 1, -1, 1, 1],
    }, index=list("abcdef"))
    cfg = WeightConfig(reference_minutes=10.0, power=0.5, min_weight=0.1, max_weight=5.0, negative_weight=0.5)
    w = duration_weights(frame, ITEMS, cfg)
    assert w.index.tolist() == list("abcdef")
    assert w["a"] == 0.5 and w["d"] == 0.5           # negative and ignored rows
    assert w["b"] == pytest.approx(math.sqrt(19.8 / 10))
    assert w["c"] == 1.0                              # unknown duration -> missing_weight
    assert w["e"] == pytest.approx(0.1)               # sqrt(0.009) = 0.095 floored
    assert w["f"] == 5.0                              # sqrt(200) capped
    assert w.attrs == {"reference_minutes": 10.0, "missing": 1, "capped": 1, "floored": 1}


def test_weights_without_label_weigh_every_row_and_explicit_data_falls_back():
    frame = pd.DataFrame({"item_id": ["movie", "episode"], "watch_fraction": [0.8, 0.8]})
    w = duration_weights(frame, ITEMS, WeightConfig(reference_minutes=60.0))
    assert w.tolist() == pytest.approx([1.2649110640673518, 0.5416025603090641])
    explicit = pd.DataFrame({"item_id": ["movie"], "rating": [5.0], "label": [1]})
    we = duration_weights(explicit, ITEMS)
    assert we.tolist() == [1.0] and we.attrs["missing"] == 1


def test_weight_errors():
    with pytest.raises(DataError, match="duration_min"):
        duration_weights(pd.DataFrame({"item_id": ["movie"], "watch_fraction": [0.9]}), None)
    with pytest.raises(DataError, match="negative"):
        duration_weights(pd.DataFrame({"minutes_watched": [-1.0]}), None)
    for bad in ({"power": 0}, {"min_weight": 0}, {"min_weight": 3, "max_weight": 2},
                {"reference_minutes": -5}, {"negative_weight": -1}, {"max_weight": float("inf")}):
        with pytest.raises(ValueError):
            WeightConfig(**bad)


def test_propensity_weights_by_hand():
    # median of the logged 0.5, 0.1, 0.02, 0.001 is 0.06; search and autoplay rows log none
    frame = pd.DataFrame({"propensity": [0.5, 0.1, np.nan, 0.02, 0.001], "label": [1, 0, 1, 0, 0]},
                         index=list("abcde"))
    w = propensity_weights(frame, WeightConfig(propensity_clip=20.0))
    assert w.index.tolist() == list("abcde")
    assert w.tolist() == pytest.approx([0.06 / 0.5, 0.06 / 0.1, 1.0, 0.06 / 0.02, 20.0])  # 60 clipped to 20
    assert w.attrs == {"reference": pytest.approx(0.06), "weighted": 4, "clipped": 1}
    fixed = propensity_weights(frame, WeightConfig(propensity_clip=2.0, propensity_reference=0.1))
    assert fixed.tolist() == pytest.approx([0.5, 1.0, 1.0, 2.0, 2.0])
    assert propensity_weights(frame, WeightConfig(propensity_clip=None)).tolist() == [1.0] * 5
    assert propensity_weights(frame.drop(columns="propensity")).tolist() == [1.0] * 5
    assert propensity_weights(pd.DataFrame({"propensity": [0.0, 0.2, 0.4]})).tolist() == pytest.approx([20.0, 1.0, 0.5])
    # a median of 0 (most propensities rounded to 0) falls back to a reference of 1
    zeros = propensity_weights(pd.DataFrame({"propensity": [0.0, 0.0, 0.5]}))
    assert zeros.tolist() == pytest.approx([20.0, 20.0, 2.0]) and zeros.attrs["reference"] == 1.0


def test_propensity_weight_errors():
    with pytest.raises(DataError, match=r"propensity must be in \[0, 1\]: \[1.5\] at rows \['b'\]"):
        propensity_weights(pd.DataFrame({"propensity": [0.5, 1.5]}, index=["a", "b"]))
    for bad in ({"propensity_clip": 0.5}, {"propensity_clip": float("inf")}, {"propensity_reference": 0},
                {"propensity_reference": 1.5}):
        with pytest.raises(ValueError):
            WeightConfig(**bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(float("nan"))), min_size=1, max_size=40),
       st.floats(1.0, 100.0))
def test_propensity_weights_stay_clipped_and_fall_with_the_propensity(props, clip):
    frame = pd.DataFrame({"propensity": props})
    w = propensity_weights(frame, WeightConfig(propensity_clip=clip)).to_numpy()
    p = frame["propensity"].to_numpy()
    logged = ~np.isnan(p)
    assert (w[~logged] == 1.0).all()
    assert ((w[logged] >= 1 / clip - 1e-12) & (w[logged] <= clip + 1e-12)).all()
    order = np.argsort(p[logged], kind="stable")
    assert (np.diff(w[logged][order]) <= 1e-12).all()  # a rarer impression never weighs less


def _hash_sample(frame: pd.DataFrame, seed: int = 0) -> set[tuple]:
    kept = downsample_negatives(frame, 1.0, seed, by="user_id", sampler="hash").frame
    return set(map(tuple, kept[["user_id", "item_id", "timestamp", "label"]].astype(str).to_numpy()))


@settings(max_examples=40)
@given(n=st.integers(5, 60), seed=st.integers(0, 3), shuffle=st.integers(0, 2**16))
def test_hash_sampling_of_a_member_depends_only_on_their_rows(n, seed, shuffle):
    """Alone, among others, in any order: a member keeps the same negatives (what lets Spark recompute any
    partition); the quotas are those of the random sampler."""
    rng = np.random.default_rng(shuffle)
    frame = pd.DataFrame({
        "user_id": rng.choice(["a", "b", "c"], size=n), "item_id": [f"m{i}" for i in rng.integers(0, 15, size=n)],
        "timestamp": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 10**6, size=n), unit="s"),
        "label": rng.choice([0, 0, 1], size=n)})
    whole = _hash_sample(frame, seed)
    shuffled = _hash_sample(frame.sample(frac=1.0, random_state=shuffle % 1000), seed)
    assert whole == shuffled
    for member in frame["user_id"].unique():
        alone = _hash_sample(frame[frame["user_id"] == member], seed)
        assert alone == {row for row in whole if row[0] == member}
    random = downsample_negatives(frame, 1.0, seed, by="user_id").frame
    assert random.groupby("user_id")["label"].value_counts().to_dict() == \
        downsample_negatives(frame, 1.0, seed, by="user_id", sampler="hash").frame.groupby("user_id")[
            "label"].value_counts().to_dict()


def test_row_keys_are_the_same_for_the_same_row_in_any_dtype():
    from recsys.labels import row_keys

    a = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["m1", "m2"],
                      "timestamp": [pd.Timestamp("2025-01-01 10:00"), pd.Timestamp("2025-01-02")],
                      "session_id": ["s1", None], "position": [3, 4]})
    b = a.astype({"user_id": "string", "position": "Int64", "timestamp": "datetime64[us]"})
    b["session_id"] = pd.array(["s1", pd.NA], dtype="string")
    assert (row_keys(a, 7) == row_keys(b, 7)).all()
    assert (row_keys(a, 7) != row_keys(a, 8)).all()
    assert row_keys(a, 7)[0] != row_keys(a.assign(position=[2, 4]), 7)[0]
    with pytest.raises(ValueError, match="sampler must be one of"):
        downsample_negatives(a.assign(label=[0, 1]), 1.0, sampler="coin")
