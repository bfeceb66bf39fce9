"""Exposure features: what the service showed the member before the moment, and how they answered.

Plays alone mix two things: what the member likes and what they were shown. The logged
impressions separate them. Per genre, before t:

- `user_genre_exposure`: how much more (or less) often than the catalogue's share of that genre
  the member was shown titles of it (log ratio). The service that made the logs chose those rows
  from its own picture of the member, so this is that picture, learned back from the logs.
- `user_genre_finish_rate`: of the member's impressions and plays of that genre, the share they
  finished, relative to their own overall rate (log ratio, shrunk towards it), i.e. their taste
  once exposure is accounted for.

A title's value is the mean over its genres. Counts come from cumulative per-genre sums over the
member's time-ordered log (cached on the History), so each (member, moment) costs one subtraction
per genre and a member's values are the same bits alone or in a batch.
"""

from __future__ import annotations

import numpy as np

from ..data.dataset import Dataset
from .group import FeatureGroup
from .history import History
from .rows import Rows
from .spec import Feature
from .table import Block
from .titles import TitleTables

__all__ = ["ExposureFeatures"]


class ExposureFeatures(FeatureGroup):
    """Per genre of the title: the member's exposure ratio and finish rate, from impressions before t."""

    name = "exposure"

    def __init__(self, prior: float = 5.0) -> None:
        self.prior = prior

    def fit(self, dataset: Dataset, titles: TitleTables) -> "ExposureFeatures":
        self.available_ = dataset.feedback == "implicit" and bool(titles.genres)
        feats: list[Feature] = []
        if self.available_:
            feats = [Feature("user_genre_exposure", "exposure", "dense",
                             "How much more often than the catalogue's share the member was shown the title's "
                             "genres (log ratio; what the service that made the logs thought of them)."),
                     Feature("user_genre_finish_rate", "exposure", "dense",
                             "The member's finish rate per impression of the title's genres, relative to their own "
                             "overall rate (log ratio, shrunk towards it).")]
            slots = titles.genre_matrix[:-1].sum(axis=0).astype(np.float64)
            self.catalogue_share_ = (slots + 1.0) / (slots.sum() + len(slots))
        self.features_ = tuple(feats)
        return self

    def compute(self, rows: Rows, history: History, titles: TitleTables) -> list[Block]:
        if not self.available_:
            return []
        genre = titles.genre_matrix.astype(np.int32)
        shown_cum, play_cum, finish_cum = history.cached("exposure_genre_cum", lambda: _cumulative(history, genre))
        user, sec = rows.q_user, rows.q_sec
        s_lo, s_hi = history.shown_range(user, sec)
        p_lo, p_hi = rows.play_range(history)
        shown = (shown_cum[s_hi] - shown_cum[s_lo] + play_cum[p_hi] - play_cum[p_lo]).astype(np.float64)
        finished = (finish_cum[p_hi] - finish_cum[p_lo]).astype(np.float64)
        slots = shown.sum(axis=1, keepdims=True)
        n_genres = shown.shape[1]
        exposure = np.log((shown + 1.0) / (slots + n_genres) / self.catalogue_share_[None, :])
        overall = (finished.sum(axis=1, keepdims=True) + 1.0) / (slots + 20.0)
        rate = np.log((finished + self.prior * overall) / (shown + self.prior)) - np.log(overall)
        per_title = np.maximum(genre.sum(axis=1), 1).astype(np.float64)
        g = genre[rows.item].astype(np.float64)
        q = rows.query
        cols = {"user_genre_exposure": (exposure[q] * g).sum(axis=1) / per_title[rows.item],
                "user_genre_finish_rate": (rate[q] * g).sum(axis=1) / per_title[rows.item]}
        return [Block("row", None, cols, len(rows))]


def _cumulative(history: History, genre: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-genre running counts (a leading zero row) over the shown-and-not-played log and the plays,
    each in its (member, time) order, and over the finished plays."""
    def running(items: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        counts = genre[items] if keep is None else genre[items] * keep[:, None]
        return np.vstack([np.zeros((1, genre.shape[1]), dtype=np.int32), np.cumsum(counts, axis=0, dtype=np.int32)])

    return (running(history.shown_item), running(history.item),
            running(history.item, history.positive.astype(np.int32)))
