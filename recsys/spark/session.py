"""A Spark session for recsys's distributed stages, with the set-up checks that give a clear message instead of a
Java stack trace: pyspark installed (the `spark` extra), Java on the path, workers on this interpreter."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["SparkUnavailable", "spark_session", "check_spark"]

JAVA_PACKAGE = "openjdk-17-jre-headless"


class SparkUnavailable(RuntimeError):
    """pyspark or Java is missing: the message names what to install."""


def check_spark() -> None:
    """Raise SparkUnavailable naming what to install when pyspark or Java is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable("pyspark is not installed: pip install -e '.[spark]' (make test installs it)") from None
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        raise SparkUnavailable(f"Spark needs Java, which is not installed: apt-get install {JAVA_PACKAGE} "
                               "(or set JAVA_HOME)")


def spark_session(master: str = "local[*]", app_name: str = "recsys", shuffle_partitions: int | None = None):
    """A SparkSession on `master` (any cluster URL, or local[N]); Python workers run this interpreter. The driver
    JVM's heap is RECSYS_SPARK_DRIVER_MEMORY (default 4g: Spark's 1g runs out holding the training table's input
    events, which the driver hands to Spark; in local mode the executors share that heap)."""
    check_spark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "50000")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.memory", os.environ.get("RECSYS_SPARK_DRIVER_MEMORY", "4g")))
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    return builder.getOrCreate()
