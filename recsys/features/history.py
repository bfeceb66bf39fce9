"""Point-in-time access to a dataset's past: for a row (member, time t) only events strictly before t.

Events are sorted once and answered with `searchsorted` on (entity, second) keys, so a table of
a million rows needs no Python loop. Times are compared in whole seconds, floored: an event in
the same second as the row counts as *not* before it (never a leak). `extend(events)` returns
the index with later events added (the online simulator feeds them back after every session)
without re-reading the rest of the log.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..labels import LabelConfig, label_events
from ..ids import IdIndex
from .ragged import ragged_ranges

__all__ = ["History", "seconds_since", "SECOND_SPAN", "DAY_SECONDS", "search_vocabulary", "tokenize", "LOG_COLUMNS"]

SECOND_SPAN = np.int64(2) ** 32  # room for 136 years of seconds per entity in a combined key
DAY_SECONDS = 86_400
#: The event columns a History reads (`_log_of`); a partition that only builds one can be shipped just these.
LOG_COLUMNS = ("user_id", "item_id", "timestamp", "watch_fraction", "rating", "minutes_watched", "session_id")


def seconds_since(times, origin: np.datetime64) -> np.ndarray:
    """Whole seconds from `origin` (floored), as int64."""
    delta = np.asarray(times, dtype="datetime64[ns]") - origin
    return np.floor_divide(delta.astype(np.int64), 1_000_000_000)


def tokenize(query) -> list[str]:
    """Lower-cased words of a search query."""
    return str(query).lower().split()


def search_vocabulary(queries) -> tuple[str, ...]:
    """Ids for search words: 0 pads, 1 is '<unknown>', then the words in sorted order."""
    return ("<pad>", "<unknown>") + tuple(sorted({t for q in queries for t in tokenize(q)}))


@dataclass(frozen=True)
class _Log:
    """The raw arrays behind a History, in any order (what `extend` concatenates)."""

    # plays
    p_user: np.ndarray
    p_item: np.ndarray
    p_ns: np.ndarray
    p_value: np.ndarray  # watch fraction (implicit) or rating (explicit)
    p_positive: np.ndarray
    p_minutes: np.ndarray | None
    p_session: np.ndarray | None
    # shown and not played (implicit data)
    s_user: np.ndarray
    s_item: np.ndarray
    s_ns: np.ndarray
    s_zero: np.ndarray  # watch fraction exactly 0 (a NaN watch fraction counts as shown, not as ignored)
    # searches
    q_user: np.ndarray
    q_ns: np.ndarray
    q_text: np.ndarray

    @staticmethod
    def concat(a: "_Log", b: "_Log") -> "_Log":
        """Both logs' rows; an optional column one side lacks is filled (no minutes: 0; no session: '')."""
        fill = {"p_minutes": 0.0, "p_session": ""}

        def cat(name: str) -> np.ndarray | None:
            x, y = getattr(a, name), getattr(b, name)
            if x is None and y is None:
                return None
            if x is None:
                x = np.full(len(a.p_user), fill[name], dtype=y.dtype)
            if y is None:
                y = np.full(len(b.p_user), fill[name], dtype=x.dtype)
            return np.concatenate([x, y])
        return _Log(**{name: cat(name) for name in a.__dataclass_fields__})


def played(events: pd.DataFrame, implicit: bool) -> np.ndarray:
    """Which events are plays: a watch fraction above 0 (implicit data; the rest were shown and not played), or
    any rating (explicit data). The title groups read plays alone (`recsys.spark.training` ships them only)."""
    if implicit:
        return events["watch_fraction"].to_numpy(dtype=float) > 0
    return events["rating"].notna().to_numpy()


