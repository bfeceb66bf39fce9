"""The stages that grow with members and events, on Apache Spark (`pip install -e '.[spark]'`, Java 17):
the ranker's training table (`training`), the pipeline's training windows built from it (`windows`), every
member's batch lists (`batch`) and offline metrics over lists (`metrics`). Importing this package does not
import pyspark; the functions do, through `session.check_spark`'s clear messages."""

from .batch import LIST_COLUMNS, BatchSummary, batch_local, batch_spark, read_lists, spark_lists
from .session import SparkUnavailable, check_spark, spark_session
from .training import TableSummary, read_training_table, training_table_local, training_table_spark, write_training_table
from .windows import SparkWindowTables, feature_rows_of

__all__ = ["LIST_COLUMNS", "BatchSummary", "batch_local", "batch_spark", "read_lists", "spark_lists",
           "SparkUnavailable", "check_spark", "spark_session", "TableSummary", "read_training_table",
           "training_table_local", "training_table_spark", "write_training_table", "SparkWindowTables",
           "feature_rows_of"]
