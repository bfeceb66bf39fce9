"""Recent, time-decayed popularity: the non-personal list every user can get (the fallback)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from .base import SOURCES, CandidateGenerator, InteractionConfig, Interactions, UserBatch

__all__ = ["PopularityGenerator", "decayed_popularity"]


def decayed_popularity(interactions: Interactions, reference: pd.Timestamp, window_days: float | None,
                       half_life_days: float | None) -> np.ndarray:
    """Per title: sum of event weights in the last `window_days` before `reference`, halved every `half_life_days`."""
    scores = np.zeros(interactions.n_items)
    if len(interactions.item) == 0 or pd.isna(reference):
        return scores
    ref = np.datetime64(pd.Timestamp(reference).to_datetime64(), "ns")
    age = (ref - interactions.time) / np.timedelta64(1, "D")
    weight = interactions.weight.astype(float).copy()
    if window_days is not None:
        weight[age > window_days] = 0.0
    if half_life_days is not None:
        weight *= np.power(0.5, np.maximum(age, 0.0) / half_life_days)
    return np.bincount(interactions.item, weights=weight, minlength=interactions.n_items).astype(np.float64)


@SOURCES.register
@dataclass(eq=False)
class PopularityGenerator(CandidateGenerator):
    """Score_i = sum over events of title i in the last `window_days` of weight * 0.5 ** (age / half_life).

    Ages are measured from the last event of the training data. Event weights come from
    `interactions` (by default: a finished title counts 1, a half-watched one 0.25, explicit
    ratings 1 or 0.5; no duration weighting, so a film and an episode count alike). Every user,
    known or not, gets the same list (minus what they finished and what their age excludes);
    with no events at all, every title scores 0 and the list follows catalogue order.
    """

    window_days: float | None = 28.0
    half_life_days: float | None = 7.0
    interactions: InteractionConfig = InteractionConfig(duration=False)

    source = "popularity"
    cold_start = "fallback"
    personal = False

    def _validate(self) -> None:
        for name in ("window_days", "half_life_days"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise ValueError(f"{name} must be a number > 0 or None, got {value!r}")

    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        self.item_scores_ = decayed_popularity(interactions, self.reference_time_, self.window_days,
                                               self.half_life_days)

    def _score(self, batch: UserBatch) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (len(batch), len(self.item_scores_))).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_scores": self.item_scores_}

    def _set_state(self, arrays, component) -> None:
        self.item_scores_ = arrays["item_scores"]
