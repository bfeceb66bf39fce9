"""Hyper-parameters of the collaborative sources chosen on the data at hand, not carried over.

The generators' defaults were tuned on the sample world (docs/candidates.md); real rating data
such as MovieLens wants other settings (EASE a weaker penalty, ALS more factors and less
regularisation). `tune_sources` fits each grid point on a validation split of the training data
only and keeps the one with the best NDCG@k on the hidden part:

- "holdout": the per-user random split of public benchmark tables (`stratified_split`,
  `holdout_ratio` of each member's interactions hidden), the protocol the model will face;
- "temporal": everything before the last `window_days` against the titles finished in them.

`tune_quotas` then chooses the blend's quotas on the same split: a greedy coordinate search over
each source's share, scored by recall@n of the hidden titles (the candidate stage under a ranker)
or NDCG@k (the blend serving alone), started from the best of the default quotas and every source
alone, so on validation the blend is never below its best member.

`tune_ranker` chooses the ranker (`ranker="auto"`) on the ranker's own training rows: each is fitted
without the latest rows of a random share of the members, and scored by NDCG@k of those members' full
candidate lists, ordered.

Nothing outside the training data is seen, so tuning inside each evaluation fold keeps the
evaluation honest.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from .data.dataset import Dataset

__all__ = ["TUNING_GRIDS", "QUOTA_SHARES", "QUOTA_OBJECTIVES", "tune_sources", "tune_quotas", "tune_ranker",
           "ranker_choice_text", "validation_split", "validation_now"]

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


#: The shares a source's quota may take in the coordinate search (quotas are relative: scaling all changes nothing).
QUOTA_SHARES: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
#: What quotas are chosen for: recall of the n candidates (a ranker orders them) or NDCG@k of the blend's own order.
QUOTA_OBJECTIVES = ("recall", "ndcg")


def validation_now(dataset: Dataset, visible: Dataset, how: str) -> pd.Timestamp:
    """The moment validation lists are asked for: the cut of a temporal split, after the data for a holdout."""
    return (visible.end if how == "temporal" else dataset.end) + pd.Timedelta(seconds=1)


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
    from .fit_cache import active_cache

    say = progress or (lambda message: None)
    wanted = [s for s in sources if s in TUNING_GRIDS]
    if not wanted:
        return {}, {}
    visible, truth = validation_split(dataset, how, holdout_ratio, window_days, seed)
    members = sorted(pd.unique(truth["user_id"]))
    if not members:
        return {}, {"skipped": "no hidden interactions to validate on"}
    now = validation_now(dataset, visible, how)
    cache = active_cache()
    chosen: dict[str, dict[str, Any]] = {}
    log: dict[str, Any] = {"split": how, "members": len(members), "k": k, "sources": {}}

    def grid(name: str) -> dict[str, Any]:
        t = time.perf_counter()
        points, best_model = [], None
        for params in TUNING_GRIDS[name]:
            say(f"tuning {name} {params}")
            model = make(name, params).fit(visible)
            recs = model.recommend(members, n=k, now=now, users=dataset.users)
            score = float(ndcg_by_user(recs, truth, k, users=members, no_relevant="drop").mean())
            if not points or score > max(p["ndcg"] for p in points):
                best_model = model
            points.append({"params": params, "ndcg": score})
        best = max(points, key=lambda p: (p["ndcg"], -TUNING_GRIDS[name].index(p["params"])))
        if cache is not None:  # the chosen fit on the visible part, which the holdout rows' sources refit
            cache.put(cache.key("generator", visible, name, seed, best["params"]), best_model)
        return {"chosen": dict(best["params"]), "ndcg": best["ndcg"], "grid": points,
                "seconds": round(time.perf_counter() - t, 2)}

    for name in wanted:
        entry = grid(name) if cache is None else cache.get_or_compute(
            cache.key("tuning", dataset, name, how, k, holdout_ratio, window_days, seed), lambda: grid(name))
        chosen[name] = dict(entry["chosen"])
        log["sources"][name] = entry
    return chosen, log



def tune_quotas(blend, truth: pd.DataFrame, now, users: pd.DataFrame | None = None, n: int = 200, k: int = 10,
                objective: str = "recall", max_members: int | None = 2000, passes: int = 2, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """The quotas of `blend` (a BlendGenerator whose sources are fitted on a validation split's visible part)
    that best find `truth` (the hidden (user_id, item_id) pairs), and a log of the search.

    `objective` "recall": mean recall@n of the blend's n titles; "ndcg": NDCG@k of its first k of n (fused
    order). Each source's top n is computed once per member; only the interleave is redone per trial. At most
    `max_members` members (a seeded sample) are scored. Ties keep the earlier point, the default first.
    """
    from .candidates.base import member_chunk
    from .candidates.blend import blend_arrays
    from .evaluation.metrics import ndcg_by_user

    if objective not in QUOTA_OBJECTIVES:
        raise ValueError(f"objective must be one of {QUOTA_OBJECTIVES}, got {objective!r}")
    say = progress or (lambda message: None)
    t0 = time.perf_counter()
    names = list(blend.source_names)
    default = blend._quota_map()
    members = np.asarray(sorted(pd.unique(truth["user_id"])), dtype=object)
    if max_members is not None and len(members) > max_members:
        members = np.sort(np.random.default_rng(seed).choice(members, size=max_members, replace=False))
    if len(names) < 2 or len(members) == 0:
        return dict(default), {"skipped": "one source or no hidden interactions"}
    truth = truth[truth["user_id"].isin(set(members))].drop_duplicates(["user_id", "item_id"])
    items = blend.item_ids_
    n_items = len(items)
    step = member_chunk(n_items)
    chunks = []  # per chunk of members: the sources' lists, and the hidden cells
    for lo in range(0, len(members), step):
        ids = members[lo:lo + step]
        part = truth[truth["user_id"].isin(set(ids))]
        user = pd.Index(ids).get_indexer(part["user_id"])
        item = items.get_indexer(part["item_id"])
        known = item >= 0
        chunks.append((ids, blend.source_lists(ids, n, now=now, users=users),
                       np.unique(user[known] * n_items + item[known])))
    relevant = truth.groupby("user_id").size().reindex(members).to_numpy(dtype=float)

    def score(quotas: dict[str, float]) -> float:
        hits = np.zeros(len(members))
        frames = []
        offset = 0
        for ids, parts, cells in chunks:
            member, item, _, rank, *_ = blend_arrays(parts, len(ids), n_items, [quotas[s] for s in names], n,
                                                     blend.rrf_k)
            if objective == "recall":
                hits[offset:offset + len(ids)] = np.bincount(member[np.isin(member * n_items + item, cells)],
                                                             minlength=len(ids))
            else:
                top = rank <= k
                frames.append(pd.DataFrame({"user_id": ids[member[top]], "item_id": items.to_numpy()[item[top]],
                                            "rank": rank[top]}))
            offset += len(ids)
        if objective == "recall":
            return float(np.mean(hits / relevant))
        recs = pd.concat(frames, ignore_index=True)
        return float(ndcg_by_user(recs, truth, k, users=list(members), no_relevant="drop").mean())

    tried: dict[tuple[float, ...], float] = {}

    def value(quotas: dict[str, float]) -> float:
        key = tuple(quotas[s] for s in names)
        if key not in tried:
            say(f"blend quotas {dict(zip(names, key))}")
            tried[key] = score(quotas)
        return tried[key]

    alone = {s: value({t: float(t == s) for t in names}) for s in names}
    starts = [dict(default)] + [{t: float(t == s) for t in names} for s in names]
    best = max(starts, key=lambda q: (value(q), -starts.index(q)))
    for _ in range(passes):
        changed = False
        for name in names:
            for share in QUOTA_SHARES:
                trial = dict(best, **{name: float(share)})
                if any(trial.values()) and value(trial) > value(best):
                    best, changed = trial, True
        if not changed:
            break
    metric = f"recall@{n}" if objective == "recall" else f"ndcg@{k}"
    log = {"objective": metric, "members": len(members), "chosen": dict(best), "score": value(best),
           "default": {"quotas": dict(default), "score": value(default)}, "alone": alone, "points": len(tried),
           "seconds": round(time.perf_counter() - t0, 2)}
    return dict(best), log


def tune_ranker(table, names, make: Callable[[str], Any], fraction: float = 0.2, k: int = 10, seed: int = 0,
                progress: Callable[[str], None] | None = None,
                full_rows: Callable[[pd.DataFrame], Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The ranker in `names` (`make(name)` builds one unfitted) that best orders the validation part of
    `table` (a TrainingTable), and a log of every ranker's score; the first name wins ties.

    The validation part is every row, at the table's latest moment, of a seeded random `fraction` of the members
    with rows there (`member_holdout`): for candidate rows the latest window's start, for holdout rows the one
    moment they share. Each ranker is fitted on every other row (the earlier windows and the
    other members' latest rows: no row later than a validation row) and scored by the mean NDCG@k of each held-out
    member's rows (their list), over the members with a positive row. `full_rows`, given the validation part's
    (user_id, timestamp) queries, returns their full candidate lists (every negative kept, where `table` keeps a
    sample): the lists a served ranker orders, so those are scored instead."""
    from .evaluation.metrics import ndcg_by_user
    from .ranking.base import member_holdout

    say = progress or (lambda message: None)
    names = list(names)
    rows = table.features.rows
    times = rows["timestamp"].to_numpy(dtype="datetime64[ns]")
    latest = np.flatnonzero(times == times.max()) if len(times) else np.zeros(0, dtype=np.int64)
    try:
        valid = latest[member_holdout(rows["user_id"].to_numpy()[latest], fraction, seed)[1]]
    except ValueError:
        return names[0], {"chosen": names[0], "skipped": "too few members at the latest moment to validate on"}
    train = np.setdiff1d(np.arange(len(times)), valid)
    split = "members" if len(latest) == len(times) else "members at the latest moment"
    held, lists = table.take(valid), "sampled rows"
    if full_rows is not None:
        say("full candidate lists of the held-out members")
        full = full_rows(held.features.rows[["user_id", "timestamp"]].drop_duplicates().reset_index(drop=True))
        if full is not None and (np.asarray(full.label) == 1).any():
            held, lists = full, "full lists"
    query = pd.factorize(held.features.rows["user_id"].astype(str))[0]
    positive = np.asarray(held.label) == 1
    members = np.unique(query[positive])
    if len(members) == 0 or len(train) == 0:
        return names[0], {"chosen": names[0], "skipped": "no positive row to validate on"}
    truth = pd.DataFrame({"user_id": query[positive], "item_id": np.flatnonzero(positive)})
    fitted = table.take(train)
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for name in names:
        say(f"ranker {name} on {len(train):,} rows, validated on {len(held):,}")
        t = time.perf_counter()
        p = make(name).fit(fitted).predict_proba(held.features)
        order = np.lexsort((-p, query))  # by query, best first (stable: ties keep row order)
        start = np.searchsorted(query[order], query[order], side="left")
        recs = pd.DataFrame({"user_id": query[order], "item_id": order, "rank": np.arange(len(order)) - start + 1})
        scores[name] = float(ndcg_by_user(recs, truth, k, users=members, no_relevant="drop").mean())
        seconds[name] = round(time.perf_counter() - t, 2)
    chosen = max(names, key=lambda n: (scores[n], -names.index(n)))
    return chosen, {"chosen": chosen, "split": split, "metric": f"ndcg@{k}", "scores": scores,
                    "seconds": seconds, "train_rows": len(train), "valid_rows": len(valid),
                    "valid_members": len(members), "lists": lists, "scored_rows": len(held)}


def ranker_choice_text(log: dict[str, Any]) -> str | None:
    """How `tune_ranker` chose, in words ("chosen by ndcg@10 on N held-out training rows (split): a 0.5, b 0.6"),
    or None when it chose nothing (skipped)."""
    if "scores" not in log:
        return None
    scores = ", ".join(f"{name} {value:.4f}" for name, value in log["scores"].items())
    if log.get("lists") == "full lists":
        n = log["valid_members"]
        return (f"chosen by {log['metric']} on the full candidate lists of {n:,} held-out member{'s' * (n != 1)} "
                f"({log['scored_rows']:,} rows; split by {log['split']}): {scores}")
    return f"chosen by {log['metric']} on {log['valid_rows']:,} held-out training rows ({log['split']}): {scores}"
