"""Feature rows stored by what they depend on: the FeatureTable.

A value that depends only on the member and the moment (a user feature) is stored once per
distinct (member, moment), one that depends only on the title once per title, and so on: a
`Block` holds columns over its own keys and, per row, which key the row reads. A list of 200
candidates for one member then holds its ~40 user features once, not 200 times, and a linear
ranker scores each block once before gathering. `column(name)` gives any feature per row;
`frame` is the whole table as a pandas DataFrame (for the app and for explanations).

Column types: dense features are float64 arrays, categoricals `pandas.Categorical`, sparse
lists `Ragged`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from .ragged import Ragged
from .spec import Feature, FeatureSet

__all__ = ["Block", "FeatureTable", "categorical", "categorical_values", "KEY_COLUMNS"]

KEY_COLUMNS = ("user_id", "item_id", "timestamp", "device")


def categorical(values: Any) -> pd.Categorical:
    """A Categorical of text values (missing stays missing); categories are the distinct texts."""
    if isinstance(values, pd.Categorical):
        return values
    array = np.asarray(values, dtype=object)
    missing = pd.isna(array)
    if missing.any():
        array = array.copy()
        array[missing] = None
    return pd.Categorical(array)


def categorical_values(cat: pd.Categorical) -> np.ndarray:
    """The values of a Categorical as an object array, None where missing."""
    levels = np.append(np.asarray(cat.categories, dtype=object), None)
    return levels[np.asarray(cat.codes)]


def _take(values: Any, index: np.ndarray) -> Any:
    if isinstance(values, pd.Categorical):
        return pd.Categorical.from_codes(np.asarray(values.codes)[index], dtype=values.dtype)
    if isinstance(values, Ragged):
        return values.take(index)
    return values[index]


def _concat(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, pd.Categorical):
        if all(p.dtype == first.dtype for p in parts):
            return pd.Categorical.from_codes(np.concatenate([np.asarray(p.codes) for p in parts]), dtype=first.dtype)
        return union_categoricals(parts)
    if isinstance(first, Ragged):
        return Ragged.concat(parts)
    return np.concatenate(parts)


@dataclass(frozen=True)
class Block:
    """Columns over `size` keys; row r reads key `index[r]` (`index` None: one key per row)."""

    name: str
    index: np.ndarray | None
    columns: dict[str, Any]
    size: int

    def per_row(self, name: str) -> Any:
        values = self.columns[name]
        return values if self.index is None else _take(values, self.index)

    def take(self, rows: np.ndarray) -> "Block":
        if self.index is None:
            return Block(self.name, None, {k: _take(v, rows) for k, v in self.columns.items()}, len(rows))
        return Block(self.name, self.index[rows], self.columns, self.size)

    def materialized(self) -> "Block":
        if self.index is None:
            return self
        return Block(self.name, None, {k: self.per_row(k) for k in self.columns}, len(self.index))


def _row_block(name: str, columns: Mapping[str, Any], n: int) -> Block:
    return Block(name, None, dict(columns), n)


class FeatureTable:
    """Feature rows (see the module docstring): blocks of features, the rows' keys and their FeatureSet.

    Built by `FeatureBuilder.transform`; `FeatureTable(rows=..., frame=..., sparse=..., feature_set=...)`
    wraps plain frames (one value per row).
    """

    def __init__(self, rows: pd.DataFrame | None = None, frame: pd.DataFrame | None = None,
                 sparse: dict[str, Ragged] | None = None, feature_set: FeatureSet | None = None, *,
                 blocks: Iterable[Block] | None = None, keys: Iterable[Block] | None = None,
                 n_rows: int | None = None) -> None:
        if feature_set is None:
            raise TypeError("a FeatureTable needs its feature_set")
        self.feature_set = feature_set
        if blocks is None:
            if frame is None or rows is None:
                raise TypeError("give rows and frame (plain frames) or blocks and keys")
            fs = feature_set
            cols: dict[str, Any] = {}
            for name in frame.columns:
                if name in fs and fs[name].kind == "categorical":
                    cols[name] = categorical(frame[name].to_numpy(dtype=object))
                else:
                    cols[name] = frame[name].to_numpy(dtype=float, copy=True) if name in fs else frame[name].to_numpy()
            cols.update(sparse or {})
            n = len(frame)
            blocks = [_row_block("row", cols, n)]
            keys = [_row_block("keys", {c: rows[c].to_numpy() for c in rows.columns}, n)]
            self._frame = frame.reset_index(drop=True)
            self._rows = rows.reset_index(drop=True)
        else:
            self._frame = None
            self._rows = None
        self.blocks = tuple(blocks)
        self.keys = tuple(keys or ())
        if n_rows is None:
            sizes = {b.size if b.index is None else len(b.index) for b in self.blocks + self.keys}
            if len(sizes) != 1:
                raise ValueError(f"blocks of different row counts: {sorted(sizes)}")
            n_rows = sizes.pop()
        self._n = int(n_rows)
        self._where: dict[str, Block] = {}
        for block in self.blocks:
            for name in block.columns:
                if name in self._where:
                    raise ValueError(f"feature {name!r} is in two blocks")
                self._where[name] = block
        self._key_of = {name: block for block in self.keys for name in block.columns}
        self._sparse: dict[str, Ragged] | None = None

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return self._n

    def __contains__(self, name: object) -> bool:
        return name in self._where

    @property
    def columns(self) -> list[str]:
        """Every stored feature name (dense, categorical and sparse)."""
        return list(self._where)

    @property
    def nbytes(self) -> int:
        """Memory held by the table's values, row indices and keys (shared blocks count once)."""
        seen: set[int] = set()
        total = 0

        def add(array) -> None:
            nonlocal total
            if array is None:
                return
            parts = ((array.codes,) if isinstance(array, pd.Categorical) else
                     (array.values, array.offsets) if isinstance(array, Ragged) else (array,))
            for part in parts:
                part = np.asarray(part)
                if id(part) not in seen:
                    seen.add(id(part))
                    total += part.nbytes if part.dtype != object else 8 * part.size
        for block in self.blocks + self.keys:
            add(block.index)
            for values in block.columns.values():
                add(values)
        return total

    def column(self, name: str) -> Any:
        """One feature per row: float64 (dense), Categorical (categorical) or Ragged (sparse list)."""
        try:
            block = self._where[name]
        except KeyError:
            raise KeyError(f"no feature {name!r} in this table") from None
        return block.per_row(name)

    def key(self, name: str) -> np.ndarray | None:
        """A row key (user_id, item_id, timestamp or device) per row, or None when absent."""
        block = self._key_of.get(name)
        return None if block is None else block.per_row(name)

    @property
    def rows(self) -> pd.DataFrame:
        """user_id, item_id, timestamp (and device) of every row."""
        if self._rows is None:
            out = {}
            for name in KEY_COLUMNS:
                if name in self._key_of:
                    value = self.key(name)
                    out[name] = categorical_values(value) if isinstance(value, pd.Categorical) else value
            self._rows = pd.DataFrame(out)
        return self._rows

    @property
    def frame(self) -> pd.DataFrame:
        """Dense and categorical features, one column each, in FeatureSet order (categoricals as text)."""
        if self._frame is None:
            out = {}
            for name in self.feature_set.names(kind=("dense", "categorical")):
                if name not in self._where:
                    continue
                value = self.column(name)
                out[name] = categorical_values(value) if isinstance(value, pd.Categorical) else value
            self._frame = pd.DataFrame(out, index=pd.RangeIndex(self._n))
        return self._frame

    @property
    def sparse(self) -> dict[str, Ragged]:
        """The sparse-list features per row."""
        if self._sparse is None:
            self._sparse = {name: self.column(name) for name in self.feature_set.sparse if name in self._where}
        return self._sparse

    # ----------------------------------------------------------- transforms
    def take(self, index) -> "FeatureTable":
        """These rows, in this order (shares the per-key values; only the row indices are taken)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False)
        return FeatureTable(feature_set=self.feature_set, blocks=[b.take(index) for b in self.blocks],
                            keys=[b.take(index) for b in self.keys], n_rows=len(index))

    def with_features(self, block: Block, features: Iterable[Feature]) -> "FeatureTable":
        """This table plus the features of one more block (e.g. the candidate sources' scores)."""
        features = tuple(features)
        if {f.name for f in features} != set(block.columns):
            raise ValueError("the block's columns and the features added must be the same names")
        fs = FeatureSet(tuple(self.feature_set.features) + features)
        return FeatureTable(feature_set=fs, blocks=self.blocks + (block,), keys=self.keys, n_rows=self._n)

    @staticmethod
    def concat(tables: list["FeatureTable"]) -> "FeatureTable":
        """Rows of several tables with the same features one after another."""
        if len(tables) == 1:
            return tables[0]
        first = tables[0]
        names = [f.name for f in first.feature_set]
        for t in tables[1:]:
            if [f.name for f in t.feature_set] != names:
                raise ValueError("cannot join feature tables with different features")
        return FeatureTable(feature_set=first.feature_set,
                            blocks=_concat_blocks([t.blocks for t in tables]),
                            keys=_concat_blocks([t.keys for t in tables]),
                            n_rows=sum(len(t) for t in tables))


def _concat_blocks(groups: list[tuple[Block, ...]]) -> list[Block]:
    """Blocks of several tables joined position by position (same layout), else as one row block."""
    layout = [(b.name, tuple(b.columns), b.index is None) for b in groups[0]]
    if all([(b.name, tuple(b.columns), b.index is None) for b in g] == layout for g in groups[1:]):
        out = []
        for position, (name, cols, per_row) in enumerate(layout):
            parts = [g[position] for g in groups]
            if per_row:
                out.append(Block(name, None, {c: _concat([p.columns[c] for p in parts]) for c in cols},
                                 sum(p.size for p in parts)))
                continue
            offsets = np.cumsum([0] + [p.size for p in parts[:-1]])
            index = np.concatenate([p.index + o for p, o in zip(parts, offsets)])
            out.append(Block(name, index, {c: _concat([p.columns[c] for p in parts]) for c in cols},
                             sum(p.size for p in parts)))
        return out
    flat = [[b.materialized() for b in g] for g in groups]
    merged: dict[str, list[Any]] = {}
    for g in flat:
        cols: dict[str, Any] = {}
        for b in g:
            cols.update(b.columns)
        for c, v in cols.items():
            merged.setdefault(c, []).append(v)
    n = sum(sum(b.size for b in g[:1]) for g in flat)
    return [Block("row", None, {c: _concat(v) for c, v in merged.items()}, n)]
