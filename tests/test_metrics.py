"""Metrics library: hand-computed cases, scikit-learn cross-checks, batch == per-user, properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import average_precision_score, ndcg_score, roc_auc_score

import recsys.evaluation as ev
from recsys.evaluation import (
    auc_by_user,
    auc_score,
    average_precision_at_k,
    average_precision_by_user,
    average_recall_at_k,
    average_recall_by_user,
    catalogue_coverage,
    f1_ci,
    f1_from_map_mar,
    global_auc,
    hit_rate_at_k,
    intra_list_diversity,
    intra_list_diversity_by_user,
    mae,
    map_at_k,
    mar_at_k,
    mean_ci,
    metric_at_k_curve,
    ndcg_at_k,
    ndcg_by_user,
    novelty,
    novelty_by_user,
    paired_bootstrap,
    paired_t_test,
    precision_at_k,
    precision_by_user,
    ranking_metrics,
    rating_errors_by_user,
    recall_at_k,
    recall_by_user,
    reciprocal_rank_at_k,
    rmse,
)

PER_USER = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ap": average_precision_at_k,
    "ar": average_recall_at_k,
    "ndcg": ndcg_at_k,
    "hit_rate": hit_rate_at_k,
    "mrr": reciprocal_rank_at_k,
}


def test_exports():
    assert set(ev.__all__) <= set(dir(ev))
    assert set(PER_USER) == set(ev.RANKING_METRICS)


# ------------------------------------------------------------------ hand-computed cases
RANKED = ["a", "b", "c", "d", "e"]
RELEVANT = {"a", "c", "e", "x"}  # x is relevant but never recommended: |rel| = 4, hits at 1, 3, 5


def test_precision_recall_hit_mrr_by_hand():
    assert precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(3 / 5)  # hits a, c, e
    assert precision_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 2)  # a
    assert precision_at_k(RANKED, RELEVANT, 10) == pytest.approx(3 / 10)  # short list is not excused
    assert recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(3 / 4)
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 4)
    assert hit_rate_at_k(RANKED, {"d"}, 3) == 0.0 and hit_rate_at_k(RANKED, {"d"}, 4) == 1.0
    assert reciprocal_rank_at_k(RANKED, {"c", "e"}, 5) == pytest.approx(1 / 3)  # first hit at 3
    assert reciprocal_rank_at_k(RANKED, {"e"}, 4) == 0.0  # first hit at 5 > k
    # duplicates count once, at their first position: [a, a, c] -> [a, c]
    assert precision_at_k(["a", "a", "c"], {"c"}, 2) == pytest.approx(1 / 2)


def test_average_precision_both_denominators_by_hand():
    # precision at the hit positions: P@1 = 1/1, P@3 = 2/3, P@5 = 3/5; sum = 1 + 0.6667 + 0.6 = 2.2667
    total = 1 + 2 / 3 + 3 / 5
    assert average_precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(total / 4)  # min(|rel|=4, k=5) = 4
    assert average_precision_at_k(RANKED, RELEVANT, 5, denominator="all") == pytest.approx(total / 4)
    # k = 3: hits at 1 and 3, sum = 1 + 2/3 = 1.6667; min(4, 3) = 3 vs |rel| = 4
    assert average_precision_at_k(RANKED, RELEVANT, 3) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(RANKED, RELEVANT, 3, denominator="all") == pytest.approx((1 + 2 / 3) / 4)
    # a perfect list of 2 for a user with 4 relevant items: 'min' gives 1, 'all' gives (1 + 1) / 4
    assert average_precision_at_k(["a", "c"], RELEVANT, 2) == 1.0
    assert average_precision_at_k(["a", "c"], RELEVANT, 2, denominator="all") == pytest.approx(0.5)


def test_average_recall_by_hand():
    # recall@1..5 = 1/4, 1/4, 2/4, 2/4, 3/4 -> sum 9/4, mean over k = 5 -> 9/20
    assert average_recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(9 / 20)
    # ideal list for one relevant item, k = 4: recall@i = 1 for all i -> 1
    assert average_recall_at_k(["x", "a"], {"x"}, 4) == 1.0
    # hit only at the last position, k = 4: recall = 0, 0, 0, 1 -> 1/4 (order matters, unlike recall@4)
    assert average_recall_at_k(["a", "b", "c", "x"], {"x"}, 4) == pytest.approx(1 / 4)
    # ideal list for m = 2 relevant, k = 4: recall 1/2, 1, 1, 1 -> 3.5 / 4 = 1 - (m - 1) / (2k)
    assert average_recall_at_k(["x", "y"], {"x", "y"}, 4) == pytest.approx(1 - 1 / 8)


def test_ndcg_by_hand():
    # binary: hits at 1, 3, 5 -> DCG = 1/log2(2) + 1/log2(4) + 1/log2(6) = 1 + 0.5 + 0.38685 = 1.88685
    # IDCG over the 4 relevant items truncated at 5: 1 + 1/log2(3) + 1/2 + 1/log2(5) = 2.56371
    dcg = 1 + 1 / 2 + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3) + 1 / 2 + 1 / math.log2(5)
    assert ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(dcg / idcg)
    # graded, k = 3, grades a=3, c=1: DCG = (2^3-1)/1 + 0 + (2^1-1)/2 = 7.5; IDCG = 7 + 1/log2(3) = 7.63093
    assert ndcg_at_k(RANKED, {"a": 3, "c": 1}, 3) == pytest.approx(7.5 / (7 + 1 / math.log2(3)))
    # linear gain: DCG = 3 + 1/2 = 3.5; IDCG = 3 + 1/log2(3)
    assert ndcg_at_k(RANKED, {"a": 3, "c": 1}, 3, gain="linear") == pytest.approx(3.5 / (3 + 1 / math.log2(3)))
    # grade 0 means "not relevant": same as leaving the item out
    assert ndcg_at_k(RANKED, {"a": 3, "c": 1, "b": 0}, 3) == ndcg_at_k(RANKED, {"a": 3, "c": 1}, 3)


def test_no_relevant_items_is_nan_per_user():
    for fn in PER_USER.values():
        assert math.isnan(fn(RANKED, set(), 3))
        assert math.isnan(fn(RANKED, {"a": 0.0}, 3))


def test_auc_by_hand():
    # positives scored 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) -> 3/4
    assert auc_score([0.9, 0.5, 0.4, 0.1], [1, 0, 1, 0]) == pytest.approx(0.75)
    # a tie between a positive and a negative counts 1/2: pairs (1 > 0, 0.5 tie) -> 1.5 / 2
    assert auc_score([0.7, 0.7, 0.1], [1, 0, 0]) == pytest.approx(0.75)
    assert math.isnan(auc_score([0.3, 0.2], [1, 1]))


def test_coverage_diversity_novelty_by_hand():
    recs = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": ["a", "b", "a", "c"], "rank": [1, 2, 1, 2]})
    assert catalogue_coverage(recs, list("abcde")) == pytest.approx(3 / 5)
    assert catalogue_coverage(recs, list("abcde"), k=1) == pytest.approx(1 / 5)  # only a
    assert catalogue_coverage([["a", "z"], ["b"]], list("abcd")) == pytest.approx(2 / 4)  # z not in catalogue
    # genre sets: J(a,b) = |{x}| / |{x,y}| = 1/2, J(a,c) = 0, J(b,c) = 0 -> distances 1/2, 1, 1 -> mean 5/6
    genres = {"a": {"x"}, "b": {"x", "y"}, "c": {"z"}}
    assert intra_list_diversity(["a", "b", "c"], genres) == pytest.approx(5 / 6)
    assert intra_list_diversity(["a", "b", "c"], {g: sorted(v) for g, v in genres.items()}) == pytest.approx(5 / 6)
    # vectors: a=(1,0), b=(1,1), c=(0,1): cos(a,b)=cos(b,c)=1/sqrt2, cos(a,c)=0 -> mean dissimilarity
    # ((1 - 0.70711) * 2 + 1) / 3 = 0.52860
    vec = pd.DataFrame([[1, 0], [1, 1], [0, 1]], index=["a", "b", "c"])
    assert intra_list_diversity(["a", "b", "c"], vec) == pytest.approx((2 * (1 - 1 / math.sqrt(2)) + 1) / 3)
    assert math.isnan(intra_list_diversity(["a", "q"], vec))  # q has no features: one item left
    by_user = intra_list_diversity_by_user(recs, genres, 2)
    assert by_user.to_dict() == {1: pytest.approx(0.5), 2: pytest.approx(1.0)}
    # novelty with 8 users: a seen by 4 (p=1/2 -> 1 bit), b by 1 (p=1/8 -> 3 bits), c unseen (as 1 user: 3 bits)
    pop = {"a": 4, "b": 1}
    assert novelty(["a", "b"], pop, 8) == pytest.approx(2.0)
    assert novelty(["a", "b"], pop, 8, normalize=True) == pytest.approx(2.0 / 3)
    assert novelty_by_user(recs, pop, 8, 2).to_dict() == {1: pytest.approx(2.0), 2: pytest.approx(2.0)}


def test_rating_errors_by_hand():
    # errors 1, -1, 2 -> MAE 4/3, RMSE sqrt(6/3)
    assert mae([4, 3, 1], [5, 2, 3]) == pytest.approx(4 / 3)
    assert rmse([4, 3, 1], [5, 2, 3]) == pytest.approx(math.sqrt(2))
    df = pd.DataFrame({"user_id": [1, 1, 2], "rating": [4, 3, 1], "prediction": [5, 2, 3]})
    out = rating_errors_by_user(df)
    assert out.loc[1, "rmse"] == pytest.approx(1.0) and out.loc[2, "mae"] == pytest.approx(2.0)
    assert out["n"].tolist() == [2, 1]


def test_f1_from_map_mar():
    assert f1_from_map_mar(0.2, 0.6) == pytest.approx(2 * 0.2 * 0.6 / 0.8)  # 0.3
    assert f1_from_map_mar(0.0, 0.0) == 0.0
    with pytest.raises(ValueError):
        f1_from_map_mar(1.5, 0.2)


# ------------------------------------------------------------------ scikit-learn cross-checks
def _random_user(rng: np.random.Generator, n_items: int = 30):
    """A universe of items with grades (some relevant) and continuous scores (no ties)."""
    grades = rng.integers(0, 4, n_items) * (rng.random(n_items) < 0.4)
    if grades.max() == 0:
        grades[rng.integers(n_items)] = 1
    scores = rng.random(n_items)
    ranked = list(np.argsort(-scores))
    return grades, scores, ranked


@pytest.mark.parametrize("seed", range(20))
def test_ndcg_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    grades, scores, ranked = _random_user(rng)
    k = int(rng.integers(1, 31))
    relevant = {i: float(g) for i, g in enumerate(grades) if g > 0}
    # sklearn ranks every item by score and uses linear gains, with IDCG over all items at k;
    # our list is the top-L items (L >= k) so the two see the same top k.
    listed = ranked[: int(rng.integers(k, 31))]
    assert ndcg_at_k(listed, relevant, k, gain="linear") == pytest.approx(ndcg_score([grades], [scores], k=k))
    exp_gains = np.exp2(grades) - 1  # exponential gain = linear gain on 2^rel - 1
    assert ndcg_at_k(listed, relevant, k) == pytest.approx(ndcg_score([exp_gains], [scores], k=k))
    binary = {i for i, g in enumerate(grades) if g > 0}
    assert ndcg_at_k(listed, binary, k) == pytest.approx(ndcg_score([grades > 0], [scores], k=k))


@pytest.mark.parametrize("seed", range(20))
def test_average_precision_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    grades, scores, ranked = _random_user(rng)
    labels = grades > 0
    relevant = set(np.flatnonzero(labels))
    n = len(ranked)  # every item ranked: AP with denominator |rel| is sklearn's AP
    expected = average_precision_score(labels, scores)
    assert average_precision_at_k(ranked, relevant, n, denominator="all") == pytest.approx(expected)
    assert average_precision_at_k(ranked, relevant, n, denominator="min") == pytest.approx(expected)  # k >= |rel|


@pytest.mark.parametrize("seed", range(20))
def test_auc_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 5, n).astype(float)  # many ties on purpose
    assert auc_score(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


def _batch_data(seed: int, n_users: int = 40, n_items: int = 60, graded: bool = True):
    """Random recommendations (with duplicate rows, users without recs or without relevant items) and truth."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        if u % 13 == 5:
            continue  # this user has no recommendations at all
        length = int(rng.integers(1, 25))
        items = rng.integers(0, n_items, length)  # may repeat: first occurrence wins
        rows += [(u, int(i), float(s)) for i, s in zip(items, rng.random(length))]
    recs = pd.DataFrame(rows, columns=["user_id", "item_id", "score"])
    truth_rows = []
    for u in range(n_users + 3):  # three users appear only in the truth
        for i in rng.choice(n_items, int(rng.integers(0, 8)), replace=False):
            truth_rows.append((u, int(i), int(rng.integers(0, 4)) if graded else 1))
    truth = pd.DataFrame(truth_rows, columns=["user_id", "item_id", "gain"])
    return recs, truth


