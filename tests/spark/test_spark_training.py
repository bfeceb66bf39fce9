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
from recsys.spark.training import (
    WINDOW, read_training_table, spark_window_tables, training_table_local, training_table_spark,
)
from recsys.training_table import TrainingConfig, window_tables

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


def test_windows_built_in_one_pass_each_equal_their_own_table(spark, world):
    """Overlapping windows (the second inside the first) from one member pass: each window's rows, features and
    weights (its own median minutes and propensity) equal that window's single-process table."""
    data, builder, start, _ = world
    windows = [(start - pd.Timedelta(days=7), None), (start, data.end - pd.Timedelta(days=3))]
    table, _, cached = spark_window_tables(spark, data, windows, HASHED, builder, True, 3, None)
    try:
        remote = table.toPandas()
    finally:
        cached.unpersist()
    assert sorted(remote[WINDOW].unique()) == [0, 1]
    for w, (lo, hi) in enumerate(windows):
        local = training_table_local(data, lo, hi, HASHED, builder=builder, slot_features=True)
        assert len(local) > 100
        assert_same_table(local, remote[remote[WINDOW] == w].drop(columns=WINDOW))


def test_windows_without_events_or_positives_fail_as_in_one_process(spark, world):
    """An empty window is named before anything is built, whatever window comes before it, and a window holding
    only negatives names its bounds: the single process's messages (`training_table.window_tables`)."""
    data, builder, start, _ = world
    late = (pd.Timestamp("2030-01-01"), pd.Timestamp("2030-02-01"))
    with pytest.raises(DataError, match="no events between 2030-01-01") as local:
        window_tables(data, [(start, None), late], HASHED, builder)
    with pytest.raises(DataError, match="no events between 2030-01-01") as remote:
        spark_window_tables(spark, data, [(start, None), late], HASHED, builder, False, 2, None)
    assert str(remote.value) == str(local.value)
    shown = data.events[data.events["watch_fraction"] == 0].head(40)
    negatives = data._with(data.users, data.items, shown, data.searches.iloc[:0])
    bounds = [(shown["timestamp"].min(), shown["timestamp"].max() + pd.Timedelta(seconds=1))]
    with pytest.raises(DataError, match="has no positive events") as local:
        window_tables(negatives, bounds, HASHED, builder)
    with pytest.raises(DataError, match="has no positive events") as remote:
        spark_window_tables(spark, negatives, bounds, HASHED, builder, False, 2, None)
    assert str(remote.value) == str(local.value)


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


def assert_loader_events(source, loaded) -> None:
    """The events Spark's executors read equal the loader's, value for value (times to Spark's microseconds)."""
    remote = source.events.toPandas().sort_values(KEY, ignore_index=True)
    local = loaded.events.sort_values(KEY, ignore_index=True)
    assert len(remote) == len(local)
    for column in local.columns:
        x, y = local[column], remote[column]
        if column == "timestamp":
            assert (x.astype("datetime64[us]").to_numpy() == y.astype("datetime64[us]").to_numpy()).all()
        elif pd.api.types.is_numeric_dtype(x):
            np.testing.assert_array_equal(y.to_numpy(float), x.to_numpy(float), err_msg=column)
        else:
            assert [_plain(v) for v in y.astype(object)] == [_plain(v) for v in x.astype(object)], column


def test_executors_read_the_loaders_events_and_count_the_duplicates(spark, folder):
    loaded = load_dataset(f"parquet:{folder}")
    source = read_source(spark, folder, partitions=3)
    assert source.report.dropped == loaded.report.dropped == {"exact duplicate rows in events.parquet": 2}
    assert (source.start, source.end) == (loaded.start, loaded.end)
    for column in ("device", "position", "session_id", "watch_fraction", "rating"):
        assert source.has(column) == loaded.has("events", column), column
    assert source.n_events == len(loaded.events) == len(pd.read_parquet(folder / "events.parquet")) - 2
    assert_loader_events(source, loaded)
    assert set(source.shell.searches["query"]) == set(loaded.searches["query"])
    assert source.searches.count() == len(loaded.searches) == len(pd.read_parquet(folder / "searches.parquet"))


def _copy_with(folder, out, events: pd.DataFrame, searches: pd.DataFrame | None = None):
    out.mkdir()
    for name in ("users", "items") + (() if searches is not None else ("searches",)):
        (out / f"{name}.parquet").write_bytes((folder / f"{name}.parquet").read_bytes())
    events.to_parquet(out / "events.parquet", index=False)
    if searches is not None:
        searches.to_parquet(out / "searches.parquet", index=False)
    return out


def _events(folder) -> pd.DataFrame:
    """The folder's events as saved (positions whole numbers with gaps: a pandas round trip makes them floats)."""
    return pd.read_parquet(folder / "events.parquet").astype({"position": "Int64"})


