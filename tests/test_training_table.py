"""The ranking training table: labels, balance, weights and features line up with the events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataError
from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.features import FeatureBuilder
from recsys.training_table import TrainingConfig, build_training_table

WORLD = WorldConfig(seed=3, n_users=150, n_movies=120, n_shows=8, days=60)


@pytest.fixture(scope="module")
def data():
    return SyntheticWorld(WORLD).simulate()


@pytest.fixture(scope="module")
def builder(data):
    return FeatureBuilder(use_embeddings=False).fit(data)


def test_window_labels_balance_and_weights(data, builder):
    start, end = pd.Timestamp("2025-08-01"), pd.Timestamp("2025-08-21")
    table = build_training_table(data, start, end, TrainingConfig(negatives_per_positive=3.0, seed=1), builder)
    window = data.between(start, end).events
    wf = window["watch_fraction"]
    assert table.label_counts == {"positive": int((wf > 0.8).sum()),
                                  "negative": int((wf < 0.1).sum()),
                                  "ignored": int(wf.between(0.1, 0.8).sum())}
    assert (table.label == 1).sum() == table.label_counts["positive"]  # every positive kept
    assert table.balance["negatives_after"] == (table.label == 0).sum()
    assert (table.label == 0).sum() <= 3.0 * (table.label == 1).sum() + data.users.shape[0]
    rows = table.features.rows
    assert rows["timestamp"].between(start, end, inclusive="left").all()
    assert len(table.frame) == len(table.label) == len(table.weight)
    # positives weigh by watched minutes: a long film outweighs an episode
    pos = table.label == 1
    kind = table.frame["kind"].to_numpy()
    assert np.median(table.weight[pos & (kind == "movie")]) > np.median(table.weight[pos & (kind == "episode")])
    assert (table.weight[table.label == 0] == 1.0).all()


def test_seeded_downsampling_is_reproducible(data, builder):
    a = build_training_table(data, config=TrainingConfig(seed=4), builder=builder)
    b = build_training_table(data, config=TrainingConfig(seed=4), builder=builder)
    c = build_training_table(data, config=TrainingConfig(seed=5), builder=builder)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert not a.features.rows.equals(c.features.rows)


def test_keeping_every_negative(data, builder):
    table = build_training_table(data, "2025-08-01", "2025-08-08", TrainingConfig(negatives_per_positive=None), builder)
    assert (table.label == 0).sum() == table.label_counts["negative"]


def test_an_empty_window_is_a_clear_error(data, builder):
    with pytest.raises(DataError, match="no events"):
        build_training_table(data, "2030-01-01", "2030-02-01", builder=builder)
