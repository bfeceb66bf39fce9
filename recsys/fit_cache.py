"""Fitted candidate sources and tuning results shared by every model of one evaluation.

An evaluation fits many models on the same fold: each source alone, the blend, the pipeline under every ranker.
They tune the same sources on the same validation split and fit the same sources with the same parameters on the
same data, and each of those fits gives the same model (every one is seeded). Within `shared_fits()`,
`recsys.pipeline.fit_generator` and `recsys.tuning.tune_sources` hand back an earlier result when the data's
content (`Dataset.fingerprint`), the source, its parameters and the seed are equal, and compute and keep it
otherwise. Outside the scope nothing is kept.

Fitted generators are shared, not copied: the scope is for code that only asks them for lists, never for code
that makes them observe new events (the simulator's feedback), which would reach every model sharing them.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

__all__ = ["FitCache", "shared_fits", "active_cache"]


class FitCache:
    """What one scope has fitted and tuned, by (data content, what was asked); with hit and miss counts."""

    def __init__(self) -> None:
        self._fingerprints: dict[int, tuple[Any, str]] = {}  # id(dataset) -> (dataset, fingerprint)
        self._values: dict[tuple, Any] = {}
        self.hits = 0
        self.misses = 0

    def fingerprint(self, dataset) -> str:
        """The dataset's content hash, computed once per Dataset object (the object is held so its id stays its)."""
        held = self._fingerprints.get(id(dataset))
        if held is None or held[0] is not dataset:
            held = (dataset, dataset.fingerprint())
            self._fingerprints[id(dataset)] = held
        return held[1]

    def key(self, kind: str, dataset, *parts: Any) -> tuple:
        return (kind, self.fingerprint(dataset), json.dumps(parts, sort_keys=True, default=repr))

    def get_or_compute(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key in self._values:
            self.hits += 1
            return self._values[key]
        self.misses += 1
        value = compute()
        self._values[key] = value
        return value

    def put(self, key: tuple, value: Any) -> None:
        self._values.setdefault(key, value)


_ACTIVE: ContextVar[FitCache | None] = ContextVar("recsys_fit_cache", default=None)


def active_cache() -> FitCache | None:
    """The cache of the innermost `shared_fits()` scope, or None outside every scope."""
    return _ACTIVE.get()


@contextmanager
def shared_fits() -> Iterator[FitCache]:
    """Share fitted sources and tuning results within the block (see the module docstring)."""
    cache = FitCache()
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)