def _lists(recs: pd.DataFrame, truth: pd.DataFrame):
    ranked = {u: g.sort_values("score", ascending=False, kind="stable")["item_id"].tolist()
              for u, g in recs.groupby("user_id")}
    relevant = {u: dict(zip(g["item_id"], g["gain"])) for u, g in truth.groupby("user_id")}
    return ranked, relevant


@pytest.mark.parametrize("seed", range(4))
def test_auc_batch_matches_sklearn(seed):
    recs, truth = _batch_data(seed)
    per_user = auc_by_user(recs, truth)
    pos = set(zip(truth.loc[truth.gain > 0, "user_id"], truth.loc[truth.gain > 0, "item_id"]))
    scored = recs.drop_duplicates(["user_id", "item_id"])
    labels = np.array([(u, i) in pos for u, i in zip(scored.user_id, scored.item_id)], dtype=int)
    expected = {}
    for u, idx in scored.groupby("user_id").indices.items():
        if 0 < labels[idx].sum() < len(idx):
            expected[u] = roc_auc_score(labels[idx], scored["score"].to_numpy()[idx])
    assert per_user.to_dict() == pytest.approx(expected)
    assert global_auc(recs, truth) == pytest.approx(roc_auc_score(labels, scored["score"]))


# ------------------------------------------------------------------ batch == per-user
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1, 5, 20])
def test_batch_matches_per_user(seed, k):
    recs, truth = _batch_data(seed)
    ranked, relevant = _lists(recs, truth)
    table = ranking_metrics(recs, truth, k)
    users = sorted(u for u, rel in relevant.items() if any(g > 0 for g in rel.values()))
    assert table.index.tolist() == users
    for name, fn in PER_USER.items():
        expected = [fn(ranked.get(u, []), relevant[u], k) for u in users]
        assert table[name].to_numpy() == pytest.approx(expected), name
    ap_all = average_precision_by_user(recs, truth, k, denominator="all")
    assert ap_all.tolist() == pytest.approx(
        [average_precision_at_k(ranked.get(u, []), relevant[u], k, denominator="all") for u in users])
    ndcg_lin = ndcg_by_user(recs, truth, k, gain="linear")
    assert ndcg_lin.tolist() == pytest.approx([ndcg_at_k(ranked.get(u, []), relevant[u], k, gain="linear")
                                                for u in users])
    assert map_at_k(recs, truth, k) == pytest.approx(table["ap"].mean())
    assert mar_at_k(recs, truth, k) == pytest.approx(table["ar"].mean())


