"""Offline recommendation metrics: ranking accuracy, beyond-accuracy, rating error, and statistics.

Pure functions over plain Python / numpy / pandas inputs, with no dependency on the rest of
`recsys`, so that every model and report is scored by one audited implementation.
Exact definitions live in docs/metrics.md; the docstrings here say what and why.

Two shapes of input:

* per user: a ranked list of item ids (best first) and the user's relevant items, either a
  collection of ids (binary relevance) or a mapping id -> relevance grade (graded; an item
  is relevant when its grade is > 0);
* batch: a recommendations DataFrame (`user_id`, `item_id`, and `rank` (1 = best) or
  `score` (higher = better)) and a ground-truth DataFrame (`user_id`, `item_id`, optional
  `gain` = relevance grade, default 1). Batch functions return per-user values as a
  `pd.Series` indexed by `user_id`, so callers can take means, bootstrap CIs and run paired
  tests over users.

Users without relevant items have undefined recall/AP/NDCG; by default (`no_relevant="drop"`)
they are left out of the per-user Series, hence out of every mean. Per-user functions return
NaN for them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal, Union

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "RANKING_METRICS",
    "ConfidenceInterval",
    "PairedComparison",
    "auc_by_user",
    "auc_score",
    "average_precision_at_k",
    "average_precision_by_user",
    "average_recall_at_k",
    "average_recall_by_user",
    "catalogue_coverage",
    "f1_ci",
    "f1_from_map_mar",
    "global_auc",
    "hit_rate_at_k",
    "hit_rate_by_user",
    "intra_list_diversity",
    "intra_list_diversity_by_user",
    "mae",
    "map_at_k",
    "mar_at_k",
    "mean_ci",
    "metric_at_k_curve",
    "ndcg_at_k",
    "ndcg_by_user",
    "novelty",
    "novelty_by_user",
    "paired_bootstrap",
    "paired_t_test",
    "precision_at_k",
    "precision_by_user",
    "ranking_metrics",
    "rating_errors_by_user",
    "recall_at_k",
    "recall_by_user",
    "reciprocal_rank_at_k",
    "reciprocal_rank_by_user",
    "rmse",
]

USER, ITEM, RANK, SCORE, GAIN = "user_id", "item_id", "rank", "score", "gain"

Relevance = Union[Collection[Hashable], Mapping[Hashable, float]]
Features = Union[pd.DataFrame, pd.Series, Mapping[Hashable, object]]
Denominator = Literal["min", "all"]
GainKind = Literal["exponential", "linear"]
NoRelevant = Literal["drop", "nan", "zero"]
Dissimilarity = Literal["auto", "cosine", "jaccard"]

RANKING_METRICS: tuple[str, ...] = ("precision", "recall", "ap", "ar", "ndcg", "hit_rate", "mrr")
"""Names accepted by `ranking_metrics` and `metric_at_k_curve`."""


# ----------------------------------------------------------------------------- validation
def _check_k(k: object, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {k!r}")
    return int(k)


def _check_choice(name: str, value: object, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}; it has {list(df.columns)}")


def _check_grades(grades: np.ndarray, what: str) -> None:
    if grades.size and (not np.all(np.isfinite(grades)) or grades.min() < 0):
        raise ValueError(f"{what} relevance grades must be finite and >= 0")


def _sorted_index(index: pd.Index) -> pd.Index:
    try:
        return index.sort_values()
    except TypeError:  # mixed, unorderable ids: keep first-seen order
        return index


# ----------------------------------------------------------------------------- batch inputs
def _ordered_recs(recs: pd.DataFrame, k: int | None) -> pd.DataFrame:
    """Recommendations as (user_id, item_id, pos) with pos = 1..k, best first, duplicates removed.

    Order comes from `rank` (ascending) if present, else `score` (descending); ties keep input
    order. Only the order is used, so ranks need not be contiguous.
    """
    _require_columns(recs, (USER, ITEM), "recs")
    if RANK in recs.columns:
        key, ascending = RANK, True
    elif SCORE in recs.columns:
        key, ascending = SCORE, False
    else:
        raise ValueError(f"recs needs a '{RANK}' or a '{SCORE}' column; it has {list(recs.columns)}")
    df = recs[[USER, ITEM, key]]
    if df[key].isna().any():
        raise ValueError(f"recs column '{key}' has missing values")
    df = df.assign(_row=np.arange(len(df))).sort_values([key, "_row"], ascending=[ascending, True])
    df = df.drop_duplicates([USER, ITEM], keep="first")
    pos = df.groupby(USER, sort=False).cumcount().to_numpy() + 1
    out = pd.DataFrame({USER: df[USER].to_numpy(), ITEM: df[ITEM].to_numpy(), "pos": pos})
    if k is not None:
        out = out[out["pos"] <= k]
    return out.reset_index(drop=True)


def _truth_table(truth: pd.DataFrame) -> pd.DataFrame:
    """Ground truth as (user_id, item_id, grade), one row per pair (max grade kept)."""
    _require_columns(truth, (USER, ITEM), "truth")
    grade = truth[GAIN].to_numpy(dtype=float) if GAIN in truth.columns else np.ones(len(truth))
    _check_grades(grade, "truth")
    df = pd.DataFrame({USER: truth[USER].to_numpy(), ITEM: truth[ITEM].to_numpy(), "grade": grade})
    return df.groupby([USER, ITEM], sort=False, as_index=False)["grade"].max()


@dataclass(frozen=True)
class _Arrays:
    """Dense per-user view of a top-k evaluation: what every ranking kernel needs."""

    users: pd.Index
    grades: np.ndarray  # (n, k) relevance grade of the item at each position, 0 = miss/empty
    ideal: np.ndarray  # (n, k) the user's relevant grades sorted descending, 0-padded
    n_rel: np.ndarray  # (n,) number of relevant items (grade > 0)


def _ranking_arrays(recs: pd.DataFrame, truth: pd.DataFrame, k: int, users: Iterable[Hashable] | None,
                    no_relevant: NoRelevant) -> _Arrays:
    _check_choice("no_relevant", no_relevant, ("drop", "nan", "zero"))
    top = _ordered_recs(recs, k)
    gt = _truth_table(truth)
    rel = gt[gt["grade"] > 0]
    n_rel_by_user = rel.groupby(USER, sort=False).size()
    if users is not None:
        index = pd.Index(list(users)).unique()
    elif no_relevant == "drop":
        index = n_rel_by_user.index
    else:
        index = pd.Index(gt[USER]).append(pd.Index(top[USER])).unique()
    index = _sorted_index(pd.Index(index, name=USER))
    n_rel = n_rel_by_user.reindex(index, fill_value=0).to_numpy(dtype=np.int64)
    if no_relevant == "drop":
        index, n_rel = index[n_rel > 0], n_rel[n_rel > 0]

    n = len(index)
    grades = np.zeros((n, k))
    hit = top.merge(rel, on=[USER, ITEM], how="inner")
    rows = index.get_indexer(hit[USER])
    keep = rows >= 0
    grades[rows[keep], hit["pos"].to_numpy()[keep] - 1] = hit["grade"].to_numpy()[keep]

    ideal = np.zeros((n, k))
    best = rel.sort_values("grade", ascending=False, kind="stable")
    slot = best.groupby(USER, sort=False).cumcount().to_numpy()
    rows = index.get_indexer(best[USER])
    keep = (rows >= 0) & (slot < k)
    ideal[rows[keep], slot[keep]] = best["grade"].to_numpy()[keep]
    return _Arrays(index, grades, ideal, n_rel)


def _dedupe(ranked: Sequence[Hashable]) -> list[Hashable]:
    return list(dict.fromkeys(ranked))


def _grade_of(relevant: Relevance) -> dict[Hashable, float]:
    if isinstance(relevant, (Mapping, pd.Series)):
        grades = {item: float(g) for item, g in relevant.items()}
    else:
        grades = {item: 1.0 for item in relevant}
    _check_grades(np.fromiter(grades.values(), dtype=float, count=len(grades)), "relevant")
    return {item: g for item, g in grades.items() if g > 0}


def _single_arrays(ranked: Sequence[Hashable], relevant: Relevance, k: int) -> _Arrays:
    """The 1-user `_Arrays` for a ranked list, so per-user and batch share one kernel."""
    grade = _grade_of(relevant)
    listed = _dedupe(ranked)[:k]
    grades = np.zeros((1, k))
    grades[0, : len(listed)] = [grade.get(item, 0.0) for item in listed]
    best = sorted(grade.values(), reverse=True)[:k]
    ideal = np.zeros((1, k))
    ideal[0, : len(best)] = best
    return _Arrays(pd.Index([0], name=USER), grades, ideal, np.array([len(grade)]))


# ----------------------------------------------------------------------------- ranking kernels
def _hits(a: _Arrays, k: int) -> np.ndarray:
    return (a.grades[:, :k] > 0).astype(float)


def _k_precision(a: _Arrays, k: int) -> np.ndarray:
    return _hits(a, k).sum(axis=1) / k


def _k_recall(a: _Arrays, k: int) -> np.ndarray:
    return _hits(a, k).sum(axis=1) / a.n_rel


def _k_hit_rate(a: _Arrays, k: int) -> np.ndarray:
    return (_hits(a, k).sum(axis=1) > 0).astype(float)


def _k_mrr(a: _Arrays, k: int) -> np.ndarray:
    h = _hits(a, k)
    first = h.argmax(axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)


def _k_ap(a: _Arrays, k: int, denominator: Denominator = "min") -> np.ndarray:
    h = _hits(a, k)
    precision_at = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    denom = np.minimum(a.n_rel, k) if denominator == "min" else a.n_rel
    return (precision_at * h).sum(axis=1) / denom


def _k_ar(a: _Arrays, k: int) -> np.ndarray:
    recall_at = np.cumsum(_hits(a, k), axis=1) / a.n_rel[:, None]
    return recall_at.mean(axis=1)


def _dcg(grades: np.ndarray, gain: GainKind) -> np.ndarray:
    g = np.exp2(grades) - 1.0 if gain == "exponential" else grades
    return (g / np.log2(np.arange(2, grades.shape[1] + 2))).sum(axis=1)


def _k_ndcg(a: _Arrays, k: int, gain: GainKind = "exponential") -> np.ndarray:
    return _dcg(a.grades[:, :k], gain) / _dcg(a.ideal[:, :k], gain)


def _kernel(name: str, denominator: Denominator, gain: GainKind) -> Callable[[_Arrays, int], np.ndarray]:
    _check_choice("metric", name, RANKING_METRICS)
    _check_choice("denominator", denominator, ("min", "all"))
    _check_choice("gain", gain, ("exponential", "linear"))
    if name == "ap":
        return lambda a, k: _k_ap(a, k, denominator)
    if name == "ndcg":
        return lambda a, k: _k_ndcg(a, k, gain)
    return {"precision": _k_precision, "recall": _k_recall, "ar": _k_ar,
            "hit_rate": _k_hit_rate, "mrr": _k_mrr}[name]


def _apply(kernel: Callable[[_Arrays, int], np.ndarray], a: _Arrays, k: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(kernel(a, k), dtype=float)


def _finish(values: np.ndarray, a: _Arrays, no_relevant: NoRelevant, name: str) -> pd.Series:
    values = values.copy()
    empty = a.n_rel == 0
    values[empty] = 0.0 if no_relevant == "zero" else np.nan
    return pd.Series(values, index=a.users, name=name)


def _per_user(name: str, ranked: Sequence[Hashable], relevant: Relevance, k: int,
              denominator: Denominator = "min", gain: GainKind = "exponential") -> float:
    k = _check_k(k)
    a = _single_arrays(ranked, relevant, k)
    if a.n_rel[0] == 0:
        return float("nan")
    return float(_apply(_kernel(name, denominator, gain), a, k)[0])


def _by_user(name: str, recs: pd.DataFrame, truth: pd.DataFrame, k: int, users: Iterable[Hashable] | None,
             no_relevant: NoRelevant, denominator: Denominator = "min",
             gain: GainKind = "exponential") -> pd.Series:
    k = _check_k(k)
    kernel = _kernel(name, denominator, gain)
    a = _ranking_arrays(recs, truth, k, users, no_relevant)
    return _finish(_apply(kernel, a, k), a, no_relevant, f"{name}@{k}")


# ----------------------------------------------------------------------------- per-user ranking metrics
def precision_at_k(ranked: Sequence[Hashable], relevant: Relevance, k: int) -> float:
    """Hits in the top k divided by k (a list shorter than k is not excused); NaN without relevant items."""
    return _per_user("precision", ranked, relevant, k)


def recall_at_k(ranked: Sequence[Hashable], relevant: Relevance, k: int) -> float:
    """Hits in the top k divided by the number of relevant items; NaN without relevant items."""
    return _per_user("recall", ranked, relevant, k)


def average_precision_at_k(ranked: Sequence[Hashable], relevant: Relevance, k: int,
                           denominator: Denominator = "min") -> float:
    """AP@k = sum over hit positions i <= k of precision@i, divided by min(|rel|, k) or |rel|.

    `denominator="min"` (default, ml_metrics/Kaggle apk) lets a perfect list score 1 even when
    the user has more than k relevant items; `"all"` is the IR/scikit-learn convention.
    """
    return _per_user("ap", ranked, relevant, k, denominator=denominator)


def average_recall_at_k(ranked: Sequence[Hashable], relevant: Relevance, k: int) -> float:
    """AR@k = (1/k) * sum_{i=1..k} recall@i: the mean of the recall@i curve, so early hits count more."""
    return _per_user("ar", ranked, relevant, k)


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Relevance, k: int, gain: GainKind = "exponential") -> float:
    """DCG@k / IDCG@k with gain 2^rel - 1 (or rel if `gain="linear"`) and discount log2(i + 1).

    IDCG sorts all of the user's relevant items by grade and truncates at k.
    """
    return _per_user("ndcg", ranked, relevant, k, gain=gain)


def hit_rate_at_k(ranked: Sequence[Hashable], relevant: Relevance, k: int) -> float:
    """1 if any relevant item is in the top k, else 0; NaN without relevant items."""
    return _per_user("hit_rate", ranked, relevant, k)


def reciprocal_rank_at_k(ranked: Sequence[Hashable], relevant: Relevance, k: int) -> float:
    """1 / position of the first relevant item in the top k, 0 if none; NaN without relevant items."""
    return _per_user("mrr", ranked, relevant, k)


# ----------------------------------------------------------------------------- batch ranking metrics
def precision_by_user(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *, users: Iterable[Hashable] | None = None,
                      no_relevant: NoRelevant = "drop") -> pd.Series:
    """Per-user precision@k (see `precision_at_k`).

    `users` fixes the evaluated population (default: users with a relevant item); a user with
    relevant items but no recommendations scores 0. `no_relevant` says what users without
    relevant items get: "drop" (left out, the default), "nan" (kept as NaN) or "zero".
    """
    return _by_user("precision", recs, truth, k, users, no_relevant)


def recall_by_user(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *, users: Iterable[Hashable] | None = None,
                   no_relevant: NoRelevant = "drop") -> pd.Series:
    """Per-user recall@k (see `recall_at_k`; `users`/`no_relevant` as in `precision_by_user`)."""
    return _by_user("recall", recs, truth, k, users, no_relevant)


def average_precision_by_user(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *, denominator: Denominator = "min",
                              users: Iterable[Hashable] | None = None,
                              no_relevant: NoRelevant = "drop") -> pd.Series:
    """Per-user AP@k (see `average_precision_at_k`); its mean is mAP@k."""
    return _by_user("ap", recs, truth, k, users, no_relevant, denominator=denominator)


def average_recall_by_user(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *,
                           users: Iterable[Hashable] | None = None, no_relevant: NoRelevant = "drop") -> pd.Series:
    """Per-user AR@k (see `average_recall_at_k`); its mean is mAR@k."""
    return _by_user("ar", recs, truth, k, users, no_relevant)


def ndcg_by_user(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *, gain: GainKind = "exponential",
                 users: Iterable[Hashable] | None = None, no_relevant: NoRelevant = "drop") -> pd.Series:
    """Per-user NDCG@k (see `ndcg_at_k`); grades come from truth's `gain` column (default 1)."""
    return _by_user("ndcg", recs, truth, k, users, no_relevant, gain=gain)


