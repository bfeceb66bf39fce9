"""External ids at the surface, dense integer positions inside: one fast look-up both ways.

A hash map answers a single request's few ids in about a microsecond each, where a pandas
`Index.get_indexer` call costs a hundred or more whatever the number of ids.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

__all__ = ["IdIndex"]


class IdIndex:
    """Positions of external ids (text) in a fixed vocabulary; -1 for ids it does not hold."""

    __slots__ = ("ids", "_positions")

    def __init__(self, ids: Iterable[Any]) -> None:
        self.ids = np.asarray(list(ids) if not isinstance(ids, (np.ndarray, pd.Index, pd.Series)) else ids,
                              dtype=object).ravel()
        self._positions = {v: k for k, v in enumerate(self.ids.tolist())}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, value: object) -> bool:
        return value in self._positions

    def position(self, value: Any) -> int:
        return self._positions.get(value, -1)

    def positions(self, values: Iterable[Any]) -> np.ndarray:
        """int64 positions of `values` (any iterable of ids), -1 where unknown."""
        get = self._positions.get
        if isinstance(values, np.ndarray):
            values = values.tolist()
        return np.fromiter((get(v, -1) for v in values), dtype=np.int64)

    def index(self) -> pd.Index:
        return pd.Index(self.ids, dtype=object)
