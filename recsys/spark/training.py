"""The ranker's training table as one flat Parquet table: `build_training_table`'s rows (a window's logged
impressions and plays, labeled, negatives downsampled, weighted by minutes watched and inverse propensity, with
point-in-time features), in one process or on Spark, row for row the same.

Columns: user_id, item_id, timestamp (and device), label, weight, then every feature in the builder's order
(dense as double, categorical as text, sparse lists as arrays of vocabulary ids), then the slot features. The
features named like a key (the sparse ids user_id and item_id, the context's device) are that key's column.

On Spark, with the fitted `FeatureBuilder` shipped to the executors:
1. one pass over partitions of members (`source.member_records`: every event, search and record of a member in
   one partition; a `SparkSource` holds them so, cached, and a loaded Dataset's are shuffled there once): the
   window's rows labeled, negatives downsampled by hash (`sampler="hash"`: a row's fate depends on the row and
   the seed, never on the partition), slot features over the whole logged row, minutes watched, and the member
   groups' features (`FeatureGroup.reads == "member"`) from the members' past; several windows
   (`spark_window_tables`, the pipeline's ranker windows) are labeled and sampled each on its own and share this
   pass, the members' index and the features' transform;
2. the weights' references, the median minutes of the kept positives and the kept rows' median logged propensity
   (Spark's exact percentile, one aggregation grouped by window);
3. the title groups and each row's weight on partitions of titles: the rows and every member's plays of those
   titles (one shuffle of the plays alone: the title groups read nothing else, and most of a log was shown and
   not played);
4. both joined back on (member, row number within the member).
A feature is computed by the same group code on either engine; only which events a partition holds differs.
Given a `SparkSource` (`recsys.spark.source.read_source`), the executors read the events and searches from the
Parquet files themselves and the driver holds only the catalogue and the member records; given a loaded Dataset,
the driver hands its events to Spark.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from ..data.dataset import Dataset, Timestamp
from ..data.errors import DataError
from ..features import FeatureBuilder, FeatureTable
from ..features.history import LOG_COLUMNS
from ..features.slot import SlotFeatures
from ..features.table import KEY_COLUMNS
from ..labels import (ROW_KEY_COLUMNS, WeightConfig, downsample_negatives, duration_weights, label_events,
                      propensity_weights, watched_minutes)
from ..training_table import TrainingConfig, build_training_table, no_events, no_positives
from .batch import _PART, _publish, write_spark_table
from .source import KIND, USER_PREFIX, SparkSource, default_partitions, member_records

__all__ = ["TableSummary", "flat_table", "training_table_local", "training_table_spark", "spark_window_tables",
           "write_training_table", "read_training_table", "WINDOW"]

Progress = Callable[[str, float], None]
#: What the member pass reads of the events: the row keys, what labels, weights and slot features read, and the
#: History's columns (a log's other columns, such as the logging policy's, stay in Spark).
ROW_INPUTS = tuple(dict.fromkeys(ROW_KEY_COLUMNS + LOG_COLUMNS + ("device", "weight", "propensity")))
#: The column of `spark_window_tables` that says which of its windows a row belongs to.
WINDOW = "_window"


@dataclass(frozen=True)
class TableSummary:
    """What a training-table run wrote: rows, positives, seconds, where, which engine."""

    rows: int
    positives: int
    seconds: float
    out: str
    engine: str


def _spark_config(config: TrainingConfig | None) -> TrainingConfig:
    config = config or TrainingConfig(sampler="hash")
    if config.negatives_per_positive is not None and (config.sampler != "hash" or config.downsample_by != "user_id"):
        raise ValueError("the Spark training table downsamples per member with hash sampling: use "
                         "TrainingConfig(sampler='hash', downsample_by='user_id') (the same config gives the same "
                         "table in one process)")
    return config


def flat_table(features: FeatureTable, label: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    """A feature table as one flat frame: row keys, label, weight, then the features (see the module docstring)."""
    out = features.rows.reset_index(drop=True)
    out["timestamp"] = pd.to_datetime(out["timestamp"]).astype("datetime64[us]")
    out["label"] = np.asarray(label, dtype=np.int32)
    out["weight"] = np.asarray(weight, dtype=np.float64)
    return pd.concat([out, _feature_columns(features)], axis=1)


def _feature_columns(features: FeatureTable) -> pd.DataFrame:
    cols: dict[str, Any] = {}
    frame = features.frame
    sparse = features.sparse
    for f in features.feature_set:
        if f.name in KEY_COLUMNS:  # the sparse ids user_id and item_id, the context's device: the key's own text
            continue
        if f.kind == "sparse_list":
            if f.name in sparse:
                r = sparse[f.name]
                values, offsets = np.asarray(r.values, dtype=np.int64), np.asarray(r.offsets)
                cols[f.name] = [values[offsets[i]:offsets[i + 1]].tolist() for i in range(len(r))]
        elif f.name in frame.columns:
            values = frame[f.name]
            cols[f.name] = values.to_numpy(dtype=np.float64) if f.kind == "dense" else \
                values.astype(object).where(values.notna(), None).to_numpy(dtype=object)
        if f.name not in cols:  # a feature the rows' data gave no values: missing, on either engine
            cols[f.name] = [None] * len(frame)
    return pd.DataFrame(cols, index=pd.RangeIndex(len(frame)))


def training_table_local(dataset: Dataset, start: Timestamp | None = None, end: Timestamp | None = None,
                         config: TrainingConfig | None = None, builder: FeatureBuilder | None = None,
                         slot_features: bool = False) -> pd.DataFrame:
    """`build_training_table` in this process, as the flat frame (rows in the window's order)."""
    table = build_training_table(dataset, start, end, config, builder=builder, slot_features=slot_features)
    return flat_table(table.features, table.label, table.weight)


def _column_order(builder: FeatureBuilder, has_device: bool, slot_features: bool) -> list[str]:
    keys = ["user_id", "item_id", "timestamp"] + (["device"] if has_device else [])
    return keys + ["label", "weight"] + [f.name for f in builder.feature_set if f.name not in KEY_COLUMNS] + \
        (SlotFeatures().names if slot_features else [])


def _spark_type(kind: str) -> str:
    return {"dense": "double", "categorical": "string", "sparse_list": "array<bigint>"}[kind]


def _kept_rows(window: pd.DataFrame, shell: Dataset, config: TrainingConfig, slot_features: bool) -> pd.DataFrame:
    """Stage 1 on a partition's window events: label, downsample per member by hash, slot features, minutes
    watched; the kept rows in key order."""
    frame = window.sort_values([c for c in ROW_KEY_COLUMNS if c in window.columns], kind="stable",
                               ignore_index=True)
    frame = frame.assign(label=label_events(frame, config.labels).to_numpy())
    if config.negatives_per_positive is not None:
        kept = downsample_negatives(frame, config.negatives_per_positive, config.seed, by="user_id",
                                    reweight=config.reweight_negatives, sampler="hash").frame
    else:
        kept = frame[frame["label"] >= 0]
    out = kept.copy()
    out["_w0"] = kept["weight"].to_numpy(dtype=float) if "weight" in kept.columns else 1.0
    out["_watched"] = watched_minutes(kept, shell.items)
    if slot_features:
        block = SlotFeatures().from_events(frame)
        rows = frame.index.get_indexer(kept.index)
        for name, values in block.columns.items():
            out[name] = np.asarray(values)[rows]
    return out.reset_index(drop=True)


def _concat(batches: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    parts = [b for b in batches if len(b)]
    return pd.concat(parts, ignore_index=True) if parts else None


def _in_window(timestamps: pd.Series, start: pd.Timestamp | None, end: pd.Timestamp | None) -> np.ndarray:
    """Which moments fall in the window [start, end) (an open side where a bound is None), as `Dataset.between`."""
    inside = np.ones(len(timestamps), dtype=bool)
    if start is not None:
        inside &= (timestamps >= start).to_numpy()
    if end is not None:
        inside &= (timestamps < end).to_numpy()
    return inside


def _window_timestamps(windows: list[tuple[Timestamp | None, Timestamp | None]]
                       ) -> list[tuple[pd.Timestamp | None, pd.Timestamp | None]]:
    """Windows [start, end) with their bounds as pandas Timestamps (an open side stays None)."""
    return [(None if lo is None else pd.Timestamp(lo), None if hi is None else pd.Timestamp(hi)) for lo, hi in windows]


def _inside(start: pd.Timestamp | None, end: pd.Timestamp | None):
    """The Spark condition of `_in_window`: a moment in [start, end)."""
    from pyspark.sql import functions as F

    inside = F.lit(True)
    if start is not None:
        inside = inside & (F.col("timestamp") >= F.lit(start.to_pydatetime()))
    if end is not None:
        inside = inside & (F.col("timestamp") < F.lit(end.to_pydatetime()))
    return inside


def _member_pass(builder: FeatureBuilder, shell: Dataset, config: TrainingConfig, slot_features: bool,
                 windows: list[tuple[pd.Timestamp | None, pd.Timestamp | None]], event_cols: list[str],
                 search_cols: list[str], user_cols: list[str], row_keys: list[str], columns: list[str]):
    """Stages 1 and 3 in one pass over a partition of members (`source.member_records`, every record of a member
    in the partition): each window's rows labeled and sampled (`_window`, its index), then the member groups'
    features of every window's rows from one index of the members' events, searches and records (a row's
    features read only events before its moment, so one index serves every window)."""
    log_cols = [c for c in LOG_COLUMNS if c in event_cols]  # what the groups' History reads, nothing more

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = _concat(batches)
        if frame is None:
            return
        kind = frame[KIND].to_numpy()
        events = frame.loc[kind == "event", event_cols].reset_index(drop=True)
        _restore_dtypes(events, shell.events)
        parts = []
        for w, (start, end) in enumerate(windows):
            window = events[_in_window(events["timestamp"], start, end)]
            if len(window):
                rows = _kept_rows(window, shell, config, slot_features)
                if len(rows):
                    parts.append(rows.assign(**{WINDOW: np.int64(w)}))
        if not parts:
            return
        kept = pd.concat(parts, ignore_index=True)
        # each row numbered within its member across every window, so the title side can join on it
        kept["_n"] = kept.groupby("user_id", sort=False).cumcount().astype(np.int64)
        users = frame.loc[kind == "user", [USER_PREFIX + c for c in user_cols]].reset_index(drop=True)
        users.columns = user_cols
        _restore_dtypes(users, shell.users)
        if search_cols:
            searches = frame.loc[kind == "search", search_cols].reset_index(drop=True)
            _restore_dtypes(searches, shell.searches)
        else:
            searches = shell.searches
        history = builder.index(shell._with(users, shell.items, events[log_cols], searches))
        table = builder.transform(kept[row_keys], history, reads="member")
        yield pd.concat([kept, _feature_columns(table)], axis=1)[columns]
    return run


def _title_pass(builder: FeatureBuilder, shell: Dataset, weights: list[WeightConfig], event_cols: list[str],
                row_keys: list[str], names: list[str]):
    """Stage 4 on a partition of titles holding rows (`_kind` row) and every member's plays of those titles
    (`_kind` event): the title groups' features (they read no member record, so every member with a play is
    indexed) and each row's duration weight times its propensity weight (and its sampling weight `_w0`), with
    the `WeightConfig` of the row's window (`weights[_window]`: each window has its own references)."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = _concat(batches)
        if frame is None:
            return
        kind = frame[KIND].to_numpy()
        rows = frame[kind == "row"].sort_values(["user_id", "_n"], kind="stable", ignore_index=True)
        if len(rows) == 0:
            return
        events = frame.loc[kind == "event", event_cols].reset_index(drop=True)
        _restore_dtypes(events, shell.events)
        ids = pd.unique(pd.concat([events["user_id"], rows["user_id"]], ignore_index=True).astype(str))
        history = builder.index(shell._with(pd.DataFrame({"user_id": ids}), shell.items, events, shell.searches))
        table = builder.transform(rows[row_keys], history, reads="title")
        out = _feature_columns(table)
        weight = np.empty(len(rows), dtype=float)
        window = rows[WINDOW].to_numpy(dtype=np.int64)
        for w in np.unique(window):
            at = window == w
            part = rows[at]
            weight[at] = duration_weights(part, shell.items, weights[w]).to_numpy(dtype=float) \
                * propensity_weights(part, weights[w]).to_numpy(dtype=float) * part["_w0"].to_numpy(dtype=float)
        out.insert(0, "weight", weight)
        out.insert(0, "_n", rows["_n"].to_numpy(dtype=np.int64))
        out.insert(0, "user_id", rows["user_id"].astype(str).to_numpy())
        yield out[["user_id", "_n", "weight"] + names]
    return run


def training_table_spark(spark, data: Dataset | SparkSource, start: Timestamp | None = None, end: Timestamp | None = None,
                         config: TrainingConfig | None = None, builder: FeatureBuilder | None = None,
                         slot_features: bool = False, partitions: int | None = None, progress: Progress | None = None):
    """The flat training table as a Spark DataFrame (see the module docstring), equal to `training_table_local`
    with the same config (hash sampling per member) row for row. The member pass and the weights' reference run
    when this is called (the reference is a number the rows need); the title side runs when the result is
    written or collected."""
    return _spark_table(spark, data, start, end, config, builder, slot_features, partitions, progress)[0]


def _spark_table(spark, data: Dataset | SparkSource, start, end, config: TrainingConfig | None,
                 builder: FeatureBuilder | None, slot_features: bool, partitions: int | None,
                 progress: Progress | None):
    """One window's `training_table_spark` table and the cached member-pass rows (to unpersist once the table is
    written)."""
    table, _, kept = spark_window_tables(spark, data, [(start, end)], config, builder, slot_features, partitions,
                                         progress)
    return table.drop(WINDOW), kept


def spark_window_tables(spark, data: Dataset | SparkSource, windows: list[tuple[Timestamp | None, Timestamp | None]],
                        config: TrainingConfig | None, builder: FeatureBuilder | None, slot_features: bool,
                        partitions: int | None, progress: Progress | None):
    """The training tables of several windows [start, end) as one Spark DataFrame, each row's window index in
    `WINDOW`; with the events before the last end (what class counts are taken from) and the cached member-pass
    rows (to unpersist once the table is read). Every window's rows come out of one member pass and one title
    pass, and each window's rows equal its own `training_table_local` table (its own weight references)."""
    from pyspark.sql import functions as F

    say = progress or (lambda message, fraction: None)
    config = _spark_config(config)
    if not windows:
        raise ValueError("no windows to build training tables for")
    source = data if isinstance(data, SparkSource) else None
    dataset = source.shell if source is not None else data
    if slot_features and not (dataset.has("events", "position") and dataset.has("events", "session_id")):
        raise DataError("slot features need the logged rows' position and session_id", file=dataset.name,
                        column="position")
    say("fitting the feature builder (static facts only)", 0.0)
    builder = builder if builder is not None else FeatureBuilder(seed=config.seed).fit(dataset)
    bounds = _window_timestamps(windows)
    ends = [hi for _, hi in bounds]
    end_ts = None if any(hi is None for hi in ends) else max(ends)
    if source is not None:  # the executors read the events, already on partitions of members
        events_sdf, members = source.events, source.members
        parts = partitions or source.partitions
        if parts != source.partitions:
            members = members.repartition(parts, "user_id")
        like = dataset.events.iloc[:0]
        search_cols = list(source.search_columns or [])
    else:
        past = dataset.between(None, end_ts)
        events_sdf = _to_spark(spark, past.events)
        searches_sdf = _to_spark(spark, past.searches) if len(past.searches) else None
        parts = partitions or default_partitions(spark, len(past.events))
        members = member_records(spark, events_sdf, searches_sdf, dataset.users).repartition(parts, "user_id")
        like = past.events.iloc[:0]
        search_cols = list(past.searches.columns) if searches_sdf is not None else []
    if end_ts is not None:  # a row's features read only its past: nothing after the last window is needed
        before = F.col("timestamp") < F.lit(end_ts.to_pydatetime())
        events_sdf = events_sdf.filter(before)
        members = members.filter((F.col(KIND) == "user") | before)
    found = events_sdf.agg(*[F.max(_inside(lo, hi).cast("int")).alias(f"w{w}")
                             for w, (lo, hi) in enumerate(bounds)]).collect()[0]
    for w, (lo, hi) in enumerate(bounds):  # every window's emptiness first, as `training_table.window_tables`
        if not found[f"w{w}"]:
            raise DataError(no_events(lo, hi), file=dataset.name, column="timestamp")
    shell = dataset._with(dataset.users.iloc[:0], dataset.items, like, dataset.searches.iloc[:0])
    has_device = "device" in like.columns
    row_keys = ["user_id", "item_id", "timestamp"] + (["device"] if has_device else [])
    kinds = {f.name: f.kind for f in builder.feature_set}
    member_names = [f.name for f in builder.feature_set_reading("member") if f.name not in KEY_COLUMNS]
    title_names = [f.name for f in builder.feature_set_reading("title") if f.name not in KEY_COLUMNS]

    say("labels, hash-seeded negatives and member features on partitions of members", 0.1)
    slot_names = SlotFeatures().names if slot_features else []
    stage1 = [("label", "int"), ("_w0", "double"), ("_watched", "double")] + [(n, "double") for n in slot_names] + \
        [(WINDOW, "bigint"), ("_n", "bigint")]
    clash = sorted(set(member_names) & (set(ROW_INPUTS) | {name for name, _ in stage1}))
    if clash:
        raise ValueError(f"member features named like a row column: {clash}")
    inputs = [c for c in like.columns if c in ROW_INPUTS]
    schema = _schema_of(like[inputs], extra=stage1 + [(n, _spark_type(kinds[n])) for n in member_names])
    user_cols = list(dataset.users.columns)
    run = _member_pass(builder, shell, config, slot_features, bounds, inputs, search_cols, user_cols, row_keys,
                       _names_of(schema))
    read = [KIND, *inputs, *[c for c in search_cols if c not in inputs], *[USER_PREFIX + c for c in user_cols]]
    kept = members.select(*[F.col(f"`{c}`") for c in read]).mapInPandas(run, schema).cache()

    weights = config.weights
    medians = {"positives": F.sum((F.col("label") == 1).cast("long"))}
    if weights.reference_minutes is None:  # the median minutes of the kept positives (`duration_weights`)
        medians["minutes"] = F.percentile(F.when((F.col("label") == 1) & F.col("_watched").isNotNull()
                                                 & ~F.isnan("_watched") & (F.col("_watched") > 0), F.col("_watched")),
                                          F.lit(0.5))
    if weights.propensity_clip is not None and weights.propensity_reference is None and "propensity" in like.columns:
        medians["propensity"] = F.percentile(F.when(F.col("propensity").isNotNull() & ~F.isnan("propensity"),
                                                    F.col("propensity")), F.lit(0.5))  # `propensity_reference`
    say("each window's positives and weight references (median minutes of the kept positives, median propensity)",
        0.5)
    got = {int(r[WINDOW]): r for r in kept.groupBy(WINDOW).agg(*[m.alias(k) for k, m in medians.items()]).collect()}
    per_window = []
    for w, (lo, hi) in enumerate(bounds):
        if w not in got or not got[w]["positives"]:
            kept.unpersist()
            raise DataError(no_positives(lo, hi), file=dataset.name, column="label")
        mine = weights
        if "minutes" in medians:
            minutes = got[w]["minutes"]
            mine = replace(mine, reference_minutes=float(minutes) if minutes is not None else 1.0)
        if "propensity" in medians and got[w]["propensity"] is not None:
            mine = replace(mine, propensity_reference=float(got[w]["propensity"]) or 1.0)
        per_window.append(mine)

    say("title features and weights on partitions of titles", 0.6)
    event_cols = [c for c in LOG_COLUMNS if c in like.columns]
    # the title groups read plays alone (`FeatureGroup.reads`): most of a log is what was shown and not played
    plays = _plays(events_sdf, dataset.feedback == "implicit").select(*event_cols).withColumn(KIND, F.lit("event"))
    weighed = [c for c in ("minutes_watched", "watch_fraction", "propensity") if c in like.columns]  # the weights read
    rows = kept.select(*row_keys, "_n", WINDOW, "label", "_w0", *weighed).withColumn(KIND, F.lit("row"))
    schema = ", ".join(["user_id string", "_n bigint", "weight double"]
                       + [f"`{n}` {_spark_type(kinds[n])}" for n in title_names])
    run = _title_pass(builder, shell, per_window, event_cols, row_keys, title_names)
    side = rows.unionByName(plays, allowMissingColumns=True).repartition(parts, "item_id").mapInPandas(run, schema)
    side = side.toDF("_t_user", "_t_n", "_t_weight", *title_names)
    base = kept.drop("weight")  # a logged weight column is the sampling weight `_w0`, inside the row's weight
    table = base.join(side, (base["user_id"] == side["_t_user"]) & (base["_n"] == side["_t_n"])) \
        .withColumnRenamed("_t_weight", "weight")
    columns = _column_order(builder, has_device, slot_features) + [WINDOW]
    return table.select(*[f"`{c}`" for c in columns]), events_sdf, kept


def _plays(events, implicit: bool):
    """The events `features.history.played` calls plays, as a Spark filter: a watch fraction above 0 (Spark
    orders NaN above every number, so NaN is excluded by name), or any rating."""
    from pyspark.sql import functions as F

    column = "watch_fraction" if implicit else "rating"
    value = F.col(column)
    keep = (value > 0) & ~F.isnan(value) if implicit else value.isNotNull() & ~F.isnan(value)
    return events.filter(keep)


def _restore_dtypes(frame: pd.DataFrame, like: pd.DataFrame) -> None:
    """Give `frame`'s columns the dtypes of the loaded dataset's (the Spark round trip makes text plain objects)."""
    for column in frame.columns:
        if column in like.columns and frame[column].dtype != like[column].dtype:
            frame[column] = frame[column].astype(like[column].dtype)


def _names_of(schema: str) -> list[str]:
    return [part.split("` ")[0].strip("`") for part in schema.split(", `")]


def _to_spark(spark, frame: pd.DataFrame):
    """A pandas frame as a Spark DataFrame with plain types (text as string, times as timestamps)."""
    return spark.createDataFrame(_plain(frame), _schema_of(frame))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for c in frame.columns:
        s = frame[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[c] = s.astype("datetime64[us]")
        elif pd.api.types.is_bool_dtype(s):
            out[c] = s.astype(bool)
        elif pd.api.types.is_integer_dtype(s):
            out[c] = s.astype("Int64")  # nullable: a missing slot stays missing
        elif pd.api.types.is_float_dtype(s):
            out[c] = s.astype("float64")
        elif isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(s) or \
                pd.api.types.is_string_dtype(s):
            if _holds_lists(s):
                out[c] = s.map(lambda v: None if v is None else [str(x) for x in v])
            elif pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
                out[c] = s.astype("str")  # Arrow-backed text crosses to Spark in bulk; Python objects one by one
            else:
                out[c] = s.astype(object).where(s.notna(), None)
        else:
            out[c] = s
    return pd.DataFrame(out)


def _holds_lists(s: pd.Series) -> bool:
    """Whether a text-like column holds lists (the per-value test only where pandas cannot tell it is text)."""
    if isinstance(s.dtype, (pd.CategoricalDtype, pd.StringDtype)):  # neither can hold a list
        return False
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return False
    return bool(s.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any())


def _type_of(s: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(s):
        return "timestamp"
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_integer_dtype(s):
        return "bigint"
    if pd.api.types.is_float_dtype(s):
        return "double"
    if len(s) and _holds_lists(s):
        return "array<string>"
    return "string"


def _schema_of(frame: pd.DataFrame, extra: list[tuple[str, str]] = ()) -> str:
    fields = [(c, _type_of(frame[c])) for c in frame.columns] + [f for f in extra if f[0] not in frame.columns]
    return ", ".join(f"`{c}` {t}" for c, t in fields)


def write_training_table(data: Dataset | SparkSource, out: str | os.PathLike, start: Timestamp | None = None,
                         end: Timestamp | None = None, config: TrainingConfig | None = None, engine: str = "local",
                         spark=None, slot_features: bool = False, partitions: int | None = None,
                         progress: Progress | None = None) -> TableSummary:
    """Write the flat training table as a Parquet folder at `out` (published whole, or not at all). On Spark, `data`
    may be a `SparkSource` (the executors read the events), in one process it is a loaded Dataset."""
    say = progress or (lambda message, fraction: None)
    t = time.perf_counter()
    if engine == "local":
        if not isinstance(data, Dataset):
            raise ValueError("engine='local' needs a loaded Dataset (recsys.load_dataset)")
        frame = training_table_local(data, start, end, config, slot_features=slot_features)

        def write(tmp: Path) -> None:
            tmp.mkdir()
            frame.to_parquet(tmp / _PART, index=False)

        _publish(Path(out), write)
        rows, positives = len(frame), int((frame["label"] == 1).sum())
    elif engine == "spark":
        if spark is None:
            raise ValueError("engine='spark' needs a Spark session (recsys.spark.spark_session)")
        table, kept = _spark_table(spark, data, start, end, config, None, slot_features, partitions, progress)
        try:
            write_spark_table(spark, table, out)
        finally:
            kept.unpersist()  # the stage-1 rows the executors cached; a source's events stay the caller's
        written = spark.read.parquet(str(out))
        rows, positives = written.count(), written.filter("label = 1").count()
    else:
        raise ValueError(f"engine must be local or spark, got {engine!r}")
    say("done", 1.0)
    return TableSummary(rows, positives, round(time.perf_counter() - t, 2), str(out), engine)


def read_training_table(path: str | os.PathLike) -> pd.DataFrame:
    """A training table (either engine's folder) in one canonical row order: member, moment, title, then the rest."""
    frame = pd.read_parquet(path)
    order = [c for c in ("user_id", "timestamp", "item_id", "label", "weight") if c in frame.columns]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)
