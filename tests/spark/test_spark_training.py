"""The Spark training table equals the single-process one row for row (floats to 1e-9, text and id lists
exactly), whatever the partitioning, on a tiny simulated world with logged slots and on a hand-made world with
ties at one timestamp, members with no history and one heavy member; the command writes the same table with
either engine. A Parquet folder read by Spark's executors gives the loader's events (types, exact duplicates
dropped and counted) and the loader's errors (file, column, the row in the file)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.cli import app
from recsys.data import Dataset, load_dataset
from recsys.data.errors import DataError
from recsys.data.loaders import save_dataset
from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.features import FeatureBuilder
from recsys.spark.source import read_source
from recsys.spark.training import read_training_table, training_table_local, training_table_spark
from recsys.training_table import TrainingConfig

pytestmark = pytest.mark.spark

HASHED = TrainingConfig(sampler="hash")


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    order = [c for c in ("user_id", "timestamp", "item_id", "label", "weight", "shown_slot") if c in frame.columns]
    out = frame.sort_values(order, kind="stable").reset_index(drop=True)
    out["timestamp"] = pd.to_datetime(out["timestamp"]).astype("datetime64[us]")
    return out


def _plain(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [int(v) for v in value]
    return value


def assert_same_table(local: pd.DataFrame, remote: pd.DataFrame) -> None:
    assert list(remote.columns) == list(local.columns)
    assert len(remote) == len(local)
    a, b = _canonical(local), _canonical(remote)
    for column in a.columns:
        x, y = a[column], b[column]
        if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            np.testing.assert_allclose(y.to_numpy(float), x.to_numpy(float), rtol=0, atol=1e-9, err_msg=column)
        elif column == "timestamp":
            assert (x.to_numpy() == y.to_numpy()).all()
        else:
            assert [_plain(v) for v in y] == [_plain(v) for v in x], column


@pytest.fixture(scope="module")
def world():
    data = SyntheticWorld(WorldConfig(seed=5, n_users=60, n_movies=40, n_shows=3, days=60)).simulate()
    builder = FeatureBuilder(seed=0).fit(data)
    start = data.end - pd.Timedelta(days=14)
    return data, builder, start, training_table_local(data, start, None, HASHED, builder=builder, slot_features=True)


@pytest.mark.parametrize("partitions", [1, 7])
def test_spark_table_equals_the_single_process_for_any_partitioning(spark, world, partitions):
    data, builder, start, local = world
    assert local["label"].isin([0, 1]).all() and (local["label"] == 1).any() and (local["label"] == 0).any()
    assert {"shown_slot", "plays_above", "item_plays_7d", "user_plays", "history_items"} <= set(local.columns)
    remote = training_table_spark(spark, data, start, None, HASHED, builder=builder, slot_features=True,
                                  partitions=partitions).toPandas()
    assert_same_table(local, remote)


def _handmade() -> Dataset:
    """Eight titles; a heavy member with 300 rows (plays, ignored middles and shown-not-played) of the first four,
    five members with ten rows sharing one timestamp (half of them shown and not played), a member whose only
    rows are in the window (no history before it), and two members with no events at all."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2025-01-01")
    rows = [("u_heavy", f"m{rng.integers(4)}", start + pd.Timedelta(hours=int(h)), float(rng.choice([0.0, 0.05, 0.5, 0.95])))
            for h in rng.integers(0, 24 * 50, size=300)]
    tie = start + pd.Timedelta(days=45)
    rows += [(f"u{u}", f"m{(u + j) % 8}", tie, 0.95 if j % 2 else 0.0) for u in range(5) for j in range(10)]
    rows += [(f"u{u}", f"m{(3 * u + j) % 8}", start + pd.Timedelta(days=int(rng.integers(1, 55))), 0.9)
             for u in range(5) for j in range(4)]
    rows += [("u_late", f"m{j}", start + pd.Timedelta(days=48, hours=j), 0.95 if j < 2 else 0.0) for j in range(6)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "watch_fraction"])
    users = pd.DataFrame({"user_id": ["u_heavy", *[f"u{u}" for u in range(5)], "u_late", "u_new1", "u_new2"]})
    items = pd.DataFrame({"item_id": [f"m{i}" for i in range(8)], "title": [f"Title {i}" for i in range(8)],
                          "genres": ["Drama", "Comedy", "Drama|Comedy", "Horror", "Action", "Drama", "Family",
                                     "Comedy"], "duration_min": [90, 100, 45, 120, 22, 95, 88, 30]})
    return Dataset.from_frames(users, items, events)


