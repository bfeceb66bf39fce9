"""A Parquet dataset folder read by Spark's executors, not by the driver: the catalogue and the member records (the
feature builder's static facts) on the driver, the events and searches checked partition by partition with the
loader's own rules (types, required values, references to members and titles, nothing before a member's signup or
a title's arrival), exact duplicate events dropped and counted as `load_dataset` does.

The checked events, searches and member records are shuffled once, by member, into one cached DataFrame
(`SparkSource.members`, each record tagged by `_kind`): every record of a member sits in one partition, so the
training table's member pass runs on those partitions as they are, with no second shuffle and no second trip
through Python over the log. What reaches the driver grows with the catalogue and the members, never with the
events.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from ..data.dataset import Dataset, LoadReport, _check_not_before, _empty_searches
from ..data.errors import DataError
from ..data.loaders import _read_parquet
from ..data.schema import EVENTS, ITEMS, SEARCHES, USERS, TableSchema
from ..data.validation import check_references, coerce_table

__all__ = ["SparkSource", "read_source"]

_ROW = "_row"  # the event's row number in its Parquet file, for error messages
_ERROR = "_error"
KIND = "_kind"  # which table a record of `SparkSource.members` comes from: event, search or user
USER_PREFIX = "_u_"  # the member records' columns inside `SparkSource.members`
#: The default partitions hold about this many events each (at least one partition per core).
EVENTS_PER_PARTITION = 1_000_000


def default_partitions(spark, n_events: int) -> int:
    """Member partitions for a log of `n_events`: one per core, more where a partition would pass
    EVENTS_PER_PARTITION (what one Python worker holds with its history index)."""
    return max(spark.sparkContext.defaultParallelism, -(-n_events // EVENTS_PER_PARTITION))


@dataclass(frozen=True)
class SparkSource:
    """A dataset whose events live in Spark. `shell` is a Dataset with every member and title, one made-up event
    holding a value in each event column the data fills (what the feature builder's fit asks: which columns have
    values) and one search per distinct query (the search vocabulary). `members` is the cached DataFrame of every
    checked event, search and member record (`_kind`), hash-partitioned by member into `partitions` partitions;
    `events` and `searches` are its views (searches None when there are none)."""

    name: str
    shell: Dataset
    members: Any
    partitions: int
    event_columns: tuple[str, ...]
    search_columns: tuple[str, ...] | None
    start: pd.Timestamp
    end: pd.Timestamp
    report: LoadReport
    n_events: int

    @property
    def events(self):
        """The checked events, duplicates dropped, as a Spark DataFrame (partitioned by member)."""
        from pyspark.sql import functions as F

        return self.members.filter(F.col(KIND) == "event").select(*[F.col(f"`{c}`") for c in self.event_columns])

    @property
    def searches(self):
        """The checked searches as a Spark DataFrame, or None when the folder has none."""
        from pyspark.sql import functions as F

        if self.search_columns is None:
            return None
        return self.members.filter(F.col(KIND) == "search").select(*[F.col(f"`{c}`") for c in self.search_columns])

    def has(self, column: str) -> bool:
        """Whether the events fill `column` anywhere (`Dataset.has("events", column)`)."""
        return self.shell.has("events", column)


def member_records(spark, events, searches, users: pd.DataFrame):
    """Events, searches (or None) and the member records (columns prefixed USER_PREFIX) in one DataFrame, each
    record tagged by KIND and keyed by user_id: what one shuffle by member puts together."""
    from pyspark.sql import functions as F

    from .training import _to_spark

    records = _to_spark(spark, users.rename(columns={c: USER_PREFIX + c for c in users.columns})
                        .assign(user_id=users["user_id"]))
    tagged = [events.withColumn(KIND, F.lit("event"))]
    if searches is not None:
        tagged.append(searches.withColumn(KIND, F.lit("search")))
    tagged.append(records.withColumn(KIND, F.lit("user")))
    union = tagged[0]
    for other in tagged[1:]:
        union = union.unionByName(other, allowMissingColumns=True)
    return union


def _file_rows(examples: list[str], rows: np.ndarray) -> list[str]:
    """The loader's examples ("row P: ...", P a position in the partition) with P as the row of the file."""
    return [re.sub(r"^row (\d+)", lambda m: f"row {int(rows[int(m.group(1))])}", e) for e in examples]


