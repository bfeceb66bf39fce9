"""Re-ranking of the top of a ranked list: the top 10 are what members actually look at.

The steps, each registered in RERANK_STEPS and each recording why it changed a list:
- `maturity`: drop titles the member is too young for;
- `ignored`: drop titles recommended before and ignored (shown `ignored_after` times in the
  last `ignored_window_days` without a play);
- `show_limit`: keep at most `max_per_show` entries of one show (no wall of episodes);
- `diversity`: pick the final list with maximal marginal relevance (MMR) so that similar titles
  do not crowd it.

The filters run in that order over each member's list, best first, until enough titles are kept
(3 x k, at least 30); `diversity` then picks k of them. Everything works on whole columns for
all members at once (the MMR picks slot by slot for every member together), so re-ranking a
thousand lists costs about as much as re-ranking one. The re-rank is prefix-consistent: the top
10 of a list of 50 is the list of 10.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from .data.dataset import Dataset
from .data.schema import maturity_min_ages
from .errors import NotFittedError
from .features.history import DAY_SECONDS, SECOND_SPAN, History, seconds_since
from .features.ragged import ragged_ranges
from .ids import IdIndex
from .registry import Registry

__all__ = ["RerankConfig", "ReRanker", "RerankResult", "RankedLists", "RERANK_STEPS", "RerankStep"]

CHANGE_COLUMNS = ["user_id", "item_id", "action", "from_rank", "to_rank", "reason"]

#: Re-rank steps by name (the config's `steps` and the contract tests read it).
RERANK_STEPS: Registry = Registry("re-rank step")


@dataclass(frozen=True)
class RerankConfig:
    """Re-rank settings.

    steps: the steps to apply, by name (RERANK_STEPS); filters always run before `diversity`.
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
    steps: tuple[str, ...] = ("maturity", "ignored", "show_limit", "diversity")

    def __post_init__(self) -> None:
        if not 0.0 <= self.diversity <= 1.0:
            raise ValueError(f"diversity must be in [0, 1], got {self.diversity!r}")
        if self.ignored_after < 0 or self.max_per_show < 0 or self.ignored_window_days < 0:
            raise ValueError("ignored_after, max_per_show and ignored_window_days must be >= 0")
        RERANK_STEPS.check(self.steps)


@dataclass
class RerankResult:
    """The final list and what the re-rank changed (action, ranks before/after, reason)."""

    items: pd.DataFrame
    changes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHANGE_COLUMNS))


@dataclass
class RankedLists:
    """Members' ranked lists as columns: rows grouped by member, each member's best first.

    member: position into `member_ids`; item: title index in the re-ranker's catalogue (-1
    unknown); score: the ranker's score; age: per member (NaN unknown); ignored: per row, how
    often the title was shown and not played in the window (0 when not ignored).
    """

    member_ids: np.ndarray
    member: np.ndarray
    item: np.ndarray
    score: np.ndarray
    age: np.ndarray
    ignored: np.ndarray

    def __len__(self) -> int:
        return len(self.item)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's position in its member's list (0 = best), and each member's first row."""
        starts = np.searchsorted(self.member, np.arange(len(self.member_ids)), side="left")
        return np.arange(len(self.member)) - starts[self.member], starts


class RerankStep(abc.ABC):
    """A filter (drops titles from a list) or the final pick; `name` is its key in RERANK_STEPS."""

    name: ClassVar[str] = ""

    def __init__(self, config: RerankConfig, titles: "_Titles") -> None:
        self.config, self.titles = config, titles


class _Filter(RerankStep):
    @abc.abstractmethod
    def drops(self, lists: RankedLists, position: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, object]:
        """Which rows this step drops, given the rows still kept before it; and what `reasons` needs."""

    @abc.abstractmethod
    def reasons(self, lists: RankedLists, rows: np.ndarray, info: object) -> list[str]:
        """Why each of `rows` was dropped."""