def hit_rate_by_user(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *, users: Iterable[Hashable] | None = None,
                     no_relevant: NoRelevant = "drop") -> pd.Series:
    """Per-user hit@k (0/1); its mean is the hit rate@k."""
    return _by_user("hit_rate", recs, truth, k, users, no_relevant)


def reciprocal_rank_by_user(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *,
                            users: Iterable[Hashable] | None = None, no_relevant: NoRelevant = "drop") -> pd.Series:
    """Per-user reciprocal rank@k; its mean is MRR@k."""
    return _by_user("mrr", recs, truth, k, users, no_relevant)


def map_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int, *, denominator: Denominator = "min") -> float:
    """mAP@k: mean of per-user AP@k over users with at least one relevant item."""
    return float(average_precision_by_user(recs, truth, k, denominator=denominator).mean())


def mar_at_k(recs: pd.DataFrame, truth: pd.DataFrame, k: int) -> float:
    """mAR@k: mean of per-user AR@k over users with at least one relevant item."""
    return float(average_recall_by_user(recs, truth, k).mean())


def ranking_metrics(recs: pd.DataFrame, truth: pd.DataFrame, k: int, metrics: Iterable[str] = RANKING_METRICS, *,
                    denominator: Denominator = "min", gain: GainKind = "exponential",
                    users: Iterable[Hashable] | None = None, no_relevant: NoRelevant = "drop") -> pd.DataFrame:
    """Several per-user ranking metrics at k from one pass over the data (columns named as in RANKING_METRICS)."""
    k = _check_k(k)
    kernels = {name: _kernel(name, denominator, gain) for name in metrics}
    a = _ranking_arrays(recs, truth, k, users, no_relevant)
    cols = {name: _finish(_apply(kern, a, k), a, no_relevant, name) for name, kern in kernels.items()}
    return pd.DataFrame(cols, index=a.users)


