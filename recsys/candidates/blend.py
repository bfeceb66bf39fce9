"""Blend several candidate sources: quotas, dedupe, and every source's score and rank kept as features.

Selection is a weighted interleave: source s's r-th candidate sits at position r / quota_s,
so over the first n positions each source fills about n x quota_s / sum(quotas) slots; a
title several sources return keeps its earliest position (dedupe) and the slot it would
have taken goes to the next title in line. Within the selected n, titles are ordered by a
weighted reciprocal-rank fusion, sum_s quota_s / (rrf_k + rank_s), so titles that several
sources agree on come first. The frame keeps `score_<source>` and `rank_<source>` for every
source (NaN where it did not return the title), `source` (the one that brought it) and
`sources` (every source that returned it, '|'-joined).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from .base import CandidateGenerator, Interactions, UserBatch, empty_recommendations

__all__ = ["BlendGenerator", "blend_frames", "DEFAULT_QUOTAS", "default_blend"]

CHILDREN = "sources"
#: Shares chosen on the sample world's tuning fold (docs/candidates.md): the two-tower model
#: gets the most slots, popularity and content cover cold members, the collaborative models
#: add what the others miss. Sources not listed get 1.
DEFAULT_QUOTAS: dict[str, float] = {
    "popular": 1.0, "als": 0.5, "bpr": 0.5, "ease": 1.0, "itemknn": 0.5, "content": 1.0, "two_tower": 2.0,
}


def _empty_blend(names: Sequence[str]) -> pd.DataFrame:
    out = empty_recommendations(["sources"])
    for name in names:
        out[f"score_{name}"] = pd.Series(dtype=float)
        out[f"rank_{name}"] = pd.Series(dtype=float)
    return out[_columns(names)]


def _columns(names: Sequence[str]) -> list[str]:
    columns = ["user_id", "item_id", "score", "rank", "source", "sources"]
    for name in names:
        columns += [f"score_{name}", f"rank_{name}"]
    return columns


def _blend_arrays(user: np.ndarray, item: np.ndarray, src: np.ndarray, score: np.ndarray, rank: np.ndarray,
                  n_items: int, names: Sequence[str], quotas: dict[str, float], n: int, rrf_k: float,
                  user_ids: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
    """The blend on dense arrays (user position, item index, source index); see the module docstring."""
    weight = np.array([float(quotas.get(name, 1.0)) for name in names])[src]
    pairs, pair_of_row = np.unique(user.astype(np.int64) * n_items + item, return_inverse=True)
    key = np.where(weight > 0, rank / np.where(weight > 0, weight, 1.0), np.inf)
    rrf = np.bincount(pair_of_row, weights=weight / (rrf_k + rank), minlength=len(pairs))
    # interleave: sort by (user, position, source); the first row of each (user, title) wins
    by_position = np.lexsort((src, key, user))
    _, first = np.unique(pair_of_row[by_position], return_index=True)
    winners = by_position[np.sort(first)]
    winners = winners[np.isfinite(key[winners])]
    group = user[winners]
    starts = np.searchsorted(group, group, side="left")
    chosen = winners[(np.arange(len(winners)) - starts) < n]
    # within the chosen titles, order by fused score (then by the bringing source)
    chosen = chosen[np.lexsort((src[chosen], -rrf[pair_of_row[chosen]], user[chosen]))]
    group = user[chosen]
    out_rank = np.arange(len(chosen)) - np.searchsorted(group, group, side="left") + 1
    out = {
        "user_id": user_ids[group],
        "item_id": item_ids[item[chosen]],
        "score": rrf[pair_of_row[chosen]],
        "rank": out_rank.astype(np.int64),
        "source": np.asarray(names, dtype=object)[src[chosen]],
    }
    chosen_pairs = pair_of_row[chosen]
    bits = np.zeros(len(chosen), dtype=np.int64)
    wide = {}
    for k, name in enumerate(names):
        rows = src == k
        pair_score = np.full(len(pairs), np.nan)
        pair_rank = np.full(len(pairs), np.nan)
        pair_score[pair_of_row[rows]] = score[rows]
        pair_rank[pair_of_row[rows]] = rank[rows]
        wide[f"score_{name}"] = pair_score[chosen_pairs]
        wide[f"rank_{name}"] = pair_rank[chosen_pairs]
        bits |= np.where(np.isnan(wide[f"rank_{name}"]), 0, 1 << k)
    patterns, which = np.unique(bits, return_inverse=True)
    labels = np.asarray(["|".join(names[k] for k in range(len(names)) if b >> k & 1) for b in patterns], dtype=object)
    out["sources"] = labels[which]
    out.update(wide)
    return pd.DataFrame(out)[_columns(names)]


def blend_frames(frames: dict[str, pd.DataFrame], n: int, quotas: dict[str, float], rrf_k: float = 60.0,
                 order: Sequence[str] | None = None) -> pd.DataFrame:
    """Blend per-source recommendation frames (user_id, item_id, score, rank) into at most n rows per user.

    `frames` maps source name to its frame; `quotas` gives each source's share (0 keeps a
    source as features only). Users keep the order in which they first appear. Vectorised:
    one sort over all (user, title, source) rows, no per-user loop.
    """
    names = list(order or frames)
    present = [(k, frames[name]) for k, name in enumerate(names) if len(frames[name])]
    if not present:
        return _empty_blend(names)
    users = np.concatenate([f["user_id"].to_numpy(dtype=object) for _, f in present])
    items = np.concatenate([f["item_id"].to_numpy(dtype=object) for _, f in present])
    u_codes, user_uniques = pd.factorize(users, sort=False)
    i_codes, item_uniques = pd.factorize(items, sort=False)
    return _blend_arrays(
        u_codes.astype(np.int64), i_codes.astype(np.int64),
        np.concatenate([np.full(len(f), k, dtype=np.int64) for k, f in present]),
        np.concatenate([f["score"].to_numpy(dtype=float) for _, f in present]),
        np.concatenate([f["rank"].to_numpy(dtype=np.int64) for _, f in present]),
        len(item_uniques), names, quotas, int(n), rrf_k,
        np.asarray(user_uniques, dtype=object), np.asarray(item_uniques, dtype=object),
    )


@dataclass(eq=False)
class BlendGenerator(CandidateGenerator):
    """Candidates from several generators with quotas (shares of the n slots per source name).

    `quotas=None` uses DEFAULT_QUOTAS; a source missing from the quotas gets 1.
    `depth` is how many candidates each source is asked for (default: n). With `prefit=True`
    the generators are used as they are (already fitted) and `fit` only records the catalogue.
    Cold users get what their sources give them (popularity and content cover everyone).
    """

    generators: Sequence[CandidateGenerator] = field(default_factory=tuple)
    quotas: dict[str, float] | None = None
    depth: int | None = None
    rrf_k: float = 60.0
    prefit: bool = False

    source = "blend"
    cold_start = "fallback"

    def _validate(self) -> None:
        if not self.generators:
            raise ValueError("BlendGenerator needs at least one generator")
        for g in self.generators:
            if not isinstance(g, CandidateGenerator) or isinstance(g, BlendGenerator):
                raise TypeError(f"blend sources must be (non-blend) CandidateGenerators, got {type(g).__name__}")
        names = [g.source_name for g in self.generators]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"blend sources need distinct names (set name=...), repeated: {dupes}")
        for key, value in (self.quotas or {}).items():
            if key not in names:
                raise ValueError(f"quota for unknown source {key!r}; sources are {names}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"quota of {key!r} must be a finite number >= 0, got {value!r}")
        if self.depth is not None and (isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1):
            raise ValueError(f"depth must be an integer >= 1 or None, got {self.depth!r}")
        if not (isinstance(self.rrf_k, (int, float)) and math.isfinite(self.rrf_k) and self.rrf_k >= 0):
            raise ValueError(f"rrf_k must be a finite number >= 0, got {self.rrf_k!r}")

    @property
    def source_names(self) -> list[str]:
        return [g.source_name for g in self.generators]

    def _quota_map(self) -> dict[str, float]:
        quotas = DEFAULT_QUOTAS if self.quotas is None else self.quotas
        return {name: float(quotas.get(name, 1.0)) for name in self.source_names}

    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        if self.prefit:
            for g in self.generators:
                g._check_fitted()
        else:
            for g in self.generators:
                g.fit(dataset)

    def recommend(self, user_ids: Any, n: int = 100, exclude_seen: bool = True, now: Any = None,
                  users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Blended top-n per user, with `sources`, `score_<source>` and `rank_<source>` columns."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        depth = max(int(self.depth or n), int(n))
        ids = self._user_list(user_ids)
        names = self.source_names
        if not all(g.item_ids_.equals(self.item_ids_) for g in self.generators):
            frames = {g.source_name: g.recommend(ids, n=depth, exclude_seen=exclude_seen, now=now, users=users)
                      for g in self.generators}
            return blend_frames(frames, int(n), self._quota_map(), self.rrf_k, names)
        parts = [g.recommend_arrays(ids, depth, exclude_seen, now, users) for g in self.generators]
        if sum(len(p.user) for p in parts) == 0:
            return _empty_blend(names)
        return _blend_arrays(
            np.concatenate([p.user for p in parts]), np.concatenate([p.item for p in parts]),
            np.concatenate([np.full(len(p.user), k, dtype=np.int64) for k, p in enumerate(parts)]),
            np.concatenate([p.score for p in parts]), np.concatenate([p.rank for p in parts]),
            len(self.item_ids_), names, self._quota_map(), int(n), self.rrf_k,
            ids.to_numpy(dtype=object), self.item_ids_.to_numpy(dtype=object),
        )

    def mark_seen(self, user_ids: Any, item_ids: Any) -> "BlendGenerator":
        """Record finished (member, title) pairs here and in every source (see CandidateGenerator.mark_seen)."""
        super().mark_seen(user_ids, item_ids)
        for g in self.generators:
            g.mark_seen(user_ids, item_ids)
        return self

    def _score(self, batch: UserBatch) -> np.ndarray:
        """Weighted reciprocal-rank fusion of every source's full ranking (for `score_items`)."""
        total = np.zeros((len(batch), len(self.item_ids_)))
        quotas = self._quota_map()
        for g in self.generators:
            sub = g._batch(pd.Index(batch.ids, dtype=object), batch.attributes)
            scores = np.asarray(g._score(sub), dtype=float)
            scores = np.where(np.isnan(scores), -np.inf, scores)
            aligned = np.full_like(total, -np.inf)
            cols = g.item_ids_.get_indexer(self.item_ids_)
            has = cols >= 0
            aligned[:, has] = scores[:, cols[has]]
            ranks = (-aligned).argsort(axis=1, kind="stable").argsort(axis=1, kind="stable") + 1
            total += np.where(np.isfinite(aligned), quotas[g.source_name] / (self.rrf_k + ranks), 0.0)
        return np.where(total > 0, total, -np.inf)

    # ----------------------------------------------------------- persistence
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("generators")
        return config

    def _fitted_summary(self) -> dict[str, Any]:
        return {"sources": self.source_names}

    def _state(self) -> dict[str, np.ndarray]:
        return {"children": np.asarray([f"{k:02d}_{name}" for k, name in enumerate(self.source_names)], dtype=str)}

    def _save_extra(self, path: Path) -> None:
        for k, g in enumerate(self.generators):
            g.save(path / CHILDREN / f"{k:02d}_{g.source_name}")

    def _set_state(self, arrays, path: Path) -> None:
        self.generators = tuple(CandidateGenerator.load(path / CHILDREN / str(child)) for child in arrays["children"])


def default_blend(seed: int = 0, **blend_options: Any) -> BlendGenerator:
    """Every source with its tuned defaults, blended with DEFAULT_QUOTAS (fit it on a Dataset)."""
    from .collaborative import ALSGenerator, BPRGenerator, EASEGenerator, ItemKNNGenerator
    from .content import ContentGenerator
    from .popularity import PopularityGenerator
    from .two_tower import TwoTowerGenerator

    generators = [PopularityGenerator(), ALSGenerator(seed=seed), BPRGenerator(seed=seed), EASEGenerator(),
                  ItemKNNGenerator(), ContentGenerator(), TwoTowerGenerator(seed=seed)]
    return BlendGenerator(generators=generators, **blend_options)
