"""Spark batch lists equal `Recommender.recommend` row for row, whatever the partitioning, on the sample-like
tiny world and on hand-made worlds with ties at one timestamp, members with no history and one heavy member."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.cli import app
from recsys.data import Dataset
from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.pipeline import Recommender, RecommenderConfig
from recsys.spark import SparkUnavailable, batch_local, batch_spark, check_spark, read_lists, spark_lists
from recsys.spark.batch import as_list_table

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def world_model(tmp_path_factory):
    data = SyntheticWorld(WorldConfig(seed=5, n_users=60, n_movies=40, n_shows=3, days=60)).simulate()
    folder = tmp_path_factory.mktemp("spark-world") / "world-model"
    Recommender().fit(data).save(folder)
    return folder


def _handmade() -> Dataset:
    """Eight titles; a heavy member with 300 plays of the first four, ten events sharing one timestamp, and two members (u_new1,
    u_new2) with no events at all."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2025-01-01")
    rows = [("u_heavy", f"m{rng.integers(4)}", start + pd.Timedelta(hours=int(h)), float(rng.uniform()))
            for h in rng.integers(0, 24 * 50, size=300)]
    tie = start + pd.Timedelta(days=20)
    rows += [(f"u{u}", f"m{(u + j) % 8}", tie, 0.95) for u in range(5) for j in range(2)]
    rows += [(f"u{u}", f"m{(3 * u + j) % 8}", start + pd.Timedelta(days=int(rng.integers(1, 55))), 0.9)
             for u in range(5) for j in range(4)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "watch_fraction"])
    users = pd.DataFrame({"user_id": ["u_heavy", *[f"u{u}" for u in range(5)], "u_new1", "u_new2"]})
    items = pd.DataFrame({"item_id": [f"m{i}" for i in range(8)], "title": [f"Title {i}" for i in range(8)],
                          "genres": ["Drama", "Comedy", "Drama|Comedy", "Horror", "Action", "Drama", "Family",
                                     "Comedy"]})
    return Dataset.from_frames(users, items, events)


@pytest.fixture(scope="module")
def handmade_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-handmade") / "handmade-model"
    config = RecommenderConfig(ranker=None, sources=("popularity", "ease", "content"), ranker_windows=1)
    Recommender(config).fit(_handmade()).save(folder)
    return folder


def _expected(folder: Path, members: list[str], k: int, context=None) -> pd.DataFrame:
    model = Recommender.load(folder)
    frame = as_list_table(model.recommend(members, k=k, context=context))
    return frame.sort_values(["member", "rank"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("partitions, chunk", [(1, 2048), (7, 2048), (2, 7)])
def test_spark_lists_equal_recommend_for_any_partitioning(spark, world_model, partitions, chunk):
    members = Recommender.load(world_model).history_.users["user_id"].astype(str).tolist()
    expected = _expected(world_model, members, 10)
    got = spark_lists(spark, world_model, k=10, partitions=partitions, chunk=chunk).toPandas()
    got = got.sort_values(["member", "rank"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-9)
    assert got.groupby("member").size().le(10).all() and got["member"].nunique() == expected["member"].nunique() >= 55
    assert got.groupby("member").size().median() == 10  # a few members have fewer eligible titles in 43


def test_handmade_world_ties_cold_members_and_a_heavy_member(spark, handmade_model, tmp_path):
    members = ["u_heavy", "u0", "u1", "u2", "u3", "u4", "u_new1", "u_new2"]
    context = {"now": "2025-03-01T20:00", "device": "tv"}
    expected = _expected(handmade_model, members, 5, context)
    assert set(expected["member"]) == set(members)  # the cold members get a list too
    summary = batch_spark(spark, handmade_model, tmp_path / "lists", k=5, context=context, partitions=3)
    assert (summary.members, summary.rows, summary.engine) == (8, len(expected), "spark")
    pd.testing.assert_frame_equal(read_lists(tmp_path / "lists"), expected, check_exact=False, rtol=0, atol=1e-9)
    local = batch_local(handmade_model, tmp_path / "local", k=5, context=context)
    assert local.rows == len(expected)
    pd.testing.assert_frame_equal(read_lists(tmp_path / "local"), expected, check_exact=False, rtol=0, atol=1e-9)
    # a second run replaces the table whole: same rows, no leftovers beside it
    batch_spark(spark, handmade_model, tmp_path / "lists", k=5, context=context, partitions=1)
    pd.testing.assert_frame_equal(read_lists(tmp_path / "lists"), expected, check_exact=False, rtol=0, atol=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lists", "local"]


def test_recsys_batch_command_both_engines(spark, world_model, tmp_path):
    runner = CliRunner()
    members = Recommender.load(world_model).history_.users["user_id"].nunique()
    rows = len(_expected(world_model, Recommender.load(world_model).history_.users["user_id"].astype(str).tolist(), 5))
    for engine in ("local", "spark"):
        spark_options = ["--spark-master", "local[2]"] if engine == "spark" else []
        result = runner.invoke(app, ["batch", "--artifacts", str(world_model), "--out", str(tmp_path / engine),
                                     "--engine", engine, "--k", "5", *spark_options, "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert (summary["members"], summary["rows"], summary["engine"]) == (members, rows, engine)
    pd.testing.assert_frame_equal(read_lists(tmp_path / "local"), read_lists(tmp_path / "spark"),
                                  check_exact=False, rtol=0, atol=1e-9)
    bad = runner.invoke(app, ["batch", "--artifacts", str(world_model), "--out", str(tmp_path / "x"), "--engine", "gpu"])
    assert bad.exit_code == 2 and "--engine must be local or spark" in bad.output
    ignored = runner.invoke(app, ["batch", "--artifacts", str(world_model), "--out", str(tmp_path / "z"),
                                  "--spark-master", "local[2]"])  # --engine local by default
    assert ignored.exit_code == 2 and "--spark-master apply to --engine spark only" not in ignored.output
    assert "--spark-master applies to --engine spark only" in ignored.output and not (tmp_path / "z").exists()
    missing = runner.invoke(app, ["batch", "--artifacts", str(tmp_path / "nothing"), "--out", str(tmp_path / "y")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output and "nothing" in missing.output


def test_a_missing_java_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(SparkUnavailable, match="apt-get install openjdk-17-jre-headless"):
        check_spark()


def test_a_damaged_model_is_named_on_the_driver_before_any_spark_job(spark, handmade_model, tmp_path):
    from recsys.errors import ArtifactError

    broken = tmp_path / "broken-model"
    shutil.copytree(handmade_model, broken)
    (broken / "data" / "users.parquet").write_bytes(b"not parquet")
    with pytest.raises(ArtifactError, match="checksum") as info:
        batch_spark(spark, broken, tmp_path / "out", k=5)
    assert "users.parquet" in str(info.value) and not (tmp_path / "out").exists()
