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

__all__ = ["evaluation_policy", "offline_metrics", "offline_vs_online"]


def evaluation_policy(spec: Any, world=None, seed: int = 0) -> Callable[[], Any]:
    """A factory of the offline-evaluation twin of an online policy spec (re-fitted per fold)."""
    from ..evaluation.protocol import GeneratorPolicy, OraclePolicy, RandomPolicy, RecommenderPolicy
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
