"""ROC and calibration (reliability) curves of the rankers, and candidate recall per source, on a held-out
time window.

The evaluation report (`report.py`) scores top-k lists; these curves look at the ranker as a
probabilistic classifier instead: does P(watch) separate what members finished from what they did
not (ROC), and does a predicted 0.3 come true 30% of the time (calibration)? `holdout_curves`
fits the pipeline on the data before `end - test_days`, asks it for every active member's
candidates at that moment, labels them by what the member then did in the window (finished:
1; shown, abandoned or never played: 0; the 10-80% middle band left out, as in training) and
scores them with each ranker. Everything returned is plain JSON.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..data.errors import DataError

__all__ = ["roc_points", "calibration_points", "candidate_recall", "holdout_curves"]

Progress = Callable[[str, float], None]


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float).ravel()
    p = np.asarray(scores, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length ({len(y)} and {len(p)})")
    if len(y) == 0:
        raise ValueError("no rows to draw a curve from")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(p).all():
        raise ValueError("scores must be finite")
    return y.astype(int), p


def roc_points(labels, scores, max_points: int = 201) -> dict[str, Any]:
    """`fpr`, `tpr` (sklearn.metrics.roc_curve, thinned to at most `max_points` points on an even false
    positive grid, the exact end points kept) and `auc` (roc_auc_score; None when one class is absent)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y, p = _check(labels, scores)
    if y.min() == y.max():
        return {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "auc": None, "positives": int(y.sum()), "rows": len(y)}
    fpr, tpr, _ = roc_curve(y, p)
    if len(fpr) > max_points:
        grid = np.linspace(0.0, 1.0, max_points)
        # tpr is a step function of fpr: take the highest tpr reached at each grid fpr
        idx = np.searchsorted(fpr, grid, side="right") - 1
        fpr, tpr = grid, tpr[np.clip(idx, 0, len(tpr) - 1)]
    return {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr], "auc": float(roc_auc_score(y, p)),
            "positives": int(y.sum()), "rows": len(y)}


def calibration_points(labels, scores, n_bins: int = 10, strategy: str = "quantile") -> dict[str, Any]:
    """Reliability diagram: per non-empty bin the mean predicted probability (`predicted`), the observed
    share of positives (`observed`, sklearn.calibration.calibration_curve) and its row `count`; plus the
    Brier score and the expected calibration error (count-weighted mean of |observed - predicted|)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    y, p = _check(labels, scores)
    if p.min() < 0 or p.max() > 1:
        raise ValueError("scores must be probabilities in [0, 1] for a calibration curve")
    observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    # the same bins as sklearn, to count rows per bin
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(ids, minlength=len(edges))
    counts = counts[counts > 0]
    if len(counts) != len(observed):  # cannot happen with sklearn's binning; keep the output consistent anyway
        counts = np.full(len(observed), len(p) / max(1, len(observed)))
    ece = float(np.sum(counts / counts.sum() * np.abs(observed - predicted)))
    return {"predicted": [float(v) for v in predicted], "observed": [float(v) for v in observed],
            "count": [int(v) for v in counts], "brier": float(brier_score_loss(y, p)), "ece": ece,
            "mean_predicted": float(p.mean()), "base_rate": float(y.mean())}


def candidate_recall(lists: dict[str, pd.DataFrame], positives: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Share of the held-out positives (user_id, item_id) each candidate list (user_id, item_id) contains:
    `recall` over all positives (micro), `member_recall` the mean over members with a positive, `hits`."""
    truth = positives[["user_id", "item_id"]].drop_duplicates().astype(str)
    per_member = truth.groupby("user_id").size()
    out: dict[str, dict[str, Any]] = {}
    for name, frame in lists.items():
        got = frame[["user_id", "item_id"]].astype(str).drop_duplicates().assign(_hit=True)
        hit = truth.merge(got, on=["user_id", "item_id"], how="left")["_hit"].fillna(False).to_numpy(dtype=bool)
        by_member = pd.Series(hit, index=truth["user_id"].to_numpy()).groupby(level=0).sum()
        member_recall = (by_member / per_member.reindex(by_member.index)).mean() if len(by_member) else float("nan")
        out[name] = {"recall": float(hit.mean()) if len(hit) else None,
                     "member_recall": None if not np.isfinite(member_recall) else float(member_recall),
                     "hits": int(hit.sum())}
    return out


