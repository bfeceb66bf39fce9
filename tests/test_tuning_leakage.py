"""Tuning, quota learning and the ranker's choice see only the training part of an evaluation fold, under every
protocol: every validation split the tuner carves, every dataset a candidate source is fitted on while the
pipeline or the blend learns, and every hit the ranker is chosen by lies inside the fold's training data (and,
temporally, before the fold's cut)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

import recsys.tuning as tuning
from recsys.candidates.base import CandidateGenerator
from recsys.evaluation.models import BlendPolicy
from recsys.evaluation.protocol import RecommenderPolicy, stratified_folds, temporal_folds, time_cut_folds
from recsys.pipeline import RecommenderConfig

sys.path.insert(0, str(Path(__file__).parent))
from test_tuning import _explicit  # noqa: E402

SOURCES = ("popularity", "ease", "als")


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["user_id"].astype(str), frame["item_id"].astype(str)))


@pytest.fixture
def seen(monkeypatch):
    """Records what tuning splits off (visible and hidden pairs) and every dataset a source is fitted on."""
    record: dict[str, list] = {"visible": [], "hidden": [], "fitted": [], "latest": [], "ranker_rows": [],
                               "full_rows": []}
    split, fit, choose = tuning.validation_split, CandidateGenerator.fit, tuning.tune_ranker

    def spy_split(dataset, *args, **kwargs):
        visible, hidden = split(dataset, *args, **kwargs)
        record["visible"].append(_pairs(visible.events))
        record["hidden"].append(_pairs(hidden))
        return visible, hidden

    def spy_fit(self, dataset, *args, **kwargs):
        record["fitted"].append(_pairs(dataset.events))
        record["latest"].append(dataset.events["timestamp"].max())
        return fit(self, dataset, *args, **kwargs)

    def spy_choose(table, *args, full_rows=None, **kwargs):
        record["ranker_rows"].append(table.features.rows[table.label == 1])

        def spy_full(queries):  # the held-out members' full candidate lists it is scored on
            full = full_rows(queries)
            record["full_rows"].append(full.features.rows[full.label == 1])
            return full
        return choose(table, *args, full_rows=spy_full if full_rows is not None else None, **kwargs)

    monkeypatch.setattr(tuning, "validation_split", spy_split)
    monkeypatch.setattr(tuning, "tune_ranker", spy_choose)
    monkeypatch.setattr(CandidateGenerator, "fit", spy_fit)
    return record


def _policies(rows: str, validation: str) -> dict:
    config = RecommenderConfig(sources=SOURCES, ranker="auto", n_candidates=20, training_rows=rows,
                               ranker_window_days=7, ranker_windows=2, tune="on", validation=validation)
    return {"pipeline": lambda: RecommenderPolicy(config),
            "blend": lambda: BlendPolicy(SOURCES, training_rows=rows, validation=validation)}


@pytest.mark.parametrize("protocol", ["stratified", "temporal", "timecut"])
def test_tuning_and_quota_learning_see_only_the_training_part(seen, protocol):
    data = _explicit()
    if protocol == "stratified":
        fold, rows = stratified_folds(data, test_ratio=0.25, seed=0)[0], "holdout"
    elif protocol == "temporal":
        fold, rows = temporal_folds(data, n_folds=1, test_days=10, min_train_days=30)[0], "candidates"
    else:
        fold, rows = time_cut_folds(data, test_ratio=0.2)[0], "candidates"
    train, test = _pairs(fold.train.events), _pairs(fold.test_events) | _pairs(fold.truth)
    assert test and not test <= train
    validation = "holdout" if protocol == "stratified" else "temporal"  # as build_policies mirrors the protocol
    for name, make in _policies(rows, validation).items():
        for key in seen:
            seen[key].clear()
        policy = make().fit(fold.train)
        log = policy.model_.tuning_["quotas"] if name == "pipeline" else policy.tuning_["quotas"]
        # under a ranker the candidates' recall counts, alone the blend's own NDCG@10
        assert log["objective"] == ("recall@20" if name == "pipeline" else "ndcg@10")
        assert seen["hidden"] and seen["fitted"], name  # tuning ran and carved its validation split
        assert policy.model_.tuning_["quotas"]["split"] == validation if name == "pipeline" else True
        for pairs in seen["visible"] + seen["hidden"] + seen["fitted"]:
            assert pairs <= train, name
            if protocol == "stratified":  # a held-out (member, title) is nowhere in what the tuner saw
                assert not pairs & _pairs(fold.truth), name
        if protocol != "stratified":
            assert max(seen["latest"]) < fold.now, name  # nothing from the test window
        # the validation's hidden part is a part of the training data the tuned sources were not fitted on
        assert any(not (hidden & fitted) for hidden in seen["hidden"] for fitted in seen["fitted"]), name
        if name == "pipeline":  # the ranker's choice: its rows' hits are the training part's, before the cut
            (positives,), (listed,) = seen["ranker_rows"], seen["full_rows"]
            for hits in (positives, listed):
                assert len(hits) and _pairs(hits) <= train and not _pairs(hits) & _pairs(fold.truth)
                assert hits["timestamp"].max() <= fold.now
            assert policy.model_.config.ranker == policy.model_.tuning_["ranker"]["chosen"]


@pytest.mark.parametrize("protocol, validation", [("stratified", "holdout"), ("temporal", "temporal"),
                                                  ("timecut", "temporal")])
def test_evaluation_policies_validate_on_a_split_like_their_protocol(protocol, validation):
    from recsys.evaluation.models import build_policies
    from recsys.pipeline import validation_kind

    data = _explicit()
    policies = build_policies(["ease", "blend", "logistic"], "sample", protocol, 0)
    assert policies["ease"]().validation == policies["blend"]().validation == validation
    assert validation_kind(policies["logistic"]().config, data) == validation