def test_rank_column_and_score_column_agree():
    recs, truth = _batch_data(7)
    by_rank = recs.assign(rank=recs.groupby("user_id")["score"].rank(ascending=False, method="first") * 10)
    by_rank = by_rank.drop(columns="score").sample(frac=1.0, random_state=0)  # order from rank, not rows
    pd.testing.assert_frame_equal(ranking_metrics(by_rank, truth, 10), ranking_metrics(recs, truth, 10))


def test_population_and_no_relevant_policy():
    recs = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": ["a", "b", "a", "c"], "rank": [1, 2, 1, 1]})
    truth = pd.DataFrame({"user_id": [1, 2, 4], "item_id": ["b", "z", "a"], "gain": [1, 0, 1]})
    # user 2 has only a grade-0 row, user 3 has no truth, user 4 has truth but no recommendations
    assert precision_by_user(recs, truth, 2).to_dict() == {1: 0.5, 4: 0.0}
    nan = recall_by_user(recs, truth, 2, no_relevant="nan")
    assert nan.index.tolist() == [1, 2, 3, 4] and nan[[2, 3]].isna().all() and nan[1] == 1.0
    assert recall_by_user(recs, truth, 2, no_relevant="zero").to_dict() == {1: 1.0, 2: 0.0, 3: 0.0, 4: 0.0}
    assert recall_by_user(recs, truth, 2, users=[4, 1, 9]).to_dict() == {1: 1.0, 4: 0.0}
    assert recall_by_user(recs, truth, 2, users=[4, 9], no_relevant="nan").index.tolist() == [4, 9]
    assert recall_by_user(recs, truth, 2).index.name == "user_id"


