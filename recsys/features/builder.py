"""Point-in-time features for (member, title, moment) rows, built by iterating over the feature groups.

`FeatureBuilder(...).fit(dataset)` learns only static facts (vocabularies, title attributes,
synopsis embeddings) and asks every group which of its features the data supports;
`transform(rows, history)` computes every feature of a row at time t from events strictly before
t. The builder defines no feature itself: each lives in its group (user, context, media,
user x media, sparse).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..data.errors import DataError
from ..errors import NotFittedError
from ..labels import LabelConfig
from .context import ContextFeatures
from .exposure import ExposureFeatures
from .group import READS, FeatureGroup
from .history import History
from .media import MediaFeatures
from .rows import Rows
from .sparse import SparseFeatures
from .spec import FeatureSet
from .table import Block, FeatureTable
from .titles import TitleTables
from .user import UserFeatures
from .user_media import UserMediaFeatures

__all__ = ["FeatureBuilder", "FeatureTable", "NotFittedError"]


class FeatureBuilder:
    """Builds the feature table for any rows of a dataset, point in time.

    history_length: the most recent plays per row that user x media features look at.
    sparse_history_length / search_history_length: list lengths for the deep ranker.
    popularity_days: windows of the "plays in the last n days" media features.
    genre_window_days: the "user-genre interactions over the last n days" window.
    embedding_dim: synopsis embeddings are reduced to this many PCA dimensions.
    use_embeddings: compute synopsis embeddings (sentence-transformers) when synopses exist.
    exclude: feature names to leave out (an ablation, or a configuration from before a feature existed);
        names the data does not have are ignored.
    chunk_rows: rows of a frame computed at once (bounds memory on large tables).
    """

    def __init__(
        self,
        history_length: int = 100,
        sparse_history_length: int = 50,
        search_history_length: int = 20,
        popularity_days: tuple[int, ...] = (1, 7, 30),
        genre_window_days: int = 90,
        embedding_dim: int = 32,
        use_embeddings: bool = True,
        exclude: tuple[str, ...] = (),
        labels: LabelConfig | None = None,
        chunk_rows: int = 200_000,
        seed: int = 0,
    ) -> None:
        self.history_length = history_length
        self.sparse_history_length = sparse_history_length
        self.search_history_length = search_history_length
        self.popularity_days = popularity_days
        self.genre_window_days = genre_window_days
        self.embedding_dim = embedding_dim
        self.use_embeddings = use_embeddings
        self.exclude = tuple(exclude)
        self.labels = labels
        self.chunk_rows = chunk_rows
        self.seed = seed

    # ------------------------------------------------------------------- fit
    def fit(self, dataset: Dataset, item_embeddings: np.ndarray | None = None) -> "FeatureBuilder":
        """Learn the static facts of `dataset` (no event is read except to know what columns exist).

        `item_embeddings` (one row per title, in `dataset.items` order) overrides the synopsis
        encoder, e.g. for tests or precomputed vectors.
        """
        if not isinstance(dataset, Dataset):
            raise TypeError(f"fit needs a recsys Dataset, got {type(dataset).__name__}")
        items = dataset.items
        self.item_ids_ = pd.Index(items["item_id"])
        self.user_ids_ = pd.Index(dataset.users["user_id"])
        self.origin_ = np.datetime64("1970-01-01T00:00:00", "ns")
        self.embeddings_ = None
        if item_embeddings is not None or (self.use_embeddings and dataset.has("items", "synopsis")):
            self.embeddings_ = self._reduce(item_embeddings if item_embeddings is not None
                                            else _synopsis_embeddings(items["synopsis"]), len(items))
        self.titles_ = TitleTables.fit(dataset, self.embeddings_)
        self.groups_: tuple[FeatureGroup, ...] = (
            UserFeatures().fit(dataset, self.titles_),
            ContextFeatures().fit(dataset, self.titles_),
            MediaFeatures(tuple(self.popularity_days)).fit(dataset, self.titles_),
            UserMediaFeatures(self.history_length, self.genre_window_days).fit(dataset, self.titles_),
            ExposureFeatures().fit(dataset, self.titles_),
            SparseFeatures(self.sparse_history_length, self.search_history_length).fit(dataset, self.titles_),
        )
        self.has_device_ = dataset.has("events", "device")
        self.search_vocab_ = self.groups_[-1].search_vocab_
        self.feature_set_ = FeatureSet(tuple(f for g in self.groups_ for f in g.features_
                                             if f.name not in self.exclude))
        return self

    def _reduce(self, emb: np.ndarray, n: int) -> np.ndarray:
        """PCA-reduce and L2-normalise title embeddings; a zero padding row is appended."""
        emb = np.asarray(emb, dtype=np.float64)
        if emb.shape[0] != n:
            raise ValueError(f"item_embeddings has {emb.shape[0]} rows for {n} titles")
        k = min(self.embedding_dim, emb.shape[1], max(1, n - 1))
        centred = emb - emb.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        reduced = centred @ vt[:k].T
        reduced /= np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-9)
        return np.vstack([reduced, np.zeros((1, k))]).astype(np.float32)

    def _check(self) -> None:
        if not hasattr(self, "feature_set_"):
            raise NotFittedError("this FeatureBuilder is not fitted yet: call fit(dataset) first")

    @property
    def feature_set(self) -> FeatureSet:
        self._check()
        return self.feature_set_

    # -------------------------------------------------------------- transform
    def index(self, history: Dataset) -> History:
        """`history`'s events indexed for point-in-time look-ups (reuse it for many transforms)."""
        self._check()
        return History.build(history, self.item_ids_, pd.Index(history.users["user_id"]), self.origin_, self.labels,
                             self.search_vocab_)

    def rows(self, frame: pd.DataFrame, history: History) -> Rows:
        """A frame of (user_id, item_id, timestamp[, device]) rows in this builder's indices."""
        return Rows.from_frame(frame.reset_index(drop=True), history.users, self.item_ids_, self.origin_)

    def transform(self, rows: pd.DataFrame | Rows, history: Dataset | History, reads: str | None = None
                  ) -> FeatureTable:
        """Features for each row (user_id, item_id, timestamp[, device]) from `history` events before it.

        `reads` ("member" or "title") computes only the groups that read that side of the past
        (`FeatureGroup.reads`): `history` then needs only the rows' members' or titles' events."""
        self._check()
        if reads is not None and reads not in READS:
            raise ValueError(f"reads must be one of {READS} or None, got {reads!r}")
        index = history if isinstance(history, History) else self.index(history)
        if isinstance(rows, Rows):
            return self._compute(rows, index, reads)
        missing = [c for c in ("user_id", "item_id", "timestamp") if c not in rows.columns]
        if missing:
            raise DataError(f"rows need columns {missing}", column=missing[0])
        rows = rows.reset_index(drop=True)
        if len(rows) <= self.chunk_rows:
            return self._compute(self.rows(rows, index), index, reads)
        # bounded memory: the user x media pairs of a chunk, not of the whole table, live at once
        return FeatureTable.concat([self._compute(self.rows(rows.iloc[lo:lo + self.chunk_rows], index), index,
                                                  reads)
                                    for lo in range(0, len(rows), self.chunk_rows)])

    def list_vocabularies(self) -> dict[str, tuple[str, ...]]:
        """The vocabulary of each sparse-list feature's ids (`Ragged.vocab`), by feature name."""
        self._check()
        return next(g for g in self.groups_ if isinstance(g, SparseFeatures)).vocabularies()

    def feature_set_reading(self, reads: str | None) -> FeatureSet:
        """The features of the groups that read `reads` (all of them for None), in FeatureSet order."""
        self._check()
        if reads is None:
            return self.feature_set_
        names = {f.name for g in self.groups_ if g.reads == reads for f in g.features_}
        return FeatureSet(tuple(f for f in self.feature_set_ if f.name in names))

    def _compute(self, rows: Rows, history: History, reads: str | None = None) -> FeatureTable:
        blocks: list[Block] = []
        for group in self.groups_:
            if reads is not None and group.reads != reads:
                continue
            made = group.compute(rows, history, self.titles_)
            names = [name for block in made for name in block.columns]
            if sorted(names) != sorted(group.names):
                raise RuntimeError(f"feature group {group.name!r} computed {sorted(set(names) ^ set(group.names))} "
                                   "other than it declares")
            if self.exclude:
                made = [Block(b.name, b.index, {k: v for k, v in b.columns.items() if k not in self.exclude}, b.size)
                        for b in made]
            blocks += [b for b in made if b.columns]
        keys = [Block("member_keys", rows.query, {"user_id": rows.q_user_ids}, rows.n_queries),
                Block("row_keys", None, {"item_id": rows.item_ids, "timestamp": rows.times,
                                         **({"device": rows.device} if rows.device is not None else {})}, len(rows))]
        return FeatureTable(feature_set=self.feature_set_reading(reads), blocks=blocks, keys=keys, n_rows=len(rows))


def _synopsis_embeddings(synopses: pd.Series) -> np.ndarray:
    """Sentence embeddings of the synopses (cached on disk by the embeddings module)."""
    from ..embeddings import encode_texts

    return encode_texts(synopses.fillna("").astype(str).tolist())
