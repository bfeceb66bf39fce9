"""Point-in-time features: hand-computed values on a tiny world, absence where data lacks a column,
and a property test that nothing after t changes a feature at t."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.data import Dataset
from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.features import FeatureBuilder, NotFittedError, context_features

T0 = pd.Timestamp("2025-12-01 20:00")


def _tiny() -> Dataset:
    users = pd.DataFrame({"user_id": ["a", "b"], "age": [30, 10], "language": ["English", "Korean"],
                          "signup_time": [pd.Timestamp("2025-11-01"), pd.Timestamp("2025-11-21")]})
    items = pd.DataFrame({
        "item_id": ["m1", "m2", "e1", "e2"],
        "title": ["One", "Two", "Show E1", "Show E2"],
        "kind": ["movie", "movie", "episode", "episode"],
        "show_id": [None, None, "s1", "s1"],
        "genres": [["Drama"], ["Comedy", "Drama"], ["Horror"], ["Horror"]],
        "actors": [["X", "Y"], ["Y"], ["Z"], ["Z"]],
        "director": ["D1", "D2", "D3", "D3"],
        "original_language": ["English", "English", "Korean", "Korean"],
        "maturity_rating": ["PG", "R", "PG-13", "PG-13"],
        "duration_min": [120.0, 90.0, 40.0, 40.0],
        "added_at": [pd.Timestamp("2025-01-01")] * 4,
        "release_year": [2020, 2021, 2022, 2022],
    })
    ev = [  # user, item, time offset (hours before T0), watch fraction, session
        ("a", "m1", 48, 0.95, "s1"),
        ("a", "m2", 47, 0.05, "s1"),
        ("a", "e1", 24, 0.90, "s2"),
        ("a", "m2", 23, 0.0, "s2"),  # shown, not played
        ("a", "e2", 0, 1.0, "s3"),  # exactly at T0: not before a row at T0
        ("b", "m1", 10, 0.5, "s4"),
    ]
    events = pd.DataFrame({
        "user_id": [e[0] for e in ev], "item_id": [e[1] for e in ev],
        "timestamp": [T0 - pd.Timedelta(hours=e[2]) for e in ev],
        "watch_fraction": [e[3] for e in ev], "session_id": [e[4] for e in ev],
        "minutes_watched": [e[3] * {"m1": 120, "m2": 90, "e1": 40, "e2": 40}[e[1]] for e in ev],
        "device": ["tv"] * len(ev),
    })
    searches = pd.DataFrame({"user_id": ["a", "a"], "timestamp": [T0 - pd.Timedelta(hours=30), T0],
                             "query": ["scary shows", "comedy"]})
    return Dataset.from_frames(users, items, events, searches)


@pytest.fixture(scope="module")
def tiny_table():
    data = _tiny()
    builder = FeatureBuilder(use_embeddings=False).fit(data)
    rows = pd.DataFrame({"user_id": ["a", "a", "b", "new"], "item_id": ["e2", "m2", "m1", "m1"],
                         "timestamp": [T0] * 4, "device": ["tv", "mobile", "tv", "web"]})
    return builder, builder.transform(rows, data)


def test_user_history_counts_only_strictly_earlier_plays(tiny_table):
    _, t = tiny_table
    f = t.frame
    # a: plays m1 (0.95), m2 (0.05), e1 (0.9) before T0; e2 at T0 excluded; the impression is not a play
    assert f["user_plays"].tolist() == [3, 3, 1, 0]
    assert f["user_positive_share"].iloc[0] == pytest.approx(2 / 3)
    assert f["days_since_last_play"].iloc[0] == pytest.approx(1.0)
    assert np.isnan(f["days_since_last_play"].iloc[3])
    # sessions s1 (114 + 4.5 min) and s2 (36 min): (114 + 4.5 + 36) / 2
    assert f["avg_session_minutes"].iloc[0] == pytest.approx((0.95 * 120 + 0.05 * 90 + 0.9 * 40) / 2)
    assert f["last_genre"].iloc[0] == "Horror" and pd.isna(f["last_genre"].iloc[3])
    # genre shares over a's three plays: Drama in m1, m2; Comedy in m2; Horror in e1
    assert f["user_genre_share_drama"].iloc[0] == pytest.approx(2 / 3)
    assert f["user_genre_share_comedy"].iloc[0] == pytest.approx(1 / 3)
    assert f["user_genre_share_horror"].iloc[0] == pytest.approx(1 / 3)
    assert f["days_since_signup"].iloc[0] == pytest.approx(30 + 20 / 24)


def test_user_by_title_cross_features(tiny_table):
    _, t = tiny_table
    f = t.frame
    # row 0: a x e2 (Horror, actor Z, director D3, Korean, show s1)
    assert f["user_genre_match"].iloc[0] == pytest.approx(1 / 3)
    assert f["user_actor_match"].iloc[0] == pytest.approx(1 / 3)
    assert f["user_director_match"].iloc[0] == pytest.approx(1 / 3)
    assert f["user_language_match"].iloc[0] == pytest.approx(1 / 3)
    assert f["user_show_plays"].iloc[0] == 1
    assert f["language_match"].iloc[0] == 0.0
    # row 1: a x m2 (Comedy/Drama, actor Y, D2): m1 shares Drama and Y; m2 itself shares all
    assert f["user_genre_match"].iloc[1] == pytest.approx(2 / 3)
    assert f["user_actor_match"].iloc[1] == pytest.approx(2 / 3)
    assert f["times_shown_before"].iloc[1] == 1 and f["played_before"].iloc[1] == 1
    assert f["times_shown_before"].iloc[0] == 0 and f["played_before"].iloc[0] == 0
    # b is 10: R-rated m2 would not be allowed, PG m1 is
    assert f["age_allowed"].iloc[2] == 1.0
    # unknown member: no history, no static facts
    assert f["user_genre_match"].iloc[3] == 0 and np.isnan(f["age"].iloc[3])


def test_media_and_context_features(tiny_table):
    _, t = tiny_table
    f = t.frame
    # plays of m1 in the last 1 / 7 days before T0: a's (48 h ago) and b's (10 h ago)
    assert f["item_plays_1d"].iloc[2] == 1 and f["item_plays_7d"].iloc[2] == 2
    assert f["item_positive_rate_30d"].iloc[2] == pytest.approx(0.5)
    assert f["upcoming_holiday"].iloc[0] == "christmas" and f["days_to_holiday"].iloc[0] == 24
    assert f["day_of_week"].iloc[0] == "Mon" and f["daypart"].iloc[0] == "evening"
    assert f["device"].tolist() == ["tv", "mobile", "tv", "web"]


def test_sparse_lists(tiny_table):
    _, t = tiny_table
    assert t.sparse["history_items"].lists() == [["m1", "m2", "e1"], ["m1", "m2", "e1"], ["m1"], []]
    assert t.sparse["search_terms"].lists()[0] == ["scary", "shows"]  # the search at T0 is not before T0
    assert t.sparse["item_actors"].lists()[1] == ["Y"]


def test_chunked_transform_equals_one_pass(leak_setup):
    data, builder = leak_setup
    rows = data.events.sample(500, random_state=1)[["user_id", "item_id", "timestamp", "device"]]
    whole = builder.transform(rows, data)
    builder.chunk_rows = 128
    try:
        chunked = builder.transform(rows, data)
    finally:
        builder.chunk_rows = 200_000
    pd.testing.assert_frame_equal(whole.frame, chunked.frame)
    for name, ragged in whole.sparse.items():
        np.testing.assert_array_equal(ragged.values, chunked.sparse[name].values)
        np.testing.assert_array_equal(ragged.offsets, chunked.sparse[name].offsets)


def test_every_feature_is_described_and_present(tiny_table):
    builder, t = tiny_table
    fs = builder.feature_set
    table = fs.describe()
    assert table["description"].str.len().gt(5).all()
    assert set(fs.names(kind=("dense", "categorical"))) == set(t.frame.columns)
    assert set(fs.sparse) == set(t.sparse)


def test_features_a_dataset_cannot_support_are_absent():
    ratings = pd.DataFrame({"user_id": ["1", "1", "2"], "item_id": ["10", "20", "10"],
                            "timestamp": [1_000_000, 1_000_100, 1_000_200], "rating": [5.0, 2.0, 4.0]})
    items = pd.DataFrame({"item_id": ["10", "20"], "title": ["A", "B"], "genres": [["Drama"], ["Comedy"]]})
    data = Dataset.from_frames(None, items, ratings)
    fs = FeatureBuilder().fit(data).feature_set
    for absent in ("device", "avg_session_minutes", "user_embedding_similarity", "age", "search_terms",
                   "user_actor_match", "days_on_platform"):
        assert absent not in fs
    assert "user_genre_match" in fs and "hour_of_day" in fs


def test_unfitted_builder_is_a_clear_error():
    with pytest.raises(NotFittedError, match="fit"):
        FeatureBuilder().transform(pd.DataFrame({"user_id": [], "item_id": [], "timestamp": []}), _tiny())


def test_thanksgiving_is_the_fourth_thursday_of_november():
    f = context_features(pd.to_datetime(["2025-11-01 12:00", "2026-11-27 12:00"]))
    assert f["upcoming_holiday"].tolist() == ["thanksgiving", "christmas"]
    assert f["days_to_holiday"].tolist() == [26, 28]  # 2025-11-27; in 2026 it was 2026-11-26


def test_context_features_by_hand():
    f = context_features(pd.to_datetime(["2025-10-31 23:30", "2025-07-05 09:00"]), ["mobile", "tv"])
    assert f["upcoming_holiday"].tolist() == ["halloween", "halloween"]
    assert f["days_to_holiday"].tolist() == [0, 26 + 31 + 30 + 31]  # rest of July, August, September, October
    assert f["season_of_year"].tolist() == ["autumn", "summer"]
    assert f["is_weekend"].tolist() == [0.0, 1.0]
    assert f["daypart"].tolist() == ["night", "morning"]


# ----------------------------------------------------------------- leakage
LEAK_WORLD = WorldConfig(seed=5, n_users=120, n_movies=120, n_shows=8, days=90)


@pytest.fixture(scope="module")
def leak_setup():
    data = SyntheticWorld(LEAK_WORLD).simulate()
    emb = np.random.default_rng(0).normal(size=(len(data.items), 16))
    builder = FeatureBuilder().fit(data, item_embeddings=emb)
    return data, builder


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.floats(5, 85), frac_deleted=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_nothing_after_t_changes_any_feature_at_t(leak_setup, day, frac_deleted, seed):
    data, builder = leak_setup
    t = pd.Timestamp(LEAK_WORLD.start) + pd.Timedelta(days=day)
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({
        "user_id": rng.choice(data.users["user_id"], 300),
        "item_id": rng.choice(data.items["item_id"], 300),
        "timestamp": t - pd.to_timedelta(rng.uniform(0, 3600, 300).round(), unit="s") * rng.integers(0, 2, 300),
        "device": rng.choice(["tv", "mobile"], 300),
    })
    before = builder.transform(rows, data)

    ev = data.events
    after = ev["timestamp"] >= t
    changed = ev.copy()
    # delete some later events, rewrite the rest's outcomes, and add plays of the same titles later
    drop = after & (rng.random(len(ev)) < frac_deleted)
    changed.loc[after & ~drop, "watch_fraction"] = rng.uniform(0, 1, int((after & ~drop).sum())).round(3)
    late = t + pd.Timedelta(minutes=5)
    signed_up = rows["user_id"].map(data.users.set_index("user_id")["signup_time"]) <= t
    on_platform = rows["item_id"].map(data.items.set_index("item_id")["added_at"]) <= t
    # plays at exactly t (the same instant as the rows: not "before") and a little later
    extra = rows[signed_up & on_platform].assign(
        timestamp=np.where(rng.random(len(rows)) < 0.5, t, late)[(signed_up & on_platform).to_numpy()],
        watch_fraction=1.0, minutes_watched=50.0, session_id="late", source="row")
    changed = pd.concat([changed[~drop], extra], ignore_index=True)
    searches = pd.concat([data.searches[data.searches["timestamp"] < t],
                          pd.DataFrame({"user_id": rows.loc[signed_up, "user_id"], "timestamp": late,
                                        "query": "leak"})])
    perturbed = Dataset.from_frames(data.users, data.items, changed, searches)
    again = builder.transform(rows, perturbed)

    _same_tables(before, again)  # to the last bit


def test_pair_counts_match_a_count_by_hand_for_every_member(leak_setup):
    """times_shown_before and played_before count this member's own (title, earlier) events, whoever the member is."""
    data, builder = leak_setup
    ev = data.events
    rows = ev.sample(200, random_state=3)[["user_id", "item_id", "timestamp", "device"]].reset_index(drop=True)
    f = builder.transform(rows, data).frame
    sec = ev["timestamp"].dt.floor("s")
    for r, row in rows.iterrows():
        mine = (ev["user_id"] == row.user_id) & (ev["item_id"] == row.item_id) & (sec < row.timestamp.floor("s"))
        assert f["times_shown_before"].iat[r] == int((mine & (ev["watch_fraction"] == 0)).sum()), r
        assert f["played_before"].iat[r] == float((mine & (ev["watch_fraction"] > 0)).any()), r