def test_metric_at_k_curve_matches_pointwise():
    recs, truth = _batch_data(3)
    curve = metric_at_k_curve(recs, truth, "ndcg", ks=[10, 1, 5])
    assert curve.columns.tolist() == [1, 5, 10] and curve.columns.name == "k"
    for k in (1, 5, 10):
        assert curve[k].tolist() == pytest.approx(ndcg_by_user(recs, truth, k).tolist())
    ap = metric_at_k_curve(recs, truth, "ap", ks=range(1, 4), denominator="all")
    assert ap[3].tolist() == pytest.approx(average_precision_by_user(recs, truth, 3, denominator="all").tolist())
    custom = metric_at_k_curve(recs, truth, lambda r, t, k: recall_by_user(r, t, k), ks=[2, 4])
    assert custom[4].tolist() == pytest.approx(recall_by_user(recs, truth, 4).tolist())
    full = metric_at_k_curve(recs, truth, "recall")
    assert full.shape[1] == 50 and (full.diff(axis=1).iloc[:, 1:] >= -1e-12).all().all()


def test_diversity_and_novelty_batch_match_per_user():
    rng = np.random.default_rng(5)
    recs, _ = _batch_data(5)
    feats = pd.DataFrame(rng.normal(size=(60, 6)), index=range(60))
    feats.iloc[3] = 0.0  # a zero vector: dissimilar to everything
    genres = {i: set(rng.choice(list("ABCDEFG"), int(rng.integers(0, 3)), replace=False)) for i in range(60)}
    pop = pd.Series(rng.integers(0, 30, 60), index=range(60))
    ranked, _ = _lists(recs, recs.assign(gain=1))
    for features in (feats, genres):
        by_user = intra_list_diversity_by_user(recs, features, 8)
        expected = {u: intra_list_diversity(lst, features, 8) for u, lst in ranked.items()}
        assert by_user.to_dict() == pytest.approx({u: v for u, v in expected.items() if not math.isnan(v)})
    nov = novelty_by_user(recs, pop, 30, 8, normalize=True)
    assert nov.to_dict() == pytest.approx({u: novelty(lst, pop, 30, 8, normalize=True) for u, lst in ranked.items()})
    assert ((nov >= 0) & (nov <= 1)).all()


