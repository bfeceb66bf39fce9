"""recsys: a two-stage recommender for a streaming service (candidates, ranking, re-ranking).

The top level stays light (pandas only): models and the app live in submodules.
"""

from __future__ import annotations

import os

# Idle OpenMP threads (torch, LightGBM) otherwise spin and steal the cores from working ones:
# on a shared 2-core machine that made fits 5-8x slower. Must be set before those libraries load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .data import DataError, Dataset, load_dataset

__all__ = ["Dataset", "DataError", "load_dataset"]