def holdout_curves(dataset: Dataset, rankers: Sequence[str] = ("logistic",), test_days: float = 14.0,
                   n_bins: int = 10, max_members: int | None = 600, config=None, seed: int = 0,
                   progress: Progress | None = None) -> dict[str, Any]:
    """ROC and calibration of each ranker, and candidate recall per source, on the last `test_days` of
    `dataset` (the pipeline is fitted on what came before). `config`: a RecommenderConfig (default: the
    default pipeline); `max_members`: a seeded sample of the active members keeps it quick."""
    from ..labels import POSITIVE, label_events
    from ..pipeline import Recommender, RecommenderConfig

    say = progress or (lambda message, fraction: None)
    rankers = list(dict.fromkeys(rankers))
    if not rankers:
        raise ValueError("name at least one ranker")
    if dataset.start is None or len(dataset.events) == 0:
        raise DataError("the dataset has no events", file=dataset.name, column="timestamp")
    cut = dataset.end + pd.Timedelta(seconds=1) - pd.Timedelta(days=test_days)
    if cut <= dataset.start:
        raise DataError(f"the data spans {(dataset.end - dataset.start).days} days: nothing is left before a "
                        f"held-out window of {test_days:g} days", file=dataset.name, column="timestamp",
                        hint="use a shorter held-out window")
    base_config = replace(config or RecommenderConfig(), ranker=rankers[0])
    train = dataset.as_of(cut)

    def scaled(lo, hi):
        return lambda message, fraction: say(message, lo + (hi - lo) * float(fraction))

    base = Recommender(base_config).fit(train, progress=scaled(0.0, 0.7))
    models = {rankers[0]: base}
    for k, name in enumerate(rankers[1:]):
        say(f"ranker {name}", 0.7 + 0.1 * k / max(1, len(rankers) - 1))
        models[name] = base.with_ranker(name)

    say("held-out rows: candidates at the cut, labeled by the window", 0.8)
    window = dataset.between(cut, None).events
    members = pd.Index(pd.unique(window["user_id"].astype(str)))
    if max_members is not None and len(members) > max_members:
        members = pd.Index(np.random.default_rng(seed).choice(members.to_numpy(), max_members, replace=False))
    window = window[window["user_id"].astype(str).isin(members)]
    newcomers = dataset.users[dataset.users["user_id"].astype(str).isin(members)
                              & ~dataset.users["user_id"].astype(str).isin(train.users["user_id"].astype(str))]
    newcomers = newcomers if len(newcomers) else None
    n = base_config.n_candidates
    blend = base.generators_
    cands = blend.recommend(members, n=n, now=cut, users=newcomers)

    labels = label_events(window, base_config.training.labels).to_numpy()
    played = (window["watch_fraction"] > 0).to_numpy() if "watch_fraction" in window.columns \
        else window["rating"].notna().to_numpy()
    outcome = window.assign(pos=labels == POSITIVE, mid=(labels < 0) & played)
    outcome = outcome.groupby(["user_id", "item_id"], sort=False).agg(pos=("pos", "any"), mid=("mid", "any"))
    rows = cands[["user_id", "item_id"]].join(outcome, on=["user_id", "item_id"])
    pos = rows["pos"].fillna(False).to_numpy(dtype=bool)
    mid = rows["mid"].fillna(False).to_numpy(dtype=bool) & ~pos
    rows = rows.assign(label=pos.astype(int))[~mid].reset_index(drop=True)
    if rows["label"].sum() == 0:
        raise DataError("no member finished a candidate title in the held-out window", file=dataset.name,
                        column="watch_fraction" if "watch_fraction" in window.columns else "rating")
    first_device = window.groupby("user_id", sort=False)["device"].first() if "device" in window.columns else None
    score_rows = pd.DataFrame({"user_id": rows["user_id"].to_numpy(), "item_id": rows["item_id"].to_numpy(),
                               "timestamp": cut})
    if first_device is not None:
        score_rows["device"] = rows["user_id"].map(first_device).to_numpy()

    result: dict[str, Any] = {"dataset": dataset.name, "cut": str(cut), "test_days": float(test_days),
                              "members": int(len(members)), "rows": int(len(rows)),
                              "positives": int(rows["label"].sum()), "n_candidates": int(n), "rankers": {}}
    for k, (name, model) in enumerate(models.items()):
        say(f"scoring with {name}", 0.85 + 0.1 * k / len(models))
        scores = np.clip(model.predict_rows(score_rows), 0.0, 1.0)
        result["rankers"][name] = {"roc": roc_points(rows["label"], scores),
                                   "calibration": calibration_points(rows["label"], scores, n_bins=n_bins)}

    say("candidate recall per source", 0.96)
    seen = set(zip(train.plays()["user_id"].astype(str), train.plays()["item_id"].astype(str)))
    truth = outcome[outcome["pos"]].reset_index()[["user_id", "item_id"]].astype(str)
    truth = truth[[(u, i) not in seen for u, i in zip(truth["user_id"], truth["item_id"])]]
    lists = {g.source_name: g.recommend(members, n=n, now=cut, users=newcomers) for g in blend.generators}
    lists["blend"] = cands
    result["candidate_recall"] = {"n": int(n), "positives": int(len(truth)),
                                  "sources": candidate_recall(lists, truth),
                                  "blend_share": {str(k): int(v) for k, v in cands.merge(
                                      truth, on=["user_id", "item_id"])["source"].value_counts().items()}}
    say("done", 1.0)
    return result