@RERANK_STEPS.register
class MaturityFilter(_Filter):
    """Titles rated above the member's age."""

    name = "maturity"

    def drops(self, lists, position, kept):
        if not self.config.maturity_filter:
            return np.zeros(len(lists), dtype=bool), None
        age = lists.age[lists.member]
        known = lists.item >= 0
        need = np.where(known, self.titles.min_age[np.maximum(lists.item, 0)], 0)
        return known & ~np.isnan(age) & (age < need), None

    def reasons(self, lists, rows, info):
        ages = lists.age[lists.member[rows]]
        ratings = self.titles.rating[lists.item[rows]]
        return [f"rated {r}, the member is {int(a)}" for r, a in zip(ratings, ages)]


@RERANK_STEPS.register
class IgnoredFilter(_Filter):
    """Titles shown `ignored_after` times in the window and never played in it."""

    name = "ignored"

    def drops(self, lists, position, kept):
        return lists.ignored > 0, None

    def reasons(self, lists, rows, info):
        return [f"shown {int(n)} times in the last {self.config.ignored_window_days:g} days and not played"
                for n in lists.ignored[rows]]


@RERANK_STEPS.register
class ShowLimit(_Filter):
    """More than `max_per_show` entries of one show."""

    name = "show_limit"

    def drops(self, lists, position, kept):
        limit = self.config.max_per_show
        drop = np.zeros(len(lists), dtype=bool)
        show = np.where(lists.item >= 0, self.titles.show[np.maximum(lists.item, 0)], -1)
        rows = np.flatnonzero(kept & (show >= 0))
        if limit == 0 or len(rows) == 0:
            return drop, None
        order = rows[np.lexsort((position[rows], show[rows], lists.member[rows]))]
        key = lists.member[order] * (self.titles.n_shows + 1) + show[order]
        first = np.searchsorted(key, key, side="left")
        drop[order] = (np.arange(len(order)) - first) >= limit
        return drop, (order, key, first)

    def reasons(self, lists, rows, info):
        order, key, first = info
        holder = dict(zip(key.tolist(), order[first].tolist()))  # the first kept entry of each show
        show = self.titles.show[lists.item[rows]]
        return [f"another entry of the same show is already in the list "
                f"({self.titles.names[lists.item[holder[m * (self.titles.n_shows + 1) + s]]]})"
                for m, s in zip(lists.member[rows], show)]


