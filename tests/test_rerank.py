"""Re-ranking the top 10: each rule with a hand-made case, and invariants as properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data import Dataset
from recsys.features import NotFittedError
from recsys.rerank import ReRanker, RerankConfig

NOW = pd.Timestamp("2025-09-01 20:00")


def _data() -> Dataset:
    users = pd.DataFrame({"user_id": ["kid", "adult"], "age": [10, 40]})
    items = pd.DataFrame({
        "item_id": ["drama1", "drama2", "comedy", "horror", "ep1", "ep2", "doc"],
        "title": ["Drama One", "Drama Two", "Comedy", "Horror", "Show E1", "Show E2", "Doc"],
        "show_id": [None, None, None, None, "s1", "s1", None],
        "genres": [["Drama"], ["Drama"], ["Comedy"], ["Horror"], ["Crime"], ["Crime"], ["Documentary"]],
        "maturity_rating": ["PG", "PG", "PG", "R", "PG-13", "PG-13", "G"],
    })
    shown = [("adult", "doc", d) for d in (1, 3, 5)] + [("adult", "comedy", 2)] + [("adult", "horror", 30)] * 3
    events = pd.DataFrame({"user_id": [s[0] for s in shown], "item_id": [s[1] for s in shown],
                           "timestamp": [NOW - pd.Timedelta(days=s[2]) for s in shown],
                           "watch_fraction": 0.0})
    return Dataset.from_frames(users, items, events)


def _ranked(user, items_scores):
    return pd.DataFrame({"user_id": user, "item_id": [i for i, _ in items_scores],
                         "score": [s for _, s in items_scores], "source": "test"})


def test_each_rule_drops_with_its_reason():
    data = _data()
    rr = ReRanker(RerankConfig(diversity=0.0)).fit(data)
    ignored = rr.ignored_titles(data, ["adult"], NOW)
    assert ignored.to_dict("records") == [{"user_id": "adult", "item_id": "doc", "times_shown": 3}]
    ranked = _ranked("adult", [("doc", 0.9), ("ep1", 0.8), ("ep2", 0.7), ("horror", 0.6), ("comedy", 0.5)])
    result = rr.rerank(ranked, k=10, ignored=ignored)
    assert result.items["item_id"].tolist() == ["ep1", "horror", "comedy"]
    assert result.items["rank"].tolist() == [1, 2, 3]
    assert result.items["rank_before_rerank"].tolist() == [2, 4, 5]
    reasons = dict(zip(result.changes["item_id"], result.changes["reason"]))
    assert reasons["doc"] == "shown 3 times in the last 14 days and not played"
    assert reasons["ep2"] == "another entry of the same show is already in the list (Show E1)"
    # horror was shown 3 times, but 30 days ago: outside the window, so it stays


def test_members_too_young_for_a_rating_never_see_it():
    data = _data()
    result = ReRanker(RerankConfig(diversity=0.0)).fit(data).rerank(
        _ranked("kid", [("horror", 0.9), ("ep1", 0.8), ("drama1", 0.7)]))
    assert result.items["item_id"].tolist() == ["drama1"]
    assert set(result.changes["reason"]) == {"rated R, the member is 10", "rated PG-13, the member is 10"}
    # an onboarding visitor's declared age counts too
    result = ReRanker(RerankConfig(diversity=0.0)).fit(data).rerank(
        _ranked("visitor", [("horror", 0.9), ("drama1", 0.7)]), ages={"visitor": 12})
    assert result.items["item_id"].tolist() == ["drama1"]


def test_mmr_trades_a_little_score_for_variety():
    data = _data()
    ranked = _ranked("adult", [("drama1", 0.9), ("drama2", 0.85), ("comedy", 0.8)])
    plain = ReRanker(RerankConfig(diversity=0.0)).fit(data).rerank(ranked, k=2)
    assert plain.items["item_id"].tolist() == ["drama1", "drama2"] and plain.changes.empty
    # d = 0.5: relevance drama1 1, drama2 0.5, comedy 0; after drama1, drama2 scores
    # 0.5*0.5 - 0.5*1 = -0.25 and comedy 0.5*0 - 0.5*0 = 0, so comedy comes second
    mixed = ReRanker(RerankConfig(diversity=0.5)).fit(data).rerank(ranked, k=2)
    assert mixed.items["item_id"].tolist() == ["drama1", "comedy"]
    moved = mixed.changes[mixed.changes["action"] == "moved"]
    assert moved[["item_id", "from_rank", "to_rank"]].values.tolist() == [["comedy", 3, 2]]


def test_unfitted_and_bad_config_are_clear_errors():
    with pytest.raises(NotFittedError):
        ReRanker().rerank(_ranked("adult", [("doc", 1.0)]))
    with pytest.raises(ValueError, match="diversity"):
        RerankConfig(diversity=1.5)


@settings(max_examples=40, deadline=None)
@given(scores=st.lists(st.floats(0, 1), min_size=0, max_size=7, unique=True),
       diversity=st.floats(0, 1), k=st.integers(1, 10))
def test_rerank_invariants(scores, diversity, k):
    data = _data()
    ids = list(data.items["item_id"])[: len(scores)]
    ranked = _ranked("adult", list(zip(ids, scores))) if scores else _ranked("adult", []).astype({"score": float})
    result = ReRanker(RerankConfig(diversity=diversity, ignored_after=0, max_per_show=0)).fit(data).rerank(ranked, k)
    out = result.items["item_id"].tolist()
    assert len(out) == len(set(out)) == min(k, len(scores))
    assert set(out) <= set(ids)
    if diversity == 0 and scores:
        assert result.items["score"].is_monotonic_decreasing


def _catalogue(n: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    genres = ["Drama", "Comedy", "Horror", "Crime", "Documentary", "Action"]
    items = pd.DataFrame({
        "item_id": [f"t{i}" for i in range(n)], "title": [f"Title {i}" for i in range(n)],
        "show_id": [f"s{i % 7}" if i % 5 == 0 else None for i in range(n)],
        "genres": [list(rng.choice(genres, size=rng.integers(1, 3), replace=False)) for _ in range(n)],
        "maturity_rating": rng.choice(["G", "PG", "R"], size=n),
    })
    users = pd.DataFrame({"user_id": ["u1", "u2"], "age": [15, 40]})
    events = pd.DataFrame({"user_id": ["u1"], "item_id": ["t0"], "timestamp": [NOW], "watch_fraction": [0.9]})
    return Dataset.from_frames(users, items, events)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), diversity=st.floats(0, 1), k=st.integers(1, 12), longer=st.integers(1, 60))
def test_the_top_of_a_longer_list_is_the_shorter_list(seed, diversity, k, longer):
    """What the evaluation scores at k (from a list of max_k) is exactly what is served at k."""
    data = _catalogue(200, seed)
    rng = np.random.default_rng(seed)
    ranked = pd.concat([_ranked(u, list(zip(data.items["item_id"], rng.random(200)))) for u in ("u1", "u2")],
                       ignore_index=True)
    rr = ReRanker(RerankConfig(diversity=diversity)).fit(data)
    short = rr.rerank(ranked, k=k).items
    long = rr.rerank(ranked, k=k + longer).items
    head = long[long["rank"] <= k]
    assert head[["user_id", "item_id", "rank"]].values.tolist() == short[["user_id", "item_id", "rank"]].values.tolist()


# ------------------------------------------------------------------ the step contract
#: Per registered step: a ranked list for the "adult" or "kid" of `_data()`, the title the step alone takes
#: out of the top 2, and the title whose change it records (a step added to RERANK_STEPS without a case here
#: fails the test below).
STEP_CASES = {
    "maturity": ("kid", [("horror", 0.9), ("drama1", 0.8), ("comedy", 0.7)], "horror", "horror"),
    "ignored": ("adult", [("doc", 0.9), ("drama1", 0.8), ("comedy", 0.7)], "doc", "doc"),
    "show_limit": ("adult", [("ep1", 0.9), ("ep2", 0.85), ("comedy", 0.5)], "ep2", "ep2"),
    "diversity": ("adult", [("drama1", 0.9), ("drama2", 0.85), ("comedy", 0.8)], "drama2", "comedy"),
}


def test_every_registered_step_runs_the_contract():
    from recsys.rerank import RERANK_STEPS

    assert set(STEP_CASES) == set(RERANK_STEPS.names()) == set(RerankConfig().steps)


@pytest.mark.parametrize("name", list(STEP_CASES))
def test_rerank_step_contract(name):
    """The step changes the list only when configured, explains each change, and keeps the list valid."""
    from recsys.rerank import RERANK_STEPS

    data = _data()
    user, items, target, recorded = STEP_CASES[name]
    ranked = _ranked(user, items)
    others = tuple(s for s in RERANK_STEPS.names() if s != name)
    config = dict(diversity=0.5 if name == "diversity" else 0.0)
    without = ReRanker(RerankConfig(steps=others, **config)).fit(data)
    with_step = ReRanker(RerankConfig(**config)).fit(data)
    k = 2
    before = without.rerank(ranked, k=k, ignored=without.ignored_titles(data, [user], NOW)).items["item_id"].tolist()
    result = with_step.rerank(ranked, k=k, ignored=with_step.ignored_titles(data, [user], NOW))
    after = result.items["item_id"].tolist()
    assert target in before and target not in after
    assert len(after) == len(set(after)) <= k and set(after) <= {i for i, _ in items}
    changed = result.changes[result.changes["item_id"] == recorded]
    assert len(changed) >= 1 and changed["reason"].str.len().gt(10).all()
    with pytest.raises(ValueError, match="re-rank step"):
        RerankConfig(steps=("maturity", "no-such-step"))
