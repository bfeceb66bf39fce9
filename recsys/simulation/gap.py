"""Where a Recommender's online value is lost, measured against the simulated world's ground truth.

For members at one moment, the true chance that each title is played and finished if shown
(`SyntheticWorld.true_watch_matrix`) lets every stage be scored on its own:

- candidates: recall of the oracle's top k among the blend's `n_candidates` (and each source's);
- ranking: the oracle's order of our candidates, and our ranker's order of the oracle's candidates;
- re-rank: our order before and after the re-rank, and the re-rank applied to the oracle's order;
- calibration: our predicted P(watch) against the true one, by rank, title popularity and member activity.

A list's value is its expected finished titles per row under the world's position bias,
sum_k examination(k) / examination(0) * P(watch | top slot), so the oracle's list is the best
value a row of k can have (up to the one-play-per-session rule the simulation adds on top); its
minutes weigh each title by its duration as well (the oracle does not maximise those). Our lists
are in the model's own order (its `objective`: expected minutes by default).
docs/online-quality.md has the table for the default pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..labels import correct_probability
from ..pipeline import watch_minutes
from ..rerank import RankedLists
from .policies import OraclePolicy

__all__ = ["GapConfig", "GapReport", "online_gap", "oracle_beside"]

#: The lists `online_gap` scores, in the order of the table, with what each one isolates.
LISTS: dict[str, str] = {
    "oracle": "the world's best titles now (the ceiling)",
    "oracle order of our candidates": "what the candidate stage allows: a perfect ranker over our 200",
    "oracle order of our candidates, re-ranked": "a perfect ranker followed by our re-rank rules",
    "our ranker on the oracle's candidates": "what the ranker allows: our ranker over the oracle's best 200",
    "our ranker, before the re-rank": "our candidates in our ranker's order",
    "served (after the re-rank)": "what members are shown",
}


@dataclass(frozen=True)
class GapConfig:
    """Which members and moment are diagnosed. `when` defaults to 20:00 on the day after the data ends
    (an evening session, when most members watch)."""

    members: int = 500
    k: int = 10
    device: str = "tv"
    when: str | None = None
    seed: int = 0


@dataclass
class GapReport:
    """The stage table, candidate recall per source and the calibration table."""

    stages: pd.DataFrame  # list, value, share_of_oracle, minutes, minutes_share, what
    recall: pd.DataFrame  # source, recall (of the oracle's top k), n (titles per member)
    calibration: pd.DataFrame  # by, group, rows, predicted, true
    members: int
    when: pd.Timestamp

    def to_json(self) -> dict:
        return {"members": self.members, "when": str(self.when),
                "stages": self.stages.to_dict(orient="records"), "recall": self.recall.to_dict(orient="records"),
                "calibration": self.calibration.to_dict(orient="records")}


def _moment(dataset, config: GapConfig) -> pd.Timestamp:
    if config.when is not None:
        return pd.Timestamp(config.when)
    return dataset.end.normalize() + pd.Timedelta(days=1, hours=20)


def _value(truth: np.ndarray, picks: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Per member: sum over the list's slots of weight(slot) * truth(member, title); unknown titles count 0."""
    out = np.zeros(len(picks))
    for r, idx in enumerate(picks):
        idx = np.asarray(idx, dtype=np.int64)[: len(weights)]
        v = truth[r, idx] if len(idx) else np.zeros(0)
        out[r] = float((np.where(np.isfinite(v), v, 0.0) * weights[: len(v)]).sum())
    return out


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest finite scores, best first (ties by column)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return order[np.isfinite(scores[order])]