# ------------------------------------------------------ groups: alone, in a batch, either path
def _same_tables(a, b) -> None:
    pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
    for name, ragged in a.sparse.items():
        assert ragged.lists() == b.sparse[name].lists(), name


def _candidate_rows(data, members, per_member: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    items = data.items["item_id"].to_numpy()
    t = data.end - pd.Timedelta(days=10)
    return pd.DataFrame({"user_id": np.repeat(members, per_member),
                         "item_id": np.concatenate([rng.choice(items, per_member, replace=False) for _ in members]),
                         "timestamp": t, "device": "tv"})


def test_a_members_features_are_identical_alone_and_in_a_batch(leak_setup):
    data, builder = leak_setup
    history = builder.index(data)
    members = data.users["user_id"].to_numpy()[:12]
    for rows in (_candidate_rows(data, members, 40, 0),  # many rows per member and moment
                 data.events[data.events["user_id"].isin(members)].head(400)[  # one moment per row
                     ["user_id", "item_id", "timestamp", "device"]].reset_index(drop=True)):
        together = builder.transform(rows, history)
        for member in members[:6]:
            mine = np.flatnonzero(rows["user_id"].to_numpy() == member)
            alone = builder.transform(rows.iloc[mine].reset_index(drop=True), history)
            _same_tables(together.take(mine), alone)


def test_the_per_query_and_per_row_computations_agree(leak_setup, monkeypatch):
    from recsys.features import user_media

    data, builder = leak_setup
    history = builder.index(data)
    rows = _candidate_rows(data, data.users["user_id"].to_numpy()[:20], 30, 1)
    per_query = builder.transform(rows, history)
    monkeypatch.setattr(user_media, "ROWS_PER_QUERY", 10**9)  # force the per-row pairing
    per_row = builder.transform(rows, history)
    _same_tables(per_query, per_row)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.floats(5, 85), seed=st.integers(0, 2**16))