def _event_checks(users: pd.DataFrame, items: pd.DataFrame):
    """The loader's row checks of the events (`Dataset.from_frames`): feedback present, known members and titles,
    nothing before a signup or a title's arrival."""
    user_ids, item_ids = pd.Index(users["user_id"]), pd.Index(items["item_id"])

    def check(events: pd.DataFrame, file: str) -> None:
        feedback = [c for c in ("watch_fraction", "rating") if c in events.columns]
        none = events[feedback].isna().all(axis=1)
        if none.any():
            raise DataError(f"{int(none.sum())} event(s) have neither a watch fraction nor a rating", file=file,
                            column=feedback[0], examples=[f"row {i}: {r}" for i, r in
                                                          events.loc[none].head(5).to_dict("index").items()])
        check_references(events, "user_id", user_ids, file, "users")
        check_references(events, "item_id", item_ids, file, "items")
        _check_not_before(events, users, "user_id", "signup_time", file, "users")
        _check_not_before(events, items, "item_id", "added_at", file, "items")
    return check


def _search_checks(users: pd.DataFrame):
    """The loader's row checks of the searches: known members, nothing before a signup."""
    user_ids = pd.Index(users["user_id"])

    def check(searches: pd.DataFrame, file: str) -> None:
        check_references(searches, "user_id", user_ids, file, "users")
        _check_not_before(searches, users, "user_id", "signup_time", file, "users")
    return check


def _read(spark, file: Path):
    """A Parquet file as a Spark DataFrame split across the cores (at row groups); nanosecond timestamps (what
    pandas writes) come as whole nanoseconds, which Spark cannot hold as timestamps (`_as_times` turns them back)."""
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    split = max(1 << 20, file.stat().st_size // max(1, spark.sparkContext.defaultParallelism))
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(min(split, 128 << 20)))
    return spark.read.parquet(str(file))


