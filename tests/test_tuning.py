"""Source tuning: validation splits without leakage, the best grid point chosen, the config's rules."""

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.pipeline import RecommenderConfig, make_generator, tuned_source_params
from recsys.tuning import TUNING_GRIDS, ranker_choice_text, tune_sources, validation_split


def _explicit(n_users=60, n_items=40, seed=0) -> Dataset:
    """Two taste groups, each rating its half of the catalogue: a collaborative model can find the hidden half."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for u in range(n_users):
        half = range(0, n_items // 2) if u % 2 == 0 else range(n_items // 2, n_items)
        for i in rng.choice(list(half), size=12, replace=False):
            rows.append((f"u{u}", f"i{i}", start + pd.Timedelta(hours=int(rng.integers(0, 2000))), 5.0))
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": [f"T{i}" for i in range(n_items)]})
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    return Dataset.from_frames(users, items, events)


def test_temporal_validation_split_has_no_leakage():
    data = _explicit()
    visible, hidden = validation_split(data, "temporal", window_days=20)
    cut = data.end - pd.Timedelta(days=20)
    assert visible.events["timestamp"].max() < cut
    later = data.events[data.events["timestamp"] >= cut]
    pairs = set(map(tuple, later[["user_id", "item_id"]].to_numpy()))
    assert set(map(tuple, hidden.to_numpy())) <= pairs
    assert not set(map(tuple, hidden.to_numpy())) & set(map(tuple, visible.plays()[["user_id", "item_id"]].to_numpy()))


def test_holdout_split_hides_a_share_of_each_member():
    data = _explicit()
    visible, hidden = validation_split(data, "holdout", holdout_ratio=0.25, seed=1)
    counts = hidden.groupby("user_id").size()
    assert (counts == 3).all() and len(counts) == 60  # round(0.25 * 12) of every member's 12
    assert len(visible.plays()) == 60 * 9


def test_tune_sources_keeps_the_best_point_of_the_grid(monkeypatch):
    data = _explicit()
    # one factor cannot tell the two taste groups apart (every score has the member's sign); two can
    grid = [{"factors": 1, "regularization": 1.0, "alpha": 1.0}, {"factors": 2, "regularization": 1.0, "alpha": 1.0}]
    monkeypatch.setitem(TUNING_GRIDS, "als", grid)
    chosen, log = tune_sources(data, ["als", "content"], lambda n, p: make_generator(n, 0, p), how="holdout")
    assert chosen == {"als": grid[1]}  # content has no grid: not tuned
    points = log["sources"]["als"]["grid"]
    assert [p["params"] for p in points] == grid
    assert points[1]["ndcg"] > points[0]["ndcg"] + 0.2 and log["sources"]["als"]["ndcg"] == points[1]["ndcg"]


def _old_favourites_and_a_new_trend(n_users=80, days=365, seed=0) -> Dataset:
    """Ten old favourites every member rated over the year, and in the last three weeks ten new titles a third
    of the members rated: a random holdout hides mostly favourites, the last two weeks mostly the new titles."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    rows = []
    for u in range(n_users):
        for i in rng.choice(10, size=8, replace=False):
            rows.append((f"u{u}", f"old{i}", start + pd.Timedelta(days=float(rng.uniform(0, days - 30))), 5.0))
        if u % 3 == 0:
            for i in rng.choice(10, size=4, replace=False):
                rows.append((f"u{u}", f"new{i}", start + pd.Timedelta(days=float(rng.uniform(days - 21, days))), 5.0))
    for i in range(30):  # a long tail rated once, early
        rows.append((f"u{i}", f"tail{i}", start + pd.Timedelta(days=float(rng.uniform(0, days - 30))), 3.0))
    ids = [f"old{i}" for i in range(10)] + [f"new{i}" for i in range(10)] + [f"tail{i}" for i in range(30)]
    items = pd.DataFrame({"item_id": ids, "title": ids})
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    return Dataset.from_frames(users, items, pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"]))


def test_popularity_counts_plainly_on_a_random_split_and_decays_on_a_temporal_one():
    data = _old_favourites_and_a_new_trend()
    make = lambda n, p: make_generator(n, 0, p)  # noqa: E731
    plain, log = tune_sources(data, ["popularity"], make, how="holdout")
    assert plain["popularity"]["window_days"] is None  # counts the whole log (a slow decay at most)
    grid = {str(p["params"]): p["ndcg"] for p in log["sources"]["popularity"]["grid"]}
    assert grid[str({})] < grid[str(plain["popularity"])] - 0.1  # the 28-day window misses the favourites
    decayed, log = tune_sources(data, ["popularity"], make, how="temporal", window_days=14)
    assert decayed == {"popularity": {}}  # the default: the last 28 days, halved every 7


def test_config_rules_auto_on_off_and_overrides(monkeypatch):
    data = _explicit()
    monkeypatch.setitem(TUNING_GRIDS, "ease", [{"l2": 10.0}, {"l2": 20.0}])
    monkeypatch.setitem(TUNING_GRIDS, "als", [{"factors": 4, "regularization": 1.0, "alpha": 1.0}])
    params, log = tuned_source_params(RecommenderConfig(sources=("ease", "als"), tune="auto"), data)
    assert set(params) == {"ease", "als"} and log["split"] == "holdout"  # explicit ratings: tuned
    params, log = tuned_source_params(RecommenderConfig(sources=("ease", "als"), tune="off"), data)
    assert params == {} and log == {}
    params, log = tuned_source_params(
        RecommenderConfig(sources=("ease", "als"), tune="on", source_params={"ease": {"l2": 77.0}}), data)
    assert params["ease"] == {"l2": 77.0} and set(log["sources"]) == {"als"}  # an explicit setting is not tuned
    with pytest.raises(ValueError, match="tune"):
        RecommenderConfig(tune="sometimes")
    with pytest.raises(ValueError, match="unknown source"):
        RecommenderConfig(source_params={"nope": {}})


def test_implicit_sample_defaults_are_not_retuned():
    from recsys.data import load_dataset

    params, log = tuned_source_params(RecommenderConfig(), load_dataset("sample"))
    assert params == {} and log == {}


def _fitted_blend(data, sources=("popularity", "ease", "als")):
    from recsys.candidates import BlendGenerator

    visible, truth = validation_split(data, "holdout", holdout_ratio=0.2, seed=0)
    gens = [make_generator(s, 0).fit(visible) for s in sources]
    return BlendGenerator(generators=tuple(gens), prefit=True).fit(visible), truth, data.end + pd.Timedelta(seconds=1)


@pytest.mark.parametrize("objective", ["recall", "ndcg"])
def test_learned_quotas_are_never_below_the_best_source_alone_nor_the_defaults(objective):
    from recsys.evaluation.metrics import ndcg_by_user
    from recsys.tuning import tune_quotas

    data = _explicit()
    blend, truth, now = _fitted_blend(data)
    quotas, log = tune_quotas(blend, truth, now, data.users, n=10, k=5, objective=objective)
    assert set(quotas) == {"popularity", "ease", "als"} and any(quotas.values())
    assert log["score"] >= max(log["alone"].values()) and log["score"] >= log["default"]["score"]
    assert log["alone"]["popularity"] < log["alone"]["ease"] - 0.2  # two taste groups: popularity cannot tell
    assert quotas["popularity"] < max(quotas["ease"], quotas["als"])
    # the logged score is the score of the blend served with those quotas
    blend.quotas = quotas
    recs = blend.recommend(sorted(truth["user_id"].unique()), n=10, now=now)
    if objective == "ndcg":
        again = float(ndcg_by_user(recs[recs["rank"] <= 5], truth, 5, no_relevant="drop").mean())
    else:
        hits = recs.merge(truth, on=["user_id", "item_id"]).groupby("user_id").size()
        again = float((hits.reindex(truth["user_id"].unique()).fillna(0) / truth.groupby("user_id").size()).mean())
    assert again == pytest.approx(log["score"])
    with pytest.raises(ValueError, match="objective"):
        tune_quotas(blend, truth, now, objective="precision")


def test_the_pipeline_learns_quotas_only_when_it_tunes():
    from recsys.pipeline import Recommender

    data = _explicit()
    small = {"sources": ("popularity", "ease", "als"), "ranker": None, "n_candidates": 10,
             "source_params": {"als": {"factors": 4}, "ease": {"l2": 50.0}, "popularity": {}}}
    tuned = Recommender(RecommenderConfig(**small)).fit(data)
    log = tuned.tuning_["quotas"]
    assert log["objective"] == "ndcg@10" and log["split"] == "holdout"  # no ranker: the blend's own order counts
    assert tuned.generators_.quotas == log["chosen"] and log["score"] >= max(log["alone"].values())
    assert Recommender(RecommenderConfig(**small, tune="off")).fit(data).generators_.quotas is None  # defaults
    given = Recommender(RecommenderConfig(**small, quotas={"ease": 1.0, "als": 1.0, "popularity": 0.0})).fit(data)
    assert given.generators_.quotas == {"ease": 1.0, "als": 1.0, "popularity": 0.0} and "quotas" not in given.tuning_


def _scored_table(signal, label, user, timestamp):
    """A training table of rows with one dense feature, `signal`."""
    from recsys.features import Feature, FeatureSet, FeatureTable
    from recsys.training_table import TrainingTable

    n = len(signal)
    rows = pd.DataFrame({"user_id": np.asarray(user, dtype=object), "item_id": [f"i{k}" for k in range(n)],
                         "timestamp": pd.to_datetime(timestamp)})
    features = FeatureTable(rows=rows, frame=pd.DataFrame({"signal": np.asarray(signal, dtype=float)}), sparse={},
                            feature_set=FeatureSet((Feature("signal", "user_x_media", "dense", "The signal."),)))
    return TrainingTable(features, np.asarray(label, dtype=np.int8), np.ones(n), {}, {}, (None, None))


class _BySignal:
    """Orders rows by `signal` (or its negation) and records what it was fitted on: tune_ranker's split and
    scoring are under test here, not a ranker."""

    def __init__(self, sign: float, fitted: list) -> None:
        self.sign, self.fitted = sign, fitted

    def fit(self, table):
        self.fitted.append(table)
        return self

    def predict_proba(self, features):
        return self.sign * features.frame["signal"].to_numpy()


def test_tune_ranker_holds_out_members_at_the_latest_moment_and_fits_on_every_other_row():
    from recsys.tuning import tune_ranker

    early, late = "2024-01-01", "2024-02-01"
    # 20 rows before; at the latest moment member a (0.9, 0.5+, 0.1, 0.05) and member b (0.2+, 0.8)
    table = _scored_table(list(np.linspace(0, 1, 20)) + [0.9, 0.5, 0.1, 0.05, 0.2, 0.8],
                          [0, 1] * 10 + [0, 1, 0, 0, 1, 0],
                          [f"u{k % 4}" for k in range(20)] + ["a"] * 4 + ["b"] * 2, [early] * 20 + [late] * 6)
    fitted: list = []
    chosen, log = tune_ranker(table, ["up", "down"], lambda name: _BySignal(1.0 if name == "up" else -1.0, fitted),
                              fraction=0.5)
    assert log["split"] == "members at the latest moment" and len(fitted) == 2
    (kept,) = {frozenset(t.features.rows.loc[t.features.rows["timestamp"] == pd.Timestamp(late), "user_id"])
               for t in fitted}
    held = ({"a", "b"} - kept).pop()  # one of the two latest members is held out, the other is fitted on
    assert len(kept) == 1 and all(len(t) == 20 + (4 if held == "b" else 2) for t in fitted)
    # by signal each member's hit is second (1/log2 3); negated, a's is third (1/2) and b's first (1)
    expected = {"up": 1 / np.log2(3), "down": 0.5 if held == "a" else 1.0}
    assert log["scores"] == pytest.approx(expected) and chosen == max(expected, key=expected.get) == log["chosen"]
    assert (log["valid_rows"], log["valid_members"]) == ((4, 1) if held == "a" else (2, 1))
    assert log["train_rows"] + log["valid_rows"] == len(table)
    # ties keep the first name
    assert tune_ranker(table, ["up", "up too"], lambda name: _BySignal(1.0, []), fraction=0.5)[0] == "up"


def test_tune_ranker_scores_the_full_lists_of_the_held_out_queries_when_given():
    """Sampled held-out rows can favour the wrong ranker: each latest member's sample keeps the hit (0.2) and one
    negative (0.8), where the negated order wins; their full lists also have the three weak negatives the sample
    dropped, which only the negated order ranks above the hit."""
    from recsys.tuning import tune_ranker

    early, late = "2024-01-01", "2024-02-01"
    table = _scored_table(list(np.linspace(0, 1, 20)) + [0.2, 0.8, 0.2, 0.8], [0, 1] * 10 + [1, 0, 1, 0],
                          [f"u{k % 4}" for k in range(20)] + ["a", "a", "b", "b"], [early] * 20 + [late] * 4)
    asked: list = []

    def full_rows(queries):
        asked.append(queries)
        (member,) = queries["user_id"]
        return _scored_table([0.2, 0.8, 0.1, 0.05, 0.0], [1, 0, 0, 0, 0], [member] * 5, [late] * 5)

    fitted: list = []
    make = lambda name: _BySignal(1.0 if name == "up" else -1.0, fitted)  # noqa: E731
    sampled, log = tune_ranker(table, ["up", "down"], make, fraction=0.5)
    # on the sample: up puts the hit second (1/log2 3), down first (1)
    assert sampled == "down" and log["scores"] == pytest.approx({"up": 1 / np.log2(3), "down": 1.0})
    assert log["lists"] == "sampled rows"
    fitted.clear()
    chosen, log = tune_ranker(table, ["up", "down"], make, fraction=0.5, full_rows=full_rows)
    (query,) = asked[0].to_dict("records")
    held = query["user_id"]
    assert query["timestamp"] == pd.Timestamp(late) and held in {"a", "b"}
    assert all(held not in set(t.features.rows["user_id"]) for t in fitted) and len(fitted) == 2
    # on the full list: up still puts the hit second, down fourth (1/log2 5)
    assert chosen == "up" and log["scores"] == pytest.approx({"up": 1 / np.log2(3), "down": 1 / np.log2(5)})
    assert log["lists"] == "full lists" and (log["valid_rows"], log["scored_rows"], log["valid_members"]) == (2, 5, 1)
    assert "full candidate lists of 1 held-out member (5 rows; split by members at the latest moment)" in \
        ranker_choice_text(log)


def test_tune_ranker_holds_out_whole_members_when_rows_share_one_moment():
    from recsys.tuning import tune_ranker

    rng = np.random.default_rng(0)
    users = [f"u{k}" for k in rng.integers(0, 30, 600)]
    table = _scored_table(rng.normal(size=600), rng.integers(0, 2, 600), users, ["2024-01-01"] * 600)
    fitted: list = []
    chosen, log = tune_ranker(table, ["up"], lambda name: _BySignal(1.0, fitted), fraction=0.2, seed=3)
    assert log["split"] == "members" and chosen == "up"
    seen = set(fitted[0].features.rows["user_id"])
    assert len(seen) == 24 and log["train_rows"] + log["valid_rows"] == 600  # 80% of the 30 members fitted on
    assert log["valid_rows"] == sum(u not in seen for u in users)


def test_tune_ranker_prefers_trees_where_the_signal_is_not_monotone():
    """Watched only in a middle band of the signal: a linear model cannot order that, LightGBM can."""
    from recsys.pipeline import make_ranker
    from recsys.tuning import tune_ranker

    rng = np.random.default_rng(1)
    n = 3000
    signal = rng.normal(size=n)
    label = (np.abs(signal) < 0.6).astype(int) ^ (rng.random(n) < 0.05)
    times = pd.Timestamp("2024-01-01") + pd.to_timedelta(10 * (np.arange(n) * 3 // n), unit="D")  # 3 windows
    table = _scored_table(signal, label, [f"u{k % 50}" for k in range(n)], times)
    chosen, log = tune_ranker(table, ["logistic", "boosting"],
                              lambda name: make_ranker(name, {"n_jobs": 1} if name == "boosting" else {}))
    assert chosen == "boosting" and log["scores"]["boosting"] > log["scores"]["logistic"] + 0.2, log


def test_auto_ranker_takes_no_ranker_params():
    with pytest.raises(ValueError, match="named ranker"):
        RecommenderConfig(ranker="auto", ranker_params={"C": 1.0})
