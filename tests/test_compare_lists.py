"""The inspector's comparison of two top lists, on hand-made lists with known moves."""

from __future__ import annotations

import pandas as pd

from recsys.pipeline import PREVIOUS_DEFAULT, RecommenderConfig
from recsys.ui.compare import NO_RANKER, PREVIOUS, compare_lists, overlap_summary, variant_config, variants


def _top(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": ids, "title": [f"T{i}" for i in ids], "rank": range(1, len(ids) + 1),
                         "reason": [f"why {i}" for i in ids]})


def test_moves_newcomers_and_drops_are_named_from_the_first_lists_view():
    a, b = _top(["1", "2", "3", "4"]), _top(["3", "1", "5", "2"])
    table = compare_lists(a, b, ("A", "B"))
    assert table["title"].tolist() == ["T1", "T2", "T3", "T4", "T5"]
    assert table["change"].tolist() == ["down 1", "down 2", "up 2", "only in the first", "only in the second"]
    assert table["rank: B"].tolist()[:3] == [2, 4, 1] and pd.isna(table["rank: B"].iat[3])
    assert table["reason: A"].iat[0] == "why 1" and table["reason: B"].iat[4] == "why 5"
    assert overlap_summary(a, b) == {"shared": 3, "size": 4, "same_rank": 0, "mean_shift": (1 + 2 + 2) / 3}
    same = overlap_summary(a, a)
    assert same["shared"] == 4 and same["same_rank"] == 4 and same["mean_shift"] == 0.0


def test_variants_are_configurations_derived_from_the_active_one():
    active = RecommenderConfig(ranker="logistic")  # a fitted model's configuration names the ranker it chose
    names = variants(active)
    assert names[0] == "lists by P(watch)" and PREVIOUS in names and "logistic ranker" not in names
    assert variant_config(active, "lists by P(watch)") == "watch"
    assert variant_config(active, PREVIOUS) == PREVIOUS_DEFAULT
    lgb = variant_config(active, "boosting ranker")
    assert lgb.ranker == "boosting" and lgb.sources == active.sources and lgb.objective == active.objective
    assert variant_config(active, NO_RANKER).ranker is None
    blend = RecommenderConfig(ranker=None)
    assert NO_RANKER not in variants(blend) and "lists by P(watch)" not in variants(blend)
