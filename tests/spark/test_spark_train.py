"""`recsys train --engine spark`: the ranker's training windows built on Spark and read back by the driver fit
the same model as in one process (the same rows, labels, weights and class counts, so the same coefficients
and lists), whether the driver hands Spark the events or the executors read the Parquet folder, for any
partitioning; configurations whose rows Spark does not build are refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recsys.cli import app
from recsys.data.loaders import load_dataset, save_dataset
from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.pipeline import Recommender
from recsys.spark.source import read_source
from recsys.spark.windows import SparkWindowTables

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    data = SyntheticWorld(WorldConfig(seed=5, n_users=60, n_movies=40, n_shows=3, days=60)).simulate()
    out = tmp_path_factory.mktemp("spark-train") / "world"
    save_dataset(data, out)
    return out


@pytest.fixture(scope="module")
def local_model(folder):
    return Recommender().fit(load_dataset(f"parquet:{folder}"))


@pytest.mark.parametrize("partitions, executors_read", [(1, False), (7, True)])
def test_a_model_trained_on_spark_equals_the_single_process_one(spark, folder, local_model, partitions,
                                                                executors_read):
    data = load_dataset(f"parquet:{folder}")
    source = read_source(spark, folder, partitions=partitions) if executors_read else None
    remote = Recommender().fit(data, window_tables=SparkWindowTables(spark, source, partitions))
    local = local_model
    assert remote.training_summary_["balance"] == local.training_summary_["balance"]
    assert remote.negative_keep_rate_ == local.negative_keep_rate_ < 1.0
    a, b = local.training_table_, remote.training_table_
    assert len(a) == len(b) > 500
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_allclose(b.weight, a.weight, rtol=0, atol=1e-9)
    np.testing.assert_allclose(remote.ranker_.coef_, local.ranker_.coef_, rtol=0, atol=1e-9)
    assert abs(remote.ranker_.intercept_ - local.ranker_.intercept_) <= 1e-9
    members = data.users["user_id"].astype(str).tolist()
    x, y = local.recommend(members, k=10), remote.recommend(members, k=10)
    assert (x["item_id"].astype(str).to_numpy() == y["item_id"].astype(str).to_numpy()).all()
    np.testing.assert_allclose(y["score"].to_numpy(float), x["score"].to_numpy(float), rtol=0, atol=1e-9)


def test_a_world_without_devices_or_searches_trains_the_same_on_spark(spark, tmp_path):
    """No device column (no context feature, no device key) and no searches (no search-word list): the rows read
    back from Spark still give the single process's model."""
    data = SyntheticWorld(WorldConfig(seed=8, n_users=50, n_movies=35, n_shows=2, days=60)).simulate()
    data = data._with(data.users, data.items, data.events.drop(columns=["device"]), data.searches.iloc[:0])
    save_dataset(data, tmp_path / "world")
    data = load_dataset(f"parquet:{tmp_path / 'world'}")
    assert not data.has("events", "device") and len(data.searches) == 0
    local = Recommender().fit(data)
    remote = Recommender().fit(data, window_tables=SparkWindowTables(spark, read_source(spark, tmp_path / "world"), 3))
    assert "search_terms" not in remote.training_table_.features and len(remote.training_table_) > 300
    assert remote.training_summary_["balance"] == local.training_summary_["balance"]
    np.testing.assert_allclose(remote.ranker_.coef_, local.ranker_.coef_, rtol=0, atol=1e-9)


def _ranker_files(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in sorted((folder / "ranker").rglob("*")) if p.is_file()}


def test_train_command_on_spark_writes_the_single_process_ranker(spark, folder, local_model, tmp_path):
    out = tmp_path / "spark"
    result = CliRunner().invoke(app, ["train", "--data", f"parquet:{folder}", "--out", str(out), "--engine", "spark",
                                      "--spark-master", "local[2]", "--partitions", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["engine"] == "spark" and summary["training_rows"] == len(local_model.training_table_)
    local_model.save(tmp_path / "local")
    expected = _ranker_files(tmp_path / "local")
    assert expected and _ranker_files(out) == expected


@pytest.mark.parametrize("args, reason", [
    (["--ranker", "none"], "a configuration without a ranker has no training rows to build"),
    (["--preset", "previous"], "this configuration trains on candidates rows (training_rows='candidates')"),
])
def test_rows_spark_does_not_build_are_refused_with_the_reason(folder, tmp_path, args, reason):
    result = CliRunner().invoke(app, ["train", "--data", f"parquet:{folder}", "--out", str(tmp_path / "m"),
                                      "--engine", "spark", *args])
    assert result.exit_code == 2 and reason in result.output
    assert not Path(tmp_path / "m").exists()


def test_an_unknown_engine_is_named(tmp_path):
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "m"), "--engine", "dask"])
    assert result.exit_code == 2 and "--engine must be local or spark, got 'dask'" in result.output
