"""Cached access to datasets for the app: frames through st.cache_data, shared by all sessions."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..data import Dataset, load_dataset


@st.cache_resource(show_spinner="Loading data…")
def load_cached_dataset(spec: str) -> Dataset:
    """The dataset for `spec`, loaded once per server process (read-only: never mutate it)."""
    return load_dataset(spec)


@st.cache_data(show_spinner=False)
def dataset_summary(spec: str) -> dict[str, Any]:
    """`Dataset.summary()` for `spec`, cached."""
    return load_cached_dataset(spec).summary()


@st.cache_resource(show_spinner="Building the training table (labels, downsampling, features)…")
def training_table(spec: str, negatives_per_positive: float = 4.0, seed: int = 0):
    """The ranking training table of the whole dataset, built once per setting and shared."""
    from ..training_table import TrainingConfig, build_training_table

    return build_training_table(load_cached_dataset(spec),
                                config=TrainingConfig(negatives_per_positive=negatives_per_positive, seed=seed))


@st.cache_resource(show_spinner="Preparing onboarding (title profiles and synopsis embeddings)…")
def onboarding_model(spec: str):
    """The content-based generator behind cold-start onboarding, fitted once per dataset and shared
    by every session (read-only after fit)."""
    from ..candidates import ContentGenerator

    return ContentGenerator().fit(load_cached_dataset(spec))


@st.cache_resource(show_spinner="Training the pipeline on this dataset (about a minute, once per server)…")
def trained_recommender(spec: str):
    """The default Recommender fitted on the dataset, shared by every session. It is only read after fit:
    no per-member state is kept in it."""
    from .models import cached_model, train_model

    return cached_model(spec) or train_model(spec)


@st.cache_resource(show_spinner="Training the previous default pipeline (about a minute, once per server)…")
def previous_default_recommender(spec: str):
    """The pipeline's previous default (`recsys.pipeline.PREVIOUS_DEFAULT`) fitted on the dataset, for the A/B
    page's old-against-new test and the inspector's side by side; saved like the default, shared by every
    session and only read after fit."""
    from ..pipeline import PREVIOUS_DEFAULT
    from .models import cached_model, train_model

    return cached_model(spec, PREVIOUS_DEFAULT) or train_model(spec, config=PREVIOUS_DEFAULT)


@st.cache_data(show_spinner=False)
def load_report(path: str, modified: float) -> dict:
    """An evaluation report (JSON written by `recsys evaluate`); `modified` keys the cache to the file's mtime."""
    import json

    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@st.cache_resource(show_spinner="Rebuilding the simulated world (ground truth)…")
def simulated_world(spec: str):
    """The simulated world behind `spec` (the sample, or a folder `recsys generate` wrote), or None when the
    data has no world.json. Shared and read-only (the A/B simulator keeps member states outside it)."""
    from ..data.loaders import world_of

    return world_of(spec)
