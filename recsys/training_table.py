"""One function from a dataset and a time window to a ranking training table:
impressions and plays -> labels -> downsampled negatives -> duration weights -> point-in-time features."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data.dataset import Dataset, Timestamp
from .data.errors import DataError
from .features import FeatureBuilder, FeatureTable
from .labels import LabelConfig, WeightConfig, downsample_negatives, duration_weights, label_events

__all__ = ["TrainingConfig", "TrainingTable", "build_training_table"]


@dataclass(frozen=True)
class TrainingConfig:
    """How events become training rows.

    negatives_per_positive: downsampling target (None keeps every negative).
    downsample_by: "user_id" balances each member separately; None downsamples globally.
    reweight_negatives: give kept negatives weight n_neg / n_kept so probabilities stay calibrated.
    """

    labels: LabelConfig = field(default_factory=LabelConfig)
    weights: WeightConfig = field(default_factory=WeightConfig)
    negatives_per_positive: float | None = 4.0
    downsample_by: str | None = "user_id"
    reweight_negatives: bool = False
    seed: int = 0


@dataclass
class TrainingTable:
    """Labeled, weighted feature rows; `balance` tells what downsampling kept."""

    features: FeatureTable
    label: np.ndarray
    weight: np.ndarray
    balance: dict[str, Any]
    label_counts: dict[str, int]
    window: tuple[pd.Timestamp | None, pd.Timestamp | None]

    def __len__(self) -> int:
        return len(self.label)

    @property
    def frame(self) -> pd.DataFrame:
        return self.features.frame

    def take(self, index) -> "TrainingTable":
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return TrainingTable(self.features.take(index), self.label[index], self.weight[index], self.balance,
                             self.label_counts, self.window)


def build_training_table(
    dataset: Dataset,
    start: Timestamp | None = None,
    end: Timestamp | None = None,
    config: TrainingConfig | None = None,
    builder: FeatureBuilder | None = None,
) -> TrainingTable:
    """Events in [start, end) of `dataset` as a ranking training table.

    Each row's features use only events strictly before that row's time (the builder enforces
    it), so rows late in the window see the window's earlier events, as production would.
    `builder` defaults to a `FeatureBuilder` fitted on `dataset`.
    """
    config = config or TrainingConfig()
    window = dataset.between(start, end).events
    if len(window) == 0:
        raise DataError(f"no events between {start} and {end}", file=dataset.name, column="timestamp")
    labels = label_events(window, config.labels)
    counts = {"positive": int((labels == 1).sum()), "negative": int((labels == 0).sum()),
              "ignored": int((labels == -1).sum())}
    frame = window.assign(label=labels.to_numpy())
    if counts["positive"] == 0:
        raise DataError("the window has no positive events to learn from", file=dataset.name, column="label")
    if config.negatives_per_positive is not None:
        result = downsample_negatives(frame, config.negatives_per_positive, config.seed, by=config.downsample_by,
                                      reweight=config.reweight_negatives)
        kept, balance = result.frame, result.as_dict()
    else:
        kept = frame[frame["label"] >= 0]
        balance = {"positives": counts["positive"], "negatives_before": counts["negative"],
                   "negatives_after": counts["negative"], "ignored_dropped": counts["ignored"]}
    weight = duration_weights(kept, dataset.items, config.weights).to_numpy(dtype=float)
    if "weight" in kept.columns:
        weight = weight * kept["weight"].to_numpy(dtype=float)
    builder = builder if builder is not None else FeatureBuilder(seed=config.seed).fit(dataset)
    row_cols = ["user_id", "item_id", "timestamp"] + (["device"] if "device" in kept.columns else [])
    features = builder.transform(kept[row_cols], dataset)
    return TrainingTable(
        features=features,
        label=kept["label"].to_numpy(dtype=np.int8),
        weight=weight,
        balance=balance,
        label_counts=counts,
        window=(None if start is None else pd.Timestamp(start), None if end is None else pd.Timestamp(end)),
    )
