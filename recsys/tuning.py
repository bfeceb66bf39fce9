"""Hyper-parameters of the collaborative sources chosen on the data at hand, not carried over.

The generators' defaults were tuned on the sample world (docs/candidates.md); real rating data
such as MovieLens wants other settings (EASE a weaker penalty, ALS more factors and less
regularisation). `tune_sources` fits each grid point on a validation split of the training data
only and keeps the one with the best NDCG@k on the hidden part:

- "holdout": the per-user random split of public benchmark tables (`stratified_split`,
  `holdout_ratio` of each member's interactions hidden), the protocol the model will face;
- "temporal": everything before the last `window_days` against the titles finished in them.

Nothing outside the training data is seen, so tuning inside each evaluation fold keeps the
evaluation honest.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import pandas as pd

from .data.dataset import Dataset

__all__ = ["TUNING_GRIDS", "tune_sources", "validation_split"]

#: The grid per source (every other parameter keeps its default; the first point is the default, which wins ties).
#: Popularity's decay suits a temporal split (what is watched now), plain counting a per-user random split
#: (the hidden part spans the whole log): the validation split decides which the data at hand wants.
TUNING_GRIDS: dict[str, list[dict[str, Any]]] = {
    "popularity": [{}, {"window_days": None, "half_life_days": None}, {"window_days": None, "half_life_days": 90.0},
                   {"window_days": None, "half_life_days": 365.0}],
    "ease": [{"l2": v} for v in (25.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)],
    "als": [{"factors": f, "regularization": r, "alpha": a}
            for f in (16, 64, 128) for r in (1.0, 10.0, 30.0, 100.0) for a in (1.0, 10.0)],
}


def validation_split(dataset: Dataset, how: str, holdout_ratio: float = 0.2, window_days: float = 14.0,
                     seed: int = 0) -> tuple[Dataset, pd.DataFrame]:
    """(visible training data, hidden (user_id, item_id) pairs to find) for tuning."""
    from .labels import POSITIVE, LabelConfig, label_events
    from .splits import stratified_split

    if how == "holdout":
        visible, hidden = stratified_split(dataset, test_ratio=holdout_ratio, seed=seed)
        truth = hidden.plays()[["user_id", "item_id"]]
    elif how == "temporal":
        cut = dataset.end - pd.Timedelta(days=window_days)
        visible = dataset.as_of(cut)
        later = dataset.events[dataset.events["timestamp"] >= cut]
        truth = later.loc[label_events(later, LabelConfig()).to_numpy() == POSITIVE, ["user_id", "item_id"]]
        seen = visible.plays()[["user_id", "item_id"]].drop_duplicates()
        truth = truth.merge(seen, on=["user_id", "item_id"], how="left", indicator=True)
        truth = truth.loc[truth["_merge"] == "left_only", ["user_id", "item_id"]]
    else:
        raise ValueError(f"validation split must be 'holdout' or 'temporal', got {how!r}")
    return visible, truth.drop_duplicates().reset_index(drop=True)


def tune_sources(dataset: Dataset, sources, make: Callable[[str, dict[str, Any]], Any], how: str = "holdout",
                 k: int = 10, holdout_ratio: float = 0.2, window_days: float = 14.0, seed: int = 0,
                 progress: Callable[[str], None] | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The best grid point per tunable source in `sources`, and a log of every point's validation NDCG@k.

    `make(name, params)` builds an unfitted generator. Sources without a grid are left out.
    """
    from .evaluation.metrics import ndcg_by_user

    say = progress or (lambda message: None)
    wanted = [s for s in sources if s in TUNING_GRIDS]
    if not wanted:
        return {}, {}
    visible, truth = validation_split(dataset, how, holdout_ratio, window_days, seed)
    members = sorted(pd.unique(truth["user_id"]))
    if not members:
        return {}, {"skipped": "no hidden interactions to validate on"}
    now = visible.end + pd.Timedelta(seconds=1) if how == "temporal" else dataset.end + pd.Timedelta(seconds=1)
    chosen: dict[str, dict[str, Any]] = {}
    log: dict[str, Any] = {"split": how, "members": len(members), "k": k, "sources": {}}
    for name in wanted:
        t = time.perf_counter()
        points = []
        for params in TUNING_GRIDS[name]:
            say(f"tuning {name} {params}")
            recs = make(name, params).fit(visible).recommend(members, n=k, now=now, users=dataset.users)
            score = float(ndcg_by_user(recs, truth, k, users=members, no_relevant="drop").mean())
            points.append({"params": params, "ndcg": score})
        best = max(points, key=lambda p: (p["ndcg"], -TUNING_GRIDS[name].index(p["params"])))
        chosen[name] = dict(best["params"])
        log["sources"][name] = {"chosen": chosen[name], "ndcg": best["ndcg"], "grid": points,
                                "seconds": round(time.perf_counter() - t, 2)}
    return chosen, log

