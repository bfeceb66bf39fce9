"""recsys: a two-stage recommender for a streaming service (candidates, ranking, re-ranking).

The top level stays light (pandas only): models and the app live in submodules.
"""

from __future__ import annotations

from .data import DataError, Dataset, load_dataset

__all__ = ["Dataset", "DataError", "load_dataset"]
