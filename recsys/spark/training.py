"""The ranker's training table as one flat Parquet table: `build_training_table`'s rows (a window's logged
impressions and plays, labeled, negatives downsampled, weighted by minutes watched, with point-in-time features),
in one process or on Spark, row for row the same.

Columns: user_id, item_id, timestamp (and device), label, weight, then every feature in the builder's order
(dense as double, categorical as text, sparse lists as arrays of vocabulary ids), then the slot features. The
features named like a key (the sparse ids user_id and item_id, the context's device) are that key's column.

On Spark, with the fitted `FeatureBuilder` shipped to the executors:
1. the window's events repartitioned by member: labels, hash-seeded downsampling per member (`sampler="hash"`:
   a row's fate depends on the row and the seed, never on the partition), slot features over the whole logged
   row, minutes watched;
2. the duration weights' reference, the median minutes of the kept positives (Spark's exact percentile), and
   each row's weight;
3. the member groups (`FeatureGroup.reads == "member"`) on partitions of members: each partition holds its rows,
   its members' events and searches before the window's end and their member records (one shuffle);
4. the title groups on partitions of titles: the rows and every member's plays of those titles (one shuffle of
   the plays alone: the title groups read nothing else, and most of a log was shown and not played);
5. both joined back on (member, row number within the member).
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
from ..labels import ROW_KEY_COLUMNS, downsample_negatives, duration_weights, label_events, watched_minutes
from ..training_table import TrainingConfig, build_training_table
from .batch import _PART, _publish, write_spark_table
from .source import SparkSource

__all__ = ["TableSummary", "flat_table", "training_table_local", "training_table_spark", "write_training_table",
           "read_training_table"]

Progress = Callable[[str, float], None]
_USER = "_u_"
#: The default partitions hold about this many events each (at least one partition per core).
EVENTS_PER_PARTITION = 1_000_000  # prefix of the member records' columns inside the member shuffle


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


def _member_rows(shell: Dataset, config: TrainingConfig, slot_features: bool, columns: list[str]):
    """Stage 1 on a partition of members: label, downsample per member by hash, slot features, minutes watched;
    each kept row numbered within its member (`_n`, in key order) so later stages can join on it."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = _concat(batches)
        if frame is None:
            return
        frame = frame.sort_values([c for c in ROW_KEY_COLUMNS if c in frame.columns], kind="stable",
                                  ignore_index=True)
        labels = label_events(frame, config.labels)
        frame = frame.assign(label=labels.to_numpy())
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
        out["_n"] = out.groupby("user_id", sort=False).cumcount().astype(np.int64)
        yield out.reset_index(drop=True)[columns]
    return run


