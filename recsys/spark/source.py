"""A Parquet dataset folder read by Spark's executors, not by the driver: the catalogue and the member records (the
feature builder's static facts) on the driver, the events and searches checked with the loader's own rules
(types, required values, references to members and titles, nothing before a member's signup or a title's
arrival), exact duplicate events dropped and counted as `load_dataset` does.

The checks run as Spark expressions where the file's column types allow (`_in_spark`): each rule becomes a
condition, and only the rows some condition flags (a value the loader would strip, refuse or turn missing) go
through the loader's pandas rules, which raise its own message; the others never leave the JVM. A file with no
flagged row is scanned once (`_Checked.fast`); only a read that finds one is done again, the flagged rows then
going through those rules (`_Checked.full`). A file in other types goes through those rules batch by batch.

The checked events, searches and member records are shuffled once, by member, into one cached DataFrame
(`SparkSource.members`, each record tagged by `_kind`): every record of a member sits in one partition, so the
training table's member pass runs on those partitions as they are, with no second shuffle. What reaches the
driver grows with the catalogue and the members, never with the events."""

from __future__ import annotations

import json
import operator
import re
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import reduce
from pathlib import Path
from typing import Any, Iterator

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
#: Member or title tables up to this many rows are copied to every executor for the read's checks.
BROADCAST_ROWS = 2_000_000
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
    """A Parquet file as a Spark DataFrame; nanosecond timestamps (what pandas writes) come as whole nanoseconds,
    which Spark cannot hold as timestamps (`_as_times` and `_in_spark` turn them back)."""
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    return spark.read.parquet(str(file))


