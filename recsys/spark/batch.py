"""Every member's top k from a saved model, as a Parquet table (member, rank, title, title_name, score, source,
reason): in one process, or on Spark with the model's folder shipped to every executor (`SparkContext.addFile`)
and each partition of members served by `Recommender.recommend` there.

A member's list is the same bits alone or in any batch (the pipeline serves fixed blocks of members), so the
partitioning never changes a list; the tests check it against `recommend` after repartition(1) and (7).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

__all__ = ["LIST_COLUMNS", "LIST_SCHEMA", "BatchSummary", "batch_local", "batch_spark", "as_list_table",
           "read_lists"]

#: The batch table's columns and their Spark types.
LIST_SCHEMA = ("member string, rank int, title string, title_name string, score double, source string, "
               "reason string")
LIST_COLUMNS = [part.split()[0] for part in LIST_SCHEMA.split(", ")]
_PART = "part-00000.parquet"
Progress = Callable[[str, float], None]
#: Members per `Recommender.recommend` call on either engine: what bounds one call's memory (a Spark Arrow batch
#: holds up to spark.sql.execution.arrow.maxRecordsPerBatch members).
SERVE_CHUNK = 2048


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run wrote: members served, list rows, seconds, where."""

    members: int
    rows: int
    seconds: float
    out: str
    engine: str


def as_list_table(frame: pd.DataFrame) -> pd.DataFrame:
    """`Recommender.recommend`'s frame in the batch table's columns (external ids, plain types)."""
    return pd.DataFrame({
        "member": frame["user_id"].astype(str).to_numpy(), "rank": frame["rank"].astype("int32").to_numpy(),
        "title": frame["item_id"].astype(str).to_numpy(), "title_name": frame["title"].astype(str).to_numpy(),
        "score": frame["score"].astype("float64").to_numpy(), "source": frame["source"].astype(str).to_numpy(),
        "reason": frame["reason"].astype(str).to_numpy()}, columns=LIST_COLUMNS)


def read_lists(path: str | os.PathLike) -> pd.DataFrame:
    """A batch table (either engine's folder) ordered by member and rank."""
    frame = pd.read_parquet(path)
    return frame[LIST_COLUMNS].sort_values(["member", "rank"], kind="stable").reset_index(drop=True)


def _members(model) -> list[str]:
    return model.history_.users["user_id"].astype(str).tolist()