def _parquet_rows(file: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(file).metadata.num_rows


def _nanosecond_columns(file: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return [f.name for f in pq.read_schema(file) if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]


def _as_times(frame: pd.DataFrame, nanos: list[str]) -> pd.DataFrame:
    for c in nanos:
        if c in frame.columns:
            frame[c] = pd.to_datetime(frame[c], unit="ns")
    return frame


def _checked(spark, file: Path, schema: TableSchema, check: Callable[[pd.DataFrame, str], None],
             keep_rows: bool = False):
    """(checked Spark DataFrame, coerced first rows) of a Parquet table, lazily: each Arrow batch coerced to the
    documented types and checked where Spark read it (no shuffle); a batch's first problem becomes one row whose
    `_error` holds the loader's DataError, rows numbered as in the file. `keep_rows` keeps each row's number in
    the file (`_row`: two equal rows stay two)."""
    from pyspark.sql import functions as F

    from .training import _plain, _schema_of

    raw = _read(spark, file).select("*", F.col("_metadata.row_index").alias(_ROW))
    nanos = _nanosecond_columns(file)
    columns = [c for c in raw.columns if c != _ROW]
    head = _as_times(raw.limit(1000).toPandas().drop(columns=[_ROW]), nanos)
    if len(head) == 0:
        raise DataError(f"the {schema.name} table is empty (no rows)", file=str(file))
    like = coerce_table(head, schema, str(file))
    extra = [(_ROW, "bigint")] if keep_rows else []

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:  # the checks are row by row: each Arrow batch alone, streamed
            if len(frame) == 0:
                continue
            frame = _as_times(frame, nanos)
            rows = frame.pop(_ROW).to_numpy()
            try:
                table = coerce_table(frame, schema, str(file))
                check(table, str(file))
            except DataError as err:
                problem = json.dumps({"problem": err.problem, "file": err.file, "column": err.column,
                                      "hint": err.hint, "examples": _file_rows(err.examples, rows)})
                yield pd.DataFrame({**{c: pd.Series([None], dtype=object) for c in columns + [c for c, _ in extra]},
                                    _ERROR: [problem]})
                return
            out = _plain(table)
            if keep_rows:
                out[_ROW] = rows.astype(np.int64)
            out[_ERROR] = None
            yield out[columns + [c for c, _ in extra] + [_ERROR]]

    return raw.mapInPandas(run, _schema_of(like, extra=extra + [(_ERROR, "string")])), like


def _raise_first_problem(members) -> None:
    """Raise the loader's DataError for the first bad batch found, the events' before the searches'."""
    from pyspark.sql import functions as F

    problems = members.filter(F.col(_ERROR).isNotNull()).select(KIND, _ERROR).limit(20).collect()
    if problems:
        first = min(problems, key=lambda r: r[KIND] != "event")
        raise DataError(**json.loads(first[_ERROR]))


def read_source(spark, folder: str | Path, name: str | None = None, partitions: int | None = None) -> SparkSource:
    """Read a Parquet folder (items.parquet and events.parquet; users.parquet and searches.parquet optional) with
    the events and searches in Spark; raise DataError naming the file, column and rows on bad input."""
    from pyspark.sql import functions as F

    folder = Path(folder).expanduser()
    files = {t: folder / f"{t}.parquet" for t in ("users", "items", "events", "searches")}
    if not folder.is_dir():
        raise DataError("expected a folder holding items.parquet and events.parquet", file=str(folder))
    for table in ("items", "events"):
        if not files[table].is_file():
            raise DataError(f"required file {table}.parquet not found", file=str(files[table]),
                            hint="a parquet folder holds items.parquet and events.parquet, and optionally "
                                 "users.parquet and searches.parquet")
    report = LoadReport()
    items = coerce_table(_read_parquet(files["items"]), ITEMS, str(files["items"]))
    raw = _read(spark, files["events"])
    if files["users"].is_file():
        users = coerce_table(_read_parquet(files["users"]), USERS, str(files["users"]))
    else:
        ids = [r[0] for r in raw.select("user_id").distinct().collect()]
        users = coerce_table(pd.DataFrame({"user_id": ids}), USERS, str(files["users"]))
        report.note(f"no users table: derived {len(users)} users from the events")
    if "watch_fraction" not in raw.columns and "rating" not in raw.columns:
        raise DataError("events need a watch_fraction (implicit feedback) or a rating (explicit feedback) column",
                        file=str(files["events"]), column="watch_fraction")
    n_rows = _parquet_rows(files["events"])
    parts = partitions or default_partitions(spark, n_rows)
    events, like = _checked(spark, files["events"], EVENTS, _event_checks(users, items))
    searches, first = None, None
    if files["searches"].is_file() and _parquet_rows(files["searches"]) > 0:  # an empty file: no searches, as loaded
        searches, first = _checked(spark, files["searches"], SEARCHES, _search_checks(users), keep_rows=True)
    # one shuffle by member; exact duplicate events share their member, and a search keeps its row number (two
    # equal searches stay two, as loaded)
    members = member_records(spark, events, searches, users).repartition(parts, "user_id").dropDuplicates().cache()
    kinds = {r[KIND]: r["count"] for r in members.groupBy(KIND).count().collect()}
    try:
        _raise_first_problem(members)
    except DataError:
        members.unpersist()
        raise
    members = members.drop(_ERROR)
    n_kept = int(kinds.get("event", 0))
    if n_rows > n_kept:
        report.drop(f"exact duplicate rows in {files['events'].name}", n_rows - n_kept)
    search_columns = None if searches is None else tuple(first.columns)
    source = SparkSource(name or folder.resolve().name, None, members, parts, tuple(like.columns), search_columns,
                         None, None, report, n_kept)
    bounds = source.events.agg(F.min("timestamp").alias("lo"), F.max("timestamp").alias("hi")).collect()[0]
    probe = _probe(source.events, like, str(files["events"]))
    queries = _empty_searches()
    if searches is not None:
        words = sorted(r[0] for r in source.searches.select("query").distinct().collect() if r[0] is not None)
        queries = pd.DataFrame({"user_id": users["user_id"].iloc[0], "timestamp": first["timestamp"].iloc[0],
                                "query": words}, columns=["user_id", "timestamp", "query"])
    shell = Dataset(users=users, items=items, events=probe, searches=queries, name=source.name, report=report)
    return replace(source, shell=shell, start=pd.Timestamp(bounds["lo"]), end=pd.Timestamp(bounds["hi"]))


def _probe(events, like: pd.DataFrame, file: str) -> pd.DataFrame:
    """One made-up event with, per column, a value the data holds somewhere (missing where it holds none), in the
    loader's types: what `FeatureBuilder.fit` reads of the events. The first rows (`like`) answer for the columns
    they fill; only the others are looked for in the whole log."""
    from pyspark.sql import functions as F

    empty = [c for c in like.columns if like[c].isna().all()]
    found = events.agg(*[F.first(F.col(f"`{c}`"), ignorenulls=True).alias(c) for c in empty]).toPandas() \
        if empty else pd.DataFrame(index=[0])
    first = pd.DataFrame({c: found[c].to_numpy() if c in empty else like[c].dropna().to_numpy()[:1]
                          for c in like.columns})
    probe = coerce_table(first, EVENTS, file)
    for c in like.columns:
        if probe[c].notna().all():
            probe[c] = probe[c].astype(like[c].dtype)
    return probe
