"""Offline metrics over a table of lists on Spark equal the single-process metrics, on a hand-computed case and on
random lists with graded and plain relevance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation import metrics as m
from recsys.spark.metrics import list_metrics, member_metrics

pytestmark = pytest.mark.spark


def test_a_hand_computed_member(spark):
    lists = pd.DataFrame({"member": ["a"] * 3 + ["b"] * 3, "rank": [1, 2, 3] * 2,
                          "title": ["x", "y", "z", "x", "y", "z"]})
    truth = pd.DataFrame({"member": ["a", "a", "b", "c"], "title": ["y", "w", "x", "x"]})
    rows = member_metrics(spark.createDataFrame(lists), spark.createDataFrame(truth), k=3).toPandas()
    rows = rows.set_index("member").sort_index()
    # a: one hit at rank 2 of two relevant titles; b: a hit at rank 1 of one; c: no list, one relevant title
    assert list(rows.index) == ["a", "b", "c"]
    assert rows.loc["a", "ndcg"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)), abs=1e-12)
    assert rows.loc["a", "average_precision"] == pytest.approx(0.5 / 2, abs=1e-12)
    assert rows.loc["a", "recall"] == 0.5 and rows.loc["a", "precision"] == pytest.approx(1 / 3)
    assert rows.loc["b", "ndcg"] == 1.0 and rows.loc["c", "ndcg"] == 0.0 and rows.loc["c", "hit_rate"] == 0.0
    means = list_metrics(spark.createDataFrame(lists), spark.createDataFrame(truth), k=3)
    assert means["members"] == 3 and means["hit_rate"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_lists_match_the_single_process_metrics(spark, seed):
    rng = np.random.default_rng(seed)
    members = [f"u{i}" for i in range(120)]
    lists = pd.DataFrame([(u, r + 1, f"t{t}") for u in members[:100]
                          for r, t in enumerate(rng.choice(60, size=10, replace=False))],
                         columns=["member", "rank", "title"])
    truth = pd.DataFrame([(u, f"t{t}", float(rng.integers(1, 4))) for u in members[20:]
                          for t in rng.choice(60, size=int(rng.integers(1, 8)), replace=False)],
                         columns=["member", "title", "grade"])
    got = list_metrics(spark.createDataFrame(lists).repartition(5), spark.createDataFrame(truth), k=10)
    recs = lists.rename(columns={"member": "user_id", "title": "item_id"})
    rel = truth.rename(columns={"member": "user_id", "title": "item_id", "grade": m.GAIN})
    binary = m.ndcg_by_user(recs, rel.drop(columns=m.GAIN), 10).mean()
    want = {"precision": m.precision_by_user(recs, rel, 10).mean(), "recall": m.recall_by_user(recs, rel, 10).mean(),
            "average_precision": m.average_precision_by_user(recs, rel, 10).mean(),
            "average_recall": m.average_recall_by_user(recs, rel, 10).mean(),
            "ndcg": m.ndcg_by_user(recs, rel, 10).mean(), "hit_rate": m.hit_rate_by_user(recs, rel, 10).mean()}
    assert got["members"] == 100
    assert abs(got["ndcg"] - binary) > 1e-3  # the grades count: graded NDCG is not the binary one
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    assert got["f1"] == pytest.approx(m.f1_from_map_mar(want["average_precision"], want["average_recall"]), abs=1e-9)
