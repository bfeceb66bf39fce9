"""Variable-length id lists stored flat (values + offsets), the layout an EmbeddingBag takes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Ragged", "ragged_ranges"]


def ragged_ranges(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten the index ranges [starts[r], stops[r]) into one array; returns (indices, row of each)."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.maximum(np.asarray(stops, dtype=np.int64) - starts, 0)
    total = int(lengths.sum())
    row = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    if total == 0:
        return np.zeros(0, dtype=np.int64), row
    first = np.cumsum(lengths) - lengths
    within = np.arange(total, dtype=np.int64) - np.repeat(first, lengths)
    return np.repeat(starts, lengths) + within, row


@dataclass(frozen=True)
class Ragged:
    """Row r holds ids values[offsets[r]:offsets[r+1]]; ids index into `vocab` (0 is reserved for padding)."""

    values: np.ndarray
    offsets: np.ndarray
    vocab: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.offsets) == 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.values):
            raise ValueError("offsets must start at 0 and end at len(values)")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_rows(cls, values: np.ndarray, row: np.ndarray, n_rows: int, vocab: tuple[str, ...]) -> "Ragged":
        """From flat ids and the (non-decreasing) row each belongs to."""
        counts = np.bincount(row, minlength=n_rows) if len(row) else np.zeros(n_rows, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(np.asarray(values, dtype=np.int64), offsets, vocab)

    @classmethod
    def concat(cls, parts: list["Ragged"]) -> "Ragged":
        """Rows of several Ragged lists (same vocabulary) one after another."""
        if any(p.vocab != parts[0].vocab for p in parts):
            raise ValueError("cannot join id lists with different vocabularies")
        lengths = np.concatenate([p.lengths for p in parts])
        return cls(np.concatenate([p.values for p in parts]),
                   np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), parts[0].vocab)

    def take(self, rows: np.ndarray) -> "Ragged":
        """The lists of the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        idx, row = ragged_ranges(self.offsets[rows], self.offsets[rows + 1])
        return Ragged.from_rows(self.values[idx], row, len(rows), self.vocab)

    def lists(self, limit: int | None = None) -> list[list[str]]:
        """The lists as text (for display); `limit` rows at most."""
        n = len(self) if limit is None else min(limit, len(self))
        vocab = np.asarray(self.vocab, dtype=object)
        return [list(vocab[self.values[self.offsets[r]:self.offsets[r + 1]]]) for r in range(n)]