def test_nothing_after_t_changes_a_candidate_lists_features(leak_setup, day, seed):
    """The per-query path (many titles for one member and moment) is as blind to the future as the per-row one."""
    data, builder = leak_setup
    t = pd.Timestamp(LEAK_WORLD.start) + pd.Timedelta(days=day)
    members = np.random.default_rng(seed).choice(data.users["user_id"], 8, replace=False)
    rows = _candidate_rows(data, members, 40, seed).assign(timestamp=t)
    before = builder.transform(rows, data)
    ev = data.events
    later = ev[ev["timestamp"] >= t].assign(watch_fraction=1.0, minutes_watched=30.0)
    allowed = (rows["user_id"].map(data.users.set_index("user_id")["signup_time"]) <= t) & \
        (rows["item_id"].map(data.items.set_index("item_id")["added_at"]) <= t)
    extra = rows[allowed].assign(watch_fraction=1.0, minutes_watched=50.0, session_id="late", source="row",
                                 timestamp=t + pd.Timedelta(seconds=1))
    changed = pd.concat([ev[ev["timestamp"] < t], later, extra], ignore_index=True)
    again = builder.transform(rows, Dataset.from_frames(data.users, data.items, changed, data.searches))
    _same_tables(before, again)


def test_extending_the_index_equals_indexing_everything(leak_setup):
    """What `observe` does (add later events to the index) gives what indexing all the events gives."""
    data, builder = leak_setup
    cut = data.end - pd.Timedelta(days=10)
    early = data.events[data.events["timestamp"] < cut]
    later = data.events[data.events["timestamp"] >= cut]
    base = builder.index(Dataset.from_frames(data.users, data.items, early, data.searches))
    extended = base
    for part in np.array_split(np.arange(len(later)), 5):
        extended = extended.extend(later.iloc[part])
    full = builder.index(data)
    rows = _candidate_rows(data, data.users["user_id"].to_numpy()[:15], 30, 2).assign(timestamp=data.end)
    _same_tables(builder.transform(rows, extended), builder.transform(rows, full))
    assert base.extend(later.iloc[:0]) is base


