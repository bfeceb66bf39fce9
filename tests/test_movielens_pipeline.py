"""The whole pipeline on data in the MovieLens-100k layout (explicit ratings, no devices or synopses)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import load_dataset
from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.evaluation.protocol import GeneratorPolicy, RecommenderPolicy, SharedStages, stratified_folds
from recsys.evaluation.report import evaluate, ranker_choices
from recsys.pipeline import Recommender, RecommenderConfig

ML_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
             "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def write_ml100k(folder, seed: int = 4) -> None:
    """A simulated world's plays written as MovieLens-100k files: finished -> 4-5 stars, abandoned -> 1-2."""
    world = SyntheticWorld(WorldConfig(seed=seed, n_users=300, n_movies=250, n_shows=0, days=150))
    data = world.simulate()
    plays = data.events[data.events["watch_fraction"] > 0].drop_duplicates(["user_id", "item_id"], keep="last")
    rng = np.random.default_rng(seed)
    wf = plays["watch_fraction"].to_numpy()
    rating = np.where(wf > 0.8, rng.choice([4, 5], len(wf)), np.where(wf < 0.1, rng.choice([1, 2], len(wf)), 3))
    users = {u: k + 1 for k, u in enumerate(data.users["user_id"])}
    items = {i: k + 1 for k, i in enumerate(data.items["item_id"])}
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "u.data", "w") as fh:
        for u, i, r, t in zip(plays["user_id"], plays["item_id"], rating, plays["timestamp"]):
            fh.write(f"{users[u]}\t{items[i]}\t{r}\t{int(t.timestamp())}\n")
    with open(folder / "u.item", "w", encoding="latin-1") as fh:
        for row in data.items.itertuples():
            flags = ["1" if {"Family": "Children's"}.get(g, g) in row.genres else "0" for g in ML_GENRES]
            fh.write(f"{items[row.item_id]}|{row.title} ({row.release_year})|01-Jan-{row.release_year}||"
                     f"http://example.invalid|{'|'.join(flags)}\n")
    with open(folder / "u.user", "w") as fh:
        for row in data.users.itertuples():
            fh.write(f"{users[row.user_id]}|{row.age}|{'F' if row.gender == 'F' else 'M'}|other|00000\n")


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ml-100k")
    write_ml100k(folder)
    return load_dataset(f"movielens:{folder}")


def test_temporal_and_holdout_training_both_work_on_explicit_data(ml):
    assert ml.feedback == "explicit"
    for rows in ("candidates", "holdout"):
        model = Recommender(RecommenderConfig(sources=("popularity", "ease", "als"), ranker="logistic",
                                              n_candidates=80, training_rows=rows, ranker_window_days=14,
                                              ranker_windows=2)).fit(ml)
        out = model.recommend(list(ml.users["user_id"].iloc[:10]), k=10)
        assert len(out) == 100 and out["reason"].str.len().gt(0).all()
        assert "device" not in model.builder_.feature_set  # MovieLens has no devices: absent, not faked
        rated = ml.events[["user_id", "item_id"]]
        assert out.merge(rated, on=["user_id", "item_id"]).empty  # previously rated titles are excluded


def test_stratified_protocol_runs_every_kind_of_model(ml):
    folds = stratified_folds(ml, test_ratio=0.25, seed=0)
    small = {"sources": ("popularity", "ease", "als"), "n_candidates": 80, "training_rows": "holdout"}
    shared = SharedStages()
    report = evaluate(ml, {"ease": lambda: GeneratorPolicy(("ease",)),
                           "logistic": lambda: RecommenderPolicy(RecommenderConfig(**small, ranker="logistic"), shared),
                           "pipeline": lambda: RecommenderPolicy(RecommenderConfig(**small), shared)},
                      folds, k=10, max_k=10, n_boot=100)
    for name in ("ease", "logistic", "pipeline"):
        assert 0 < report["models"][name]["metrics"]["ndcg"]["estimate"] < 1
    # a named ranker serves itself; "auto" says which it chose, and by which validation scores
    assert report["models"]["logistic"]["ranker"] == [{"ranker": "logistic"}]
    (choice,) = report["models"]["pipeline"]["ranker"]
    assert choice["ranker"] == choice["chosen_by"]["chosen"] in ("logistic", "boosting")
    (line,) = ranker_choices(report)
    assert line.startswith(f"pipeline, fold 1: ranker {choice['ranker']}, chosen by ndcg@10 on ") and "boosting 0." in line


