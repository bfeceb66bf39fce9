"""The inspector's side by side: a second pipeline for the same member and moment (the previous default,
another ranker, another list order) and how its top 10 differs from the active pipeline's."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from ..ranking import RANKERS
from .experiments import PREVIOUS

__all__ = ["variants", "variant_config", "compare_lists", "overlap_summary", "PREVIOUS", "BY_WATCH",
           "BY_MINUTES", "NO_RANKER"]

BY_WATCH = "lists by P(watch)"
BY_MINUTES = "lists by expected minutes"
NO_RANKER = "blend order (no ranker)"
_RANKER_SUFFIX = " ranker"


def variants(active) -> list[str]:
    """The second pipelines the inspector offers beside `active` (a RecommenderConfig), cheapest first."""
    names = []
    if active.ranker is not None:
        names.append(BY_WATCH if active.objective == "minutes" else BY_MINUTES)
    names.append(PREVIOUS)
    names += [f"{name}{_RANKER_SUFFIX}" for name in RANKERS if name != active.ranker]
    if active.ranker is not None:
        names.append(NO_RANKER)
    return names


def variant_config(active, name: str):
    """What `name` changes about `active`: the objective to order by (a str: no refit), or the RecommenderConfig
    to train (the previous default is `recsys.pipeline.PREVIOUS_DEFAULT` itself)."""
    from ..pipeline import PREVIOUS_DEFAULT

    if name == BY_WATCH:
        return "watch"
    if name == BY_MINUTES:
        return "minutes"
    if name == PREVIOUS:
        return PREVIOUS_DEFAULT
    if name == NO_RANKER:
        return replace(active, ranker=None, ranker_params={})
    if name.endswith(_RANKER_SUFFIX) and name[: -len(_RANKER_SUFFIX)] in RANKERS:
        return replace(active, ranker=name[: -len(_RANKER_SUFFIX)], ranker_params={})
    raise ValueError(f"unknown pipeline {name!r}; one of {variants(active)}")


def _move(a: float, b: float) -> str:
    if pd.isna(b):
        return "only in the first"
    if pd.isna(a):
        return "only in the second"
    if a == b:
        return "same place"
    return f"{'up' if b < a else 'down'} {abs(int(a) - int(b))}"


def compare_lists(first: pd.DataFrame, second: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """One row per title in either top list (frames with item_id, title, rank, reason): its rank and reason
    under each pipeline and how it moved in the second; the first's order, then the second's newcomers."""
    a, b = names
    cols = ["item_id", "title", "rank", "reason"]
    left = first[cols].rename(columns={"rank": "rank_a", "reason": "reason_a"})
    right = second[cols].rename(columns={"rank": "rank_b", "reason": "reason_b", "title": "title_b"})
    table = left.merge(right, on="item_id", how="outer")
    table["title"] = table["title"].fillna(table["title_b"])
    table["order"] = table["rank_a"].fillna(table["rank_b"] + 10_000)
    table = table.sort_values("order", kind="stable")
    table["change"] = [_move(x, y) for x, y in zip(table["rank_a"], table["rank_b"])]
    table = table.assign(rank_a=table["rank_a"].astype("Int64"), rank_b=table["rank_b"].astype("Int64"))
    return table[["title", "rank_a", "rank_b", "change", "reason_a", "reason_b"]].rename(columns={
        "rank_a": f"rank: {a}", "rank_b": f"rank: {b}", "reason_a": f"reason: {a}", "reason_b": f"reason: {b}"
    }).reset_index(drop=True)


def overlap_summary(first: pd.DataFrame, second: pd.DataFrame) -> dict[str, float]:
    """Titles in both lists, those at the same rank, and the mean rank shift of the shared ones."""
    shared = first[["item_id", "rank"]].merge(second[["item_id", "rank"]], on="item_id", suffixes=("_a", "_b"))
    shift = (shared["rank_a"] - shared["rank_b"]).abs()
    return {"shared": int(len(shared)), "size": int(max(len(first), len(second))),
            "same_rank": int((shift == 0).sum()), "mean_shift": float(shift.mean()) if len(shared) else float("nan")}
