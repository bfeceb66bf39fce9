"""Shared data for the page tests: a tiny simulated world written as a CSV folder, and an app cache of
this session's own for what is trained on it (models trained on the sample stay in the shared cache).
Worlds with their ground truth come from tests/conftest.py."""

from __future__ import annotations

import pytest

from pathlib import Path

from streamlit.testing.v1 import AppTest

from recsys.data.loaders import save_dataset
from recsys.data.synthetic import SyntheticWorld, WorldConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_world_dir(tmp_path_factory):
    """60 members, 40 movies and 3 shows over 60 days: enough for every stage, trained in seconds."""
    data = SyntheticWorld(WorldConfig(seed=5, n_users=60, n_movies=40, n_shows=3, days=60)).simulate()
    folder = tmp_path_factory.mktemp("tiny") / "tiny-world"
    save_dataset(data, folder, fmt="csv")
    return folder


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("app-cache")


@pytest.fixture()
def ab_page():
    """Open the A/B page on a data spec: `ab_page(spec)` returns the run AppTest."""
    def open_page(spec: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "pages" / "ab_test.py"), default_timeout=180)
        at.session_state["data_spec"] = spec
        return at.run()
    return open_page