def test_handmade_world_ties_cold_members_and_a_heavy_member(spark):
    data = _handmade()
    builder = FeatureBuilder(seed=0).fit(data)
    start = pd.Timestamp("2025-02-10")
    local = training_table_local(data, start, None, HASHED, builder=builder)
    assert {"u_heavy", "u_late"} <= set(local["user_id"]) and local["user_id"].str.startswith("u_new").sum() == 0
    assert (local["timestamp"] == pd.Timestamp("2025-02-15")).sum() >= 10  # the ties are in the window
    late = local[local["user_id"] == "u_late"]
    assert (late["user_plays"].min() == 0) and len(late) > 0  # their first row sees no history
    remote = training_table_spark(spark, data, start, None, HASHED, builder=builder, partitions=3).toPandas()
    assert_same_table(local, remote)


def test_spark_needs_hash_sampling_per_member(spark, world):
    data, builder, start, _ = world
    with pytest.raises(ValueError, match="sampler='hash'"):
        training_table_spark(spark, data, start, None, TrainingConfig(sampler="random"), builder=builder)


def test_training_table_command_both_engines(spark, tmp_path):
    data = SyntheticWorld(WorldConfig(seed=5, n_users=60, n_movies=40, n_shows=3, days=60)).simulate()
    folder = tmp_path / "world"
    save_dataset(data, folder)
    tables = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"table-{engine}"
        spark_options = ["--spark-master", "local[2]", "--partitions", "3"] if engine == "spark" else []
        result = CliRunner().invoke(app, ["training-table", "--data", f"parquet:{folder}", "--out", str(out),
                                          "--engine", engine, *spark_options, "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output[result.output.index("{"):])
        tables[engine] = read_training_table(out)
        assert summary["rows"] == len(tables[engine]) and summary["engine"] == engine
        assert summary["positives"] == int((tables[engine]["label"] == 1).sum()) > 0
    assert_same_table(tables["local"], tables["spark"])
    ignored = CliRunner().invoke(app, ["training-table", "--data", f"parquet:{folder}", "--out", str(tmp_path / "z"),
                                       "--engine", "local", "--spark-master", "local[2]", "--partitions", "3"])
    assert ignored.exit_code == 2 and not (tmp_path / "z").exists()
    assert "--spark-master and --partitions apply to --engine spark only; add --engine spark" in ignored.output
    bad = CliRunner().invoke(app, ["training-table", "--data", f"parquet:{folder}", "--out", str(tmp_path / "x"),
                                   "--start", "someday"])
    assert bad.exit_code == 2 and "--start 'someday' is not a time" in bad.output


# ------------------------------------------------------------- read by the executors
KEY = ["user_id", "item_id", "timestamp", "session_id", "position"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A small world on disk whose events file repeats two rows exactly, and whose searches file one (the loader
    keeps both searches: only events are deduplicated)."""
    data = SyntheticWorld(WorldConfig(seed=9, n_users=50, n_movies=30, n_shows=2, days=50)).simulate()
    folder = tmp_path_factory.mktemp("source") / "world"
    save_dataset(data, folder)
    events = pd.read_parquet(folder / "events.parquet")
    pd.concat([events, events.iloc[[3, 10]]], ignore_index=True).to_parquet(folder / "events.parquet", index=False)
    searches = pd.read_parquet(folder / "searches.parquet")
    pd.concat([searches, searches.iloc[[0]]], ignore_index=True).to_parquet(folder / "searches.parquet", index=False)
    return folder


def test_executors_read_the_loaders_events_and_count_the_duplicates(spark, folder):
    loaded = load_dataset(f"parquet:{folder}")
    source = read_source(spark, folder, partitions=3)
    assert source.report.dropped == loaded.report.dropped == {"exact duplicate rows in events.parquet": 2}
    assert (source.start, source.end) == (loaded.start, loaded.end)
    for column in ("device", "position", "session_id", "watch_fraction", "rating"):
        assert source.has(column) == loaded.has("events", column), column
    remote = source.events.toPandas().sort_values(KEY, ignore_index=True)
    local = loaded.events.sort_values(KEY, ignore_index=True)
    assert len(remote) == len(local) == len(pd.read_parquet(folder / "events.parquet")) - 2
    for column in local.columns:
        x, y = local[column], remote[column]
        if column == "timestamp":
            assert (x.astype("datetime64[us]").to_numpy() == y.astype("datetime64[us]").to_numpy()).all()
        elif pd.api.types.is_numeric_dtype(x):
            np.testing.assert_array_equal(y.to_numpy(float), x.to_numpy(float), err_msg=column)
        else:
            assert [_plain(v) for v in y.astype(object)] == [_plain(v) for v in x.astype(object)], column
    assert set(source.shell.searches["query"]) == set(loaded.searches["query"])
    assert source.searches.count() == len(loaded.searches) == len(pd.read_parquet(folder / "searches.parquet"))


def test_the_table_from_the_executors_equals_the_single_process(spark, folder):
    loaded = load_dataset(f"parquet:{folder}")
    config = TrainingConfig(sampler="hash")
    builder = FeatureBuilder(seed=0).fit(loaded)
    start = loaded.end - pd.Timedelta(days=10)
    local = training_table_local(loaded, start, None, config, builder=builder, slot_features=True)
    remote = training_table_spark(spark, read_source(spark, folder, partitions=7), start, None, config,
                                  builder=builder, slot_features=True, partitions=7).toPandas()
    assert len(local) > 100
    assert_same_table(local, remote)


def test_a_read_folder_holds_every_record_of_a_member_in_one_partition(spark, folder):
    from pyspark.sql import functions as F

    source = read_source(spark, folder, partitions=3)
    assert source.partitions == source.members.rdd.getNumPartitions() == 3
    placed = (source.members.select("user_id", "_kind", F.spark_partition_id().alias("p")).toPandas())
    assert set(placed["_kind"]) == {"event", "search", "user"}
    assert (placed.groupby("user_id")["p"].nunique() == 1).all()  # events, searches and record together
    users = pd.read_parquet(folder / "users.parquet")
    assert (placed["_kind"] == "user").sum() == len(users)


def test_a_table_on_other_partitions_than_the_read_equals_the_single_process(spark, folder):
    loaded = load_dataset(f"parquet:{folder}")
    builder = FeatureBuilder(seed=0).fit(loaded)
    start = loaded.end - pd.Timedelta(days=10)
    end = loaded.end - pd.Timedelta(days=2)  # events and searches after the window's end are left out
    local = training_table_local(loaded, start, end, HASHED, builder=builder, slot_features=True)
    remote = training_table_spark(spark, read_source(spark, folder, partitions=2), start, end, HASHED,
                                  builder=builder, slot_features=True, partitions=5).toPandas()
    assert len(local) > 50
    assert_same_table(local, remote)


def test_a_bad_row_is_named_with_its_file_column_and_row(spark, folder, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("users", "items", "searches"):
        (bad / f"{name}.parquet").write_bytes((folder / f"{name}.parquet").read_bytes())
    events = pd.read_parquet(folder / "events.parquet")
    events.loc[1234, "item_id"] = "no-such-title"
    events.to_parquet(bad / "events.parquet", index=False)
    with pytest.raises(DataError) as caught:
        read_source(spark, bad, partitions=3)
    err = caught.value
    assert err.file == str(bad / "events.parquet") and err.column == "item_id"
    assert "1 row(s) point at 1 id(s) not in the items table" in err.problem
    assert err.examples[0].startswith("row 1234: ") and "no-such-title" in err.examples[0]
    (bad / "events.parquet").unlink()
    with pytest.raises(DataError, match="required file events.parquet not found"):
        read_source(spark, bad)


@pytest.mark.parametrize("implicit", [True, False])
def test_the_title_partitions_get_exactly_the_events_history_calls_plays(spark, implicit):
    """The Spark filter that ships plays to the title groups keeps what `features.history.played` keeps: missing
    and NaN values, zero (shown, not played), tiny and full fractions, and ratings."""
    from recsys.features.history import played
    from recsys.spark.training import _plays

    values = [None, float("nan"), 0.0, 0.05, 0.5, 1.0, -0.0]
    column = "watch_fraction" if implicit else "rating"
    frame = pd.DataFrame({"n": range(len(values)), column: pd.array(values, dtype="float64")})
    sdf = spark.createDataFrame([(i, v) for i, v in enumerate(values)], f"n long, {column} double")
    kept = sorted(r["n"] for r in _plays(sdf, implicit).collect())
    assert kept == [int(n) for n in frame["n"][played(frame, implicit)]]
    assert kept == ([3, 4, 5] if implicit else [2, 3, 4, 5, 6])