@RERANK_STEPS.register
class Diversity(RerankStep):
    """Greedy MMR: argmax (1 - d) * relevance - d * max similarity to the picks so far."""

    name = "diversity"

    def pick(self, score: np.ndarray, item: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
        """For pools (members x pool positions, best first; `valid` marks real entries), the picked
        positions per member (-1 where a member's pool runs out)."""
        d = self.config.diversity
        n_members, width = score.shape
        count = valid.sum(axis=1)
        steps = min(k, width)
        out = np.full((n_members, steps), -1, dtype=np.int64)
        if steps == 0:
            return out
        plain = (count <= 1) if d > 0 else np.ones(n_members, dtype=bool)
        ahead = np.arange(steps)[None, :]
        out[plain] = np.where(ahead < count[plain, None], ahead, -1)
        rows = np.flatnonzero(~plain)
        if len(rows) == 0:
            return out
        score, item, valid, count = score[rows], item[rows], valid[rows], count[rows]
        head = np.where(valid[:, :30], score[:, :30], np.nan)  # scaled on the best 30: the same for every k
        lo, hi = np.nanmin(head, axis=1), np.nanmax(head, axis=1)
        span = hi - lo
        rel = np.where(span[:, None] > 0, (score - lo[:, None]) / np.where(span > 0, span, 1.0)[:, None], 1.0)
        vec = self.titles.vectors[np.maximum(item, 0)] * (item >= 0)[:, :, None]
        # each member's pool similarities as one product of the pool with itself (the member's own
        # shape: the same bits whoever else is in the batch)
        sims = np.zeros((len(rows), width, width), dtype=np.float32)
        for m, c in enumerate(count):
            sims[m, :c, :c] = vec[m, :c] @ vec[m, :c].T
        max_sim = np.zeros(score.shape)
        available = valid.copy()
        reach = np.arange(width)[None, :]
        chosen = np.full((len(rows), steps), -1, dtype=np.int64)
        members = np.arange(len(rows))
        for j in range(steps):
            # slot j draws from the best max(30, 3(j+1)) titles only, whatever k is: the top 10 of a
            # list of 50 is then exactly the list of 10 (what the evaluation scores is what is served)
            eligible = available & (reach < max(30, 3 * (j + 1)))
            value = np.where(eligible, (1 - d) * rel - d * max_sim, -np.inf)
            best = np.argmax(value, axis=1)
            live = j < count
            chosen[live, j] = best[live]
            available[members, best] = False
            max_sim = np.maximum(max_sim, sims[members, best])
        out[rows] = chosen
        return out


@dataclass(frozen=True)
class _Titles:
    """What the steps know of each title: maturity, show, title text, similarity vectors."""

    ids: IdIndex
    names: np.ndarray
    show: np.ndarray  # code, -1 none
    n_shows: int
    min_age: np.ndarray
    rating: np.ndarray
    vectors: np.ndarray


class ReRanker:
    """Applies the re-rank steps; `fit` learns title metadata (shows, genres, ratings, titles)."""

    def __init__(self, config: RerankConfig | None = None) -> None:
        self.config = config or RerankConfig()

    def fit(self, dataset: Dataset, item_vectors: np.ndarray | None = None) -> "ReRanker":
        """Learn title metadata; `item_vectors` (one row per title) define similarity, else genres do."""
        items = dataset.items
        self.item_ids_ = pd.Index(items["item_id"])
        shows = items["show_id"].to_numpy(dtype=object) if "show_id" in items.columns else \
            np.full(len(items), None, dtype=object)
        show_codes, show_names = pd.factorize(pd.Series([s if isinstance(s, str) else None for s in shows],
                                                        dtype=object))
        min_age = maturity_min_ages(items["maturity_rating"] if "maturity_rating" in items.columns
                                    else [None] * len(items))
        rating = items["maturity_rating"].to_numpy(dtype=object) if "maturity_rating" in items.columns else \
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
        self.titles_ = _Titles(IdIndex(items["item_id"].astype(str)), items["title"].to_numpy(dtype=object),
                               show_codes.astype(np.int64), len(show_names), min_age, rating,
                               (vec / np.where(norms > 0, norms, 1.0)).astype(np.float32))
        self.users_ = IdIndex(dataset.users["user_id"].astype(str))
        self.user_age_ = (np.append(pd.to_numeric(dataset.users["age"], errors="coerce").to_numpy(dtype=float), np.nan)
                          if "age" in dataset.users.columns else None)
        self.steps_ = [RERANK_STEPS.create(name, config=self.config, titles=self.titles_) for name in self.config.steps]
        return self

    def _check(self) -> None:
        if not hasattr(self, "titles_"):
            raise NotFittedError("this ReRanker is not fitted yet: call fit(dataset) first")

    # ------------------------------------------------------------ inputs
    def ages(self, member_ids: np.ndarray, overrides: dict | None = None) -> np.ndarray:
        """Each member's age (from fit, or `overrides` by id, e.g. an onboarding visitor's); NaN unknown."""
        self._check()
        age = (self.user_age_[self.users_.positions(member_ids)] if self.user_age_ is not None
               else np.full(len(member_ids), np.nan))
        if overrides:
            for k, m in enumerate(member_ids):
                if m in overrides and overrides[m] is not None and not pd.isna(overrides[m]):
                    age[k] = float(overrides[m])
        return age

    def ignored(self, history: History, member_index: np.ndarray, member: np.ndarray, item: np.ndarray,
                now) -> np.ndarray:
        """Per row: times its title was shown to its member and not played in the window before `now`,
        where that is at least `ignored_after` and no play followed (else 0). `item` indexes
        `history`'s titles; `member_index` the history's members."""
        cfg = self.config
        out = np.zeros(len(item), dtype=np.int64)
        if cfg.ignored_after == 0 or "ignored" not in cfg.steps or not history.implicit or len(item) == 0:
            return out
        now_ns = np.datetime64(pd.Timestamp(now).to_datetime64(), "ns")
        sec = int(seconds_since(np.array([now_ns]), history.origin)[0])
        since = int(seconds_since(np.array([now_ns - np.timedelta64(int(cfg.ignored_window_days * DAY_SECONDS * 1e9),
                                                                    "ns")]), history.origin)[0])
        m = len(member_index)
        secs, lows = np.full(m, sec), np.full(m, since)
        start, stop = history.shown_range(member_index, secs, lows)
        pos, q = ragged_ranges(start, stop)
        zero = history.shown_zero[pos]
        width = history.n_items + 1
        shown = np.bincount(q[zero] * width + history.shown_item[pos[zero]], minlength=m * width)
        p_start, p_stop = history.play_range(member_index, secs)
        lo = np.searchsorted(history.key, member_index.astype(np.int64) * SECOND_SPAN + np.maximum(since, 0), "left")
        p_start = np.where(member_index < 0, p_start, np.maximum(p_start, lo))
        ppos, pq = ragged_ranges(p_start, np.maximum(p_stop, p_start))
        played = np.bincount(pq * width + history.item[ppos], minlength=m * width) > 0
        cell = member * width + item
        times = shown[cell]
        return np.where((times >= cfg.ignored_after) & ~played[cell], times, 0)

    # ----------------------------------------------------------- re-rank
    def rerank_lists(self, lists: RankedLists, k: int, changes: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, list[tuple] | None]:
        """The picked rows of `lists` (in pick order, grouped by member), each one's position before the
        re-rank (1-based), and the changes (member, row, action, from, to, reason) when asked."""
        self._check()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        position, starts = lists.positions()
        kept = np.ones(len(lists), dtype=bool)
        dropped_by: list[tuple[_Filter, np.ndarray, object]] = []
        for step in self.steps_:
            if isinstance(step, _Filter):
                drop, info = step.drops(lists, position, kept)
                drop &= kept
                kept &= ~drop
                dropped_by.append((step, drop, info))
        enough = max(3 * k, 30)  # MMR picks among the best kept titles; the rest need no vetting
        kept_before = np.cumsum(kept) - kept
        kept_before -= kept_before[starts[lists.member]] if len(lists) else 0
        scanned = kept_before < enough
        pool_rows = np.flatnonzero(kept & scanned)
        pool_pos = kept_before[pool_rows]
        n_members = len(lists.member_ids)
        width = int(pool_pos.max()) + 1 if len(pool_rows) else 0
        grid = np.full((n_members, width), -1, dtype=np.int64)
        grid[lists.member[pool_rows], pool_pos] = pool_rows
        valid = grid >= 0
        score = np.where(valid, lists.score[np.maximum(grid, 0)], -np.inf)
        item = np.where(valid, lists.item[np.maximum(grid, 0)], -1)
        diversity = next((s for s in self.steps_ if isinstance(s, Diversity)), None)
        if diversity is not None and self.config.diversity > 0:
            picks = diversity.pick(score, item, valid, k)
        else:
            steps = min(k, width)
            ahead = np.arange(steps)[None, :]
            picks = np.where(ahead < valid.sum(axis=1)[:, None], ahead, -1)
        member, slot = np.nonzero(picks >= 0)
        rows = grid[member, picks[member, slot]]
        before = position[rows] + 1
        if not changes:
            return rows, before, None
        out: list[tuple] = []
        for step, drop, info in dropped_by:
            which = np.flatnonzero(drop & scanned)
            if len(which) == 0:
                continue
            for row, reason in zip(which, step.reasons(lists, which, info)):
                out.append((lists.member[row], row, "dropped", position[row] + 1, None, reason))
        if diversity is not None and self.config.diversity > 0:
            new_rank = slot + 1
            moved = new_rank != picks[member, slot] + 1
            for row, m, to in zip(rows[moved], member[moved], new_rank[moved]):
                out.append((m, row, "moved", position[row] + 1, int(to),
                            "moved for variety (maximal marginal relevance over genres/synopsis)"))
        out.sort(key=lambda c: (c[0], c[2] != "dropped", c[3] if c[2] == "dropped" else c[4]))
        return rows, before, out

    # ------------------------------------------------------- frame API
    def ignored_titles(self, history: Dataset, user_ids, now) -> pd.DataFrame:
        """(user_id, item_id, times_shown) of titles shown >= `ignored_after` times in the window and never
        played in it: the 'recommended before and ignored' set."""
        self._check()
        empty = pd.DataFrame({"user_id": pd.Series(dtype=object), "item_id": pd.Series(dtype=object),
                              "times_shown": pd.Series(dtype="int64")})
        members = np.asarray(pd.unique(np.asarray(user_ids, dtype=object)), dtype=object)
        if len(members) == 0 or "watch_fraction" not in history.events.columns:
            return empty
        index = History.build(history, self.item_ids_, pd.Index(history.users["user_id"]),
                              np.datetime64("1970-01-01T00:00:00", "ns"))
        member_index = index.users.get_indexer(pd.Index(members, dtype=object))
        n = index.n_items
        member, item = np.repeat(np.arange(len(members)), n), np.tile(np.arange(n), len(members))
        times = self.ignored(index, member_index, member, item, now)
        hit = np.flatnonzero(times > 0)
        if len(hit) == 0:
            return empty
        return pd.DataFrame({"user_id": members[member[hit]], "item_id": self.item_ids_.to_numpy()[item[hit]],
                             "times_shown": times[hit].astype(np.int64)})

    def rerank(self, ranked: pd.DataFrame, k: int = 10, ignored: pd.DataFrame | None = None,
               ages: dict | None = None) -> RerankResult:
        """Re-rank each user's list in `ranked` (user_id, item_id, score, ... in rank order) to `k` titles.

        `ignored` is the output of `ignored_titles`; `ages` overrides member ages by id (onboarding).
        """
        self._check()
        if len(ranked) == 0:
            return RerankResult(items=ranked.head(0).assign(rank=[], rank_before_rerank=[]))
        users = ranked["user_id"].astype(str).to_numpy(dtype=object)
        member_ids = np.asarray(pd.unique(users), dtype=object)
        member_pos = IdIndex(member_ids).positions(users)
        score = ranked["score"].to_numpy(dtype=float)
        order = np.lexsort((np.arange(len(ranked)), -score, member_pos))
        item_ids = ranked["item_id"].astype(str).to_numpy(dtype=object)[order]
        times = np.zeros(len(order), dtype=np.int64)
        if ignored is not None and len(ignored):
            counts = {(u, i): int(n) for u, i, n in ignored[["user_id", "item_id", "times_shown"]].itertuples(
                index=False)}
            times = np.array([counts.get((u, i), 0) for u, i in zip(users[order], item_ids)], dtype=np.int64)
        lists = RankedLists(member_ids, member_pos[order], self.titles_.ids.positions(item_ids), score[order],
                            self.ages(member_ids, ages), times)
        rows, before, changes = self.rerank_lists(lists, k, changes=True)
        items = ranked.iloc[order[rows]].reset_index(drop=True)
        _, first = np.unique(lists.member[rows], return_index=True)
        items["rank"] = np.arange(len(rows)) - np.repeat(first, np.diff(np.append(first, len(rows)))) + 1
        items["rank_before_rerank"] = before
        frame = pd.DataFrame([(member_ids[m], item_ids[r], a, f, t, why) for m, r, a, f, t, why in changes],
                             columns=CHANGE_COLUMNS)
        return RerankResult(items=items, changes=frame)
