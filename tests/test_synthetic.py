"""The simulated world: determinism, and the ground truth it promises (known by construction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from recsys.data import load_dataset
from recsys.data.schema import MATURITY_MIN_AGE
from recsys.data.synthetic import DEVICES, SyntheticWorld, WorldConfig, load_world

SMALL = WorldConfig(seed=11, n_users=300, n_movies=200, n_shows=15)


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(SMALL)


@pytest.fixture(scope="module")
def data(world):
    return world.simulate()


def test_same_seed_same_world_and_logs(data):
    again = SyntheticWorld(SMALL).simulate()
    pd.testing.assert_frame_equal(again.events, data.events)
    pd.testing.assert_frame_equal(again.items, data.items)
    pd.testing.assert_frame_equal(again.users, data.users)
    pd.testing.assert_frame_equal(again.searches, data.searches)


def test_other_seed_other_logs(data):
    other = SyntheticWorld(WorldConfig(seed=12, n_users=300, n_movies=200, n_shows=15)).simulate()
    assert not other.events[["user_id", "item_id"]].head(500).equals(data.events[["user_id", "item_id"]].head(500))


def test_tables_follow_the_schema(data):
    # from_frames validated them; check the promised shape of the world as well
    assert set(data.items["kind"]) == {"movie", "episode"}
    episodes = data.items[data.items["kind"] == "episode"]
    assert episodes["show_id"].notna().all() and episodes["season"].notna().all()
    assert (data.items["added_at"] >= data.items["release_date"]).all()
    assert set(data.events["device"]) <= set(DEVICES)
    assert set(data.events["source"]) == {"row", "search", "autoplay"}
    assert data.feedback == "implicit"


def test_liked_titles_mostly_finished_disliked_abandoned_and_a_real_middle_band(world, data):
    plays = data.events[data.events["watch_fraction"] > 0]
    when = plays["timestamp"].to_numpy()
    finish_if_played = world.true_watch_probability(plays["user_id"], plays["item_id"], when, plays["device"].to_numpy()) \
        / world.true_play_probability(plays["user_id"], plays["item_id"], when, plays["device"].to_numpy())
    liked = plays[finish_if_played > 0.7]
    disliked = plays[finish_if_played < 0.25]
    assert len(liked) > 200 and len(disliked) > 50
    assert (liked["watch_fraction"] > 0.8).mean() > 0.75
    assert (disliked["watch_fraction"] < 0.1).mean() > 0.5
    middle = plays["watch_fraction"].between(0.1, 0.8).mean()
    assert 0.05 < middle < 0.35


def test_true_watch_probability_matches_logged_outcomes_at_the_top_slot(world, data):
    top = data.events[(data.events["source"] == "row") & (data.events["position"] == 0)]
    predicted = world.true_watch_probability(top["user_id"], top["item_id"], top["timestamp"].to_numpy(),
                                             top["device"].to_numpy(), position=0)
    observed = (top["watch_fraction"] > 0.8).mean()
    assert abs(predicted.mean() - observed) < 0.1 * observed + 3 * np.sqrt(observed * (1 - observed) / len(top))
    # and it ranks: the better half by truth finishes far more often than the worse half
    order = predicted > np.median(predicted)
    assert (top["watch_fraction"][order] > 0.8).mean() > 2 * (top["watch_fraction"][~order] > 0.8).mean()


def test_position_bias_lowers_plays_down_the_row(data):
    rows = data.events[data.events["source"] == "row"]
    ctr = rows.groupby("position")["watch_fraction"].apply(lambda s: (s > 0).mean())
    assert ctr.iloc[0] > 3 * ctr.iloc[-1]
    assert (np.diff(ctr.to_numpy()) < 0.01).all()


def test_row_propensities_are_probabilities_only_where_a_policy_chose(data):
    ev = data.events
    rows = ev["source"] == "row"
    assert ev.loc[rows, "propensity"].between(0, 1, inclusive="right").all()
    assert ev.loc[~rows, "propensity"].isna().all() and ev.loc[~rows, "position"].isna().all()


def test_no_member_plays_a_title_above_their_age(data):
    ev = data.events.merge(data.users[["user_id", "age"]], on="user_id").merge(
        data.items[["item_id", "maturity_rating"]], on="item_id")
    min_age = ev["maturity_rating"].map(MATURITY_MIN_AGE)
    assert (ev["age"] >= min_age).all()  # the policy never shows them either
    kids = data.users[data.users["age"] < 13]
    assert len(kids) > 5


def test_nothing_happens_before_signup_or_before_a_title_arrives(data):
    ev = data.events.merge(data.users[["user_id", "signup_time"]], on="user_id").merge(
        data.items[["item_id", "added_at"]], on="item_id")
    assert (ev["timestamp"] >= ev["signup_time"]).all()
    assert (ev["timestamp"] >= ev["added_at"]).all()
    assert (data.users["signup_time"] >= pd.Timestamp(SMALL.start)).sum() > 30  # members who join during the log


def test_binges_follow_finished_episodes_of_the_same_show(data):
    ev = data.events.merge(data.items[["item_id", "show_id", "season", "episode"]], on="item_id")
    auto = ev[ev["source"] == "autoplay"]
    assert len(auto) > 20
    plays = ev[ev["watch_fraction"] > 0].sort_values("timestamp", kind="stable")
    prev = plays.groupby("session_id").shift(1)
    auto_prev = prev.loc[auto.index]
    assert (auto_prev["watch_fraction"] > 0.8).all()
    assert (auto_prev["show_id"] == auto["show_id"]).all()


def test_christmas_titles_are_watched_in_december_not_july(data):
    ev = data.events.merge(data.items[["item_id", "tags"]], on="item_id")
    plays = ev[ev["watch_fraction"] > 0.8]
    xmas = plays["tags"].map(lambda t: "christmas" in t)
    month = plays["timestamp"].dt.month
    share_dec = xmas[month == 12].mean()
    share_summer = xmas[month.isin([7, 8, 9])].mean()
    assert share_dec > 4 * share_summer


def test_members_prefer_their_own_language(data):
    rows = data.events[data.events["source"] == "row"].merge(
        data.users[["user_id", "language"]], on="user_id").merge(
        data.items[["item_id", "original_language"]], on="item_id")
    rows = rows[rows["language"] != "English"]
    finished = rows["watch_fraction"] > 0.8
    own = finished[rows["language"] == rows["original_language"]].mean()
    foreign = finished[(rows["language"] != rows["original_language"]) & (rows["original_language"] != "English")]
    assert own > 1.5 * foreign.mean()


def test_searches_lead_to_matching_plays(data):
    searched = data.events[data.events["source"] == "search"]
    assert len(data.searches) >= len(searched) > 20
    assert set(searched["session_id"]) <= set(data.searches["session_id"])


def test_synopses_carry_their_genre(data):
    movies = data.items[data.items["kind"] == "movie"]
    text = movies["synopsis"]
    genre = movies["genres"].map(lambda g: g[0])
    x = TfidfVectorizer(min_df=2).fit_transform(text)
    predicted = cross_val_predict(LogisticRegression(max_iter=1000), x, genre, cv=3)
    hit = [p in g for p, g in zip(predicted, movies["genres"])]
    assert np.mean(hit) > 0.85  # a genre read from the text alone is one of the title's genres


def test_respond_is_deterministic_and_the_oracle_list_beats_a_random_one(world, data):
    when = pd.Timestamp(SMALL.start) + pd.Timedelta(days=100, hours=20)
    users = world.users["user_id"].iloc[:120]
    rng = np.random.default_rng(0)
    oracle_minutes, random_minutes = 0.0, 0.0
    for k, user in enumerate(users):
        best = world.oracle_scores(user, when).nlargest(10).index
        rand = rng.choice(world.items["item_id"], size=10, replace=False)
        a = world.respond(user, best, when, seed=k)
        pd.testing.assert_frame_equal(a, world.respond(user, best, when, seed=k))
        oracle_minutes += a["minutes_watched"].sum()
        random_minutes += world.respond(user, rand, when, seed=k)["minutes_watched"].sum()
    assert oracle_minutes > 3 * random_minutes


def test_the_oracle_matrix_equals_the_pairwise_truth(world):
    users = world.users["user_id"].iloc[:7].to_numpy()
    when = pd.Timestamp("2025-12-20 21:30")
    matrix = world.true_watch_matrix(users, when, device="mobile")
    items = world.items["item_id"].to_numpy()
    for row, user in enumerate(users):
        pairwise = world.true_watch_probability(np.repeat(user, len(items)), items, when, device="mobile")
        np.testing.assert_allclose(matrix[row], pairwise, rtol=1e-12)
    pd.testing.assert_series_equal(world.oracle_scores(users[0], when, "mobile"),
                                   pd.Series(matrix[0], index=pd.Index(items, name="item_id"), name="p_watch"))


def test_unknown_ids_and_devices_are_clear_errors(world):
    with pytest.raises(KeyError, match="unknown user"):
        world.true_watch_probability(["nobody"], [world.items["item_id"].iat[0]], "2025-08-01")
    with pytest.raises(ValueError, match="unknown device"):
        world.true_watch_probability([world.users["user_id"].iat[0]], [world.items["item_id"].iat[0]],
                                     "2025-08-01", device="toaster")


@pytest.mark.slow
def test_shipped_sample_is_exactly_what_generate_writes():
    from recsys.data.loaders import sample_data_dir

    world = load_world(sample_data_dir())
    assert world.config == WorldConfig()
    regenerated = world.simulate()
    shipped = load_dataset("sample")
    for table in ("users", "items", "events", "searches"):
        pd.testing.assert_frame_equal(getattr(regenerated, table), getattr(shipped, table), check_dtype=False)
