"""The feature-group contract: one object declares a family of features and computes them, columnar.

A group's `fit(dataset, titles)` decides which of its features the data supports (absent ones
are never faked) and sets `features_`; `compute(rows, history, titles)` returns `Block`s whose
columns are exactly those features. Each feature is therefore named, described and computed in
one place. A group reads the shared title tables and one side of the past, which its `reads` names:
"member" groups only the rows' own members' events, "title" groups only the rows' titles' plays (every
member's plays of that title, `history.played`; never what was shown and not played). A distributed engine therefore computes the member groups on partitions of
members and the title groups on partitions of titles (`recsys.spark.training`), and a row's values do not
depend on who else is in the batch.
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

__all__ = ["FeatureGroup", "READS"]

READS = ("member", "title")


class FeatureGroup(abc.ABC):
    """Base of the feature groups: user, context, media, user x media, sparse lists."""

    name: ClassVar[str] = ""
    #: Whose events `compute` reads: "member" (the rows' members') or "title" (the rows' titles').
    reads: ClassVar[str] = "member"
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
