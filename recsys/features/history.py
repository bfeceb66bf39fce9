"""Point-in-time access to a dataset's past: for a row (user, time t) only events strictly before t.

Everything is sorted once and answered with `searchsorted` on (entity, second) keys, so a
table of a million rows needs no Python loop. Times are compared in whole seconds, floored:
an event in the same second as the row counts as *not* before it (never a leak).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..labels import LabelConfig, label_events
from .ragged import ragged_ranges

__all__ = ["History", "seconds_since", "SECOND_SPAN", "search_vocabulary", "tokenize"]

SECOND_SPAN = np.int64(2) ** 32  # room for 136 years of seconds per entity in a combined key


def seconds_since(times, origin: np.datetime64) -> np.ndarray:
    """Whole seconds from `origin` (floored), as int64."""
    delta = np.asarray(times, dtype="datetime64[ns]") - origin
    return np.floor_divide(delta.astype(np.int64), 1_000_000_000)


@dataclass
class History:
    """A dataset's plays and impressions indexed for 'what happened before t' questions."""

    origin: np.datetime64
    users: pd.Index
    n_items: int
    # plays, sorted by (user, time)
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
    # shown-but-not-played and played (user, item) pairs sorted by (pair, time)
    shown_key: np.ndarray
    shown_pairs: np.ndarray
    played_key: np.ndarray
    played_pairs: np.ndarray
    # searches sorted by (user, time), each with its token ids
    search_key: np.ndarray
    search_tokens_offsets: np.ndarray
    search_tokens: np.ndarray
    token_vocab: tuple[str, ...]
    _memo: dict = field(default_factory=dict, repr=False)

    def memo(self, key: str, compute):
        """A derived array (cumulative sums), computed once per indexed history."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @classmethod
    def build(cls, dataset: Dataset, item_ids: pd.Index, users: pd.Index, origin: np.datetime64,
              labels: LabelConfig | None = None, token_vocab: tuple[str, ...] | None = None) -> "History":
        """Index `dataset`'s events for the given item, user and search-word vocabularies.

        `token_vocab` fixes the search-word ids (so they mean the same at training and serving);
        words outside it map to id 1, '<unknown>'. Without it the vocabulary is built here.
        """
        ev = dataset.events
        implicit = dataset.feedback == "implicit"
        if implicit:
            played = ev["watch_fraction"].to_numpy(dtype=float) > 0
        else:
            played = ev["rating"].notna().to_numpy()
        user_all = users.get_indexer(pd.Index(ev["user_id"]))
        item_all = item_ids.get_indexer(pd.Index(ev["item_id"]))
        item_all = np.where(item_all < 0, len(item_ids), item_all)  # unknown titles -> padding row
        sec_all = seconds_since(ev["timestamp"].to_numpy(), origin)
        known = user_all >= 0

        plays = ev[played & known]
        p_user, p_item, p_sec = user_all[played & known], item_all[played & known], sec_all[played & known]
        order = np.lexsort((p_sec, p_user))
        p_user, p_item, p_sec = p_user[order], p_item[order], p_sec[order]
        plays = plays.iloc[order]
        if implicit:
            weight = plays["watch_fraction"].to_numpy(dtype=float)
        else:
            r = plays["rating"].to_numpy(dtype=float)
            weight = r / max(float(np.nanmax(r)) if len(r) else 1.0, 1e-9)
        positive = (label_events(plays, labels).to_numpy() == 1) if len(plays) else np.zeros(0, dtype=bool)
        minutes = None
        if "minutes_watched" in plays.columns and plays["minutes_watched"].notna().any():
            minutes = plays["minutes_watched"].fillna(0.0).to_numpy(dtype=float)
        new_session = None
        if "session_id" in plays.columns and plays["session_id"].notna().any():
            sid = plays["session_id"].astype(str).to_numpy()
            new_session = ~pd.Series(sid).duplicated().to_numpy()

        i_order = np.lexsort((p_sec, p_item))
        item_key = p_item[i_order].astype(np.int64) * SECOND_SPAN + p_sec[i_order]
        item_positive_cum = np.concatenate([[0], np.cumsum(positive[i_order])])

        n_items = len(item_ids)  # codes 0..n_items (the last pads unknown titles); pair codes use n_items + 1
        shown_mask = known & ~played if implicit else np.zeros(len(ev), dtype=bool)
        shown_pairs, shown_key = _pair_index(user_all[shown_mask], item_all[shown_mask], sec_all[shown_mask], n_items)
        played_pairs, played_key = _pair_index(p_user, p_item, p_sec, n_items)

        se = dataset.searches
        s_user = users.get_indexer(pd.Index(se["user_id"])) if len(se) else np.zeros(0, dtype=np.int64)
        keep = s_user >= 0
        s_sec = seconds_since(se["timestamp"].to_numpy(), origin)[keep] if len(se) else np.zeros(0, dtype=np.int64)
        s_user = s_user[keep]
        queries = se["query"].to_numpy(dtype=object)[keep] if len(se) else np.zeros(0, dtype=object)
        s_order = np.lexsort((s_sec, s_user))
        tokens = [tokenize(q) for q in queries[s_order]]
        vocab = token_vocab if token_vocab is not None else search_vocabulary(queries)
        lookup = {t: k for k, t in enumerate(vocab)}
        lengths = np.array([len(t) for t in tokens], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.array([lookup.get(t, 1) for toks in tokens for t in toks], dtype=np.int64)

        return cls(
            origin=origin, users=users, n_items=len(item_ids), user=p_user, item=p_item, sec=p_sec, weight=weight,
            positive=positive, minutes=minutes, new_session=new_session,
            key=p_user.astype(np.int64) * SECOND_SPAN + p_sec,
            item_key=item_key, item_positive_cum=item_positive_cum,
            shown_key=shown_key, shown_pairs=shown_pairs, played_key=played_key, played_pairs=played_pairs,
            search_key=s_user[s_order].astype(np.int64) * SECOND_SPAN + s_sec[s_order],
            search_tokens_offsets=offsets, search_tokens=flat, token_vocab=vocab,
        )

    # ---------------------------------------------------------------- queries
    def play_range(self, user: np.ndarray, sec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (user, t): positions [start, stop) of that user's plays strictly before t."""
        user = user.astype(np.int64)
        start = np.searchsorted(self.key, user * SECOND_SPAN, side="left")
        stop = np.searchsorted(self.key, user * SECOND_SPAN + sec, side="left")
        stop = np.where(user < 0, start, stop)
        return start, stop

    def item_window(self, item: np.ndarray, sec: np.ndarray, seconds: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions [lo, hi) in item order of each item's plays in [t - seconds, t)."""
        base = item.astype(np.int64) * SECOND_SPAN
        hi = np.searchsorted(self.item_key, base + sec, side="left")
        lo = np.searchsorted(self.item_key, base + np.maximum(sec - seconds, 0), side="left")
        return lo, hi

    def pair_count(self, which: str, user: np.ndarray, item: np.ndarray, sec: np.ndarray) -> np.ndarray:
        """How often each (user, item) was shown-and-not-played ('shown') or played ('played') before t."""
        pairs, key = (self.shown_pairs, self.shown_key) if which == "shown" else (self.played_pairs, self.played_key)
        pair = user.astype(np.int64) * (self.n_items + 1) + item
        rank = np.searchsorted(pairs, pair)
        found = (rank < len(pairs)) & (pairs[np.minimum(rank, max(len(pairs) - 1, 0))] == pair) if len(pairs) else \
            np.zeros(len(pair), dtype=bool)
        base = rank.astype(np.int64) * SECOND_SPAN
        count = np.searchsorted(key, base + sec, side="left") - np.searchsorted(key, base, side="left")
        return np.where(found & (user >= 0), count, 0)

    def search_range(self, user: np.ndarray, sec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        user = user.astype(np.int64)
        start = np.searchsorted(self.search_key, user * SECOND_SPAN, side="left")
        stop = np.searchsorted(self.search_key, user * SECOND_SPAN + sec, side="left")
        return start, np.where(user < 0, start, stop)

    def search_terms(self, user: np.ndarray, sec: np.ndarray, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of each row's last `last` searches before t; returns (values, row)."""
        start, stop = self.search_range(user, sec)
        start = np.maximum(start, stop - last)
        searches, row = ragged_ranges(start, stop)
        tok, tok_row = ragged_ranges(self.search_tokens_offsets[searches], self.search_tokens_offsets[searches + 1])
        return self.search_tokens[tok], row[tok_row]


def tokenize(query) -> list[str]:
    """Lower-cased words of a search query."""
    return str(query).lower().split()


def search_vocabulary(queries) -> tuple[str, ...]:
    """Ids for search words: 0 pads, 1 is '<unknown>', then the words in sorted order."""
    return ("<pad>", "<unknown>") + tuple(sorted({t for q in queries for t in tokenize(q)}))


def _pair_index(user: np.ndarray, item: np.ndarray, sec: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pair codes, and (pair rank, second) keys sorted, for pair-and-time counts."""
    pair = user.astype(np.int64) * (n_items + 1) + item
    pairs, rank = np.unique(pair, return_inverse=True)
    key = np.sort(rank.astype(np.int64) * SECOND_SPAN + sec)
    return pairs, key
