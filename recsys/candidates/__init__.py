"""Candidate generation: many viable titles per member from a large catalogue, focused on recall.

Every generator follows the `CandidateGenerator` contract (config in the constructor,
`fit(dataset) -> self`, `recommend(user_ids, n, exclude_seen, now)`, `save`/`load`):
popularity (the fallback), ALS / BPR / EASE / item-kNN (collaborative), content-based
(metadata + synopsis embeddings, with cold-start onboarding), two-tower (PyTorch), and the
blend of several sources. The two-tower module imports torch, so it loads on first use.
"""

from __future__ import annotations

from typing import Any

from .base import (
    SOURCES, CandidateGenerator, InteractionConfig, Interactions, NotFittedError, UserBatch, load_generator,
)
from .blend import DEFAULT_QUOTAS, BlendGenerator, CandidateBatch, blend_frames, default_blend
from .collaborative import ALSGenerator, BPRGenerator, EASEGenerator, ItemKNNGenerator
from .content import ContentGenerator
from .popularity import PopularityGenerator

__all__ = [
    "SOURCES", "CandidateBatch", "CandidateGenerator", "NotFittedError", "InteractionConfig", "Interactions",
    "UserBatch", "load_generator",
    "PopularityGenerator", "ALSGenerator", "BPRGenerator", "EASEGenerator", "ItemKNNGenerator",
    "ContentGenerator", "TwoTowerGenerator", "BlendGenerator", "blend_frames", "DEFAULT_QUOTAS", "default_blend",
]


def __getattr__(name: str) -> Any:
    if name == "TwoTowerGenerator":
        from .two_tower import TwoTowerGenerator

        return TwoTowerGenerator
    raise AttributeError(f"module 'recsys.candidates' has no attribute {name!r}")
