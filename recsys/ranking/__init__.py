"""Rankers: P(watch | member, title, moment) from the training table's features.

Four rankers share one contract (`Ranker`): logistic regression and random forest baselines,
LightGBM gradient boosting and a PyTorch deep network; see docs/ranking.md.
"""

from __future__ import annotations

from .base import ArtifactError, NotFittedError, Ranker, load_ranker
from .boosting import BoostingRanker
from .deep import DeepRanker
from .encoding import TabularEncoder
from .forest import ForestRanker
from .linear import LogisticRanker

RANKERS: dict[str, type[Ranker]] = {cls.kind: cls for cls in (LogisticRanker, ForestRanker, BoostingRanker, DeepRanker)}

__all__ = ["RANKERS", "ArtifactError", "BoostingRanker", "DeepRanker", "ForestRanker", "LogisticRanker",
           "NotFittedError", "Ranker", "TabularEncoder", "load_ranker"]
