"""Point-in-time features (user, context, media, user x media, sparse) and their descriptions."""

from .builder import FeatureBuilder, FeatureTable, NotFittedError
from .context import context_features
from .ragged import Ragged
from .spec import Feature, FeatureSet

__all__ = ["Feature", "FeatureSet", "FeatureBuilder", "FeatureTable", "NotFittedError", "Ragged",
           "context_features"]
