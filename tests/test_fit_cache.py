"""Sharing fits within an evaluation: a model fitted after others in one `shared_fits()` scope gives exactly the
lists it gives fitted alone, while the sources it shares are fitted and tuned once."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pandas.testing as pdt

from recsys.evaluation.models import BlendPolicy
from recsys.evaluation.protocol import GeneratorPolicy, RecommenderPolicy, stratified_folds
from recsys.fit_cache import active_cache, shared_fits
from recsys.pipeline import RecommenderConfig, fit_generator

sys.path.insert(0, str(Path(__file__).parent))
from test_tuning import _explicit  # noqa: E402

SOURCES = ("popularity", "ease", "als")


def test_a_fit_is_shared_by_content_params_and_seed_and_only_inside_the_scope():
    data = _explicit()
    twin = replace(data, events=data.events.copy())  # another object, the same content
    assert active_cache() is None
    assert fit_generator("ease", 0, {"l2": 50.0}, data) is not fit_generator("ease", 0, {"l2": 50.0}, data)
    with shared_fits() as cache:
        first = fit_generator("ease", 0, {"l2": 50.0}, data)
        assert fit_generator("ease", 0, {"l2": 50.0}, twin) is first
        assert fit_generator("ease", 0, {"l2": 100.0}, data) is not first
        assert fit_generator("als", 1, None, data) is not fit_generator("als", 2, None, data)
        fewer = replace(data, events=data.events.iloc[1:].reset_index(drop=True))
        assert fit_generator("ease", 0, {"l2": 50.0}, fewer) is not first
        assert (cache.hits, cache.misses) == (1, 5)
    assert active_cache() is None


def _lists(policy, fold) -> pd.DataFrame:
    recs = policy.recommend(fold.users, 10, fold.now, fold.train.users)
    return recs.sort_values(["user_id", "rank"]).reset_index(drop=True)[["user_id", "item_id", "rank"]]


def test_models_fitted_after_others_in_one_scope_give_their_lists_alone():
    fold = stratified_folds(_explicit(), test_ratio=0.25, seed=0)[0]
    config = RecommenderConfig(sources=SOURCES, ranker="logistic", n_candidates=20, training_rows="holdout",
                               tune="on", validation="holdout")
    makes = {"ease": lambda: GeneratorPolicy(("ease",), training_rows="holdout", tune="on", validation="holdout"),
             "blend": lambda: BlendPolicy(SOURCES, training_rows="holdout", tune="on", validation="holdout"),
             "pipeline": lambda: RecommenderPolicy(config)}
    alone = {name: _lists(make().fit(fold.train), fold) for name, make in makes.items()}
    with shared_fits() as cache:
        together = {name: _lists(make().fit(fold.train), fold) for name, make in makes.items()}
    for name in makes:
        pdt.assert_frame_equal(together[name], alone[name], obj=name)
    # EASE alone: its tuning and its fit (2 made). The blend: EASE's tuning and fit reused, the other two tuned and
    # fitted (4 made), the validation fits its quotas are learned on all three kept by the tunings (3 reused). The
    # pipeline: every tuning, validation fit and serving fit reused (9).
    assert (cache.misses, cache.hits) == (6, 2 + 3 + 9)