@settings(max_examples=60, deadline=None)
@given(scores=st.lists(st.lists(st.sampled_from([0.0, 1.0, 2.5, -1.0, float("-inf"), float("nan"), 3.0]),
                                min_size=6, max_size=6), min_size=1, max_size=4),
       personal=st.booleans())
def test_source_ranks_are_the_positions_a_stable_sort_gives(scores, personal):
    from recsys.features.source_scores import SourceScores

    raw = np.asarray(scores, dtype=float)
    if not personal:
        raw = np.repeat(raw[:1], len(raw), axis=0)
    member = np.repeat(np.arange(len(raw)), raw.shape[1])
    item = np.tile(np.arange(raw.shape[1]), len(raw))
    block = SourceScores(["s"]).compute(member, item, [raw], [personal])
    values = np.where(np.isfinite(raw), raw, np.nan)
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), axis=1, kind="stable")
    expected = np.empty_like(order)
    np.put_along_axis(expected, order, np.arange(1, raw.shape[1] + 1)[None, :].repeat(len(raw), 0), axis=1)
    expected = np.where(np.isnan(values), np.nan, expected).ravel()
    np.testing.assert_array_equal(block.columns["cand_rank_s"], expected)
    np.testing.assert_array_equal(block.columns["cand_score_s"], values.ravel())


def test_every_group_declares_exactly_what_it_computes(leak_setup):
    data, builder = leak_setup
    table = builder.transform(_candidate_rows(data, data.users["user_id"].to_numpy()[:3], 20, 3), data)
    for group in builder.groups_:
        computed = {name for block in group.compute(builder.rows(
            _candidate_rows(data, data.users["user_id"].to_numpy()[:3], 20, 3), builder.index(data)),
            builder.index(data), builder.titles_) for name in block.columns}
        assert computed == set(group.names), group.name
        assert all(f.name in table for f in group.features_)


def test_a_signup_after_the_moment_is_not_revealed():
    """Rows at a moment before the member joined (the start of a training window, say) must not carry the
    future signup as a negative tenure."""
    data = _tiny()
    builder = FeatureBuilder(use_embeddings=False).fit(data)
    rows = pd.DataFrame({"user_id": ["b", "b"], "item_id": ["m1", "m1"],
                         "timestamp": [pd.Timestamp("2025-11-20"), pd.Timestamp("2025-11-22")], "device": "tv"})
    f = builder.transform(rows, data).frame
    assert np.isnan(f["days_since_signup"].iat[0]) and f["days_since_signup"].iat[1] == pytest.approx(1.0)