def _log_of(events: pd.DataFrame, searches: pd.DataFrame, implicit: bool, users: pd.Index, items: pd.Index,
            labels: LabelConfig | None) -> _Log:
    ev = events[[c for c in LOG_COLUMNS if c in events.columns]]  # reads nothing else
    wf = ev["watch_fraction"].to_numpy(dtype=float) if implicit else None
    played_ = played(ev, implicit)
    user_all = users.get_indexer(pd.Index(ev["user_id"]))
    item_all = items.get_indexer(pd.Index(ev["item_id"]))
    item_all = np.where(item_all < 0, len(items), item_all)  # unknown titles -> padding row
    ns_all = ev["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    known = user_all >= 0
    keep = played_ & known
    plays = ev[keep]
    value = plays["watch_fraction"].to_numpy(dtype=float) if implicit else plays["rating"].to_numpy(dtype=float)
    positive = (label_events(plays, labels).to_numpy() == 1) if len(plays) else np.zeros(0, dtype=bool)
    minutes = None
    if "minutes_watched" in plays.columns and plays["minutes_watched"].notna().any():
        minutes = plays["minutes_watched"].fillna(0.0).to_numpy(dtype=float)
    session = None
    if "session_id" in plays.columns and plays["session_id"].notna().any():
        session = plays["session_id"].astype(str).to_numpy(dtype=object)
    shown = known & ~played_ if implicit else np.zeros(len(ev), dtype=bool)
    zero = (wf[shown] == 0) if implicit else np.zeros(0, dtype=bool)
    se = searches
    s_user = users.get_indexer(pd.Index(se["user_id"])) if len(se) else np.zeros(0, dtype=np.int64)
    ok = s_user >= 0
    return _Log(
        p_user=user_all[keep].astype(np.int64), p_item=item_all[keep].astype(np.int64), p_ns=ns_all[keep],
        p_value=value, p_positive=positive, p_minutes=minutes, p_session=session,
        s_user=user_all[shown].astype(np.int64), s_item=item_all[shown].astype(np.int64), s_ns=ns_all[shown],
        s_zero=zero,
        q_user=s_user[ok].astype(np.int64),
        q_ns=se["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)[ok] if len(se) else np.zeros(0, np.int64),
        q_text=se["query"].to_numpy(dtype=object)[ok] if len(se) else np.zeros(0, dtype=object),
    )


def _seconds(ns: np.ndarray, origin: np.datetime64) -> np.ndarray:
    return seconds_since(ns.view("datetime64[ns]"), origin)


@dataclass
class History:
    """A dataset's plays, impressions and searches indexed for 'what happened before t' questions.

    Derived arrays (cumulative sums, the pair index) are computed on first use and kept in
    `cache` for the life of this index; `extend` returns a new index, which keeps only the member
    look-up (the members do not change).
    """

    origin: np.datetime64
    users: pd.Index
    item_ids: pd.Index
    implicit: bool
    log: _Log
    # plays sorted by (user, time)
    user: np.ndarray
    item: np.ndarray
    sec: np.ndarray
    weight: np.ndarray
    positive: np.ndarray
    minutes: np.ndarray | None
    new_session: np.ndarray | None
    key: np.ndarray
    # plays sorted by (item, time), for popularity windows
    item_key: np.ndarray
    item_positive_cum: np.ndarray
    # shown-and-not-played sorted by (user, time)
    shown_key: np.ndarray
    shown_item: np.ndarray
    shown_zero: np.ndarray
    # searches sorted by (user, time), each with its token ids
    search_key: np.ndarray
    search_tokens_offsets: np.ndarray
    search_tokens: np.ndarray
    token_vocab: tuple[str, ...]
    labels: LabelConfig | None = None
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --------------------------------------------------------------- building
    @classmethod
    def build(cls, dataset: Dataset, item_ids: pd.Index, users: pd.Index, origin: np.datetime64,
              labels: LabelConfig | None = None, token_vocab: tuple[str, ...] | None = None) -> "History":
        """Index `dataset`'s events for the given item, user and search-word vocabularies.

        `token_vocab` fixes the search-word ids (so they mean the same at training and serving);
        words outside it map to id 1, '<unknown>'. Without it the vocabulary is built here.
        """
        implicit = dataset.feedback == "implicit"
        log = _log_of(dataset.events, dataset.searches, implicit, users, item_ids, labels)
        vocab = token_vocab if token_vocab is not None else search_vocabulary(log.q_text)
        return cls._index(log, origin, users, item_ids, implicit, vocab, labels)

    def extend(self, events: pd.DataFrame, searches: pd.DataFrame | None = None) -> "History":
        """This index with `events` (logged schema) and `searches` added, as a new index (this one is unchanged).

        Members unknown to `users` are left out, as in `build`; the result equals building the
        index from all the events at once.
        """
        if len(events) == 0 and (searches is None or len(searches) == 0):
            return self
        if searches is None:
            searches = pd.DataFrame({"user_id": pd.Series(dtype=object),
                                     "timestamp": pd.Series(dtype="datetime64[ns]"), "query": pd.Series(dtype=object)})
        new = _log_of(events, searches, self.implicit, self.users, self.item_ids, self.labels)
        shown = self._merge_shown(new)
        same = (self.search_key, self.search_tokens_offsets, self.search_tokens) if len(new.q_user) == 0 else None
        out = self._index(_Log.concat(self.log, new), self.origin, self.users, self.item_ids, self.implicit,
                          self.token_vocab, self.labels, shown=shown, searches=same)
        if "user_lookup" in self.cache:  # the members did not change
            out.cache["user_lookup"] = self.cache["user_lookup"]
        return out

    def user_positions(self, ids) -> np.ndarray:
        """Dense positions of member ids in this index (-1 for members it does not know)."""
        return self.cached("user_lookup", lambda: IdIndex(self.users)).positions(ids)

    def _merge_shown(self, new: _Log) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The shown-and-not-played index with `new`'s impressions merged in (only counts read it, so
        impressions of one member in one second may sit in any order)."""
        order = np.lexsort((new.s_ns, new.s_user))
        key = new.s_user[order].astype(np.int64) * SECOND_SPAN + _seconds(new.s_ns[order], self.origin)
        at = np.searchsorted(self.shown_key, key, side="right")
        return (np.insert(self.shown_key, at, key), np.insert(self.shown_item, at, new.s_item[order]),
                np.insert(self.shown_zero, at, new.s_zero[order]))

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @classmethod
    def _index(cls, log: _Log, origin, users, item_ids, implicit, vocab, labels,
               shown: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
               searches: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> "History":
        p_sec = _seconds(log.p_ns, origin)
        order = np.lexsort((log.p_ns, log.p_user))
        user, item, sec = log.p_user[order], log.p_item[order], p_sec[order]
        value = log.p_value[order]
        if implicit:
            weight = value
        else:
            weight = value / max(float(np.nanmax(value)) if len(value) else 1.0, 1e-9)
        positive = log.p_positive[order]
        minutes = None if log.p_minutes is None else log.p_minutes[order]
        new_session = None
        if log.p_session is not None:  # a play opens a session when it is that session's first
            codes, _ = pd.factorize(np.asarray(log.p_session[order], dtype=object))
            new_session = np.zeros(len(codes), dtype=bool)
            new_session[np.unique(codes, return_index=True)[1]] = True
        i_order = np.lexsort((sec, item))
        if shown is None:
            s_order = np.lexsort((log.s_ns, log.s_user))
            shown = (log.s_user[s_order].astype(np.int64) * SECOND_SPAN + _seconds(log.s_ns[s_order], origin),
                     log.s_item[s_order], log.s_zero[s_order])
        empty = np.zeros(0, dtype=np.int64)
        log = replace(log, s_user=empty, s_item=empty, s_ns=empty, s_zero=np.zeros(0, dtype=bool))  # indexed now
        if searches is None:
            q_sec = _seconds(log.q_ns, origin)
            q_order = np.lexsort((log.q_ns, log.q_user))
            tokens = [tokenize(q) for q in log.q_text[q_order]]
            lookup = {t: k for k, t in enumerate(vocab)}
            lengths = np.array([len(t) for t in tokens], dtype=np.int64)
            searches = (log.q_user[q_order].astype(np.int64) * SECOND_SPAN + q_sec[q_order],
                        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                        np.array([lookup.get(t, 1) for toks in tokens for t in toks], dtype=np.int64))
        out = cls(
            origin=origin, users=users, item_ids=item_ids, implicit=implicit, log=log,
            user=user, item=item, sec=sec, weight=weight, positive=positive, minutes=minutes, new_session=new_session,
            key=user.astype(np.int64) * SECOND_SPAN + sec,
            item_key=item[i_order].astype(np.int64) * SECOND_SPAN + sec[i_order],
            item_positive_cum=np.concatenate([[0], np.cumsum(positive[i_order])]),
            shown_key=shown[0], shown_item=shown[1], shown_zero=shown[2],
            search_key=searches[0], search_tokens_offsets=searches[1], search_tokens=searches[2],
            token_vocab=vocab, labels=labels,
        )
        return out

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """A derived array (cumulative sums, the pair index), computed once per index (batch workers share it)."""
        value = self.cache.get(key)
        if value is None:
            with self._lock:
                value = self.cache.get(key)
                if value is None:
                    value = self.cache[key] = compute()
        return value

    # ---------------------------------------------------------------- queries
    def play_range(self, user: np.ndarray, sec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (member, t): positions [start, stop) of that member's plays strictly before t."""
        return _range(self.key, user, sec)

    def shown_range(self, user: np.ndarray, sec: np.ndarray, since: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions of each member's shown-and-not-played events in [since, t) (from the start without since)."""
        start, stop = _range(self.shown_key, user, sec)
        if since is not None:
            lo = np.searchsorted(self.shown_key, user.astype(np.int64) * SECOND_SPAN + np.maximum(since, 0), "left")
            start = np.where(user < 0, start, np.maximum(start, lo))
        return start, np.maximum(stop, start)

    def item_window(self, item: np.ndarray, sec: np.ndarray, seconds: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions [lo, hi) in item order of each title's plays in [t - seconds, t)."""
        base = item.astype(np.int64) * SECOND_SPAN
        hi = np.searchsorted(self.item_key, base + sec, side="left")
        lo = np.searchsorted(self.item_key, base + np.maximum(sec - seconds, 0), side="left")
        return lo, hi

    def _pairs(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        def build():
            if which == "shown":
                user = self.shown_key // SECOND_SPAN
                sec = self.shown_key % SECOND_SPAN
                item = self.shown_item
            else:
                user, sec, item = self.user, self.sec, self.item
            pair = user.astype(np.int64) * (self.n_items + 1) + item
            pairs, rank = np.unique(pair, return_inverse=True)
            return pairs, np.sort(rank.astype(np.int64) * SECOND_SPAN + sec)
        return self.cached(f"pairs_{which}", build)

    def pair_count(self, which: str, user: np.ndarray, item: np.ndarray, sec: np.ndarray) -> np.ndarray:
        """How often each (member, title) was shown-and-not-played ('shown') or played ('played') before t."""
        pairs, key = self._pairs(which)
        pair = user.astype(np.int64) * (self.n_items + 1) + item
        rank = np.searchsorted(pairs, pair)
        found = (rank < len(pairs)) & (pairs[np.minimum(rank, max(len(pairs) - 1, 0))] == pair) if len(pairs) else \
            np.zeros(len(pair), dtype=bool)
        base = rank.astype(np.int64) * SECOND_SPAN
        count = np.searchsorted(key, base + sec, side="left") - np.searchsorted(key, base, side="left")
        return np.where(found & (user >= 0), count, 0)

    def search_terms(self, user: np.ndarray, sec: np.ndarray, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of each row's last `last` searches before t; returns (values, row)."""
        start, stop = _range(self.search_key, user, sec)
        start = np.maximum(start, stop - last)
        searches, row = ragged_ranges(start, stop)
        tok, tok_row = ragged_ranges(self.search_tokens_offsets[searches], self.search_tokens_offsets[searches + 1])
        return self.search_tokens[tok], row[tok_row]


def _range(key: np.ndarray, user: np.ndarray, sec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    user = np.asarray(user).astype(np.int64)
    start = np.searchsorted(key, user * SECOND_SPAN, side="left")
    stop = np.searchsorted(key, user * SECOND_SPAN + sec, side="left")
    return start, np.where(user < 0, start, stop)

