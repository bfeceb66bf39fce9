"""The two-stage Recommender end to end on a small simulated world."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

import pandas as pd
import pytest

from recsys.data import DataError
from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.features import NotFittedError
from recsys.pipeline import PREVIOUS_DEFAULT, ArtifactError, Recommender, RecommenderConfig

WORLD = WorldConfig(seed=21, n_users=250, n_movies=150, n_shows=10, days=120)
CONFIG = RecommenderConfig(sources=("popularity", "ease", "content"), ranker="logistic", n_candidates=60,
                           ranker_window_days=14, ranker_windows=2)


@pytest.fixture(scope="module")
def data():
    return SyntheticWorld(WORLD).simulate()


@pytest.fixture(scope="module")
def model(data):
    return Recommender(CONFIG).fit(data)


def test_recommend_returns_k_ranked_titles_with_reasons(model, data):
    users = list(data.users["user_id"].iloc[:20])
    out = model.recommend(users, k=10)
    assert list(out.columns[:7]) == ["user_id", "rank", "item_id", "title", "score", "source", "reason"]
    per_user = out.groupby("user_id").size()
    assert (per_user == 10).all() and set(per_user.index) == set(users)
    assert out.groupby("user_id")["rank"].apply(lambda r: list(r) == list(range(1, 11))).all()
    assert out["reason"].str.len().gt(5).all()
    assert out["score"].between(0, 1).all()
    # never a title the member already finished
    finished = data.events[data.events["watch_fraction"] > 0.8][["user_id", "item_id"]]
    assert out.merge(finished, on=["user_id", "item_id"]).empty


def test_unknown_members_get_a_list_and_age_is_respected(model, data):
    visitor = pd.DataFrame({"user_id": ["visitor"], "age": [9], "language": ["English"]})
    out = model.recommend(["visitor"], k=10, users=visitor)
    assert len(out) == 10
    ratings = data.items.set_index("item_id").loc[out["item_id"], "maturity_rating"]
    assert set(ratings) <= {"G", "PG"}


def test_context_changes_the_list(model, data):
    user = data.users["user_id"].iat[3]
    tv = model.recommend([user], k=10, context={"now": "2025-10-28 21:00", "device": "tv"})
    phone = model.recommend([user], k=10, context={"now": "2025-10-28 08:00", "device": "mobile"})
    assert not tv["score"].equals(phone["score"])


def test_inspect_and_explain(model, data):
    user = data.users["user_id"].iat[5]
    ins = model.inspect(user, k=10)
    assert len(ins.final) == 10 and len(ins.ranked) >= 10
    assert {"score_popularity", "score_ease", "score_content"} <= set(ins.candidates.columns)
    expl = model.explain(user, ins.final["item_id"].iat[0], top=5)
    assert list(expl.columns) == ["feature", "value", "contribution"] and len(expl) == 5


def test_save_load_round_trip_and_bad_artifacts(model, data, tmp_path):
    users = list(data.users["user_id"].iloc[:5])
    path = model.save(tmp_path / "model")
    again = Recommender.load(path)
    pd.testing.assert_frame_equal(model.recommend(users), again.recommend(users))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["data"]["fingerprint"] == data.fingerprint()
    with pytest.raises(ArtifactError, match="manifest"):
        Recommender.load(tmp_path / "nothing-here")
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable manifest"):
        Recommender.load(path)
    path = model.save(tmp_path / "model2")
    events = path / "data" / "events.parquet"
    events.write_bytes(events.read_bytes()[:100])
    with pytest.raises(ArtifactError):
        Recommender.load(path)


def test_unfitted_and_bad_config_are_clear_errors(data):
    with pytest.raises(NotFittedError):
        Recommender(CONFIG).recommend(["u00001"])
    with pytest.raises(ValueError, match="unknown candidate source"):
        RecommenderConfig(sources=("magic",))
    with pytest.raises(DataError, match="need more history"):
        Recommender(RecommenderConfig(ranker_window_days=100, ranker_windows=2)).fit(data)


def test_rankers_can_share_the_other_stages(model, data):
    forest = model.with_ranker("forest", {"n_estimators": 20})
    assert forest.generators_ is model.generators_ and forest.builder_ is model.builder_
    assert forest.ranker_ is not model.ranker_
    assert forest.config.ranker == "forest" and model.config.ranker == "logistic"
    auto = model.with_ranker("auto")  # no tuning on implicit feedback: logistic regression, nothing searched
    assert auto.config.ranker == "logistic" and "ranker" not in auto.tuning_
    users = list(data.users["user_id"].iloc[:5])
    assert len(forest.recommend(users)) == 50
    # the same prepared candidate rows, ranked by each: what each would build itself
    prepared = model.prepare(users)
    pd.testing.assert_frame_equal(forest.recommend(users, prepared=prepared), forest.recommend(users))
    pd.testing.assert_frame_equal(model.recommend(users, prepared=prepared), model.recommend(users))
    other = Recommender(RecommenderConfig(sources=("popularity",), ranker="logistic", n_candidates=60,
                                          ranker_window_days=14, ranker_windows=2)).fit(data)
    with pytest.raises(ValueError, match="another candidate stage"):
        other.recommend(users, prepared=prepared)


def test_a_damaged_file_of_any_component_is_named(model, tmp_path):
    """One manifest dialect: every file of every component is checksummed, and loading names the bad one."""
    import shutil

    saved = model.save(tmp_path / "model")
    files = sorted(p.relative_to(saved) for p in saved.rglob("*") if p.is_file() and p.name != "manifest.json")
    kinds = {p.parts[0] for p in files}
    assert {"data", "candidates", "ranker"} <= kinds
    assert any(p.parts[:2] == ("candidates", "sources") for p in files)
    for rel in files:
        copy = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(saved, copy)
        target = copy / rel
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        with pytest.raises(ArtifactError) as caught:
            Recommender.load(copy)
        assert str(target) in str(caught.value), rel
    # a sub-component's manifest from another save is refused too
    other = model.save(tmp_path / "other")
    (other / "ranker" / "manifest.json").write_text((saved / "ranker" / "manifest.json").read_text()
                                                    .replace('"rows"', '"rows" '))
    with pytest.raises(ArtifactError, match="checksum"):
        Recommender.load(other)


def test_a_model_that_observed_events_saves_and_loads(model, data, tmp_path):
    twin = model.fork()
    member, title = data.users["user_id"].iat[7], data.items["item_id"].iat[3]
    event = pd.DataFrame({"user_id": [member], "item_id": [title], "timestamp": [data.end + pd.Timedelta(hours=1)],
                          "watch_fraction": [1.0], "minutes_watched": [30.0], "device": ["tv"],
                          "session_id": ["later"], "source": ["row"]})
    twin.observe(event)
    again = Recommender.load(twin.save(tmp_path / "observed"))
    assert len(again.history_.events) == len(data.events) + 1 and again.fingerprint_ == model.fingerprint_
    later = {"now": data.end + pd.Timedelta(hours=2)}
    assert title not in set(again.recommend([member], k=10, context=later)["item_id"])
    pd.testing.assert_frame_equal(again.recommend([member], context=later), twin.recommend([member], context=later))


def test_rows_with_nan_scores_sort_last_within_their_member():
    from recsys.pipeline import _order_within

    member = np.array([0, 0, 0, 1, 1, 2])
    score = np.array([0.2, np.nan, 0.9, np.nan, 0.1, 0.5])
    assert _order_within(member, score).tolist() == [2, 0, 1, 4, 3, 5]
    assert _order_within(np.zeros(0, dtype=np.int64), np.zeros(0)).tolist() == []


def test_on_logged_impressions_the_ranker_learns_slots_and_lists_follow_expected_minutes(model, data):
    import copy
    from dataclasses import replace

    assert model.training_summary_["rows_from"] == "impressions"  # "auto": the world logs its impressions
    assert {"shown_slot", "plays_above"} <= set(model.ranker_.features_["dense"])
    user = str(data.users["user_id"].iloc[5])
    length = data.items.set_index("item_id")["duration_min"]
    ranked = model.inspect(user, k=10).ranked
    minutes = ranked["score"].to_numpy() * length.reindex(ranked["item_id"]).to_numpy()
    assert (np.diff(minutes) <= 1e-12).all()  # candidates in expected-minutes order
    served = model.recommend([user], k=10)
    np.testing.assert_allclose(served["expected_minutes"], served["score"] * length.reindex(served["item_id"]).values)
    by_watch = copy.copy(model)
    by_watch.config = replace(model.config, objective="watch")
    scores = by_watch.inspect(user, k=10).ranked["score"].to_numpy()
    assert (np.diff(scores) <= 1e-12).all()  # the "watch" objective: P(watch) order


def test_a_configuration_saved_before_the_objective_existed_keeps_serving_by_watch():
    saved = CONFIG.to_json()
    for key in ("objective", "exclude_features"):
        saved.pop(key)
    old = RecommenderConfig.from_json(saved)
    assert old.objective == "watch" and "user_genre_exposure" in old.exclude_features
    assert RecommenderConfig.from_json(CONFIG.to_json()) == CONFIG


def test_a_configuration_saved_before_hash_sampling_keeps_its_random_draw():
    saved = CONFIG.to_json()
    saved["training"].pop("sampler")
    assert RecommenderConfig.from_json(saved).training.sampler == "random"
    assert CONFIG.training.sampler == "hash" and RecommenderConfig.from_json(CONFIG.to_json()) == CONFIG


def test_a_configuration_saved_before_propensity_weights_keeps_them_off():
    saved = CONFIG.to_json()
    saved["training"]["weights"].pop("propensity_clip")
    assert RecommenderConfig.from_json(saved).training.weights.propensity_clip is None
    assert CONFIG.training.weights.propensity_clip == 20.0
    assert RecommenderConfig.from_json(CONFIG.to_json()) == CONFIG
    assert PREVIOUS_DEFAULT.training.weights.propensity_clip is None  # the A/B page's old arm is the old arm


def test_window_tables_are_refused_where_the_ranker_rows_are_not_impressions(data):
    """A fit told to build its windows elsewhere (Spark) says why it cannot, before any work, instead of silently
    building other rows here."""
    def never(*args, **kwargs):
        raise AssertionError("window_tables must not be called")

    for config, reason in ((replace(CONFIG, training_rows="candidates"), "trains on candidates rows"),
                           (replace(CONFIG, ranker=None), "without a ranker")):
        with pytest.raises(ValueError, match=reason):
            Recommender(config).fit(data, window_tables=never)
