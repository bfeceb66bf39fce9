"""The pipeline's training windows built on Spark (`recsys train --engine spark`): every window's flat training
table is made by the executors in one pass (`training.spark_window_tables`) and read back by the driver as the
ranker's rows, where model fitting stays. `Recommender.fit(dataset, window_tables=SparkWindowTables(spark, source))`
then fits the same model as in one process: the rows, labels, weights and class counts are equal, and the
pipeline puts every window's rows in one canonical order before anything reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ..data.dataset import Dataset, Timestamp
from ..features import FeatureBuilder, FeatureTable, Ragged
from ..features.slot import SlotFeatures
from ..features.spec import FeatureSet
from ..features.table import KEY_COLUMNS
from ..labels import LabelConfig, label_counts, label_events
from ..training_table import TrainingConfig, TrainingTable, window_balance
from .source import SparkSource
from .training import WINDOW, Progress, _in_window, _inside, _window_timestamps, spark_window_tables

__all__ = ["SparkWindowTables", "feature_rows_of"]


def feature_rows_of(flat: pd.DataFrame, builder: FeatureBuilder) -> tuple[FeatureTable, np.ndarray, np.ndarray]:
    """A flat training table (`training.flat_table`, from either engine) back as the ranker's feature rows,
    labels and weights: list features' ids read with the builder's vocabularies, the id features from the
    row keys, slot features when the table has them."""
    flat = flat.reset_index(drop=True)
    slot = SlotFeatures()
    features = tuple(builder.feature_set)
    if all(name in flat.columns for name in slot.names):
        features += tuple(slot.features_)
    feature_set = FeatureSet(features)
    vocab = builder.list_vocabularies()
    rows = flat[[c for c in KEY_COLUMNS if c in flat.columns]].copy()
    rows["timestamp"] = pd.to_datetime(rows["timestamp"]).astype("datetime64[ns]")
    frame: dict[str, Any] = {}
    sparse: dict[str, Ragged] = {}
    for f in feature_set:
        if f.kind == "sparse_list":
            if f.name in flat.columns:
                sparse[f.name] = _ragged(flat[f.name], vocab[f.name])
        elif f.name in KEY_COLUMNS:  # the id features and the context's device are the row's keys
            frame[f.name] = flat[f.name].astype(object) if f.name in flat.columns else [None] * len(flat)
        else:
            frame[f.name] = flat[f.name]
    table = FeatureTable(rows=rows, frame=pd.DataFrame(frame, index=flat.index), sparse=sparse,
                         feature_set=feature_set)
    return table, flat["label"].to_numpy(dtype=np.int8), flat["weight"].to_numpy(dtype=np.float64)


def _ragged(lists: pd.Series, vocab: tuple[str, ...]) -> Ragged:
    parts = [np.asarray(v if v is not None else (), dtype=np.int64) for v in lists]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return Ragged(values, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), vocab)


def _label_counts(events, windows: list[tuple[pd.Timestamp | None, pd.Timestamp | None]], labels: LabelConfig
                  ) -> list[dict[str, int]]:
    """Each window's positives, negatives and ignored events before downsampling (`label_events` once per batch),
    in one pass over the events from the earliest window's start."""
    from pyspark.sql import functions as F

    feedback = [c for c in ("watch_fraction", "rating") if c in events.columns]
    starts = [start for start, _ in windows]
    if all(start is not None for start in starts):
        events = events.filter(_inside(min(starts), None))

    def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            labeled = label_events(batch[feedback], labels)
            for w, (start, end) in enumerate(windows):
                inside = _in_window(batch["timestamp"], start, end)
                if inside.any():
                    yield pd.DataFrame([{"window": w, **label_counts(labeled[inside])}])

    names = ("positive", "negative", "ignored")
    sums = (events.select("timestamp", *feedback)
            .mapInPandas(count, "window long, positive long, negative long, ignored long")
            .groupBy("window").agg(*[F.sum(c).alias(c) for c in names]).collect())
    got = {int(r["window"]): r for r in sums}
    return [{c: int(got[w][c] or 0) if w in got else 0 for c in names} for w in range(len(windows))]


@dataclass
class SparkWindowTables:
    """The pipeline's window tables (`training_table.window_tables`) with Spark doing the work: called by
    `Recommender.fit` once with every window, which the executors build in one member pass and one title pass.
    `source` (`read_source`) lets the executors read the events from Parquet; without it the driver hands the
    dataset's events to Spark."""

    spark: Any
    source: SparkSource | None = None
    partitions: int | None = None
    progress: Progress | None = None

    def __call__(self, dataset: Dataset, windows: list[tuple[Timestamp | None, Timestamp | None]],
                 config: TrainingConfig | None = None, builder: FeatureBuilder | None = None, history=None,
                 slot_features: bool = False) -> list[TrainingTable]:
        config = config or TrainingConfig()
        builder = builder if builder is not None else FeatureBuilder(seed=config.seed).fit(dataset)
        bounds = _window_timestamps(windows)
        table, events, cached = spark_window_tables(self.spark, self.source if self.source is not None else dataset,
                                                    bounds, config, builder, slot_features, self.partitions,
                                                    self.progress)
        try:
            counts = _label_counts(events, bounds, config.labels)
            flat = table.toPandas()
        finally:
            cached.unpersist()
        tables = []
        which = flat[WINDOW].to_numpy(dtype=np.int64)
        for w, window in enumerate(bounds):
            features, label, weight = feature_rows_of(flat[which == w].drop(columns=WINDOW), builder)
            balance = window_balance(counts[w], int((label == 0).sum()), config)
            tables.append(TrainingTable(features, label, weight, balance, counts[w], window))
        return tables
