"""Candidate-source features: each source's raw score of the title for the member, and the title's rank
in that source's full ranking of the catalogue (1 = its top title).

The scores come from the candidate stage (the sources score every title for the batch's
members anyway); a rank is counted against the member's sorted scores instead of sorting
titles per member: rank = 1 + titles scored higher + titles scored the same with a lower index,
the order a stable sort gives.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .spec import Feature
from .table import Block

__all__ = ["SourceScores"]


class SourceScores:
    """`cand_score_<source>` and `cand_rank_<source>` for each candidate source (NaN where it has no score)."""

    name = "source_scores"

    def __init__(self, sources: Sequence[str]) -> None:
        self.sources = list(sources)
        self.features_ = tuple(f for name in self.sources for f in (
            Feature(f"cand_score_{name}", "source_scores", "dense",
                    f"Score the {name} candidate generator gives the title for this member."),
            Feature(f"cand_rank_{name}", "source_scores", "dense",
                    f"Rank of the title in the {name} generator's list for this member (1 = top)."),
        ))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features_]

    def compute(self, member: np.ndarray, item: np.ndarray, raw: Sequence[np.ndarray],
                personal: Sequence[bool]) -> Block:
        """Features of rows (member position, title index) from each source's members x titles scores."""
        cols: dict[str, np.ndarray] = {}
        for name, scores, own in zip(self.sources, raw, personal):
            score, rank = _score_and_rank(scores, member, item, own)
            cols[f"cand_score_{name}"] = score
            cols[f"cand_rank_{name}"] = rank
        return Block(self.name, None, cols, len(member))


def _score_and_rank(raw: np.ndarray, member: np.ndarray, item: np.ndarray, personal: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    n_items = raw.shape[1]
    ok = item < n_items  # unknown titles (the padding index) have no score
    safe = np.where(ok, item, 0)
    if not personal and len(raw):  # every member's row is the same: rank one row for all
        raw, member = raw[:1], np.zeros_like(member)
    value = raw[member, safe] if len(member) else np.zeros(0)
    finite = np.isfinite(value) & ok
    score = np.where(finite, value, np.nan)
    rank = np.full(len(member), np.nan)
    if not finite.any():
        return score, rank
    values = np.where(np.isfinite(raw), raw, -np.inf)
    asc = np.sort(values, axis=1)
    rows = np.flatnonzero(finite)
    m, v = member[rows], value[rows]
    right = _search_rows(asc, m, v)
    greater = n_items - right
    # tied: another title has the same score (the sorted row holds v at right - 1, and again before it)
    tied = (right >= 2) & (asc[m, np.maximum(right - 2, 0)] == v)
    before = np.zeros(len(rows), dtype=np.int64)  # equal scores at a lower title index
    if tied.any():
        where = np.flatnonzero(tied)
        keys: dict[tuple[int, float], list[int]] = {}
        for t in where:
            keys.setdefault((int(m[t]), float(v[t])), []).append(int(t))
        for (mm, vv), at in keys.items():
            seen = np.cumsum(values[mm] == vv)
            before[at] = seen[item[rows[at]]] - 1
    rank[rows] = 1 + greater + before
    return score, rank


def _search_rows(asc: np.ndarray, member: np.ndarray, value: np.ndarray) -> np.ndarray:
    """For each (member, value): how many of the member's sorted scores are <= value (one batched search)."""
    import torch

    if len(member) == 0:
        return np.zeros(0, dtype=np.int64)
    grouped = bool((member[1:] >= member[:-1]).all())  # candidate rows come grouped by member
    order = np.arange(len(member)) if grouped else np.argsort(member, kind="stable")
    m = member[order]
    counts = np.bincount(m, minlength=len(asc))
    width = int(counts.max())
    start = np.concatenate([[0], np.cumsum(counts)])[:-1]
    col = np.arange(len(m)) - start[m]
    grid = np.full((len(asc), width), np.inf)
    grid[m, col] = value[order]
    found = torch.searchsorted(torch.from_numpy(asc), torch.from_numpy(grid), right=True).numpy()
    out = np.empty(len(member), dtype=np.int64)
    out[order] = found[m, col]
    return out
