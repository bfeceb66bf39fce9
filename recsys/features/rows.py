"""The rows a feature group computes for: (member, title, moment), grouped by what features depend on.

A *query* is one distinct (member, moment): user features and the member's recent plays are
looked up once per query, not once per row. A *moment* is one distinct time (context features);
a *title moment* one distinct (title, moment) (the title's recent popularity). A batch of
candidates has one query per member and one moment for all; a table of logged impressions has
about as many queries as rows. Building `Rows` from candidate lists (`Rows.for_lists`) skips
the grouping work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from ..data.errors import DataError
from .history import seconds_since
from .table import categorical

__all__ = ["Rows"]


def _group(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each distinct key tuple (groups numbered by first appearance), and each row's group."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    codes = None
    for k in keys:
        kc, uniques = pd.factorize(k, sort=False)
        codes = kc.astype(np.int64) if codes is None else codes * max(len(uniques), 1) + kc
    group = pd.factorize(codes, sort=False)[0].astype(np.int64)
    new = np.ones(n, dtype=bool)
    new[1:] = group[1:] > np.maximum.accumulate(group)[:-1]
    return np.flatnonzero(new), group


@dataclass
class Rows:
    """(member, title, moment[, device]) rows in dense indices, with their queries and moments.

    user / item: dense indices per row (-1 an unknown member; `n_items` an unknown title).
    query: per row its (member, moment) group; q_*: per query the member (index and id) and time.
    moment: per row its distinct time; m_time: per moment the time. item_moment: per row its
    (title, moment) group; im_item / im_moment per group.
    """

    user_ids: np.ndarray  # per row, external ids (object)
    item_ids: np.ndarray  # per row, external ids (object)
    item: np.ndarray
    times: np.ndarray  # datetime64[ns]
    device: pd.Categorical | None
    query: np.ndarray
    q_user: np.ndarray
    q_user_ids: np.ndarray
    q_time: np.ndarray
    moment: np.ndarray
    m_time: np.ndarray
    item_moment: np.ndarray
    im_item: np.ndarray
    im_moment: np.ndarray
    origin: np.datetime64
    cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.item)

    @property
    def n_queries(self) -> int:
        return len(self.q_user)

    @property
    def sec(self) -> np.ndarray:
        return seconds_since(self.times, self.origin)

    @property
    def q_sec(self) -> np.ndarray:
        return seconds_since(self.q_time, self.origin)

    @property
    def m_sec(self) -> np.ndarray:
        return seconds_since(self.m_time, self.origin)

    @property
    def user(self) -> np.ndarray:
        return self.q_user[self.query]

    def play_range(self, history) -> tuple[np.ndarray, np.ndarray]:
        """Per query, positions [start, stop) of the member's plays before the moment (shared by the groups)."""
        held = self.cache.get("play_range")
        if held is None or held[0] is not history:
            held = self.cache["play_range"] = (history, history.play_range(self.q_user, self.q_sec))
        return held[1]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, users: pd.Index, items: pd.Index, origin: np.datetime64,
                   what: str = "rows") -> "Rows":
        """Rows from any (user_id, item_id, timestamp[, device]) frame."""
        missing = [c for c in ("user_id", "item_id", "timestamp") if c not in frame.columns]
        if missing:
            raise DataError(f"{what} need columns {missing}", column=missing[0])
        user_ids = frame["user_id"].astype(str).to_numpy(dtype=object)
        item_ids = frame["item_id"].astype(str).to_numpy(dtype=object)
        times = pd.to_datetime(frame["timestamp"]).to_numpy(dtype="datetime64[ns]")
        device = categorical(frame["device"].to_numpy(dtype=object)) if "device" in frame.columns else None
        return cls.build(user_ids, item_ids, times, device, users, items, origin)

    @classmethod
    def build(cls, user_ids: np.ndarray, item_ids: np.ndarray, times: np.ndarray, device: pd.Categorical | None,
              users: pd.Index, items: pd.Index, origin: np.datetime64) -> "Rows":
        n_items = len(items)
        item = items.get_indexer(pd.Index(item_ids, dtype=object)) if len(item_ids) else np.zeros(0, np.int64)
        item = np.where(item < 0, n_items, item).astype(np.int64)
        t_int = times.view(np.int64)
        first, query = _group(user_ids, t_int)
        q_user_ids = user_ids[first]
        q_user = users.get_indexer(pd.Index(q_user_ids, dtype=object)).astype(np.int64) if len(first) else \
            np.zeros(0, np.int64)
        m_first, moment = _group(t_int)
        im_first, item_moment = _group(item, moment)
        return cls(user_ids=user_ids, item_ids=item_ids, item=item, times=times, device=device, query=query,
                   q_user=q_user, q_user_ids=q_user_ids, q_time=times[first], moment=moment, m_time=times[m_first],
                   item_moment=item_moment, im_item=item[im_first], im_moment=moment[im_first], origin=origin)

    @classmethod
    def for_lists(cls, member_ids: np.ndarray, member_index: np.ndarray, member_of_row: np.ndarray,
                  item_of_row: np.ndarray, item_ids: pd.Index, time: np.datetime64, device, origin: np.datetime64
                  ) -> "Rows":
        """Rows of candidate lists: `member_of_row` positions into `member_ids` (all at one moment)."""
        n = len(item_of_row)
        times = np.full(n, np.datetime64(time, "ns"))
        item = item_of_row.astype(np.int64)
        if n >= len(item_ids):  # most titles appear: compute title moments for the whole catalogue
            im_item, item_moment = np.arange(len(item_ids) + 1, dtype=np.int64), item
        else:
            im_item, item_moment = np.unique(item, return_inverse=True)
        return cls(user_ids=member_ids[member_of_row], item_ids=item_id_array(item_ids)[item], item=item,
                   times=times, device=None if device is None else pd.Categorical.from_codes(
                       np.zeros(n, dtype=np.int8), dtype=_one_level(device), validate=False),
                   query=member_of_row.astype(np.int64), q_user=member_index.astype(np.int64), q_user_ids=member_ids,
                   q_time=np.full(len(member_ids), np.datetime64(time, "ns")), moment=np.zeros(n, dtype=np.int64),
                   m_time=np.array([np.datetime64(time, "ns")]), item_moment=item_moment.astype(np.int64),
                   im_item=im_item, im_moment=np.zeros(len(im_item), dtype=np.int64), origin=origin)


@lru_cache(maxsize=64)
def _one_level(value: str) -> pd.CategoricalDtype:
    return pd.CategoricalDtype([value])


def item_id_array(item_ids: pd.Index) -> np.ndarray:
    """Title ids as an object array with None for the padding row (unknown titles)."""
    return np.append(item_ids.to_numpy(dtype=object), None)
