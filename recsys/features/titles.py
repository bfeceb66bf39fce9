"""The title tables every feature group shares: codes of genres, cast, director, language and show,
maturity ages and synopsis embeddings, one row per title plus a padding row for unknown titles.

Learned once by `TitleTables.fit(dataset)` from the catalogue alone (no event is read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..data.schema import maturity_min_ages

__all__ = ["TitleTables", "slug"]

MAX_GENRES = 64  # genre flags are packed into one uint64 per title


def slug(text: str) -> str:
    """A feature-name-safe form of a genre or language ("Sci-Fi" -> "sci_fi")."""
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_")


@dataclass
class TitleTables:
    """Per title (row `n` pads unknown titles): codes and flags the feature groups look up."""

    item_ids: pd.Index
    genres: list[str]
    genre_matrix: np.ndarray  # (n + 1) x genres, float32 0/1
    genre_mask: np.ndarray  # (n + 1,) uint64 bit flags
    primary_genre: np.ndarray  # (n + 1,) index into genres, -1 none
    languages: list[str]
    language: np.ndarray  # (n + 1,) codes of original_language, -1 missing
    director: np.ndarray
    show: np.ndarray
    cast: np.ndarray | None  # (n + 1) x max cast, -1 pads; None without cast
    min_age: np.ndarray  # (n + 1,) float, NaN unknown
    embeddings: np.ndarray | None  # (n + 1) x k float32, L2-normalised, zero padding row

    @property
    def n(self) -> int:
        return len(self.item_ids)

    @classmethod
    def fit(cls, dataset: Dataset, embeddings: np.ndarray | None = None) -> "TitleTables":
        """Tables of `dataset.items`; `embeddings` (reduced, with the padding row) when synopses are used."""
        items = dataset.items
        n = len(items)
        genres_col = items["genres"] if dataset.has("items", "genres") else pd.Series([[]] * n)
        counts = genres_col.explode().dropna().value_counts()
        genres = list(counts.index[:MAX_GENRES])
        g_index = {g: k for k, g in enumerate(genres)}
        gmat = np.zeros((n + 1, len(genres)), dtype=np.float32)
        primary = np.full(n + 1, -1)
        for r, gs in enumerate(genres_col):
            ks = [g_index[g] for g in gs if g in g_index]
            if ks:
                gmat[r, ks] = 1.0
                primary[r] = ks[0]
        mask = (gmat.astype(np.uint64) * (np.uint64(1) << np.arange(len(genres), dtype=np.uint64))
                ).sum(axis=1).astype(np.uint64) if genres else np.zeros(n + 1, dtype=np.uint64)
        languages = (list(pd.unique(items["original_language"].dropna()))
                     if dataset.has("items", "original_language") else [])
        ratings = items["maturity_rating"] if dataset.has("items", "maturity_rating") else [None] * n
        min_age = np.append(maturity_min_ages(ratings, unknown=np.nan), np.nan)
        return cls(item_ids=pd.Index(items["item_id"]), genres=genres, genre_matrix=gmat, genre_mask=mask,
                   primary_genre=primary, languages=languages, language=_codes(items, "original_language", n),
                   director=_codes(items, "director", n), show=_codes(items, "show_id", n),
                   cast=_list_codes(items, "actors", n), min_age=min_age, embeddings=embeddings)

    def similarity(self) -> np.ndarray:
        """(n + 1) x (n + 1) float32 synopsis-embedding similarity (dot products of the unit vectors).

        Each entry is the same 32-term dot product, in the same order, as an element-wise
        computation for one pair gives (not a BLAS product, whose rounding depends on shapes).
        """
        emb = self.embeddings
        n = len(emb)
        out = np.empty((n, n), dtype=np.float32)
        cols = np.arange(n)
        for a in range(n):
            out[a] = np.einsum("ij,ij->i", emb[np.full(n, a)], emb[cols])
        return out


def _codes(items: pd.DataFrame, column: str, n: int) -> np.ndarray:
    """Integer codes of a text column (-1 missing), with a -1 padding row."""
    if column not in items.columns:
        return np.full(n + 1, -1)
    codes, _ = pd.factorize(items[column])
    return np.concatenate([codes, [-1]])


def _list_codes(items: pd.DataFrame, column: str, n: int) -> np.ndarray | None:
    """A padded (titles + 1) x max_len matrix of codes of a list column (-1 pads), or None if empty."""
    if column not in items.columns or items[column].map(len).sum() == 0:
        return None
    flat = items[column].explode()
    codes, _ = pd.factorize(flat)
    width = max(1, int(items[column].map(len).max()))
    out = np.full((n + 1, width), -1, dtype=np.int64)
    lengths = items[column].map(len).to_numpy()
    row = np.repeat(np.arange(n), lengths)
    within = np.arange(len(row)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    valid = codes[flat.notna().to_numpy()] if len(codes) else codes
    out[row, within] = valid[: len(row)]
    return out