def metric_at_k_curve(recs: pd.DataFrame, truth: pd.DataFrame,
                      metric: str | Callable[[pd.DataFrame, pd.DataFrame, int], pd.Series],
                      ks: Iterable[int] = range(1, 51), *, denominator: Denominator = "min",
                      gain: GainKind = "exponential", users: Iterable[Hashable] | None = None,
                      no_relevant: NoRelevant = "drop") -> pd.DataFrame:
    """Per-user metric@k for every k in `ks`: a DataFrame (rows = users, columns = k).

    `metric` is a name from RANKING_METRICS (computed in one pass at max(ks)) or a callable
    `(recs, truth, k) -> per-user Series`. Take `.mean()` for the curve of means.
    """
    ks = sorted({_check_k(k, "ks") for k in ks})
    if not ks:
        raise ValueError("ks must not be empty")
    if callable(metric):
        cols = {k: metric(recs, truth, k) for k in ks}
        out = pd.DataFrame(cols)
    else:
        kernel = _kernel(metric, denominator, gain)
        a = _ranking_arrays(recs, truth, max(ks), users, no_relevant)
        out = pd.DataFrame({k: _finish(_apply(kernel, a, k), a, no_relevant, str(k)) for k in ks}, index=a.users)
    out.columns = pd.Index(ks, name="k")
    return out


