"""The app's side of recsys: cached loaders, chart builders, the runs the pages start, the HTML report.

The only part of recsys that imports streamlit. The cached loaders are reached lazily (module
`__getattr__`), so `import recsys.ui.charts` or the HTML report does not import streamlit.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_FROM_CACHE = ("load_cached_dataset", "dataset_summary", "training_table", "onboarding_model", "trained_recommender",
               "load_report")

__all__ = list(_FROM_CACHE)


def __getattr__(name: str) -> Any:
    """`from recsys.ui import load_report` and the like: imported from .cache (and streamlit) on first use."""
    if name in _FROM_CACHE:
        value = getattr(import_module(".cache", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