def online_gap(model, dataset, world, config: GapConfig | None = None) -> GapReport:
    """Score every stage of `model` (a fitted Recommender with a ranker) against the world's truth."""
    config = config or GapConfig()
    if model.ranker_ is None:
        raise ValueError("the gap analysis needs a Recommender with a ranker")
    now = _moment(dataset, config)
    rng = np.random.default_rng(np.random.SeedSequence([int(config.seed), 61]))
    known = dataset.users["user_id"].astype(str).to_numpy(dtype=object)
    members = np.sort(rng.choice(known, size=min(config.members, len(known)), replace=False))
    oracle = OraclePolicy(world).start(dataset, world)
    truth = oracle.scores(members, now, config.device)  # members x dataset titles, -inf where not eligible
    titles = oracle.seen_.items
    weights = world.examination[: config.k] / world.examination[0]
    n = model.config.n_candidates
    context = {"now": now, "device": config.device}

    ours_idx = titles.get_indexer(pd.Index(model.generators_.item_ids_.astype(str)))
    cand, ranked, ranked_rerank, pred_rows = {}, {}, {}, []
    for part in model.prepare(members, context):
        c = part.candidates
        p = correct_probability(model.ranker_.predict_proba(part.features), model.negative_keep_rate_)
        key = model._order_key(p, c.item)
        rows = np.searchsorted(members, part.member_ids)
        col = ours_idx[c.item]
        true_p = truth[rows[c.member], col]
        for j, r in enumerate(rows):
            sel = np.flatnonzero(c.member == j)
            cand[r] = col[sel]
            ranked[r] = col[sel][np.argsort(-key[sel], kind="stable")]
        pred_rows.append(pd.DataFrame({"member": rows[c.member], "title": col, "predicted": p, "true": true_p}))
        ranked_rerank.update(_oracle_reranked(model, part, np.where(np.isfinite(true_p), true_p, -1.0), rows,
                                              ours_idx, config.k))
    served = model.recommend(members, k=config.k, context=context)
    served_idx = {m: titles.get_indexer(pd.Index(g.sort_values("rank")["item_id"].astype(str)))
                  for m, g in served.groupby("user_id", sort=False)}
    member_row = {m: r for r, m in enumerate(members)}
    served_lists = [np.zeros(0, np.int64)] * len(members)
    for m, idx in served_idx.items():
        served_lists[member_row[m]] = idx
    empty = np.zeros(0, np.int64)

    oracle_top = [_top(truth[r], config.k) for r in range(len(members))]
    oracle_pool = [_top(truth[r], n) for r in range(len(members))]
    pool = pd.DataFrame({"user_id": np.repeat(members, [len(x) for x in oracle_pool]),
                         "item_id": titles.to_numpy(dtype=object)[np.concatenate(oracle_pool)] if oracle_pool
                         else np.zeros(0, dtype=object), "timestamp": now})
    if model.builder_.has_device_:
        pool["device"] = config.device
    pool["p"] = model.predict_rows(pool) if len(pool) else np.zeros(0)
    pool["key"] = model._order_key(pool["p"].to_numpy(), model.generators_.item_ids_.get_indexer(
        pd.Index(pool["item_id"].astype(str)))) if len(pool) else np.zeros(0)
    ours_on_oracle = [titles.get_indexer(pd.Index(g.sort_values("key", ascending=False, kind="stable")["item_id"]))
                      for _, g in pool.groupby("user_id", sort=True)] if len(pool) else []
    pool_of = dict(zip(sorted(pool["user_id"].unique()), ours_on_oracle)) if len(pool) else {}

    lists = {
        "oracle": oracle_top,
        "oracle order of our candidates": [_top(np.where(np.isin(np.arange(truth.shape[1]), cand.get(r, empty)),
                                                         truth[r], -np.inf), config.k) for r in range(len(members))],
        "oracle order of our candidates, re-ranked": [ranked_rerank.get(r, empty) for r in range(len(members))],
        "our ranker on the oracle's candidates": [pool_of.get(m, empty) for m in members],
        "our ranker, before the re-rank": [ranked.get(r, empty)[: config.k] for r in range(len(members))],
        "served (after the re-rank)": served_lists,
    }
    values = {name: _value(truth, picks, weights).mean() for name, picks in lists.items()}
    best = values["oracle"] or np.nan
    stages = pd.DataFrame({"list": list(values), "value": [round(v, 4) for v in values.values()],
                           "share_of_oracle": [round(v / best, 4) for v in values.values()]})
    length = watch_minutes(dataset.items, titles)  # what the "minutes" objective weighs titles by
    if length is not None:
        minutes = {name: _value(truth * length[None, :-1], picks, weights).mean() for name, picks in lists.items()}
        stages["minutes"] = [round(v, 2) for v in minutes.values()]
        stages["minutes_share"] = [round(v / minutes["oracle"], 4) for v in minutes.values()]
    stages["what"] = [LISTS[name] for name in values]

    top_sets = [set(t.tolist()) for t in oracle_top]
    recall = [{"source": "blend", "recall": _recall(top_sets, [cand.get(r, empty) for r in range(len(members))]),
               "n": n}]
    for gen in model.generators_.generators:
        recs = gen.recommend(list(members), n=n, now=now, users=dataset.users)
        got = {m: titles.get_indexer(pd.Index(g["item_id"].astype(str))) for m, g in recs.groupby("user_id")}
        recall.append({"source": gen.source_name,
                       "recall": _recall(top_sets, [got.get(m, empty) for m in members]), "n": n})
    calibration = _calibration(pd.concat(pred_rows, ignore_index=True), dataset, members, titles, now)
    return GapReport(stages, pd.DataFrame(recall), calibration, len(members), now)


def _recall(top_sets: list[set], picks: list[np.ndarray]) -> float:
    hits = [len(t & set(np.asarray(p).tolist())) / len(t) for t, p in zip(top_sets, picks) if t]
    return round(float(np.mean(hits)), 4) if hits else float("nan")


