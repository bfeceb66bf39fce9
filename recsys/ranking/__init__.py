"""Rankers: P(watch | member, title, moment) from the training table's features.

Four rankers share one contract (`Ranker`) and one registry (`RANKERS`): logistic regression and
random forest baselines, LightGBM gradient boosting and a PyTorch deep network; see docs/ranking.md.
"""

from __future__ import annotations

from .base import RANKERS, ArtifactError, NotFittedError, Ranker, load_ranker
from .encoding import TabularEncoder
from .linear import LogisticRanker  # registration order is the order the app and CLI list them in
from .forest import ForestRanker  # noqa: E402,I001
from .boosting import BoostingRanker  # noqa: E402,I001
from .deep import DeepRanker  # noqa: E402,I001

__all__ = ["RANKERS", "ArtifactError", "BoostingRanker", "DeepRanker", "ForestRanker", "LogisticRanker",
           "NotFittedError", "Ranker", "TabularEncoder", "load_ranker"]
