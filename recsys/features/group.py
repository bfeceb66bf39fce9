"""The feature-group contract: one object declares a family of features and computes them, columnar.

A group's `fit(dataset, titles)` decides which of its features the data supports (absent ones
are never faked) and sets `features_`; `compute(rows, history, titles)` returns `Block`s whose
columns are exactly those features. Each feature is therefore named, described and computed in
one place. A group reads only the rows' own members' past (`history`) and the shared title
tables, so any subset of members can be computed on its own (a distributed engine can run the
groups on partitions of members), and a member's values do not depend on who else is in the batch.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from ..data.dataset import Dataset
from .history import History
from .rows import Rows
from .spec import Feature
from .table import Block
from .titles import TitleTables

__all__ = ["FeatureGroup"]


class FeatureGroup(abc.ABC):
    """Base of the feature groups: user, context, media, user x media, sparse lists."""

    name: ClassVar[str] = ""
    features_: tuple[Feature, ...]

    @abc.abstractmethod
    def fit(self, dataset: Dataset, titles: TitleTables) -> "FeatureGroup":
        """Learn static facts (vocabularies, title attributes) and set `features_`; no event is read."""

    @abc.abstractmethod
    def compute(self, rows: Rows, history: History, titles: TitleTables) -> list[Block]:
        """The group's features for `rows`, from `history` events strictly before each row's moment."""

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features_]