def _oracle_reranked(model, part, true_p: np.ndarray, rows: np.ndarray, ours_idx: np.ndarray, k: int) -> dict:
    """Each member's candidates in the oracle's order, through the model's re-rank steps."""
    c = part.candidates
    order = np.lexsort((-true_p, c.member))
    history = model.history_index_
    ignored = model.reranker_.ignored(history, history.user_positions(part.member_ids), c.member[order],
                                      c.item[order], part.now)
    lists = RankedLists(part.member_ids, c.member[order], c.item[order], true_p[order],
                        model.reranker_.ages(part.member_ids, None), ignored)
    picked, _, _ = model.reranker_.rerank_lists(lists, k)
    rows_picked = order[picked]
    return {rows[j]: ours_idx[c.item[rows_picked[c.member[rows_picked] == j]]] for j in range(len(part.member_ids))}


def _calibration(frame: pd.DataFrame, dataset, members: np.ndarray, titles: pd.Index, now) -> pd.DataFrame:
    """Mean predicted and true P(watch) of the candidate rows, by our rank, title popularity and member activity."""
    frame = frame[np.isfinite(frame["true"])].copy()
    frame["rank"] = frame.groupby("member")["predicted"].rank(ascending=False, method="first")
    frame["by rank"] = pd.cut(frame["rank"], [0, 1, 3, 10, 50, np.inf],
                              labels=["1", "2-3", "4-10", "11-50", "51+"]).astype(str)
    plays = dataset.events[(dataset.events["timestamp"] < now) & (dataset.events["watch_fraction"] > 0)]
    title_plays = np.bincount(titles.get_indexer(pd.Index(plays["item_id"].astype(str))) + 1,
                              minlength=len(titles) + 1)[1:]
    frame["by title popularity"] = _terciles(title_plays[frame["title"].to_numpy()], "plays")
    member_plays = plays["user_id"].astype(str).value_counts().reindex(pd.Index(members)).fillna(0).to_numpy()
    frame["by member activity"] = _terciles(member_plays[frame["member"].to_numpy()], "plays")
    parts = []
    for by in ("by rank", "by title popularity", "by member activity"):
        g = frame.groupby(by, sort=False).agg(rows=("true", "size"), predicted=("predicted", "mean"),
                                              true=("true", "mean")).reset_index().rename(columns={by: "group"})
        parts.append(g.assign(by=by).sort_values("group", key=_group_order))
    out = pd.concat(parts, ignore_index=True)[["by", "group", "rows", "predicted", "true"]]
    out[["predicted", "true"]] = out[["predicted", "true"]].round(4)
    return out


def _terciles(values: np.ndarray, unit: str) -> np.ndarray:
    """Each value's third (low / middle / high) of the distribution, labeled with its range."""
    cuts = np.quantile(values, [1 / 3, 2 / 3]) if len(values) else np.zeros(2)
    which = np.searchsorted(cuts, values, side="right")
    labels = np.array([f"low (<= {cuts[0]:.0f} {unit})", f"middle", f"high (> {cuts[1]:.0f} {unit})"], dtype=object)
    return labels[which]


def _group_order(groups: pd.Series) -> pd.Series:
    order = {"1": 0, "2-3": 1, "4-10": 2, "11-50": 3, "51+": 4}
    return groups.map(lambda g: order.get(g, 10 + ("middle" in g) + 2 * g.startswith("high")))


def oracle_beside(model, dataset, world, user_id: str, now, device: str = "tv", k: int = 10) -> pd.DataFrame:
    """One member's served list beside the oracle's: rank, our title with its true P(watch), the oracle's
    title with its true P(watch) (for the inspector)."""
    oracle = OraclePolicy(world).start(dataset, world)
    member = np.asarray([str(user_id)], dtype=object)
    truth = oracle.scores(member, pd.Timestamp(now), device)[0]
    titles = oracle.seen_.items
    names = dataset.items.set_index("item_id")["title"] if "title" in dataset.items.columns else None
    best = _top(truth, k)
    served = model.recommend([str(user_id)], k=k, context={"now": pd.Timestamp(now), "device": device})
    ours = titles.get_indexer(pd.Index(served.sort_values("rank")["item_id"].astype(str)))
    rows = max(len(best), len(ours))

    def column(idx: np.ndarray, j: int, what: str):
        if j >= len(idx):
            return None
        item = titles[idx[j]]
        if what == "title":
            return names.get(item, item) if names is not None else item
        return float(truth[idx[j]]) if np.isfinite(truth[idx[j]]) else 0.0

    return pd.DataFrame({
        "rank": np.arange(1, rows + 1),
        "ours": [column(ours, j, "title") for j in range(rows)],
        "ours: true P(watch)": [column(ours, j, "p") for j in range(rows)],
        "oracle": [column(best, j, "title") for j in range(rows)],
        "oracle: true P(watch)": [column(best, j, "p") for j in range(rows)],
    })