def _replace_folder(tmp: Path, out: Path) -> None:
    """Publish the finished folder `tmp` at `out`: a reader sees the old table or the new one (two renames; the old
    table is put back if the second fails)."""
    if not out.exists():
        tmp.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _publish(out: Path, write: Callable[[Path], None]) -> None:
    """Let `write` fill a fresh folder beside `out`, then publish it; nothing is left behind if it fails."""
    tmp = _tmp_beside(out)
    try:
        write(tmp)
        _replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _tmp_beside(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")


def batch_local(artifacts: str | os.PathLike, out: str | os.PathLike, k: int = 10,
                context: dict[str, Any] | None = None, chunk: int = SERVE_CHUNK,
                progress: Progress | None = None) -> BatchSummary:
    """Every member's top k in this process, written as `out/part-00000.parquet`."""
    from ..pipeline import Recommender

    say = progress or (lambda message, fraction: None)
    t = time.perf_counter()
    model = Recommender.load(artifacts)
    members = _members(model)
    parts = []
    for start in range(0, len(members), chunk):
        say(f"members {start:,} to {min(start + chunk, len(members)):,} of {len(members):,}", start / max(len(members), 1))
        parts.append(as_list_table(model.recommend(members[start:start + chunk], k=k, context=context)))
    table = pd.concat(parts, ignore_index=True) if parts else as_list_table(model.recommend([], k=k))

    def write(tmp: Path) -> None:
        tmp.mkdir()
        table.to_parquet(tmp / _PART, index=False)

    _publish(Path(out), write)
    say("done", 1.0)
    return BatchSummary(len(members), len(table), round(time.perf_counter() - t, 2), str(out), "local")


_WORKER_MODELS: dict[str, Any] = {}
#: Per Spark context, the model folders shipped to its executors: name -> the manifest's SHA-256.
_SHIPPED: dict[int, dict[str, str]] = {}


def _worker_model(name: str):
    """The model an executor serves: loaded once per Python worker from the folder Spark shipped to it."""
    from pyspark import SparkFiles

    from ..pipeline import Recommender

    if name not in _WORKER_MODELS:
        _WORKER_MODELS[name] = Recommender.load(SparkFiles.get(name))
    return _WORKER_MODELS[name]


def _serve_partition(name: str, k: int, context: dict[str, Any] | None, chunk: int):
    def serve(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _worker_model(name)
        for batch in batches:
            ids = batch["member"].astype(str).tolist()
            for lo in range(0, len(ids), chunk):
                yield as_list_table(model.recommend(ids[lo:lo + chunk], k=k, context=context))
    return serve


def spark_lists(spark, artifacts: str | os.PathLike, k: int = 10, context: dict[str, Any] | None = None,
                partitions: int | None = None, members: list[str] | None = None, chunk: int = SERVE_CHUNK):
    """The batch table as a Spark DataFrame (lazy): members spread over `partitions` (default: the session's
    parallelism), each partition served by the shipped model `chunk` members per call (one model folder name per
    session: Spark ships files by name)."""
    from ..persistence import saved_member_ids

    folder = Path(artifacts).resolve()
    if members is None:
        members = saved_member_ids(folder)
    name = folder.name
    manifest = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    shipped = _SHIPPED.setdefault(id(spark.sparkContext), {})
    if shipped.setdefault(name, manifest) != manifest:
        raise ValueError(f"a model folder named {name!r} with other contents was already shipped in this Spark "
                         "session (Spark ships files by name, once): save the new model under another folder name, "
                         "or start a new session")
    spark.sparkContext.addFile(str(folder), recursive=True)
    ids = spark.createDataFrame(pd.DataFrame({"member": pd.Series(members, dtype=str)}), "member string")
    ids = ids.repartition(partitions or spark.sparkContext.defaultParallelism)
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 member, got {chunk}")
    return ids.mapInPandas(_serve_partition(name, int(k), context, int(chunk)), LIST_SCHEMA)


def write_spark_table(spark, table, out: str | os.PathLike) -> None:
    """Write a Spark DataFrame as a Parquet folder at `out`: a URI on storage the executors share is published by
    Spark's committer; a local path (local masters only) is written beside `out` and replaced only once whole."""
    if "://" in str(out):  # storage the executors share (hdfs://, s3a://, file:///shared)
        table.write.mode("overwrite").parquet(str(out))
    elif not spark.sparkContext.master.startswith("local"):
        raise ValueError(f"{out} is a path on this machine, which executors on {spark.sparkContext.master} cannot "
                         "write: give a URI on storage they share (file:///shared/..., hdfs://..., s3a://...)")
    else:
        _publish(Path(out), lambda tmp: table.write.parquet(tmp.resolve().as_uri()))


def batch_spark(spark, artifacts: str | os.PathLike, out: str | os.PathLike, k: int = 10,
                context: dict[str, Any] | None = None, partitions: int | None = None,
                progress: Progress | None = None) -> BatchSummary:
    """Every member's top k on Spark, written as a Parquet folder at `out` (replaced only once it is whole)."""
    from ..persistence import saved_member_ids

    say = progress or (lambda message, fraction: None)
    t = time.perf_counter()
    say("checking the model and reading its members", 0.0)
    members = saved_member_ids(artifacts)
    say(f"serving {len(members):,} members on {spark.sparkContext.master}", 0.1)
    lists = spark_lists(spark, artifacts, k, context, partitions, members)
    write_spark_table(spark, lists, out)
    rows = spark.read.parquet(str(out)).count()
    say("done", 1.0)
    return BatchSummary(len(members), rows, round(time.perf_counter() - t, 2), str(out), "spark")
