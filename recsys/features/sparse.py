"""Sparse features for the deep ranker: member and title ids, and id lists (history, searches, cast, tags)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..ids import IdIndex
from .group import FeatureGroup
from .history import History, search_vocabulary
from .ragged import Ragged, ragged_ranges
from .rows import Rows
from .spec import Feature
from .table import Block
from .titles import TitleTables

__all__ = ["SparseFeatures"]


class SparseFeatures(FeatureGroup):
    """Member id, title id, the member's last plays and search words, the title's cast and tags."""

    name = "sparse"

    def __init__(self, history_length: int = 50, search_length: int = 20) -> None:
        self.history_length = history_length
        self.search_length = search_length

    def fit(self, dataset: Dataset, titles: TitleTables) -> "SparseFeatures":
        items = dataset.items
        feats = [
            Feature("user_id", "sparse", "categorical", "Member id (sparse id feature)."),
            Feature("item_id", "sparse", "categorical", "Title id (sparse id feature)."),
            Feature("history_items", "sparse", "sparse_list",
                    f"The member's last {self.history_length} played titles, most recent last."),
        ]
        self.item_vocab_ = ("<pad>",) + tuple(titles.item_ids) + ("<unknown>",)
        self.user_ids_ = IdIndex(dataset.users["user_id"].astype(str))
        self.user_dtype_ = pd.CategoricalDtype(pd.Index(self.user_ids_.ids, dtype=object))
        self.item_codes_ = pd.Categorical.from_codes(np.append(np.arange(titles.n), -1),
                                                     dtype=pd.CategoricalDtype(titles.item_ids.astype(str)))
        self.has_searches_ = len(dataset.searches) > 0
        self.search_vocab_ = (search_vocabulary(dataset.searches["query"]) if self.has_searches_
                              else ("<pad>", "<unknown>"))
        if self.has_searches_:
            feats.append(Feature("search_terms", "sparse", "sparse_list",
                                 f"Words of the member's last {self.search_length} searches."))
        self.item_lists_: dict[str, Ragged] = {}
        for col, desc in (("actors", "The title's cast."), ("tags", "The title's tags.")):
            if dataset.has("items", col) and items[col].map(len).sum() > 0:
                lists = _ragged_column(items[col])
                # one more, empty list for unknown titles
                self.item_lists_[f"item_{col}"] = Ragged(lists.values, np.append(lists.offsets, lists.offsets[-1]),
                                                         lists.vocab)
                feats.append(Feature(f"item_{col}", "sparse", "sparse_list", desc))
        self.features_ = tuple(feats)
        return self

    def vocabularies(self) -> dict[str, tuple[str, ...]]:
        """The vocabulary each list feature's ids index (what a stored table of ids is read back with)."""
        vocab = {"history_items": self.item_vocab_, **{n: r.vocab for n, r in self.item_lists_.items()}}
        if self.has_searches_:
            vocab["search_terms"] = self.search_vocab_
        return vocab

    def compute(self, rows: Rows, history: History, titles: TitleTables) -> list[Block]:
        q = rows.n_queries
        start, stop = rows.play_range(history)
        s_start = np.maximum(start, stop - self.history_length)
        pos, row = ragged_ranges(s_start, stop)
        member = {"user_id": pd.Categorical.from_codes(self.user_ids_.positions(rows.q_user_ids),
                                                       dtype=self.user_dtype_, validate=False),
                  "history_items": Ragged.from_rows(history.item[pos] + 1 if len(pos) else pos, row, q,
                                                    self.item_vocab_)}
        if self.has_searches_:
            values, srow = history.search_terms(rows.q_user, rows.q_sec, self.search_length)
            member["search_terms"] = Ragged.from_rows(values, srow, q, history.token_vocab)
        title = {"item_id": self.item_codes_, **self.item_lists_}
        return [Block("member", rows.query, member, q), Block("title_ids", rows.item, title, titles.n + 1)]


def _ragged_column(values: pd.Series) -> Ragged:
    """A list column as a Ragged with its own vocabulary (id 0 reserved for padding)."""
    flat = values.explode().dropna()
    vocab = ("<pad>",) + tuple(sorted(set(flat.astype(str))))
    lookup = {v: k for k, v in enumerate(vocab)}
    lengths = values.map(len).to_numpy()
    ids = np.array([lookup[str(v)] for v in flat], dtype=np.int64)
    return Ragged(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), vocab)
