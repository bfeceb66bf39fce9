"""Re-ranking of the top of a ranked list: the top 10 are what members actually look at.

In order: drop titles the member is too young for; drop titles recommended before and
ignored; keep at most `max_per_show` entries of one show (no wall of episodes); then pick
the final list with maximal marginal relevance (MMR) so that similar titles do not crowd
it. Every change is recorded with its reason.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .data.dataset import Dataset
from .data.schema import MATURITY_MIN_AGE
from .features.builder import NotFittedError
from .threads import single_threaded

__all__ = ["RerankConfig", "ReRanker", "RerankResult"]


@dataclass(frozen=True)
class RerankConfig:
    """Re-rank settings.

    diversity: MMR strength in [0, 1]; 0 keeps the ranker's order, 1 picks by novelty alone.
    ignored_after: drop a title once it was shown this many times in `ignored_window_days`
        without a play (0 disables).
    max_per_show: entries of one show allowed in the list (0 disables the limit).
    maturity_filter: drop titles above the member's age rating.
    """

    diversity: float = 0.3
    ignored_after: int = 2
    ignored_window_days: float = 14.0
    max_per_show: int = 1
    maturity_filter: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError(f"diversity must be in [0, 1], got {self.diversity!r}")
        if self.ignored_after < 0 or self.max_per_show < 0 or self.ignored_window_days < 0:
            raise ValueError("ignored_after, max_per_show and ignored_window_days must be >= 0")


@dataclass
class RerankResult:
    """The final list and what the re-rank changed (action, ranks before/after, reason)."""

    items: pd.DataFrame
    changes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["user_id", "item_id", "action", "from_rank", "to_rank", "reason"]))


class ReRanker:
    """Applies the re-rank rules; `fit` learns title metadata (shows, genres, ratings, titles)."""

    def __init__(self, config: RerankConfig | None = None) -> None:
        self.config = config or RerankConfig()

    def fit(self, dataset: Dataset, item_vectors: np.ndarray | None = None) -> "ReRanker":
        """Learn title metadata; `item_vectors` (one row per title) define similarity, else genres do."""
        items = dataset.items
        self.item_ids_ = pd.Index(items["item_id"])
        self.titles_ = items["title"].to_numpy(dtype=object)
        self.show_ = items["show_id"].to_numpy(dtype=object) if "show_id" in items.columns else \
            np.full(len(items), None, dtype=object)
        self.min_age_ = np.array([MATURITY_MIN_AGE.get(m, 0) if isinstance(m, str) else 0
                                  for m in (items["maturity_rating"] if "maturity_rating" in items.columns
                                            else [None] * len(items))])
        self.rating_ = items["maturity_rating"].to_numpy(dtype=object) if "maturity_rating" in items.columns else \
            np.full(len(items), None, dtype=object)
        if item_vectors is not None:
            vec = np.asarray(item_vectors, dtype=np.float32)
        elif "genres" in items.columns:
            genres = sorted({g for gs in items["genres"] for g in gs})
            vec = np.zeros((len(items), max(1, len(genres))), dtype=np.float32)
            index = {g: k for k, g in enumerate(genres)}
            for r, gs in enumerate(items["genres"]):
                for g in gs:
                    vec[r, index[g]] = 1.0
        else:
            vec = np.zeros((len(items), 1), dtype=np.float32)
        norms = np.linalg.norm(vec, axis=1, keepdims=True)
        self.vectors_ = vec / np.where(norms > 0, norms, 1.0)
        self.ages_ = dataset.users.set_index("user_id")["age"] if "age" in dataset.users.columns else None
        return self

    def _check(self) -> None:
        if not hasattr(self, "item_ids_"):
            raise NotFittedError("this ReRanker is not fitted yet: call fit(dataset) first")

    def ignored_titles(self, history: Dataset, user_ids, now) -> pd.DataFrame:
        """(user_id, item_id, times_shown) of titles shown >= `ignored_after` times in the window and never
        played in it: the 'recommended before and ignored' set."""
        cfg = self.config
        empty = pd.DataFrame({"user_id": pd.Series(dtype=object), "item_id": pd.Series(dtype=object),
                              "times_shown": pd.Series(dtype="int64")})
        if cfg.ignored_after == 0 or "watch_fraction" not in history.events.columns:
            return empty
        now = pd.Timestamp(now)
        cached = getattr(self, "_rows_by_user", None)
        if cached is None or cached[0] is not history:
            cached = (history, history.events.groupby("user_id", sort=False).indices)
            self._rows_by_user = cached
        rows = [cached[1][u] for u in pd.unique(np.asarray(user_ids, dtype=object)) if u in cached[1]]
        if not rows:
            return empty
        idx = np.concatenate(rows)
        ev = history.events
        when = ev["timestamp"].to_numpy()[idx]
        lo = np.datetime64(now - pd.Timedelta(days=cfg.ignored_window_days), "ns")
        idx = idx[(when < np.datetime64(now, "ns")) & (when >= lo)]
        if len(idx) == 0:
            return empty
        shown: dict[tuple[str, str], int] = {}
        played: set[tuple[str, str]] = set()
        for key, wf in zip(zip(ev["user_id"].to_numpy()[idx], ev["item_id"].to_numpy()[idx]),
                           ev["watch_fraction"].to_numpy(dtype=float)[idx]):
            if wf > 0:
                played.add(key)
            elif wf == 0:
                shown[key] = shown.get(key, 0) + 1
        out = [(u, i, n) for (u, i), n in shown.items() if n >= cfg.ignored_after and (u, i) not in played]
        if not out:
            return empty
        return pd.DataFrame(out, columns=["user_id", "item_id", "times_shown"])

    def rerank(self, ranked: pd.DataFrame, k: int = 10, ignored: pd.DataFrame | None = None,
               ages: dict | None = None) -> RerankResult:
        """Re-rank each user's list in `ranked` (user_id, item_id, score, ... in rank order) to `k` titles.

        `ignored` is the output of `ignored_titles`; `ages` overrides member ages by id (onboarding).
        Works on whole columns and slices the frame once: the evaluation re-ranks thousands of lists.
        """
        self._check()
        cfg = self.config
        ignored_map: dict[tuple[str, str], int] = {}
        if ignored is not None and len(ignored):
            ignored_map = {(u, i): int(n) for u, i, n in ignored[["user_id", "item_id", "times_shown"]].itertuples(
                index=False)}
        if len(ranked) == 0:
            return RerankResult(items=ranked.head(0).assign(rank=[], rank_before_rerank=[]))
        users = ranked["user_id"].to_numpy(dtype=object)
        order_of_user = pd.Index(pd.unique(users))
        user_pos = order_of_user.get_indexer(users)
        scores_all = ranked["score"].to_numpy(dtype=float)
        # users in first-appearance order, each by score descending (stable: ties keep their order)
        order = np.lexsort((np.arange(len(ranked)), -scores_all, user_pos))
        user_pos, scores_all = user_pos[order], scores_all[order]
        item_ids_all = ranked["item_id"].astype(str).to_numpy(dtype=object)[order]
        idx_all = self.item_ids_.get_indexer(pd.Index(item_ids_all))
        bounds = np.flatnonzero(np.diff(user_pos)) + 1
        starts = np.concatenate([[0], bounds])
        stops = np.concatenate([bounds, [len(order)]])
        picked_rows: list[np.ndarray] = []
        before: list[np.ndarray] = []
        changes: list[tuple] = []
        enough = max(3 * k, 30)  # MMR picks among the best kept titles; the rest need no vetting
        # many small similarity products: above ~64 rows OpenBLAS would wake its threads for each
        with single_threaded() if enough > 64 else nullcontext():
            for lo, hi in zip(starts, stops):
                user = order_of_user[user_pos[lo]]
                item_ids, idx = item_ids_all[lo:hi], idx_all[lo:hi]
                age = None
                if ages is not None and user in ages:
                    age = ages[user]
                elif self.ages_ is not None and user in self.ages_.index:
                    age = self.ages_.loc[user]
                check_age = cfg.maturity_filter and age is not None and not pd.isna(age)
                kept_rows: list[int] = []
                shows_seen: dict[str, str] = {}  # show -> the title that holds its place
                show_count: dict[str, int] = {}
                for r in range(hi - lo):
                    if len(kept_rows) >= enough:
                        break
                    item, ix = item_ids[r], idx[r]
                    reason = None
                    if check_age and ix >= 0 and age < self.min_age_[ix]:
                        reason = f"rated {self.rating_[ix]}, the member is {int(age)}"
                    elif (user, item) in ignored_map:
                        reason = (f"shown {ignored_map[(user, item)]} times in the last {cfg.ignored_window_days:g} days "
                                  f"and not played")
                    elif cfg.max_per_show and ix >= 0 and isinstance(self.show_[ix], str):
                        show = self.show_[ix]
                        if show_count.get(show, 0) >= cfg.max_per_show:
                            reason = f"another entry of the same show is already in the list ({shows_seen[show]})"
                        else:
                            show_count[show] = show_count.get(show, 0) + 1
                            shows_seen.setdefault(show, self.titles_[ix])
                    if reason is None:
                        kept_rows.append(r)
                    else:
                        changes.append((user, item, "dropped", r + 1, None, reason))
                pool = np.asarray(kept_rows, dtype=int)
                chosen = self._mmr(scores_all[lo:hi][pool], idx[pool], k)
                picked = pool[chosen]
                if cfg.diversity > 0:
                    for new_rank, old in enumerate(picked, start=1):
                        if new_rank != self._rank_without_mmr(pool, old):
                            changes.append((user, item_ids[old], "moved", old + 1, new_rank,
                                            "moved for variety (maximal marginal relevance over genres/synopsis)"))
                picked_rows.append(order[lo + picked])
                before.append(picked + 1)
        rows = np.concatenate(picked_rows)
        items = ranked.iloc[rows].reset_index(drop=True)
        items["rank"] = np.concatenate([np.arange(1, len(p) + 1) for p in picked_rows])
        items["rank_before_rerank"] = np.concatenate(before)
        change_frame = pd.DataFrame(changes, columns=["user_id", "item_id", "action", "from_rank", "to_rank", "reason"])
        return RerankResult(items=items, changes=change_frame)

    @staticmethod
    def _rank_without_mmr(pool: np.ndarray, old: int) -> int:
        return int(np.searchsorted(pool, old)) + 1

    def _mmr(self, scores: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
        """Greedy MMR: argmax (1-d)·relevance - d·max similarity to the picks so far; relevance = score
        scaled to [0, 1] within the list. Prefix-consistent: the first j picks do not depend on k."""
        n = len(scores)
        if n == 0:
            return np.zeros(0, dtype=int)
        d = self.config.diversity
        if d == 0 or n == 1:
            return np.arange(min(k, n))
        head = scores[:30]  # scaled on the best 30 (scores arrive best first): the same for every k
        span = head.max() - head.min()
        rel = (scores - head.min()) / span if span > 0 else np.ones(n)
        vec = self.vectors_[np.maximum(idx, 0)] * (idx >= 0)[:, None]
        sim = vec @ vec.T
        picked: list[int] = []
        max_sim = np.zeros(n)
        available = np.ones(n, dtype=bool)
        reach = np.arange(n)
        for j in range(min(k, n)):
            # slot j draws from the best max(30, 3(j+1)) titles only, whatever k is: the top 10 of a
            # list of 50 is then exactly the list of 10 (what the evaluation scores is what is served)
            eligible = available & (reach < max(30, 3 * (j + 1)))
            value = np.where(eligible, (1 - d) * rel - d * max_sim, -np.inf)
            best = int(np.argmax(value))
            picked.append(best)
            available[best] = False
            max_sim = np.maximum(max_sim, sim[best])
        return np.asarray(picked)
