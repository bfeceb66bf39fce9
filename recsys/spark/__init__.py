"""The stages that grow with members and events, on Apache Spark (`pip install -e '.[spark]'`, Java 17):
every member's batch lists (`batch`) and offline metrics over lists (`metrics`). Importing this package does not
import pyspark; the functions do, through `session.check_spark`'s clear messages."""

from .batch import LIST_COLUMNS, BatchSummary, batch_local, batch_spark, read_lists, spark_lists
from .session import SparkUnavailable, check_spark, spark_session

__all__ = ["LIST_COLUMNS", "BatchSummary", "batch_local", "batch_spark", "read_lists", "spark_lists",
           "SparkUnavailable", "check_spark", "spark_session"]
