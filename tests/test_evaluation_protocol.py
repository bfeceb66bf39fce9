"""Protocols and the report: no leakage between train and test, known ordering of ground-truth policies."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.labels import LabelConfig

from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.evaluation.protocol import (
    GeneratorPolicy, OraclePolicy, RandomPolicy, segment_users, stratified_folds, temporal_folds,
    time_cut_folds,
)
from recsys.evaluation.report import evaluate, summary_table, write_report

WORLD = WorldConfig(seed=8, n_users=300, n_movies=150, n_shows=10, days=120)


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(WORLD)


@pytest.fixture(scope="module")
def data(world):
    return world.simulate()


def test_temporal_folds_never_leak_and_exclude_already_finished(data):
    folds = temporal_folds(data, n_folds=2, test_days=14, min_train_days=30)
    assert len(folds) == 2
    for fold in folds:
        assert fold.train.events["timestamp"].max() < fold.now
        assert (fold.test_events["timestamp"] >= fold.now).all()
        finished_before = fold.train.events[fold.train.events["watch_fraction"] > 0.8][["user_id", "item_id"]]
        assert fold.truth.merge(finished_before, on=["user_id", "item_id"]).empty
        in_window = fold.test_events[fold.test_events["watch_fraction"] > 0.8]
        assert set(fold.truth["item_id"]) <= set(in_window["item_id"])
        seg = segment_users(fold)
        assert set(seg["activity"]) <= {"cold", "light", "heavy"} and len(seg) == len(fold.users)


def test_stratified_fold_keeps_every_held_out_interaction_relevant(data):
    fold = stratified_folds(data, test_ratio=0.25, seed=1)[0]
    plays = data.plays()[["user_id", "item_id"]].drop_duplicates()
    train_plays = fold.train.plays()[["user_id", "item_id"]].drop_duplicates()
    assert len(fold.truth) + len(train_plays) == len(plays)
    assert fold.truth.merge(train_plays, on=["user_id", "item_id"]).empty


def _rated(rows) -> Dataset:
    t0 = pd.Timestamp("2000-01-01")
    events = pd.DataFrame([(u, i, t0 + pd.Timedelta(minutes=m), r) for m, u, i, r in rows],
                          columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame({"item_id": [f"m{j}" for j in range(5)], "title": "T"})
    return Dataset.from_frames(pd.DataFrame({"user_id": list("abcd")}), items, events)


def test_time_cut_fold_hand_computed_drops_cold_members_and_titles():
    data = _rated([(0, "a", "m0", 5), (1, "a", "m1", 4), (2, "b", "m0", 3), (3, "b", "m2", 5), (4, "c", "m3", 2),
                   (5, "a", "m2", 4),    # test: a hit
                   (6, "b", "m1", 3),    # a hit only when 3 counts
                   (7, "a", "m4", 5),    # m4 has no rating before the cut: dropped
                   (8, "d", "m0", 5),    # d has no rating before the cut: dropped
                   (9, "c", "m0", 4),    # c rated only a 2 before, still a known member: a hit
                   (10, "a", "m0", 5)])  # already finished before the cut: never a hit
    fold = time_cut_folds(data, test_ratio=0.5)[0]  # round(5.5) = 6 latest ratings: the cut is minute 5
    assert fold.now == pd.Timestamp("2000-01-01 00:05:00") and fold.train.events["timestamp"].max() < fold.now
    assert sorted(map(tuple, fold.truth.to_numpy())) == [("a", "m2"), ("c", "m0")]
    assert fold.info["dropped_cold_users"] == 1 and fold.info["dropped_cold_titles"] == 1
    assert fold.info["train_interactions"] == 5 and fold.info["test_interactions"] == 6
    three = time_cut_folds(data, test_ratio=0.5, labels=LabelConfig(rating_threshold=3))[0]
    assert sorted(map(tuple, three.truth.to_numpy())) == [("a", "m2"), ("b", "m1"), ("c", "m0")]
    assert three.users == ["a", "b", "c"]


def test_report_orders_oracle_over_popularity_over_random(world, data, tmp_path):
    folds = temporal_folds(data, n_folds=1, test_days=14, min_train_days=30)
    report = evaluate(data, {"random": lambda: RandomPolicy(0), "popularity": lambda: GeneratorPolicy(("popularity",)),
                             "oracle": lambda: OraclePolicy(world)}, folds, k=10, max_k=20, n_boot=200)
    ndcg = {name: m["metrics"]["ndcg"]["estimate"] for name, m in report["models"].items()}
    assert ndcg["oracle"] > ndcg["popularity"] > ndcg["random"]
    assert report["best"] == "oracle"
    curve = report["models"]["oracle"]["curves"]["recall"]
    assert len(curve) == 20 and all(a <= b + 1e-12 for a, b in zip(curve, curve[1:]))
    assert report["models"]["oracle"]["auc"]["global"] > 0.7
    cmp = {(c["b"], c["metric"]): c for c in report["comparisons"]}
    assert cmp[("random", "ndcg")]["significant"] and cmp[("random", "ndcg")]["diff"] > 0
    assert set(report["models"]["oracle"]["segments"]["activity"]) <= {"cold", "light", "heavy"}
    table = summary_table(report)
    assert table["model"].iloc[0] == "oracle" and table["of reference"].iloc[0] == pytest.approx(1.0)
    path = write_report(report, tmp_path / "report.json")
    assert json.loads(path.read_text())["k"] == 10