def test_bad_inputs_are_clear_errors():
    recs, truth = _batch_data(1)
    with pytest.raises(ValueError, match="k must be an integer"):
        precision_by_user(recs, truth, 0)
    with pytest.raises(ValueError, match="'rank' or a 'score'"):
        precision_by_user(recs.drop(columns="score"), truth, 5)
    with pytest.raises(ValueError, match="missing column"):
        precision_by_user(recs, truth.drop(columns="item_id"), 5)
    with pytest.raises(ValueError, match=">= 0"):
        ndcg_by_user(recs, truth.assign(gain=-1), 5)
    with pytest.raises(ValueError, match="denominator"):
        average_precision_at_k(RANKED, RELEVANT, 3, denominator="hits")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0/1"):
        auc_score([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="equal length"):
        paired_t_test([1.0, 2.0], [1.0])


# ------------------------------------------------------------------ properties
ranked_lists = st.lists(st.integers(0, 30), min_size=0, max_size=25)
relevant_sets = st.sets(st.integers(0, 30), min_size=1, max_size=12)
cutoffs = st.integers(1, 30)


@settings(max_examples=150, deadline=None)
@given(ranked_lists, relevant_sets, cutoffs)
def test_every_ranking_metric_in_unit_interval(ranked, relevant, k):
    for name, fn in PER_USER.items():
        assert 0.0 <= fn(ranked, relevant, k) <= 1.0 + 1e-12, name
    assert 0.0 <= average_precision_at_k(ranked, relevant, k, denominator="all") <= 1.0 + 1e-12


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 4)), min_size=1, max_size=30),
       st.lists(st.lists(st.integers(0, 12), max_size=8), min_size=1, max_size=6),
       st.dictionaries(st.integers(0, 12), st.sets(st.sampled_from("ABCD"), max_size=3)),
       st.dictionaries(st.integers(0, 12), st.integers(0, 50)))
