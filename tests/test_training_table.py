"""The ranking training table: labels, balance, weights and features line up with the events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataError
from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.features import FeatureBuilder
from recsys.labels import WeightConfig, duration_weights
from recsys.pipeline import RecommenderConfig
from recsys.training_table import TrainingConfig, build_training_table, window_tables
from recsys.ui.charts import weight_histogram

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
    # every row also weighs median propensity / its propensity (clipped to [1/20, 20]); 1 where none is logged
    logged = window.drop_duplicates(["user_id", "item_id", "timestamp"]).set_index(["user_id", "item_id", "timestamp"])
    p = logged["propensity"].reindex(pd.MultiIndex.from_frame(rows[["user_id", "item_id", "timestamp"]])).to_numpy()
    expected = np.where(np.isnan(p), 1.0, np.clip(np.nanmedian(p) / p, 1 / 20, 20))
    np.testing.assert_allclose(table.weight[table.label == 0], expected[table.label == 0], rtol=1e-12)
    minutes = duration_weights(window.set_index(["user_id", "item_id", "timestamp"]).loc[
        pd.MultiIndex.from_frame(rows[["user_id", "item_id", "timestamp"]])].reset_index().assign(label=table.label),
        data.items).to_numpy()
    np.testing.assert_allclose(table.weight[pos], (minutes * expected)[pos], rtol=1e-12)  # positives: both
    assert (table.weight[table.label == 0] != 1.0).mean() > 0.9  # nearly every negative is a logged impression
    assert np.isnan(p[pos]).any() and not np.isnan(p[pos]).all()  # plays from search and autoplay log none


def test_weight_chart_bins_on_log10_and_counts_zero_weights():
    fig = weight_histogram(np.array([0.05, 1.0, 20.0, 0.0]), np.array([0, 1, 0, 0]))
    drawn = {trace.name: sorted(trace.x) for trace in fig.data}
    assert drawn == {"negative": pytest.approx([np.log10(0.05), np.log10(20.0)]), "positive": [0.0]}
    assert "1 rows weigh 0" in fig.layout.title.text


def test_propensity_weights_off_leaves_negatives_at_one(data, builder):
    config = TrainingConfig(negatives_per_positive=3.0, seed=1, weights=WeightConfig(propensity_clip=None))
    table = build_training_table(data, "2025-08-01", "2025-08-21", config, builder)
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


def test_the_ranker_windows_tile_the_last_weeks_and_each_is_its_own_table(data, builder):
    """Three 14-day windows, contiguous, the last ending one second after the last event (so it is inside); each
    table equals `build_training_table` of its window."""
    bounds = RecommenderConfig(ranker_windows=3, ranker_window_days=14).window_bounds(data)
    assert bounds[-1][1] == data.end + pd.Timedelta(seconds=1)
    assert [hi - lo for lo, hi in bounds] == [pd.Timedelta(days=14)] * 3
    assert all(bounds[w][1] == bounds[w + 1][0] for w in range(2))
    tables = window_tables(data, bounds, builder=builder)
    assert len(tables) == 3 and sum(len(tb) for tb in tables) > 1000
    for (lo, hi), table in zip(bounds, tables):
        alone = build_training_table(data, lo, hi, builder=builder)
        assert table.window == (lo, hi) and table.balance == alone.balance
        np.testing.assert_array_equal(table.weight, alone.weight)
        _features_equal(table.features, alone.features)


def test_window_tables_check_every_window_for_events_first(data, builder):
    """An empty window is named before any table is built, whatever comes before it; a window whose events are all
    negatives names its bounds."""
    late = (pd.Timestamp("2030-01-01"), pd.Timestamp("2030-02-01"))
    with pytest.raises(DataError, match="no events between 2030-01-01"):
        window_tables(data, [(data.start, data.end), late], builder=builder)
    shown = data.events[data.events["watch_fraction"] == 0].head(20)  # shown, never played: negatives only
    negatives = data._with(data.users, data.items, shown, data.searches.iloc[:0])
    lo, hi = shown["timestamp"].min(), shown["timestamp"].max() + pd.Timedelta(seconds=1)
    with pytest.raises(DataError, match=f"the window from {lo} to {hi} has no positive events"):
        window_tables(negatives, [(lo, hi)], builder=builder)
    with pytest.raises(ValueError, match="no windows"):
        window_tables(data, [], builder=builder)


def _features_equal(a, b) -> None:
    """Two FeatureTables hold the same features, value for value (floats exactly, missing alike)."""
    from recsys.features.table import categorical_values

    assert [f.name for f in a.feature_set] == [f.name for f in b.feature_set]
    for name in a.columns:
        x, y = a.column(name), b.column(name)
        if isinstance(x, pd.Categorical):
            assert list(categorical_values(x)) == list(categorical_values(y)), name
        elif hasattr(x, "offsets"):
            assert x.vocab == y.vocab, name
            np.testing.assert_array_equal(x.offsets, y.offsets, err_msg=name)
            np.testing.assert_array_equal(x.values, y.values, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)
    for key in ("user_id", "item_id", "timestamp"):
        assert list(a.rows[key]) == list(b.rows[key]), key


def test_a_flat_table_reads_back_as_the_same_feature_rows(data):
    """What Spark writes (`flat_table`) is read back by the driver (`feature_rows_of`) as the rows it came from:
    every dense, categorical and id-list feature, the id features from the keys, the slot block."""
    from recsys.spark.training import flat_table
    from recsys.spark.windows import feature_rows_of

    builder = FeatureBuilder(use_embeddings=False).fit(data)
    start = data.end - pd.Timedelta(days=10)
    table = build_training_table(data, start, None, TrainingConfig(), builder, slot_features=True)
    assert {"history_items", "search_terms", "shown_slot"} <= set(table.features.columns)
    features, label, weight = feature_rows_of(flat_table(table.features, table.label, table.weight), builder)
    _features_equal(table.features, features)
    np.testing.assert_array_equal(label, table.label)
    np.testing.assert_array_equal(weight, table.weight)


def test_row_order_is_canonical_whatever_order_the_rows_arrive_in(data, builder):
    table = build_training_table(data, data.end - pd.Timedelta(days=10), None, TrainingConfig(), builder)
    shuffled = table.take(np.random.default_rng(0).permutation(len(table)))
    a, b = table.in_row_order(), shuffled.in_row_order()
    _features_equal(a.features, b.features)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.weight, b.weight)
    when = a.features.rows["timestamp"].to_numpy()
    assert (when[1:] >= when[:-1]).all()

    def rows_of(t):  # every row's keys with its label, weight and a feature: the pairing the sort must keep
        frame = t.features.rows[["user_id", "item_id", "timestamp"]].astype({"user_id": str, "item_id": str})
        frame = frame.assign(label=t.label, weight=t.weight, days=t.features.column("days_since_last_play"))
        return frame.sort_values(list(frame.columns), ignore_index=True)
    pd.testing.assert_frame_equal(rows_of(a), rows_of(table))


def test_hash_sampling_is_the_default_and_keeps_a_members_rows_whatever_else_is_in_the_table(data, builder):
    """The default sampler decides each negative by a hash of its row and the seed: a member's kept rows are
    the same in a table of every member as in a table of that member alone (what lets Spark split by member)."""
    assert TrainingConfig().sampler == "hash"
    start = data.end - pd.Timedelta(days=14)
    whole = build_training_table(data, start, None, TrainingConfig(), builder)
    member = whole.features.rows["user_id"].value_counts().index[0]
    alone = data._with(data.users, data.items, data.events[data.events["user_id"] == member], data.searches)
    own = build_training_table(alone, start, None, TrainingConfig(), builder)
    mine = whole.features.rows["user_id"].to_numpy() == member
    keys = ["item_id", "timestamp"]
    assert whole.features.rows.loc[mine, keys].reset_index(drop=True).equals(own.features.rows[keys])
    np.testing.assert_array_equal(whole.label[mine], own.label)
