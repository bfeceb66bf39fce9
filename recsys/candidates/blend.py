"""Blend several candidate sources: quotas, dedupe, and every source's score and rank kept as features.

Selection is a weighted interleave: source s's r-th candidate sits at position r / quota_s,
so over the first n positions each source fills about n x quota_s / sum(quotas) slots; a
title several sources return keeps its earliest position (dedupe; on a tie, the source listed
first) and the slot it would have taken goes to the next title in line. Within the selected
n, titles are ordered by a weighted reciprocal-rank fusion, sum_s quota_s / (rrf_k + rank_s),
so titles that several sources agree on come first. The frame keeps `score_<source>` and
`rank_<source>` for every source (NaN where it did not return the title), `source` (the one
that brought it) and `sources` (every source that returned it, '|'-joined).

The blend works on members x titles arrays, one pass per source and no per-member loop or
sort of all rows: a batch of a thousand members blends in a few milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..artifacts import MANIFEST, Component
from ..data.dataset import Dataset
from .base import (
    CandidateGenerator, Interactions, RecommendationArrays, UserBatch, as_id_index, empty_recommendations, member_chunk,
)

__all__ = ["BlendGenerator", "CandidateBatch", "blend_frames", "blend_arrays", "DEFAULT_QUOTAS", "default_blend"]

CHILDREN = "sources"
#: Shares chosen on the sample world's tuning fold (docs/candidates.md): the two-tower model
#: gets the most slots, popularity and content cover cold members, the collaborative models
#: add what the others miss. Sources not listed get 1.
DEFAULT_QUOTAS: dict[str, float] = {
    "popularity": 1.0, "als": 0.5, "bpr": 0.5, "ease": 1.0, "itemknn": 0.5, "content": 1.0, "two_tower": 2.0,
}


def _columns(names: Sequence[str]) -> list[str]:
    columns = ["user_id", "item_id", "score", "rank", "source", "sources"]
    for name in names:
        columns += [f"score_{name}", f"rank_{name}"]
    return columns


@dataclass
class CandidateBatch:
    """The blend's candidates for a batch of members, as arrays (one row per candidate).

    Rows are ordered by member (in `member_ids` order) then by blend rank. `source_score` /
    `source_rank` hold each source's score and rank of the title in its own list (NaN where the
    source did not return it); `raw` each source's unmasked scores of every title for every
    member (what the ranker's source features read).
    """

    member_ids: np.ndarray
    member: np.ndarray
    item: np.ndarray
    score: np.ndarray
    rank: np.ndarray
    source: np.ndarray
    bits: np.ndarray
    source_score: np.ndarray  # rows x sources
    source_rank: np.ndarray
    names: list[str]
    raw: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.item)

    def source_labels(self) -> np.ndarray:
        """Every source that returned each row's title, '|'-joined."""
        patterns, which = np.unique(self.bits, return_inverse=True)
        labels = np.asarray(["|".join(self.names[k] for k in range(len(self.names)) if b >> k & 1)
                             for b in patterns], dtype=object)
        return labels[which] if len(self.bits) else np.zeros(0, dtype=object)

    def frame(self, item_ids: np.ndarray) -> pd.DataFrame:
        """The candidates as the blend's frame: user_id, item_id, score, rank, source, sources, score_*, rank_*."""
        if len(self.item) == 0:
            out = empty_recommendations(["sources"])
            for name in self.names:
                out[f"score_{name}"] = pd.Series(dtype=float)
                out[f"rank_{name}"] = pd.Series(dtype=float)
            return out[_columns(self.names)]
        out = {"user_id": self.member_ids[self.member], "item_id": np.asarray(item_ids, dtype=object)[self.item],
               "score": self.score, "rank": self.rank,
               "source": np.asarray(self.names, dtype=object)[self.source], "sources": self.source_labels()}
        for k, name in enumerate(self.names):
            out[f"score_{name}"] = self.source_score[:, k]
            out[f"rank_{name}"] = self.source_rank[:, k]
        return pd.DataFrame(out)[_columns(self.names)]


def blend_arrays(parts: Sequence[RecommendationArrays], n_members: int, n_items: int, quotas: Sequence[float],
                 n: int, rrf_k: float) -> tuple[np.ndarray, ...]:
    """The blend on dense indices (see the module docstring).

    `parts[s]` holds source s's lists (member position, title index, score, rank). Returns the
    rows (member, item, fused score, rank, winning source, source bits, scores, ranks), ordered
    by member then rank. Each source touches only its own (member, title) cells.
    """
    n_src = len(parts)
    cells = n_members * n_items
    best = np.full(cells, np.inf)  # earliest interleave position of each (member, title) cell
    winner = np.zeros(cells, dtype=np.int64)  # the source holding it, and at what rank (src * (depth + 1) + rank)
    depth = max((int(p.rank.max()) for p in parts if len(p.rank)), default=0) + 1
    where = []  # per source: 1 + the source's row of each cell (0: absent)
    all_cells = []
    for s, part in enumerate(parts):
        cell = part.user * n_items + part.item
        all_cells.append(cell)
        slot = np.zeros(cells, dtype=np.int32)
        slot[cell] = np.arange(1, len(cell) + 1, dtype=np.int32)
        where.append(slot)
        q = float(quotas[s])
        if q > 0:
            key = part.rank / q
            better = key < best[cell]  # strict: on a tie the source listed first keeps the slot
            best[cell[better]] = key[better]
            winner[cell[better]] = s * depth + part.rank[better]
    # summed per cell in source order (bincount adds its weights in input order)
    fused = np.bincount(np.concatenate(all_cells) if all_cells else np.zeros(0, np.int64),
                        weights=np.concatenate([float(quotas[s]) / (rrf_k + p.rank) for s, p in enumerate(parts)])
                        if parts else None, minlength=cells)
    # the n titles with the earliest (position, source) per member
    grid = best.reshape(n_members, n_items)
    finite = np.isfinite(grid)
    counts = finite.sum(axis=1)
    take = np.minimum(counts, n)
    chosen = finite
    over = np.flatnonzero(counts > n)
    if len(over):
        sub = grid[over]
        cut = np.partition(sub, n - 1, axis=1)[:, n - 1]
        below = sub < cut[:, None]
        need = n - below.sum(axis=1)
        # among titles tied at the cut, earlier sources first (one title per source can sit there)
        tr, tc = np.nonzero(sub == cut[:, None])
        order = np.lexsort((winner[over[tr] * n_items + tc], tr))
        tr, tc = tr[order], tc[order]
        place = np.arange(len(tr)) - np.searchsorted(tr, tr, side="left")
        keep = place < need[tr]
        below[tr[keep], tc[keep]] = True
        chosen[over] = below
    member, item = np.nonzero(chosen)
    cell = member * n_items + item
    # within each member: by fused score (descending), then by the bringing source, then by its rank there
    start = np.concatenate([[0], np.cumsum(take)])[:-1]
    col = np.arange(len(member)) - start[member]
    width = int(take.max()) if len(take) else 0
    neg = np.full((n_members, width), np.inf)
    neg[member, col] = -fused[cell]
    tie_break = np.full((n_members, width), np.iinfo(np.int64).max)
    tie_break[member, col] = winner[cell]
    order_in = np.lexsort((tie_break, neg), axis=-1)
    picked = (start[:, None] + order_in)[np.arange(width)[None, :] < take[:, None]]
    member, cell = member[picked], cell[picked]
    item = cell - member * n_items
    src = winner[cell] // depth
    f = fused[cell]
    rank = (col + 1).astype(np.int64)  # rows stay member-major, so each member's ranks run 1..take
    src_rank = np.empty((n_src, len(member)))
    src_score = np.empty((n_src, len(member)))
    bits = np.zeros(len(member), dtype=np.int64)
    for s, (part, slot) in enumerate(zip(parts, where)):
        row = slot[cell].astype(np.int64) - 1
        has = row >= 0
        src_rank[s] = np.where(has, part.rank[np.maximum(row, 0)] if len(part.rank) else 0, np.nan)
        src_score[s] = np.where(has, part.score[np.maximum(row, 0)] if len(part.score) else 0.0, np.nan)
        bits |= has.astype(np.int64) << s
    return member.astype(np.int64), item.astype(np.int64), f, rank, src, bits, src_score.T, src_rank.T


def blend_frames(frames: dict[str, pd.DataFrame], n: int, quotas: dict[str, float], rrf_k: float = 60.0,
                 order: Sequence[str] | None = None) -> pd.DataFrame:
    """Blend per-source recommendation frames (user_id, item_id, score, rank) into at most n rows per user.

    `frames` maps source name to its frame; `quotas` gives each source's share (0 keeps a
    source as features only). Users keep the order in which they first appear.
    """
    names = list(order or frames)
    present = [frames[name] for name in names]
    users = np.concatenate([f["user_id"].to_numpy(dtype=object) for f in present]) if present else np.zeros(0, object)
    items = np.concatenate([f["item_id"].to_numpy(dtype=object) for f in present]) if present else np.zeros(0, object)
    u_codes, user_uniques = pd.factorize(users, sort=False)
    i_codes, item_uniques = pd.factorize(items, sort=False)
    parts, lo = [], 0
    for f in present:
        hi = lo + len(f)
        parts.append(RecommendationArrays(u_codes[lo:hi].astype(np.int64), i_codes[lo:hi].astype(np.int64),
                                          f["score"].to_numpy(dtype=float), f["rank"].to_numpy(dtype=np.int64)))
        lo = hi
    member, item, score, rank, src, bits, src_score, src_rank = blend_arrays(
        parts, len(user_uniques), len(item_uniques), [float(quotas.get(name, 1.0)) for name in names], int(n), rrf_k)
    batch = CandidateBatch(np.asarray(user_uniques, dtype=object), member, item, score, rank, src, bits, src_score,
                           src_rank, names)
    return batch.frame(np.asarray(item_uniques, dtype=object))


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

    def _aligned(self) -> bool:
        return all(g.item_ids_.equals(self.item_ids_) for g in self.generators)

    def candidates(self, member_ids: np.ndarray, n: int, exclude_seen: bool = True, now: Any = None,
                   users: pd.DataFrame | None = None) -> CandidateBatch:
        """The blend for `member_ids` (external ids, distinct), with every source's raw scores kept."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if not self._aligned():
            raise ValueError("the blend's sources were fitted on different catalogues")
        member_ids = np.asarray(member_ids, dtype=object)
        depth = max(int(self.depth or n), int(n))
        available = self.available_items(now)
        results = [g.select(g.batch(member_ids, users), depth, exclude_seen, available) for g in self.generators]
        quotas = self._quota_map()
        member, item, score, rank, src, bits, src_score, src_rank = blend_arrays(
            [r.arrays for r in results], len(member_ids), len(self.item_ids_),
            [quotas[name] for name in self.source_names], int(n), self.rrf_k)
        return CandidateBatch(member_ids, member, item, score, rank, src, bits, src_score, src_rank,
                              self.source_names, [r.raw for r in results])

    def source_lists(self, member_ids: np.ndarray, n: int, exclude_seen: bool = True, now: Any = None,
                     users: pd.DataFrame | None = None) -> list[RecommendationArrays]:
        """Every source's own top-`n` for `member_ids` (positions in that order): what `blend_arrays` blends,
        so quotas can be tried without scoring again (`recsys.tuning.tune_quotas`)."""
        self._check_fitted()
        if not self._aligned():
            raise ValueError("the blend's sources were fitted on different catalogues")
        member_ids = np.asarray(member_ids, dtype=object)
        available = self.available_items(now)
        return [g.select(g.batch(member_ids, users), int(n), exclude_seen, available).arrays for g in self.generators]

    def recommend(self, user_ids: Any, n: int = 100, exclude_seen: bool = True, now: Any = None,
                  users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Blended top-n per user, with `sources`, `score_<source>` and `rank_<source>` columns."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        ids = self._user_list(user_ids)
        if not self._aligned():
            depth = max(int(self.depth or n), int(n))
            frames = {g.source_name: g.recommend(ids, n=depth, exclude_seen=exclude_seen, now=now, users=users)
                      for g in self.generators}
            return blend_frames(frames, int(n), self._quota_map(), self.rrf_k, self.source_names)
        member_ids = ids.to_numpy(dtype=object)
        step = member_chunk(len(self.item_ids_))
        frames = [self.candidates(member_ids[lo:lo + step], n, exclude_seen, now, users).frame(self.item_ids_)
                  for lo in range(0, max(len(member_ids), 1), step)]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def mark_seen(self, user_ids: Any, item_ids: Any) -> "BlendGenerator":
        """Record finished (member, title) pairs in every source (see CandidateGenerator.mark_seen); the
        blend itself masks nothing (its sources do)."""
        for g in self.generators:
            g.mark_seen(user_ids, item_ids)
        return self

    def _score(self, batch: UserBatch) -> np.ndarray:
        """Weighted reciprocal-rank fusion of every source's full ranking (for `score_items`)."""
        total = np.zeros((len(batch), len(self.item_ids_)))
        quotas = self._quota_map()
        for g in self.generators:
            sub = g.batch(as_id_index(batch.ids).to_numpy(dtype=object))
            sub.attributes.update(batch.attributes)
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
        return {"children": np.asarray(self._children(), dtype=str)}

    def _children(self) -> list[str]:
        return [f"{k:02d}_{name}" for k, name in enumerate(self.source_names)]

    def _save_parts(self, folder: Path) -> list[str]:
        for child, g in zip(self._children(), self.generators):
            g.save(folder / CHILDREN / child)
        return [f"{CHILDREN}/{child}/{MANIFEST}" for child in self._children()]

    def _set_state(self, arrays, component: Component) -> None:
        gens = []
        for child in arrays["children"]:
            component.read(f"{CHILDREN}/{child}/{MANIFEST}")  # listed by this manifest: not from another save
            gens.append(CandidateGenerator.load(component.folder / CHILDREN / str(child)))
        self.generators = tuple(gens)


def default_blend(seed: int = 0, **blend_options: Any) -> BlendGenerator:
    """Every source with its tuned defaults, blended with DEFAULT_QUOTAS (fit it on a Dataset)."""
    from .collaborative import ALSGenerator, BPRGenerator, EASEGenerator, ItemKNNGenerator
    from .content import ContentGenerator
    from .popularity import PopularityGenerator
    from .two_tower import TwoTowerGenerator

    generators = [PopularityGenerator(), ALSGenerator(seed=seed), BPRGenerator(seed=seed), EASEGenerator(),
                  ItemKNNGenerator(), ContentGenerator(), TwoTowerGenerator(seed=seed)]
    return BlendGenerator(generators=generators, **blend_options)
