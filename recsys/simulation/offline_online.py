"""Offline versus online: does the offline ranking of policies predict the simulated online one?

Offline: NDCG@10 and mAP@10 of each policy on the last temporal fold of the data (fitted on what
came before it, asked at its start, hits = titles finished in it; see recsys.evaluation). Online:
the per-arm metrics of a simulated experiment (`analyze`). `offline_vs_online` puts them side by
side, ranks the policies both ways, and reports Kendall's tau between the offline and online
orders and whether the best policy offline is the best online.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats

from ..data.dataset import Dataset

__all__ = ["evaluation_policy", "offline_metrics", "offline_vs_online", "off_policy_vs_online", "pairwise_agreement"]


def evaluation_policy(spec: Any, world=None, seed: int = 0) -> Callable[[], Any]:
    """A factory of the offline-evaluation twin of an online policy spec (re-fitted per fold)."""
    from ..evaluation.protocol import GeneratorPolicy, LoggingPolicy, OraclePolicy, RandomPolicy, RecommenderPolicy
    from ..pipeline import Recommender
    from .policies import RecommenderPolicy as OnlineRecommender

    if isinstance(spec, OnlineRecommender):
        spec = spec.model
    if isinstance(spec, Recommender):
        config = spec.config
        return lambda: RecommenderPolicy(config)
    text = str(spec)
    if text == "popularity":
        return lambda: GeneratorPolicy(("popularity",), seed)
    if text == "random":
        return lambda: RandomPolicy(seed)
    if text == "oracle":
        return lambda: OraclePolicy(world)
    if text == "logging":
        return lambda: LoggingPolicy(world, seed)
    path = Path(text).expanduser()
    if path.is_dir():
        config = Recommender.load(path).config
        return lambda: RecommenderPolicy(config)
    raise ValueError(f"no offline twin for policy {text!r}")


def offline_metrics(dataset: Dataset, policies: dict[str, Callable[[], Any]], k: int = 10, test_days: float = 14.0,
                    seed: int = 0, progress=None) -> pd.DataFrame:
    """NDCG@k and mAP@k (with 95% intervals) of each policy on the data's last temporal fold."""
    from ..evaluation.protocol import temporal_folds
    from ..evaluation.report import evaluate

    folds = temporal_folds(dataset, n_folds=1, test_days=test_days)
    report = evaluate(dataset, policies, folds, k=k, max_k=k, n_boot=200, seed=seed, progress=progress)
    rows = []
    for name, entry in report["models"].items():
        m = entry["metrics"]
        rows.append({"policy": name, f"NDCG@{k}": m["ndcg"]["estimate"], f"NDCG@{k} low": m["ndcg"]["low"],
                     f"NDCG@{k} high": m["ndcg"]["high"], f"mAP@{k}": m["map"]["estimate"]})
    return pd.DataFrame(rows)