def _odd_but_valid(folder):
    """The folder's events and searches with values the loader changes or keeps as they are: ids to strip (a tab,
    spaces, a non-breaking space, a final line break), a blank and a padded session id, a missing minute count, a
    device with a
    space, an event at its member's very signup (after its title's arrival), and a blank-padded search query."""
    events = _events(folder)
    users = pd.read_parquet(folder / "users.parquet").set_index("user_id")
    events.loc[5, "user_id"] = f"  {events.at[5, 'user_id']}\t"
    events.loc[6, "item_id"] = f"\u00a0{events.at[6, 'item_id']}"
    events.loc[7, "session_id"] = ""
    events.loc[8, "session_id"] = f" {events.at[8, 'session_id']} "
    events.loc[12, "session_id"] = f"{events.at[12, 'session_id']}\n"  # Java's $ matches before a final line break
    events.loc[9, "minutes_watched"] = np.nan
    events.loc[10, "device"] = " tv"
    added = pd.read_parquet(folder / "items.parquet").set_index("item_id")["added_at"]
    signup = events["user_id"].map(users["signup_time"])
    at = int(np.flatnonzero((signup >= events["item_id"].map(added)).to_numpy()[11:])[0]) + 11
    events.loc[at, "timestamp"] = signup[at]
    searches = pd.read_parquet(folder / "searches.parquet")
    searches.loc[0, "query"] = f"  {searches.at[0, 'query']}  "
    searches.loc[1, "user_id"] = f"{searches.at[1, 'user_id']} "
    return events, searches


@pytest.mark.parametrize("typed_by", ["spark", "pandas"])
def test_values_the_loader_changes_read_as_the_loader_reads_them(spark, folder, tmp_path, typed_by):
    """Spark's own checks hand every value the loader would change to the loader's rules; a file whose types Spark
    does not type itself (positions written as floats) takes those rules for every row. Both read as loaded."""
    events, searches = _odd_but_valid(folder)
    if typed_by == "pandas":
        events["position"] = events["position"].astype(float)
    odd = _copy_with(folder, tmp_path / "odd", events, searches)
    assert _typed_by_spark(spark, odd / "events.parquet") == (typed_by == "spark")
    loaded = load_dataset(f"parquet:{odd}")
    assert loaded.events["session_id"].isna().sum() == 1 and " tv" in set(loaded.events["device"])
    source = read_source(spark, odd, partitions=3)
    assert source.report.dropped == loaded.report.dropped
    assert_loader_events(source, loaded)
    remote = source.searches.toPandas().sort_values(["user_id", "timestamp", "query"], ignore_index=True)
    local = loaded.searches.sort_values(["user_id", "timestamp", "query"], ignore_index=True)
    assert remote["user_id"].tolist() == local["user_id"].tolist()
    assert remote["query"].tolist() == local["query"].tolist()


def _plan(frame, capsys) -> str:
    frame.explain()
    return capsys.readouterr().out


def test_a_clean_folder_is_read_in_one_scan_a_flagged_one_again_through_the_loaders_rules(spark, folder, tmp_path,
                                                                                         capsys):
    """Where Spark's conditions flag no row, each file is scanned once and no row leaves the JVM; one flagged row
    (an id to strip) sends the read through the loader's rules (`MapInPandas`), and both read as loaded."""
    events = _events(folder)
    plain = _copy_with(folder, tmp_path / "clean", events)  # whole positions: Spark types every column
    clean = read_source(spark, plain, partitions=3)
    plan = _plan(clean.members, capsys)  # the plan as run and as first planned: each scan is shown twice
    assert plan.count("FileScan parquet") == 4  # the events and the searches
    assert "MapInPandas" not in plan
    loaded = load_dataset(f"parquet:{plain}")
    assert clean.report.dropped == loaded.report.dropped and sum(loaded.report.dropped.values()) == 2
    assert_loader_events(clean, loaded)
    events.loc[5, "user_id"] = f" {events.at[5, 'user_id']}"
    odd = _copy_with(folder, tmp_path / "odd", events)
    source = read_source(spark, odd, partitions=3)
    plan = _plan(source.members, capsys)
    assert plan.count("FileScan parquet") == 8 and "MapInPandas" in plan  # the rows that pass, those flagged
    assert_loader_events(source, load_dataset(f"parquet:{odd}"))


def test_the_id_check_flags_what_the_loader_strips(spark):
    """`_visible_ends` (first and last characters compared) flags exactly the text the former regular expression
    `(?s)^[!-~](.*[!-~])?\\z` did not match, and so every id the loader would strip or call blank."""
    import re
    import string

    from pyspark.sql import functions as F

    from recsys.spark.source import _visible_ends

    rng = np.random.default_rng(3)
    alphabet = list(string.printable) + ["\u00a0", "\u2003", "\u3000", "\ufeff", "\u00e9", "\u4e2d", "\U0001f600",
                                         "\x7f", "\x00", "\x85"]
    texts = ["", " ", "a", "~", "!", "a\n", "\na", "a b", "\u00e9", "\U0001f600x", "x\U0001f600"] + [
        "".join(rng.choice(alphabet, size=int(rng.integers(1, 6)))) for _ in range(3000)]
    frame = spark.createDataFrame(pd.DataFrame({"i": np.arange(len(texts)), "t": texts}))
    got = frame.select("i", _visible_ends(F.col("t")).alias("ok")).toPandas().sort_values("i")["ok"].tolist()
    pattern = re.compile(r"[!-~](.*[!-~])?", re.S)
    assert got == [pattern.fullmatch(t) is not None for t in texts]
    assert all(not ok for t, ok in zip(texts, got) if t.strip() != t or not t.strip())