def test_beyond_accuracy_metrics_in_unit_interval(labelled, lists, genres, pop):
    labels, scores = zip(*labelled)
    auc = auc_score(np.array(scores, dtype=float), np.array(labels))
    assert math.isnan(auc) == (len(set(labels)) < 2)
    assert math.isnan(auc) or 0.0 <= auc <= 1.0
    assert 0.0 <= catalogue_coverage(lists, range(13), k=3) <= 1.0
    for lst in lists:
        ild = intra_list_diversity(lst, genres, 5, dissimilarity="jaccard")
        assert math.isnan(ild) or 0.0 <= ild <= 1.0
        nov = novelty(lst, pop, 50, normalize=True)
        assert math.isnan(nov) == (len(lst) == 0)
        assert math.isnan(nov) or 0.0 <= nov <= 1.0


@settings(max_examples=100, deadline=None)
@given(relevant_sets, st.integers(0, 10), st.randoms(use_true_random=False))
def test_ideal_ranking_scores_one(relevant, extra, rnd):
    ideal = sorted(relevant) + [100 + i for i in range(extra)]  # all relevant first, then misses
    k = len(relevant) + rnd.randint(0, 5)  # N >= |rel|
    assert ndcg_at_k(ideal, relevant, k) == pytest.approx(1.0)
    assert average_precision_at_k(ideal, relevant, k) == pytest.approx(1.0)
    assert average_precision_at_k(ideal, relevant, k, denominator="all") == pytest.approx(1.0)
    assert recall_at_k(ideal, relevant, k) == 1.0
    # graded: items sorted by grade descending are ideal for NDCG
    grades = {item: 1 + (item % 3) for item in relevant}
    by_grade = sorted(grades, key=lambda i: -grades[i])
    assert ndcg_at_k(by_grade, grades, k) == pytest.approx(1.0)
    # the ideal list maximises AR too: 1 - (m - 1) / (2k) when m <= k
    m = len(relevant)
    assert average_recall_at_k(ideal, relevant, k) == pytest.approx(1 - (m - 1) / (2 * k))


@settings(max_examples=150, deadline=None)
@given(ranked_lists, relevant_sets)
def test_recall_never_falls_and_precision_counts_hits(ranked, relevant):
    recalls = [recall_at_k(ranked, relevant, k) for k in range(1, 31)]
    assert all(b >= a for a, b in zip(recalls, recalls[1:]))
    for k in range(1, 31):
        hits = sum(item in relevant for item in list(dict.fromkeys(ranked))[:k])
        assert precision_at_k(ranked, relevant, k) * k == pytest.approx(hits)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=25, unique=True), relevant_sets, cutoffs)
def test_average_recall_is_mean_of_recall_curve(ranked, relevant, k):
    expected = sum(recall_at_k(ranked, relevant, i) for i in range(1, k + 1)) / k
    assert average_recall_at_k(ranked, relevant, k) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=60), st.integers(0, 2**16))
