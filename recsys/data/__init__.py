"""Data: the schema, the validated Dataset container, loaders and the simulated streaming world."""

from .dataset import Dataset, LoadReport
from .errors import DataError
from .loaders import load_dataset, load_movielens, load_table_folder, read_parquet_folder, save_dataset
from .schema import EVENTS, ITEMS, SCHEMAS, SEARCHES, USERS

__all__ = [
    "Dataset", "DataError", "LoadReport", "SCHEMAS", "USERS", "ITEMS", "EVENTS", "SEARCHES",
    "load_dataset", "load_movielens", "load_table_folder", "read_parquet_folder", "save_dataset",
]