def _split_bytes(spark, file: Path) -> int:
    """The Parquet split that spreads `file` (the events) over one read task per core (at row groups; from 1 MB
    to Spark's default 128 MB)."""
    cores = max(1, spark.sparkContext.defaultParallelism)
    return min(128 << 20, max(1 << 20, file.stat().st_size // cores))


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


#: The look-ups of the Spark checks: (key, the table's "not before" column, prefix of the columns they add).
_LOOKUPS = (("user_id", "signup_time", "_u"), ("item_id", "added_at", "_i"))
#: The columns the Spark checks add to a file's own (a file holding one takes the pandas path).
_SUSPECT = "_suspect"  # a row some check condition flags (`_Checked.fast`)
_INTERNAL = {f"{tag}_{part}" for _, _, tag in _LOOKUPS for part in ("key", "since")} | {_SUSPECT}
_VISIBLE = "[!-~]"  # printable ASCII other than the space: text that starts and ends with it needs no stripping
_INTEGRAL = ("bigint", "int", "smallint", "tinyint")
_FLOATING = ("double", "float")


def _visible_ends(col):
    """Whether text starts and ends with a _VISIBLE character (what needs no stripping), by comparing its first
    and last characters: a regular expression costs a Java string per value, and ids are on every event."""
    from pyspark.sql import functions as F

    first, last = F.substring(col, 1, 1), F.substring(col, -1, 1)
    return (first >= F.lit("!")) & (first <= F.lit("~")) & (last >= F.lit("!")) & (last <= F.lit("~"))


def _in_spark(raw, like: pd.DataFrame, schema: TableSchema, nanos: list[str]):
    """(typed column expressions in the file's column order, suspect conditions) for a table whose every column
    comes in a Parquet type that its kind reads as it is; None when one does not (the whole table then takes the
    loader's pandas path). For a row where no suspect condition holds, the expressions give exactly what
    `coerce_table` would: the conditions flag every value the loader's rules might change or refuse (text to
    strip, missing required values, values out of range, infinities, out-of-span times)."""
    from pyspark.sql import functions as F

    from .training import _type_of

    types = dict(raw.dtypes)
    columns = [c for c in raw.columns if c != _ROW]
    if list(like.columns) != columns or set(columns) & _INTERNAL:
        return None
    known = {c.name: c for c in schema.columns}
    exprs, suspect = [], []
    for name in columns:
        col, kind, want = F.col(f"`{name}`"), types[name], _type_of(like[name])
        spec = known.get(name)
        if spec is None:  # a column outside the schema is kept as it is
            if kind == "string" == want:
                value = col
            elif kind in _INTEGRAL and want == "bigint":
                value = col.cast("bigint")
            elif kind in _FLOATING and want == "double":
                value = F.when(F.isnan(col), None).otherwise(col.cast("double"))
            else:
                return None
        elif spec.kind in ("id", "str", "category"):
            if kind != "string" or want != "string":
                return None
            value = col
            if spec.kind == "id":  # ids are stripped, blanks missing
                suspect.append(col.isNotNull() & ~_visible_ends(col))
            if spec.required:
                suspect.append(col.isNull())
                if spec.kind == "str":  # text of spaces alone is missing
                    suspect.append(~col.rlike(_VISIBLE))
        elif spec.kind in ("int", "float"):
            whole = spec.kind == "int"
            if kind not in (_INTEGRAL if whole else _INTEGRAL + _FLOATING) or want != ("bigint" if whole else "double"):
                return None
            number = col.cast("bigint" if whole else "double")
            present = col.isNotNull() if whole or kind in _INTEGRAL else col.isNotNull() & ~F.isnan(col)
            value = number if whole else F.when(present, number)
            if not whole:
                suspect.append(present & ((number == float("inf")) | (number == float("-inf"))))
            else:
                suspect.append((number > 2**53) | (number < -(2**53)))
            if spec.min_value is not None:
                suspect.append(present & (number < spec.min_value))
            if spec.max_value is not None:
                suspect.append(present & (number > spec.max_value))
            if spec.required:
                suspect.append(~present)
        elif spec.kind == "datetime":
            if name not in nanos or kind != "bigint" or want != "timestamp":
                return None
            lo, hi = pd.Timestamp.min.ceil("s").value, pd.Timestamp.max.floor("s").value
            suspect.append((col < lo) | (col > hi))
            if spec.required:
                suspect.append(col.isNull())
            value = F.timestamp_micros(F.expr(f"(`{name}` - pmod(`{name}`, 1000)) div 1000"))  # floored, as numpy
        else:
            return None
        exprs.append(value)
    return exprs, suspect


def _spark_checks(spark, raw, table: str, users: pd.DataFrame, items: pd.DataFrame | None):
    """`raw` with the loader's row checks as conditions: the references to members (and titles) looked up, and
    nothing before a member's signup (or a title's arrival); returns (joined frame, suspect conditions)."""
    from pyspark.sql import functions as F

    conditions = []
    for frame, (key, since, tag) in zip((users, items), _LOOKUPS):
        if frame is None:
            continue
        times = frame[since] if since in frame.columns else pd.Series(pd.NaT, index=frame.index, dtype="M8[ns]")
        nanos = pd.Series(times.astype("M8[ns]").astype("int64"), dtype="Int64").mask(times.isna().to_numpy())
        lookup = pd.DataFrame({f"{tag}_key": frame[key].astype(str).to_numpy(), f"{tag}_since": nanos.to_numpy()})
        side = spark.createDataFrame(lookup, f"{tag}_key string, {tag}_since bigint")
        if len(frame) <= BROADCAST_ROWS:  # else a join by key, which Spark shuffles for
            side = F.broadcast(side)
        raw = raw.join(side, raw[key] == side[f"{tag}_key"], "left")
        conditions.append(F.col(f"{tag}_key").isNull())
        conditions.append(F.col(f"{tag}_since").isNotNull() & (F.col("timestamp") < F.col(f"{tag}_since")))
    if table == "events":  # feedback present (read_source has made sure the file has a feedback column)
        feedback = [c for c in ("watch_fraction", "rating") if c in raw.columns]
        conditions.append(reduce(operator.and_, [F.col(c).isNull() | F.isnan(c) for c in feedback]))
    return raw, conditions


@dataclass(frozen=True)
class _Checked:
    """A Parquet table read lazily, with no shuffle, in one of two ways. `full`: every row checked, those Spark's
    conditions flag (or, where the file's types keep Spark's expressions out, every row) through the loader's
    pandas rules. `fast` (None without Spark's expressions): every row typed by Spark's expressions and flagged
    (`_suspect`), with no pandas and one scan of the file, equal to `full` wherever no row is flagged (`full` scans
    the file once for the rows that pass and once for those flagged). `like`: the first rows, coerced."""

    full: Any
    fast: Any
    like: pd.DataFrame


def _checked(spark, file: Path, schema: TableSchema, users: pd.DataFrame, items: pd.DataFrame | None,
             keep_rows: bool = False) -> _Checked:
    """A Parquet table's checked rows (`_Checked`). Where the file's types allow (`_in_spark`), Spark's own
    expressions type and check the rows, and only the suspect ones go through the loader's pandas rules; otherwise
    every Arrow batch does. A batch's first problem becomes one row whose `_error` holds the loader's DataError,
    rows numbered as in the file. `keep_rows` keeps each row's number in the file (`_row`: two equal rows stay
    two). References are checked against `users` and `items` (None: the table names no titles, as searches)."""
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
    check = _search_checks(users) if items is None else _event_checks(users, items)

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

    schema_text = _schema_of(like, extra=extra + [(_ERROR, "string")])
    # the pandas rules give naive times, which Spark reads in the session's time zone: the expressions' UTC
    # instants equal them only in a UTC session (as `spark_session` makes)
    utc = spark.conf.get("spark.sql.session.timeZone") in ("UTC", "Etc/UTC", "GMT", "Z", "+00:00")
    typed = _in_spark(raw, like, schema, nanos) if utc else None
    if typed is None:
        return _Checked(raw.mapInPandas(run, schema_text), None, like)
    exprs, suspect = typed
    joined, row_checks = _spark_checks(spark, raw, schema.name, users, items)
    flags = [F.coalesce(c, F.lit(False)) for c in suspect + row_checks]
    flagged = joined.withColumn(_SUSPECT, reduce(operator.or_, flags))
    rest = [*[F.col(_ROW).cast("bigint") for _ in extra], F.lit(None).cast("string").alias(_ERROR)]
    clean = flagged.filter(~F.col(_SUSPECT)).select(*[e.alias(c) for e, c in zip(exprs, columns)], *rest)
    odd = flagged.filter(F.col(_SUSPECT)).select(*[F.col(f"`{c}`") for c in raw.columns])
    # a flagged row's values are left missing in `fast` (it is read again by `full`): no expression meets them
    fast = flagged.select(*[F.when(~F.col(_SUSPECT), e).alias(c) for e, c in zip(exprs, columns)], *rest, _SUSPECT)
    return _Checked(clean.unionByName(odd.mapInPandas(run, schema_text)), fast, like)


def _raise_first_problem(members) -> None:
    """Raise the loader's DataError for the first bad batch found, the events' before the searches'."""
    from pyspark.sql import functions as F

    problems = members.filter(F.col(_ERROR).isNotNull()).select(KIND, _ERROR).limit(20).collect()
    if problems:
        first = min(problems, key=lambda r: r[KIND] != "event")
        raise DataError(**json.loads(first[_ERROR]))


def read_source(spark, folder: str | Path, name: str | None = None, partitions: int | None = None) -> SparkSource:
    """Read a Parquet folder (items.parquet and events.parquet; users.parquet and searches.parquet optional) with
    the events and searches in Spark; raise DataError naming the file, column and rows on bad input. The session's
    split size and cache compression are set for the read alone (`_session_confs`)."""
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
    confs = {"spark.sql.files.maxPartitionBytes": str(_split_bytes(spark, files["events"])),
             # the member records are cached once and read by every pass after: plain columns build and read
             # faster than compressed ones (6 s of x16's 38 s read)
             "spark.sql.inMemoryColumnarStorage.compressed": "false"}
    with _session_confs(spark, confs):
        return _read_folder(spark, folder, files, name, partitions, report, items)


@contextmanager
def _session_confs(spark, confs: dict[str, str]):
    """The session's `confs` set while the folder is read (each read is planned at its first action, and the
    member records are cached by the end), then as they were."""
    before = {key: spark.conf.get(key, None) for key in confs}
    for key, value in confs.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _read_folder(spark, folder: Path, files: dict[str, Path], name: str | None, partitions: int | None,
                 report: LoadReport, items: pd.DataFrame) -> SparkSource:
    """`read_source` past its checks of the folder, with the session's read settings in place."""
    from pyspark.sql import functions as F

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
    events = _checked(spark, files["events"], EVENTS, users, items)
    like = events.like
    searches, first = None, None
    if files["searches"].is_file() and _parquet_rows(files["searches"]) > 0:  # an empty file: no searches, as loaded
        searches = _checked(spark, files["searches"], SEARCHES, users, None, keep_rows=True)
        first = searches.like

    def gathered(tables: list[Any]):
        # one shuffle by member; exact duplicate events share their member, and a search keeps its row number (two
        # equal searches stay two, as loaded)
        return member_records(spark, tables[0], tables[1], users).repartition(parts, "user_id").dropDuplicates() \
            .cache()

    # first in one scan of each file, every row typed by Spark; only where a row is flagged, again with the
    # flagged rows through the loader's rules
    fast = [None if t is None else (t.fast if t.fast is not None else t.full.withColumn(_SUSPECT, F.lit(False)))
            for t in (events, searches)]
    members = gathered(fast)
    counts = members.groupBy(KIND).agg(F.count(F.lit(1)).alias("n"), F.max(F.col(_SUSPECT).cast("int")).alias("odd"))
    found = counts.collect()
    kinds = {r[KIND]: r["n"] for r in found}
    if any(r["odd"] for r in found):
        members.unpersist()
        members = gathered([None if t is None else t.full for t in (events, searches)])
        kinds = {r[KIND]: r["count"] for r in members.groupBy(KIND).count().collect()}
    try:
        _raise_first_problem(members)
    except DataError:
        members.unpersist()
        raise
    members = members.drop(_ERROR, _SUSPECT)
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