def test_bootstrap_ci_contains_the_mean(values, seed):
    ci = mean_ci(values, n_boot=300, seed=seed)
    tol = 1e-9 * (1 + max(abs(v) for v in values))
    assert ci.low - tol <= ci.estimate <= ci.high + tol
    assert ci.estimate == pytest.approx(float(np.mean(values)))
    assert mean_ci(values, n_boot=300, seed=seed) == ci  # seeded: reproducible


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=60), st.integers(0, 2**16))
def test_paired_tests_of_identical_inputs(values, seed):
    for res in (paired_bootstrap(values, values, n_boot=200, seed=seed), paired_t_test(values, values)):
        assert res.diff == 0.0 and res.low == 0.0 and res.high == 0.0
        assert res.p_value == pytest.approx(1.0)
        assert not res.significant()


# ------------------------------------------------------------------ statistics
def test_paired_tests_detect_a_real_difference_and_match_scipy():
    rng = np.random.default_rng(0)
    users = pd.Index(range(500), name="user_id")
    a = pd.Series(rng.random(500), index=users)
    b = (a - 0.05 + rng.normal(0, 0.05, 500)).sample(frac=1.0, random_state=1)  # shuffled: aligned by index
    boot = paired_bootstrap(a, b, seed=3)
    t = paired_t_test(a, b)
    expected = stats.ttest_rel(a.sort_index(), b.sort_index())
    assert t.p_value == pytest.approx(expected.pvalue) and t.p_value < 1e-6
    assert boot.p_value == pytest.approx(1 / 2001) and boot.significant()
    assert boot.low < boot.diff < boot.high and 0 < boot.low
    assert t.diff == pytest.approx(0.05, abs=0.01) and t.low < t.diff < t.high
    assert paired_bootstrap(a, b, seed=3) == boot
    # users missing on one side, or NaN, are left out of the pairing
    assert paired_t_test(a.iloc[:300], b).n == 300
    assert paired_bootstrap(a.where(a > 0.5), b, n_boot=50).n == int((a > 0.5).sum())
    assert set(boot.as_dict()) >= {"diff", "low", "high", "p_value", "n", "method"}


def test_noise_is_not_significant():
    rng = np.random.default_rng(11)
    a, b = rng.random(400), rng.random(400)
    assert paired_bootstrap(a, b, seed=0).p_value > 0.05
    assert paired_t_test(a, b).p_value > 0.05


def test_f1_ci_and_mean_ci_shape():
    recs, truth = _batch_data(2)
    ap = average_precision_by_user(recs, truth, 10)
    ar = average_recall_by_user(recs, truth, 10)
    ci = f1_ci(ap, ar, seed=1)
    assert ci.estimate == pytest.approx(f1_from_map_mar(ap.mean(), ar.mean()))
    assert ci.low <= ci.estimate <= ci.high and ci.n == len(ap)
    m = mean_ci(ap.to_numpy().tolist() + [float("nan")], level=0.9, seed=2)  # NaN ignored
    assert m.n == len(ap) and m.level == 0.9 and m.as_dict()["estimate"] == pytest.approx(ap.mean())


def test_batch_scale_is_fast_enough():
    """10,000 users x K=50: all ranking metrics at once and a K=1..50 curve stay well under a few seconds."""
    rng = np.random.default_rng(0)
    n_users, k = 10_000, 50
    recs = pd.DataFrame({"user_id": np.repeat(np.arange(n_users), k),
                         "item_id": rng.integers(0, 3000, n_users * k), "score": rng.random(n_users * k)})
    truth = pd.DataFrame({"user_id": rng.integers(0, n_users, 60_000), "item_id": rng.integers(0, 3000, 60_000)})
    table = ranking_metrics(recs, truth, k)
    curve = metric_at_k_curve(recs, truth, "recall")
    assert len(table) == truth["user_id"].nunique() and curve.shape == (len(table), 50)
    assert curve[50].to_numpy() == pytest.approx(table["recall"].to_numpy())
