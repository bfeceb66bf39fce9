"""The package's errors, each defined once: bad input (`DataError`), a model used before it was
fitted (`NotFittedError`) and saved files that are missing, damaged or do not belong together
(`ArtifactError`, which names the file)."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from .data.errors import DataError

__all__ = ["DataError", "NotFittedError", "ArtifactError"]


class NotFittedError(_SklearnNotFittedError):
    """Any recsys model, generator or builder used before `fit` (or `load`); also sklearn's NotFittedError,
    so one `except` catches it wherever the pipeline raises it."""


class ArtifactError(DataError):
    """Saved model files are missing, corrupted, of another kind or version, or do not belong together."""
