"""Test-wide settings: in CI, hypothesis runs derandomised (the same examples every run) with no deadline,
so a loaded machine cannot make a property test flaky. Simulated worlds written with their ground truth, for
the tests that run the A/B test or off-policy estimates on something smaller than the sample."""

import os

import pytest
from hypothesis import settings

from recsys.data.loaders import save_dataset
from recsys.data.synthetic import SyntheticWorld, WorldConfig, write_world_manifest

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def world_with_truth(tmp_path_factory):
    """`world_with_truth(name, config)`: a simulated world written as Parquet with its ground truth (world.json)
    beside it, so the A/B page can run on it; returns its data spec."""
    def write(name: str, config: WorldConfig) -> str:
        world = SyntheticWorld(config)
        folder = tmp_path_factory.mktemp(name) / "world"
        save_dataset(world.simulate(), folder)
        write_world_manifest(world, folder)
        return f"parquet:{folder}"
    return write


@pytest.fixture(scope="session")
def world_spec(world_with_truth):
    """A 200-member world with its ground truth, for the A/B page and its planner."""
    return world_with_truth("abworld", WorldConfig(seed=8, n_users=200, n_movies=120, n_shows=6, days=100))
