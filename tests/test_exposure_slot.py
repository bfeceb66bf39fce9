"""Exposure features (what the service showed a member, and their finish rate per genre) and slot
features (where an impression sat in its row), against values computed by hand on a tiny log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.features import FeatureBuilder
from recsys.features.slot import SlotFeatures

T0 = pd.Timestamp("2025-12-01 20:00")


def _tiny() -> Dataset:
    users = pd.DataFrame({"user_id": ["a", "b"], "age": [30, 40], "language": ["English", "English"]})
    items = pd.DataFrame({
        "item_id": ["m1", "m2", "e1", "e2"], "title": ["One", "Two", "E1", "E2"],
        "kind": ["movie", "movie", "episode", "episode"],
        "genres": [["Drama"], ["Comedy", "Drama"], ["Horror"], ["Horror"]],
        "duration_min": [120.0, 90.0, 40.0, 40.0],
    })
    ev = [  # user, item, hours before T0, watch fraction, session, position
        ("a", "m1", 48, 0.95, "s1", 0),
        ("a", "m2", 47, 0.05, "s1", 1),
        ("a", "e1", 24, 0.90, "s2", 0),
        ("a", "m2", 23, 0.0, "s2", 1),  # shown, not played
        ("a", "e2", 0, 1.0, "s3", 0),  # at T0: not before a row at T0
        ("b", "m1", 10, 0.5, "s4", 0),
    ]
    events = pd.DataFrame({
        "user_id": [e[0] for e in ev], "item_id": [e[1] for e in ev],
        "timestamp": [T0 - pd.Timedelta(hours=e[2]) for e in ev], "watch_fraction": [e[3] for e in ev],
        "session_id": [e[4] for e in ev], "position": [e[5] for e in ev],
        "minutes_watched": [e[3] * 60 for e in ev],
    })
    return Dataset.from_frames(users, items, events)


@pytest.fixture(scope="module")
def exposure():
    data = _tiny()
    builder = FeatureBuilder(use_embeddings=False).fit(data)
    rows = pd.DataFrame({"user_id": ["a", "a", "b", "new"], "item_id": ["m2", "e2", "m1", "m1"], "timestamp": T0})
    return builder.transform(rows, data).frame


def test_exposure_and_finish_rate_match_the_hand_computation(exposure):
    # catalogue genre slots: Drama 2, Horror 2, Comedy 1 -> shares (slots + 1) / (5 + 3)
    # a before T0: shown Drama 3, Comedy 2, Horror 1 (6 slots); finished Drama 1 (m1), Horror 1 (e1)
    # overall rate (2 + 1) / (6 + 20) = 3/26; rate_g = log((f_g + 5 * 3/26) / (s_g + 5)) - log(3/26)
    a_m2, a_e2, b_m1, new_m1 = (exposure.iloc[k] for k in range(4))
    assert a_m2["user_genre_exposure"] == pytest.approx((np.log((3 / 9) / (2 / 8)) + np.log((4 / 9) / (3 / 8))) / 2)
    assert a_m2["user_genre_finish_rate"] == pytest.approx((np.log(5 / 7) + np.log(41 / 24)) / 2)
    assert a_e2["user_genre_exposure"] == pytest.approx(np.log((2 / 9) / (3 / 8)))
    assert a_e2["user_genre_finish_rate"] == pytest.approx(np.log(41 / 18))
    # b: one middle-band play of m1 (Drama), nothing finished: overall 1/21
    assert b_m1["user_genre_exposure"] == pytest.approx(np.log((2 / 4) / (3 / 8)))
    assert b_m1["user_genre_finish_rate"] == pytest.approx(np.log((5 / 21) / 6) - np.log(1 / 21))
    # a member with no log: the catalogue's own mix, no evidence either way
    assert new_m1["user_genre_exposure"] == pytest.approx(np.log((1 / 3) / (3 / 8)))
    assert new_m1["user_genre_finish_rate"] == pytest.approx(0.0)


def test_exposure_features_are_absent_for_explicit_ratings():
    data = _tiny()
    events = data.events.drop(columns=["watch_fraction", "minutes_watched", "position", "session_id"]).assign(
        rating=4.0)
    explicit = Dataset.from_frames(data.users, data.items, events)
    names = FeatureBuilder(use_embeddings=False).fit(explicit).feature_set.names()
    assert "user_genre_exposure" not in names and "user_genre_finish_rate" not in names


def test_slot_and_plays_above_come_from_the_whole_row():
    events = pd.DataFrame({"session_id": ["s", "s", "s", "s", "t", "t"],
                           "position": [2, 0, 3, 1, -1, 0],  # not in slot order; t's first row is autoplay
                           "watch_fraction": [0.0, 0.0, 0.9, 0.5, 1.0, 0.0]})
    block = SlotFeatures().from_events(events)
    assert block.columns["shown_slot"].tolist() == [2, 0, 3, 1, 0, 0]
    # s: slot 1 was played, so slots 2 and 3 have one play above; t: an autoplay is not a row play
    assert block.columns["plays_above"].tolist() == [1, 0, 1, 0, 0, 0]
    serving = SlotFeatures().serving(3)
    assert serving.columns["shown_slot"].tolist() == [0, 0, 0] and serving.columns["plays_above"].tolist() == [0] * 3


def test_a_holiday_title_knows_how_far_its_own_holiday_is():
    items = pd.DataFrame({"item_id": ["xmas", "spooky", "plain"], "title": ["X", "S", "P"],
                          "kind": ["movie"] * 3, "genres": [["Family"], ["Horror"], ["Drama"]],
                          "tags": [["christmas", "feel-good"], ["halloween"], ["gritty"]]})
    users = pd.DataFrame({"user_id": ["a"]})
    events = pd.DataFrame({"user_id": ["a"], "item_id": ["plain"], "timestamp": [pd.Timestamp("2025-06-01")],
                           "watch_fraction": [0.9]})
    data = Dataset.from_frames(users, items, events)
    builder = FeatureBuilder(use_embeddings=False).fit(data)
    when = [pd.Timestamp("2025-12-20 21:00"), pd.Timestamp("2026-01-03 10:00"), pd.Timestamp("2025-10-31 23:00")]
    rows = pd.DataFrame({"user_id": "a", "item_id": ["xmas", "xmas", "spooky"], "timestamp": when})
    frame = builder.transform(rows, data).frame
    # 20 Dec -> 25 Dec: 5 days, in season; 3 Jan -> 25 Dec 2026: 356 days, out of season; Halloween night: 0
    assert frame["days_to_title_holiday"].tolist() == [5.0, 356.0, 0.0]
    assert frame["title_holiday_season"].tolist() == [1.0, 0.0, 1.0]
    plain = builder.transform(pd.DataFrame({"user_id": ["a"], "item_id": ["plain"], "timestamp": [when[0]]}), data)
    assert np.isnan(plain.frame["days_to_title_holiday"].iat[0]) and plain.frame["title_holiday_season"].iat[0] == 0