def _typed_by_spark(spark, file) -> bool:
    """Whether Spark's own expressions type and check the file's rows (`source._in_spark`)."""
    from recsys.data.schema import EVENTS
    from recsys.data.validation import coerce_table
    from recsys.spark.source import _in_spark, _nanosecond_columns, _read

    raw = _read(spark, file)
    like = coerce_table(pd.read_parquet(file).head(1000), EVENTS, str(file))
    return _in_spark(raw, like, EVENTS, _nanosecond_columns(file)) is not None


#: Past the first 1000 rows, which the driver coerces itself (to learn the columns' types) before Spark reads on.
BAD_ROW = 2500


def _nanosecond_before_signup(events, users):
    events.loc[BAD_ROW, "timestamp"] = users.at[events.at[BAD_ROW, "user_id"], "signup_time"] - pd.Timedelta(1, "ns")


@pytest.mark.parametrize("change, column, problem", [
    (lambda e, u: e.__setitem__("user_id", e["user_id"].where(e.index != BAD_ROW, " \t ")), "user_id",
     "1 required value(s) are missing"),
    (_nanosecond_before_signup, "timestamp", "1 row(s) happen before the signup_time of their user_id"),
    (lambda e, u: e.__setitem__("watch_fraction", e["watch_fraction"].where(e.index != BAD_ROW, 1.5)), "watch_fraction",
     "1 value(s) outside the allowed range [0, 1]"),
    (lambda e, u: e.__setitem__("position", e["position"].where(e.index != BAD_ROW, -1)), "position",
     "1 value(s) outside the allowed range [0, inf]"),
    (lambda e, u: e.__setitem__("minutes_watched", e["minutes_watched"].where(e.index != BAD_ROW, np.inf)),
     "minutes_watched", "infinite values"),
    (lambda e, u: e.__setitem__("user_id", e["user_id"].where(e.index != BAD_ROW, "nobody")), "user_id",
     "1 row(s) point at 1 id(s) not in the users table"),
    (lambda e, u: e.__setitem__("watch_fraction", e["watch_fraction"].where(e.index != BAD_ROW, np.nan)),
     "watch_fraction", "1 event(s) have neither a watch fraction nor a rating"),
])
def test_spark_checks_hand_a_bad_value_to_the_loaders_message(spark, folder, tmp_path, change, column, problem):
    """A bad value the loader refuses is refused with the loader's message, named by file, column and row in the
    file, though Spark's conditions (not the loader's rules) found it among the other rows."""
    events = _events(folder)
    change(events, pd.read_parquet(folder / "users.parquet").set_index("user_id"))
    bad = _copy_with(folder, tmp_path / "bad", events)
    assert _typed_by_spark(spark, bad / "events.parquet")
    with pytest.raises(DataError) as loader:
        load_dataset(f"parquet:{bad}")
    with pytest.raises(DataError) as caught:
        read_source(spark, bad, partitions=3)
    err = caught.value
    assert (err.file, err.column) == (str(bad / "events.parquet"), column) == (loader.value.file, loader.value.column)
    assert err.problem.startswith(problem) and loader.value.problem.startswith(problem)
    assert err.examples[0].startswith(f"row {BAD_ROW}: ")


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


def test_a_search_before_its_members_signup_is_refused_by_name(spark, folder, tmp_path):
    searches = pd.read_parquet(folder / "searches.parquet")
    users = pd.read_parquet(folder / "users.parquet").set_index("user_id")
    last = len(searches) - 1  # past the driver's first rows when the file has more; Spark's conditions either way
    searches.loc[last, "timestamp"] = users.at[searches.at[last, "user_id"], "signup_time"] - pd.Timedelta(1, "s")
    bad = _copy_with(folder, tmp_path / "bad", _events(folder), searches)
    with pytest.raises(DataError) as caught:
        read_source(spark, bad, partitions=3)
    err = caught.value
    assert (err.file, err.column) == (str(bad / "searches.parquet"), "timestamp")
    assert err.problem.startswith("1 row(s) happen before the signup_time of their user_id")
    assert err.examples[0].startswith(f"row {last}: ")


def test_a_session_in_another_time_zone_reads_the_loaders_times(spark, folder, tmp_path):
    """Spark's expressions make UTC instants and the loader's rules naive times, which Spark reads in the
    session's zone: outside UTC every row takes the loader's rules, and the times still equal the loader's."""
    events, searches = _odd_but_valid(folder)
    odd = _copy_with(folder, tmp_path / "odd", events, searches)
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        source = read_source(spark, odd, partitions=3)
        assert_loader_events(source, load_dataset(f"parquet:{odd}"))
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)


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
