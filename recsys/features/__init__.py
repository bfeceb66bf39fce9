"""Point-in-time features (user, context, media, user x media, sparse), each group in its own module."""

from ..errors import NotFittedError
from .builder import FeatureBuilder
from .context import context_features
from .group import FeatureGroup
from .history import History
from .ragged import Ragged
from .rows import Rows
from .spec import Feature, FeatureSet
from .table import Block, FeatureTable

__all__ = ["Block", "Feature", "FeatureBuilder", "FeatureGroup", "FeatureSet", "FeatureTable", "History",
           "NotFittedError", "Ragged", "Rows", "context_features"]