def f1_from_map_mar(map_value: float, mar_value: float) -> float:
    """Harmonic mean of mAP@k and mAR@k (0 when both are 0): the design note's F1."""
    if not (0.0 <= map_value <= 1.0 and 0.0 <= mar_value <= 1.0):
        raise ValueError(f"mAP and mAR must lie in [0, 1], got {map_value!r}, {mar_value!r}")
    total = map_value + mar_value
    return 0.0 if total == 0 else 2.0 * map_value * mar_value / total


# ----------------------------------------------------------------------------- AUC
def auc_score(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """ROC AUC = P(score of a random positive > score of a random negative), ties count 1/2.

    Computed by the Mann-Whitney rank sum; NaN when only one class is present.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D and of equal length, got {s.shape} and {y.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1 (or bool)")
    y = y.astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _scored_with_labels(scored: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    _require_columns(scored, (USER, ITEM, SCORE), "scored")
    df = scored[[USER, ITEM, SCORE]].drop_duplicates([USER, ITEM], keep="first")
    if not np.all(np.isfinite(df[SCORE].to_numpy(dtype=float))):
        raise ValueError("scored column 'score' must be finite")
    gt = _truth_table(truth)
    rel = gt.loc[gt["grade"] > 0, [USER, ITEM]].assign(label=1)
    out = df.merge(rel, on=[USER, ITEM], how="left")
    out["label"] = out["label"].fillna(0).astype(int)
    return out


def auc_by_user(scored: pd.DataFrame, truth: pd.DataFrame, *, dropna: bool = True) -> pd.Series:
    """Per-user AUC over the items each user was scored on (scored ∩ truth = positives, rest negatives).

    Relevant items the model did not score are not counted. Users whose scored items are all
    positive or all negative have no AUC: dropped (default) or NaN with `dropna=False`.
    """
    df = _scored_with_labels(scored, truth)
    df["r"] = df.groupby(USER, sort=False)[SCORE].rank(method="average")
    df["r_pos"] = df["r"] * df["label"]
    agg = df.groupby(USER).agg(n=("label", "size"), n_pos=("label", "sum"), r_pos=("r_pos", "sum"))
    n_pos = agg["n_pos"].to_numpy(dtype=float)
    n_neg = agg["n"].to_numpy(dtype=float) - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (agg["r_pos"].to_numpy() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    out = pd.Series(auc, index=agg.index.rename(USER), name="auc")
    return out.dropna() if dropna else out


def global_auc(scored: pd.DataFrame, truth: pd.DataFrame) -> float:
    """AUC of all (user, item) scores pooled into one list: also rewards calibration across users."""
    df = _scored_with_labels(scored, truth)
    return auc_score(df[SCORE].to_numpy(dtype=float), df["label"].to_numpy())


# ----------------------------------------------------------------------------- beyond accuracy
def catalogue_coverage(recs: pd.DataFrame | Iterable[Sequence[Hashable]], catalogue: Iterable[Hashable],
                       k: int | None = None) -> float:
    """Share of the catalogue that appears in at least one user's top k (all positions if k is None).

    Recommended ids outside `catalogue` are not counted.
    """
    items = pd.Index(list(catalogue)).unique()
    if len(items) == 0:
        raise ValueError("catalogue must not be empty")
    if isinstance(recs, pd.DataFrame):
        shown = _ordered_recs(recs, None if k is None else _check_k(k))[ITEM]
    else:
        cut = None if k is None else _check_k(k)
        shown = [item for lst in recs for item in _dedupe(lst)[:cut]]
    return float(items.isin(pd.Index(shown).unique()).mean())


def _feature_matrix(features: Features, kind: Dissimilarity) -> tuple[pd.Index, np.ndarray, str]:
    """Item features as (item index, matrix, "cosine"|"jaccard"); sets/str lists become multi-hot."""
    _check_choice("dissimilarity", kind, ("auto", "cosine", "jaccard"))
    if isinstance(features, pd.DataFrame):
        if kind == "jaccard":
            raise ValueError("a feature DataFrame is a vector per item; use cosine or pass genre sets")
        if not features.index.is_unique:
            raise ValueError("feature index must be unique item ids")
        return features.index, features.to_numpy(dtype=float), "cosine"
    series = features if isinstance(features, pd.Series) else pd.Series(dict(features), dtype=object)
    if not series.index.is_unique:
        raise ValueError("feature index must be unique item ids")
    values = list(series.to_numpy())

    def is_label_set(v: object) -> bool:
        return isinstance(v, (set, frozenset)) or (
            isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, str) for x in v))

    if kind == "jaccard" or (kind == "auto" and any(is_label_set(v) for v in values)):
        vocab = pd.Index(sorted({str(x) for v in values for x in v}))
        mat = np.zeros((len(values), len(vocab)), dtype=np.float32)
        for row, v in enumerate(values):
            if len(v):
                mat[row, vocab.get_indexer([str(x) for x in v])] = 1.0
        return series.index, mat, "jaccard"
    if not values:
        return series.index, np.zeros((0, 1)), "cosine"
    return series.index, np.vstack([np.asarray(v, dtype=float).ravel() for v in values]), "cosine"


def _ild_rows(codes: np.ndarray, mat: np.ndarray, kind: str) -> np.ndarray:
    """Mean pairwise dissimilarity per row of `codes` (n, k) item rows into `mat`, -1 = empty slot."""
    n, k = codes.shape
    out = np.full(n, np.nan)
    chunk = max(1, 4_000_000 // max(1, k * mat.shape[1]))
    for start in range(0, n, chunk):
        idx = codes[start:start + chunk]
        valid = idx >= 0
        x = mat[np.where(valid, idx, 0)] * valid[..., None]
        m = valid.sum(axis=1)
        if kind == "cosine":  # zero vectors stay zero: similarity 0, dissimilarity 1
            norm = np.linalg.norm(x, axis=2, keepdims=True)
            x = x / np.where(norm > 0, norm, 1.0)
            # sum over ordered pairs i != j of cos(x_i, x_j) = |sum_i x_i|^2 - sum_i |x_i|^2
            summed = x.sum(axis=1)
            similar = np.einsum("nd,nd->n", summed, summed) - np.einsum("nkd,nkd->n", x, x)
            total = m * (m - 1) - similar
        else:
            inter = x @ x.transpose(0, 2, 1)
            size = x.sum(axis=2)
            union = size[:, :, None] + size[:, None, :] - inter
            with np.errstate(divide="ignore", invalid="ignore"):
                dis = np.where(union > 0, 1.0 - inter / union, 0.0)  # two empty sets: identical
            pair = valid[:, :, None] & valid[:, None, :] & ~np.eye(k, dtype=bool)
            total = (dis * pair).sum(axis=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:start + chunk] = np.clip(np.where(m >= 2, total / (m * (m - 1)), np.nan), 0.0, 2.0)
    return out


def intra_list_diversity(ranked: Sequence[Hashable], features: Features, k: int | None = None,
                         dissimilarity: Dissimilarity = "auto") -> float:
    """Mean pairwise dissimilarity of the top-k items: 1 - cosine for vectors, 1 - Jaccard for genre sets.

    Items without features are skipped; NaN when fewer than two items remain.
    """
    index, mat, kind = _feature_matrix(features, dissimilarity)
    items = _dedupe(ranked)[: None if k is None else _check_k(k)]
    codes = index.get_indexer(pd.Index(items)) if items else np.zeros(0, dtype=int)
    codes = codes[codes >= 0]
    if len(codes) < 2:
        return float("nan")
    return float(_ild_rows(codes[None, :], mat, kind)[0])


def intra_list_diversity_by_user(recs: pd.DataFrame, features: Features, k: int, *,
                                 dissimilarity: Dissimilarity = "auto", dropna: bool = True) -> pd.Series:
    """Per-user intra-list diversity of the top k (see `intra_list_diversity`), vectorised in chunks."""
    k = _check_k(k)
    index, mat, kind = _feature_matrix(features, dissimilarity)
    top = _ordered_recs(recs, k)
    top = top.assign(code=index.get_indexer(top[ITEM]))
    top = top[top["code"] >= 0]
    users = _sorted_index(pd.Index(top[USER].unique(), name=USER))
    slot = top.groupby(USER, sort=False).cumcount().to_numpy()
    codes = np.full((len(users), k), -1, dtype=np.int64)
    codes[users.get_indexer(top[USER]), slot] = top["code"].to_numpy()
    out = pd.Series(_ild_rows(codes, mat, kind), index=users, name=f"diversity@{k}")
    return out.dropna() if dropna else out


def _self_information(items: pd.Series | pd.Index, popularity: Mapping[Hashable, float] | pd.Series,
                      n_users: int, normalize: bool) -> np.ndarray:
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ValueError(f"n_users must be an integer >= 1, got {n_users!r}")
    pop = popularity if isinstance(popularity, pd.Series) else pd.Series(dict(popularity), dtype=float)
    counts = pd.Series(items).map(pop).fillna(0.0).to_numpy(dtype=float)
    p = np.clip(counts, 1.0, float(n_users)) / n_users
    info = -np.log2(p)
    if normalize:
        info = info / np.log2(n_users) if n_users > 1 else np.zeros_like(info)
    return info


def novelty(ranked: Sequence[Hashable], popularity: Mapping[Hashable, float] | pd.Series, n_users: int,
            k: int | None = None, normalize: bool = False) -> float:
    """Mean self-information -log2(p_i) of the top-k items, p_i = share of users who interacted with i.

    `popularity` maps item -> number of (training) users who interacted; unseen items count as
    one user. `normalize=True` divides by log2(n_users) to land in [0, 1].
    """
    items = _dedupe(ranked)[: None if k is None else _check_k(k)]
    if not items:
        return float("nan")
    return float(_self_information(pd.Series(items, dtype=object), popularity, n_users, normalize).mean())


def novelty_by_user(recs: pd.DataFrame, popularity: Mapping[Hashable, float] | pd.Series, n_users: int, k: int,
                    *, normalize: bool = False) -> pd.Series:
    """Per-user novelty of the top k (see `novelty`)."""
    top = _ordered_recs(recs, _check_k(k))
    info = _self_information(top[ITEM], popularity, n_users, normalize)
    out = pd.Series(info).groupby(top[USER].to_numpy()).mean()
    out.index.name = USER
    out.name = f"novelty@{k}"
    return out


# ----------------------------------------------------------------------------- rating error
def _rating_arrays(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> np.ndarray:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape or t.ndim != 1 or t.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty 1-D arrays of equal length, got {t.shape}, {p.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("ratings and predictions must be finite")
    return p - t


def rmse(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Root mean squared error of explicit-rating predictions (punishes large misses)."""
    err = _rating_arrays(y_true, y_pred)
    return float(np.sqrt(np.mean(err**2)))


def mae(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Mean absolute error of explicit-rating predictions."""
    return float(np.mean(np.abs(_rating_arrays(y_true, y_pred))))


def rating_errors_by_user(ratings: pd.DataFrame, true_col: str = "rating",
                          pred_col: str = "prediction") -> pd.DataFrame:
    """Per-user n, MAE, MSE and RMSE, for paired comparisons of rating models over users."""
    _require_columns(ratings, (USER, true_col, pred_col), "ratings")
    err = _rating_arrays(ratings[true_col].to_numpy(), ratings[pred_col].to_numpy())
    df = pd.DataFrame({USER: ratings[USER].to_numpy(), "abs": np.abs(err), "sq": err**2})
    out = df.groupby(USER).agg(n=("abs", "size"), mae=("abs", "mean"), mse=("sq", "mean"))
    out["rmse"] = np.sqrt(out["mse"])
    return out


# ----------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with a percentile-bootstrap interval over `n` users."""

    estimate: float
    low: float
    high: float
    level: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class PairedComparison:
    """Model A vs model B on the same users: mean difference A - B, its CI and a two-sided p-value."""

    method: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p_value: float
    level: float

    def significant(self, alpha: float = 0.05) -> bool:
        """True when the difference is significant at `alpha` (two-sided)."""
        return bool(self.p_value < alpha)

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _clean(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise ValueError("need at least one non-NaN value")
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite")
    return x


def _check_boot(level: float, n_boot: int) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    _check_k(n_boot, "n_boot")


def _bootstrap_indices(n: int, n_boot: int, seed: int) -> Iterable[np.ndarray]:
    """Chunks of resampling index rows (each row draws n of n with replacement), bounded in memory."""
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // n)
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_boot - start), n))


