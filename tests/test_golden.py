"""Results do not drift: a pipeline trained on the sample gives the top-10 lists pinned in
tests/golden/top10_sample.csv (written by tests/golden/make_top10.py; its docstring says why the
pinned pipeline leaves out the two-tower network, and why CPUs without AVX-512 read their own files in
tests/golden/noavx512/), the previous default gives the lists it gave
(top10_previous_default.csv, the A/B page's old arm), and one member alone gets the list they get in
a batch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import load_dataset
from recsys.pipeline import Recommender, RecommenderConfig

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))
from make_top10 import golden_lists, golden_run, members, pinned_path, previous_default  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def golden_cache(tmp_path_factory):
    """One embedding cache for this module's golden runs: only they fill it, each the same way."""
    return tmp_path_factory.mktemp("golden-embeddings")


@pytest.fixture(scope="module")
def pinned(golden_cache):
    """(data, model, lists): the golden pipeline on the sample and its lists."""
    data = load_dataset("sample")
    return (data, *golden_run(data, Recommender, RecommenderConfig, cache=golden_cache))


def _same_as_pinned(data, lists, file: str) -> None:
    golden = pd.read_csv(pinned_path(file), dtype={"user_id": str, "item_id": str})
    wanted = members(data)
    assert sorted(golden["user_id"].unique()) == wanted
    got = lists.groupby("user_id", sort=False)["item_id"].apply(list)
    expected = golden.groupby("user_id", sort=False)["item_id"].apply(list)
    different = [u for u in wanted if got.get(u) != expected.get(u)]
    assert not different, f"{len(different)} lists changed, e.g. {different[:5]}"
    # the scores agree to 1e-4 (BLAS kernels may round the last bits differently by CPU)
    joined = golden.merge(lists, on=["user_id", "item_id", "rank"], suffixes=("_before", "_now"))
    assert len(joined) == len(golden)
    np.testing.assert_allclose(joined["score_now"], joined["score_before"], rtol=1e-4, atol=1e-9)


def test_top10_lists_of_500_members_equal_the_pinned_ones(pinned):
    data, _, lists = pinned
    _same_as_pinned(data, lists, "top10_sample.csv")


def test_the_previous_default_still_gives_the_lists_it_gave(pinned, golden_cache):
    data = pinned[0]
    _same_as_pinned(data, golden_lists(data, Recommender, previous_default, cache=golden_cache),
                    "top10_previous_default.csv")


def test_a_member_alone_gets_the_list_they_get_in_a_batch(pinned):
    data, model, _ = pinned
    wanted = members(data)[:400]
    batch = model.recommend(wanted, k=10)
    for member in wanted[::20]:
        alone = model.recommend([member], k=10)
        pd.testing.assert_frame_equal(alone.reset_index(drop=True),
                                      batch[batch["user_id"] == member].reset_index(drop=True))
