"""Streamlit-only helpers: cached loaders and chart builders. The only part of recsys that imports streamlit."""

from .cache import (
    dataset_summary, load_cached_dataset, load_report, onboarding_model, trained_recommender, training_table,
)

__all__ = ["load_cached_dataset", "dataset_summary", "training_table", "onboarding_model", "trained_recommender",
           "load_report"]