def _bootstrap_means(x: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    return np.concatenate([x[idx].mean(axis=1) for idx in _bootstrap_indices(len(x), n_boot, seed)])


def _percentiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.quantile(boot, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def mean_ci(values: Sequence[float] | np.ndarray | pd.Series, level: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> ConfidenceInterval:
    """Mean of the non-NaN values with a percentile-bootstrap CI (resampling users with replacement)."""
    _check_boot(level, n_boot)
    x = _clean(values)
    low, high = _percentiles(_bootstrap_means(x, n_boot, seed), level)
    return ConfidenceInterval(float(x.mean()), low, high, level, int(x.size))


def f1_ci(ap_by_user: pd.Series, ar_by_user: pd.Series, level: float = 0.95, n_boot: int = 2000,
          seed: int = 0) -> ConfidenceInterval:
    """F1 of mAP and mAR with a bootstrap CI that resamples users jointly for both."""
    _check_boot(level, n_boot)
    a, b = _paired(ap_by_user, ar_by_user)
    boot = []
    for idx in _bootstrap_indices(len(a), n_boot, seed):
        ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot.append(np.where(ma + mb > 0, 2 * ma * mb / (ma + mb), 0.0))
    low, high = _percentiles(np.concatenate(boot), level)
    return ConfidenceInterval(f1_from_map_mar(float(a.mean()), float(b.mean())), low, high, level, len(a))


def _paired(a: Sequence[float] | np.ndarray | pd.Series,
            b: Sequence[float] | np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Align two per-user value sets: Series join on their index (users in both), arrays by position.

    Pairs with a NaN on either side are dropped.
    """
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        if not (a.index.is_unique and b.index.is_unique):
            raise ValueError("per-user Series must have unique indexes")
        joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
        x, y = joined["a"].to_numpy(dtype=float), joined["b"].to_numpy(dtype=float)
    else:
        x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError(f"paired values need equal lengths, got {x.size} and {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size == 0:
        raise ValueError("no user has a value for both models")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("values must be finite")
    return x, y


def paired_bootstrap(a: Sequence[float] | np.ndarray | pd.Series, b: Sequence[float] | np.ndarray | pd.Series,
                     n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> PairedComparison:
    """Paired bootstrap over users of mean(a - b): percentile CI and two-sided p-value.

    p = (1 + #{|d* - d| >= |d|}) / (n_boot + 1) where d* are bootstrap means of the
    differences: the shifted-null bootstrap test, never exactly 0.
    """
    _check_boot(level, n_boot)
    x, y = _paired(a, b)
    d = x - y
    mean_d = float(d.mean())
    boot = _bootstrap_means(d, n_boot, seed)
    low, high = _percentiles(boot, level)
    extreme = int(np.count_nonzero(np.abs(boot - mean_d) >= abs(mean_d)))
    p = (1 + extreme) / (n_boot + 1)
    return PairedComparison("paired bootstrap", int(d.size), float(x.mean()), float(y.mean()), mean_d, low, high,
                            float(p), level)


def paired_t_test(a: Sequence[float] | np.ndarray | pd.Series, b: Sequence[float] | np.ndarray | pd.Series,
                  level: float = 0.95) -> PairedComparison:
    """Paired t-test over users of mean(a - b) with a t-based CI; identical inputs give p = 1."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    x, y = _paired(a, b)
    d = x - y
    n = int(d.size)
    if n < 2:
        raise ValueError("a paired t-test needs at least two users")
    mean_d = float(d.mean())
    se = float(d.std(ddof=1) / np.sqrt(n))
    if se == 0.0:
        p = 1.0 if mean_d == 0.0 else 0.0
        low = high = mean_d
    else:
        t = mean_d / se
        p = float(2.0 * stats.t.sf(abs(t), df=n - 1))
        half = float(stats.t.ppf((1.0 + level) / 2.0, df=n - 1)) * se
        low, high = mean_d - half, mean_d + half
    return PairedComparison("paired t-test", n, float(x.mean()), float(y.mean()), mean_d, low, high, p, level)
