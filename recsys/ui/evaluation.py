"""The Metrics page's fresh evaluation: which models, on which folds, written where (pages only render)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .cache import load_cached_dataset

__all__ = ["QUICK_MODELS", "ranker_names", "evaluation_models", "run_evaluation"]

#: The quick set: the floor, the fallback, the best single source, the blend and the default ranker.
QUICK_MODELS = ["random", "popularity", "ease", "blend", "logistic"]


def ranker_names() -> list[str]:
    """Every registered ranker (the page's pickers offer these)."""
    from ..ranking import RANKERS

    return list(RANKERS.names())


def evaluation_models(spec: str, full: bool) -> list[str]:
    """The models a fresh evaluation compares: the quick set, or every default model; the oracle on a world."""
    from ..data.loaders import world_of
    from ..evaluation.models import default_models

    has_world = world_of(spec) is not None
    if full:
        return default_models(has_world)
    return QUICK_MODELS + (["oracle"] if has_world else [])


def run_evaluation(spec: str, full: bool, path: Path, progress: Callable[[str, float], None]) -> Path:
    """Evaluate on `spec`'s data (3 temporal folds when `full`, else 1) and write the report to `path`."""
    from ..evaluation.models import build_policies
    from ..evaluation.protocol import temporal_folds
    from ..evaluation.report import evaluate, write_report

    data = load_cached_dataset(spec)
    folds = temporal_folds(data, n_folds=3 if full else 1, test_days=14)
    report = evaluate(data, build_policies(evaluation_models(spec, full), spec, "temporal", 0), folds, k=10,
                      max_k=50, protocol={"name": "temporal", "folds": len(folds), "test_days": 14},
                      progress=progress)
    return write_report(report, path)