def _concat(batches: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    parts = [b for b in batches if len(b)]
    return pd.concat(parts, ignore_index=True) if parts else None


def _partition_features(builder: FeatureBuilder, shell: Dataset, reads: str, event_cols: list[str],
                        search_cols: list[str], user_cols: list[str], row_cols: list[str], names: list[str]):
    """Stages 3 and 4: one side's feature groups on a partition holding rows (`_kind` row) and the past they read
    (`_kind` event, search, user)."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = _concat(batches)
        if frame is None:
            return
        kind = frame["_kind"].to_numpy()
        rows = frame[kind == "row"].sort_values(["user_id", "_n"], kind="stable", ignore_index=True)
        if len(rows) == 0:
            return
        events = frame.loc[kind == "event", event_cols].reset_index(drop=True)
        searches = frame.loc[kind == "search", search_cols].reset_index(drop=True) if search_cols else \
            shell.searches
        if reads == "member":
            users = frame.loc[kind == "user", [_USER + c for c in user_cols]].reset_index(drop=True)
            users.columns = user_cols
        else:  # the title groups read no member record: every member with a play of the titles is indexed
            ids = pd.unique(pd.concat([events["user_id"], rows["user_id"]], ignore_index=True).astype(str))
            users = pd.DataFrame({"user_id": ids})
        _restore_dtypes(events, shell.events)
        if reads == "member":
            _restore_dtypes(users, shell.users)
        if search_cols:
            _restore_dtypes(searches, shell.searches)
        history = builder.index(shell._with(users, shell.items, events, searches))
        table = builder.transform(rows[row_cols], history, reads=reads)
        out = _feature_columns(table)
        out.insert(0, "_n", rows["_n"].to_numpy(dtype=np.int64))
        out.insert(0, "user_id", rows["user_id"].astype(str).to_numpy())
        yield out[["user_id", "_n"] + names]
    return run


def training_table_spark(spark, data: Dataset | SparkSource, start: Timestamp | None = None, end: Timestamp | None = None,
                         config: TrainingConfig | None = None, builder: FeatureBuilder | None = None,
                         slot_features: bool = False, partitions: int | None = None, progress: Progress | None = None):
    """The flat training table as a Spark DataFrame (see the module docstring), equal to `training_table_local`
    with the same config (hash sampling per member) row for row. Stages 1-2 run when this is called (the weights'
    reference is a number the rows need); the feature stages run when the result is written or collected."""
    return _spark_table(spark, data, start, end, config, builder, slot_features, partitions, progress)[0]


def _spark_table(spark, data: Dataset | SparkSource, start, end, config: TrainingConfig | None,
                 builder: FeatureBuilder | None, slot_features: bool, partitions: int | None,
                 progress: Progress | None):
    """`training_table_spark`'s table, the window's events it labels (what the class counts are taken from) and
    the cached stage-1 rows (to unpersist once the table is written)."""
    from pyspark.sql import functions as F

    say = progress or (lambda message, fraction: None)
    config = _spark_config(config)
    source = data if isinstance(data, SparkSource) else None
    dataset = source.shell if source is not None else data
    if slot_features and not (dataset.has("events", "position") and dataset.has("events", "session_id")):
        raise DataError("slot features need the logged rows' position and session_id", file=dataset.name,
                        column="position")
    parts = partitions or max(spark.sparkContext.defaultParallelism,
                              -(-source.n_events // EVENTS_PER_PARTITION) if source is not None else 1)
    say("fitting the feature builder (static facts only)", 0.0)
    builder = builder if builder is not None else FeatureBuilder(seed=config.seed).fit(dataset)
    end_ts = None if end is None else pd.Timestamp(end)
    if source is not None:  # the executors read the events: filter there
        events_sdf, searches_sdf = source.events, source.searches
        if end_ts is not None:
            events_sdf = events_sdf.filter(F.col("timestamp") < F.lit(end_ts.to_pydatetime()))
            if searches_sdf is not None:
                searches_sdf = searches_sdf.filter(F.col("timestamp") < F.lit(end_ts.to_pydatetime()))
        like = dataset.events.iloc[:0]
    else:
        past = dataset.between(None, end_ts)
        events_sdf = _to_spark(spark, past.events)
        searches_sdf = _to_spark(spark, past.searches) if len(past.searches) else None
        like = past.events.iloc[:0]
    window_sdf = events_sdf
    if start is not None:
        window_sdf = window_sdf.filter(F.col("timestamp") >= F.lit(pd.Timestamp(start).to_pydatetime()))
    if window_sdf.limit(1).count() == 0:
        raise DataError(f"no events between {start} and {end}", file=dataset.name, column="timestamp")
    shell = dataset._with(dataset.users.iloc[:0], dataset.items, like, dataset.searches.iloc[:0])
    has_device = "device" in like.columns

    say("labels and hash-seeded negatives per member", 0.1)
    slot_names = SlotFeatures().names if slot_features else []
    stage1_schema = _schema_of(like, extra=[("label", "int"), ("_w0", "double"), ("_watched", "double")]
                               + [(n, "double") for n in slot_names] + [("_n", "bigint")])
    kept = (window_sdf.repartition(parts, "user_id")
            .mapInPandas(_member_rows(shell, config, slot_features, _names_of(stage1_schema)), stage1_schema)).cache()
    positives = kept.filter(F.col("label") == 1)
    if positives.limit(1).count() == 0:
        kept.unpersist()
        raise DataError("the window has no positive events to learn from", file=dataset.name, column="label")

    weights = config.weights
    if weights.reference_minutes is None:
        say("the duration weights' reference (median minutes of the kept positives)", 0.3)
        pool = positives.filter(F.col("_watched").isNotNull() & ~F.isnan("_watched") & (F.col("_watched") > 0))
        median = pool.agg(F.expr("percentile(_watched, 0.5)").alias("m")).collect()[0]["m"]
        weights = replace(weights, reference_minutes=float(median) if median is not None else 1.0)
    items = shell.items

    def weigh(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            w = duration_weights(batch, items, weights).to_numpy(dtype=float) * batch["_w0"].to_numpy(dtype=float)
            yield batch.assign(weight=w)

    row_keys = ["user_id", "item_id", "timestamp"] + (["device"] if has_device else [])
    base = kept.mapInPandas(weigh, _add_field(kept.schema, "weight", "double")) \
        .select(*row_keys, "_n", "label", "weight", *slot_names)

    say("point-in-time features on partitions of members and of titles", 0.4)
    rows_sdf = kept.select(*row_keys, "_n")
    event_cols = [c for c in LOG_COLUMNS if c in like.columns]  # what the groups' History reads, nothing more
    # no searches: the partitions use the empty table
    search_cols = list(shell.searches.columns) if searches_sdf is not None else []
    user_cols = list(dataset.users.columns)
    kinds = {f.name: f.kind for f in builder.feature_set}
    sides = []
    for reads in ("member", "title"):
        names = [f.name for f in builder.feature_set_reading(reads) if f.name not in KEY_COLUMNS]
        key = "user_id" if reads == "member" else "item_id"
        # the title groups read plays alone (`FeatureGroup.reads`): most of a log is what was shown and not played
        past = events_sdf if reads == "member" else _plays(events_sdf, dataset.feedback == "implicit")
        tagged = [rows_sdf.withColumn("_kind", F.lit("row")), past.select(*event_cols).withColumn("_kind", F.lit("event"))]
        if reads == "member":
            if searches_sdf is not None:
                tagged.append(searches_sdf.withColumn("_kind", F.lit("search")))
            users = dataset.users.rename(columns={c: _USER + c for c in user_cols}).assign(user_id=dataset.users["user_id"])
            tagged.append(_to_spark(spark, users).withColumn("_kind", F.lit("user")))
        union = tagged[0]
        for other in tagged[1:]:
            union = union.unionByName(other, allowMissingColumns=True)
        schema = ", ".join(["user_id string", "_n bigint"] + [f"`{n}` {_spark_type(kinds[n])}" for n in names])
        run = _partition_features(builder, shell, reads, event_cols, search_cols if reads == "member" else [],
                                  user_cols, row_keys, names)
        side = union.repartition(parts, key).mapInPandas(run, schema)
        sides.append(side.toDF(f"_{reads}_user", f"_{reads}_n", *names))
    table = base
    for reads, side in zip(("member", "title"), sides):  # explicit keys: every side descends from the same rows
        table = table.join(side, (table["user_id"] == side[f"_{reads}_user"]) & (table["_n"] == side[f"_{reads}_n"]))
    return table.select(*[f"`{c}`" for c in _column_order(builder, has_device, slot_features)]), window_sdf, kept


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


def _add_field(schema, name: str, kind: str):
    from pyspark.sql.types import DoubleType, StructField, StructType

    if name in schema.fieldNames():
        return schema
    return StructType(list(schema.fields) + [StructField(name, DoubleType() if kind == "double" else kind)])


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
        table, _, kept = _spark_table(spark, data, start, end, config, None, slot_features, partitions, progress)
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