def test_on_ratings_the_default_serves_exactly_what_the_previous_default_served(ml):
    """No impressions, no durations, no exposure to learn from: "auto" rows are candidate rows, lists stay in
    P(watch) order, and the lists are the previous default's, bit for bit (MovieLens loses nothing), once both
    draw negatives alike (the default's hash sampling, the one change that reaches ratings data) and use the
    same ranker (on ratings "auto" chooses it on validation: the next test)."""
    from dataclasses import replace

    from recsys.pipeline import PREVIOUS_DEFAULT

    small = {"sources": ("popularity", "ease", "als"), "n_candidates": 80, "ranker_window_days": 14,
             "ranker_windows": 2, "ranker": "logistic"}
    new = Recommender(RecommenderConfig(**small)).fit(ml)
    assert new.config.training.sampler == "hash" and PREVIOUS_DEFAULT.training.sampler == "random"
    old = Recommender(replace(PREVIOUS_DEFAULT, training=new.config.training, **small)).fit(ml)
    assert new.training_summary_["rows_from"] == "candidates"
    assert new.builder_.feature_set.names() == old.builder_.feature_set.names()
    users = list(ml.users["user_id"].iloc[:40])
    a, b = new.recommend(users, k=10), old.recommend(users, k=10)
    assert a["item_id"].tolist() == b["item_id"].tolist()
    np.testing.assert_array_equal(a["score"].to_numpy(), b["score"].to_numpy())
    assert a["expected_minutes"].isna().all()  # no durations in MovieLens


@pytest.mark.parametrize("rows", ["candidates", "holdout"])
def test_on_ratings_the_default_ranker_is_chosen_on_its_own_rows(ml, rows):
    """"auto" fits logistic regression and LightGBM without the latest rows of a random share of the members (the
    latest window's, or the one moment holdout rows share), keeps the better NDCG@10 of those members' full
    candidate lists, and serves it fitted on every row, exactly as that ranker named."""
    small = {"sources": ("popularity", "ease", "als"), "n_candidates": 80, "training_rows": rows,
             "ranker_window_days": 14, "ranker_windows": 2}
    model = Recommender(RecommenderConfig(**small)).fit(ml)
    log = model.tuning_["ranker"]
    assert log["split"] == ("members" if rows == "holdout" else "members at the latest moment")
    assert set(log["scores"]) == {"logistic", "boosting"} and all(0 < v <= 1 for v in log["scores"].values())
    assert model.config.ranker == log["chosen"] == max(log["scores"], key=log["scores"].get)
    assert log["train_rows"] + log["valid_rows"] == model.training_summary_["rows"]
    # scored on the held-out members' full candidate lists: every negative the training rows' sample dropped
    assert log["lists"] == "full lists" and log["scored_rows"] > log["valid_rows"]
    if rows == "candidates":  # a share of the latest window's members held out: part of its rows, unsampled
        latest = model.training_summary_["balance"][-1]
        assert log["valid_rows"] < latest["positives"] + latest["negatives_after"]
        assert log["scored_rows"] < latest["positives"] + latest["negatives_before"]
    # chosen alike when "auto" is asked of a model fitted with a named ranker (how an evaluation shares stages)
    later = Recommender(RecommenderConfig(**small, ranker="logistic")).fit(ml).with_ranker("auto")
    without_times = lambda entry: {k: v for k, v in entry.items() if k != "seconds"}  # noqa: E731
    assert without_times(later.tuning_["ranker"]) == without_times(log) and later.config.ranker == log["chosen"]
    named = model.with_ranker(log["chosen"])
    assert "ranker" not in named.tuning_ and named.config.ranker == log["chosen"]
    users = list(ml.users["user_id"].iloc[:30])
    pd.testing.assert_frame_equal(model.recommend(users, k=10), named.recommend(users, k=10))