def offline_vs_online(offline: pd.DataFrame, report, k: int = 10, online_metric: str = "engagement_rate",
                      offline_metric: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Offline metrics next to each arm's online metrics (`report`: an ABReport) and whether the
    offline order predicts the online one: Kendall's tau and the p-value between `offline_metric`
    (default NDCG@k) and `online_metric`, and whether both pick the same best policy."""
    offline_metric = offline_metric or f"NDCG@{k}"
    online = report.table()
    keep = ["arm", "engagement_rate", "videos_per_session", "finished_per_session", "minutes_per_session",
            "minutes_per_member"]
    table = offline.merge(online[keep].rename(columns={"arm": "policy"}), on="policy", how="inner")
    table = table.sort_values(offline_metric, ascending=False, kind="stable").reset_index(drop=True)
    table["offline rank"] = table[offline_metric].rank(ascending=False, method="min").astype(int)
    table["online rank"] = table[online_metric].rank(ascending=False, method="min").astype(int)
    agreement: dict[str, Any] = {"offline_metric": offline_metric, "online_metric": online_metric,
                                 "policies": len(table)}
    if len(table) >= 2:
        tau, p = stats.kendalltau(table[offline_metric], table[online_metric])
        best_off = table.loc[table[offline_metric].idxmax(), "policy"]
        best_on = table.loc[table[online_metric].idxmax(), "policy"]
        agreement.update(kendall_tau=float(tau) if np.isfinite(tau) else None,
                         p_value=float(p) if np.isfinite(p) else None,
                         same_order=bool((table["offline rank"] == table["online rank"]).all()),
                         same_best=bool(best_off == best_on), best_offline=best_off, best_online=best_on)
    return table, agreement


def off_policy_vs_online(off_report, report, estimators: tuple[str, ...] | None = None
                         ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each arm's off-policy estimates (an OffPolicyReport) beside its simulated value (an ABReport):
    per estimator and metric, Kendall's tau over the arms, the median and largest relative error, and
    how many arms' 95% intervals cover the simulated value."""
    from ..evaluation.logged import METRICS as OFF_METRICS

    online = report.table().set_index("arm")
    arms = [a for a in off_report.policies if a in online.index]
    if estimators is None:
        estimators = tuple(off_report.policies[arms[0]].keys()) if arms else ()
    rows, agreement = [], {}
    for est in estimators:
        agreement[est] = {}
        for metric in OFF_METRICS:
            sim = np.array([float(online.loc[a, metric]) for a in arms])
            got = [off_report.policies[a][est][metric] for a in arms]
            values = np.array([g.estimate for g in got])
            rel = np.abs(values - sim) / np.abs(sim)
            covered = [bool(g.low <= s <= g.high) for g, s in zip(got, sim)]
            tau = stats.kendalltau(values, sim)[0] if len(arms) >= 2 else np.nan
            agreement[est][metric] = {
                "kendall_tau": float(tau) if np.isfinite(tau) else None,
                "median_relative_error": float(np.median(rel)) if len(rel) else None,
                "max_relative_error": float(np.max(rel)) if len(rel) else None,
                "covered": int(sum(covered)), "arms": len(arms)}
            for a, g, s, r, c in zip(arms, got, sim, rel, covered):
                rows.append({"policy": a, "estimator": est, "metric": metric, "simulated": s, "estimate": g.estimate,
                             "low": g.low, "high": g.high, "relative_error": r, "covered": c, "ess": g.ess})
    return pd.DataFrame(rows), agreement


def pairwise_agreement(off_report, result, metric: str = "minutes_per_session", estimator: str | None = None
                       ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every pair of arms: the estimated difference (paired over the log) beside the simulated one (paired
    over the members of a `run_paired` result), each with its 95% interval. Kendall's tau counts every
    pair; here a pair counts only where the simulation itself tells the two apart, and an estimate that
    separates a pair the wrong way (a confident wrong order) is counted on its own."""
    from .online_metrics import paired_difference

    estimator = estimator or off_report.lead
    arms = [a for a in off_report.policies if a in set(result.arms)]
    rows = []
    for i, a in enumerate(arms):
        for b in arms[i + 1:]:
            sim = paired_difference(result.sessions, a, b, metric)
            est = off_report.difference(a, b, metric, estimator)
            sim_apart = bool(sim["low"] > 0 or sim["high"] < 0)
            rows.append({"first": a, "second": b, "simulated": sim["estimate"], "simulated low": sim["low"],
                         "simulated high": sim["high"], "simulation tells apart": sim_apart,
                         "estimate": est.estimate, "low": est.low, "high": est.high,
                         "estimate tells apart": est.separated,
                         "same order": bool(np.sign(est.estimate) == np.sign(sim["estimate"]))})
    table = pd.DataFrame(rows)
    apart = table[table["simulation tells apart"]] if len(table) else table
    concordant = int(apart["same order"].sum()) if len(apart) else 0
    wrong = table[table["estimate tells apart"] & ~table["same order"]] if len(table) else table
    return table, {"estimator": estimator, "metric": metric, "pairs": len(table),
                   "pairs the simulation tells apart": len(apart),
                   "of those, in the same order": concordant,
                   "kendall_tau over those": (2 * concordant - len(apart)) / len(apart) if len(apart) else None,
                   "pairs the estimate tells apart the wrong way": len(wrong),
                   "pairs the estimate tells apart": int(table["estimate tells apart"].sum()) if len(table) else 0}
