"""Off-policy evaluation end to end on a small simulated world: the estimates order the policies the way
the simulated A/B test does, the reward model's features stay point in time, and the examination curve
estimated from the logs is close to the world's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.synthetic import EXAMINATION, SyntheticWorld, WorldConfig
from recsys.evaluation.examination import estimate_examination
from recsys.evaluation.logged import LoggedSessions, OffPolicyUnavailable
from recsys.evaluation.off_policy import OffPolicyConfig, evaluate_off_policy
from recsys.evaluation.propensity import slot_marginals
from recsys.simulation import (ExperimentConfig, analyze, off_policy_vs_online, pairwise_agreement, run_experiment,
                               run_paired)

pytestmark = pytest.mark.slow


POLICIES = {"random": "random", "popularity": "popularity", "logging": "logging", "oracle": "oracle"}


@pytest.fixture(scope="module")
def sample():
    from recsys.data import load_dataset
    from recsys.data.loaders import sample_data_dir
    from recsys.data.synthetic import load_world

    return load_world(sample_data_dir()), load_dataset("sample")


@pytest.fixture(scope="module")
def features(sample):
    """The reward model's feature pipeline (ranker-less default stages), fitted before the 14-day window and
    shared by this module's estimates (for a 7-day window it is only older, never later)."""
    from recsys.pipeline import Recommender, RecommenderConfig

    data = sample[1]
    start = (data.end + pd.Timedelta(seconds=1) - pd.Timedelta(days=14)).ceil("h")
    return Recommender(RecommenderConfig(ranker=None, seed=0)).fit(data.between(None, start))


@pytest.fixture(scope="module")
def estimates(sample, features):
    world, data = sample
    return evaluate_off_policy(data, POLICIES, world=world, config=OffPolicyConfig(window_days=14, bootstrap=200),
                               features=features)


def test_estimates_order_the_policies_as_the_simulated_test_does(sample, estimates):
    """The smaller run of docs/off-policy.md: the four policies that need no training, 1,000 members."""
    world, data = sample
    report = analyze(run_experiment(data, world, dict(POLICIES), ExperimentConfig(users=1000, days=7, seed=0)))
    table, agreement = off_policy_vs_online(estimates, report)
    dr = {p: estimates.policies[p]["dr"]["minutes_per_session"].estimate for p in estimates.policies}
    online = report.table().set_index("arm")["minutes_per_session"]
    for values in (online, dr):
        assert values["random"] < min(values["popularity"], values["logging"])
        assert max(values["popularity"], values["logging"]) < values["oracle"]
    assert agreement["dr"]["minutes_per_session"]["kendall_tau"] >= 0.66
    assert set(table["estimator"]) == {"dm", "ips", "snips", "dr", "cascade_dr"}


def test_every_estimate_is_a_finite_interval_around_itself(estimates):
    for policy, by in estimates.policies.items():
        for name, per in by.items():
            for metric, e in per.items():
                assert np.isfinite([e.estimate, e.low, e.high]).all(), (policy, name, metric)
                assert e.low <= e.estimate <= e.high or name == "snips", (policy, name, metric, e)
                if metric == "engagement_rate" and name == "dm":
                    assert 0.0 <= e.estimate <= 1.0, (policy, e)


def test_differences_are_paired_and_match_the_estimates(estimates):
    """A difference is the two estimates' difference; the oracle is surely ahead of random; a policy
    against itself is exactly level; every pair is listed once."""
    dr = estimates.policies
    d = estimates.difference("oracle", "random", "minutes_per_session", "dr")
    assert d.estimate == pytest.approx(dr["oracle"]["dr"]["minutes_per_session"].estimate
                                       - dr["random"]["dr"]["minutes_per_session"].estimate)
    assert d.separated and d.low > 0
    same = estimates.difference("logging", "logging", "minutes_per_session", "ips")
    assert (same.estimate, same.low, same.high, same.separated) == (0.0, 0.0, 0.0, False)
    pairs = estimates.differences()
    assert len(pairs) == 6 and {(p.first, p.second) for p in pairs} >= {("random", "oracle")}
    assert estimates.as_dict()["differences"]["pairs"][0]["first"] == "random"
    with pytest.raises(KeyError, match="no policy 'nope'"):
        estimates.difference("nope", "random")


def test_pairwise_agreement_with_a_paired_test(sample, estimates):
    """Against a paired simulated test of the four policies: the oracle's lead over random is told apart by
    both and in the same order, and no pair is told apart the wrong way by the estimates."""
    world, data = sample
    paired = run_paired(data, world, dict(POLICIES), ExperimentConfig(users=400, days=3, seed=0))
    table, summary = pairwise_agreement(estimates, paired, "minutes_per_session", "dr")
    assert summary["pairs"] == len(table) == 6
    row = table[(table["first"] == "random") & (table["second"] == "oracle")].iloc[0]
    assert row["simulated"] < 0 and row["simulation tells apart"] and row["estimate tells apart"] and row["same order"]
    assert summary["pairs the estimate tells apart the wrong way"] == 0
    assert summary["of those, in the same order"] == summary["pairs the simulation tells apart"] >= 3


def test_logging_estimated_by_itself_is_its_logged_value(estimates):
    """The logging policy's own rows are a fresh draw of the same policy: every unbiased estimator lands
    near the window's on-policy value."""
    logged = estimates.logged["minutes_per_session"].estimate
    for name in ("ips", "dr"):
        got = estimates.policies["logging"][name]["minutes_per_session"]
        assert got.low <= logged <= got.high, (name, got, logged)


def test_reward_features_are_point_in_time():
    """A row's features are the same whether the feature model observed the events after the row or not."""
    from recsys.pipeline import Recommender, RecommenderConfig

    world = SyntheticWorld(WorldConfig(seed=21, n_users=300, n_movies=100, n_shows=5, days=60))
    data = world.simulate()
    cut = data.end - pd.Timedelta(days=10)
    model = Recommender(RecommenderConfig(ranker=None, sources=("popularity", "ease"))).fit(data.between(None, cut))
    later = data.events[data.events["timestamp"] >= cut]
    moment = cut + pd.Timedelta(days=5)
    rows = later[later["timestamp"] < moment].drop_duplicates(["user_id", "item_id"]).head(200)
    rows = rows[["user_id", "item_id", "device"]].assign(timestamp=moment)
    partial = model.fork().observe(later[later["timestamp"] < moment]).features_for(rows).frame
    full = model.fork().observe(later).features_for(rows).frame
    pd.testing.assert_frame_equal(partial, full)
    alone = model.features_for(rows).frame
    assert not alone.equals(full)  # the observed events do reach the features


def test_examination_curve_from_the_sample_logs_is_close_to_the_worlds(sample):
    """A check of the estimate against the world, never an input: harvested from the last 56 days of the
    sample's propensities (docs/off-policy.md reports the slot-by-slot errors)."""
    _, data = sample
    recent = data.events[data.events["timestamp"] >= data.end - pd.Timedelta(days=56)]
    logged = LoggedSessions.from_events(recent, data.items["item_id"])
    curve = estimate_examination(logged, slot_marginals(logged.propensity))
    truth = EXAMINATION / EXAMINATION[0]
    assert curve.method == "harvest"
    assert np.abs(curve.values / truth - 1).max() < 0.2, curve.values / truth - 1
    assert 0.2 < curve.kappa < 0.4  # the world keeps a later play with chance 0.3


def test_ratings_without_slots_say_why():
    from recsys.data.dataset import Dataset

    events = pd.DataFrame({"user_id": ["u1"], "item_id": ["m1"], "timestamp": pd.to_datetime(["2025-01-01"]),
                           "rating": [4.0]})
    data = Dataset.from_frames(pd.DataFrame({"user_id": ["u1"]}), pd.DataFrame({"item_id": ["m1"], "title": ["M"]}),
                               events, name="ratings")
    with pytest.raises(OffPolicyUnavailable, match="session_id|position"):
        evaluate_off_policy(data, {"random": "random"})


def test_evaluate_off_policy_from_the_command_line(tmp_path, world_spec):
    """`recsys evaluate --off-policy` puts each model's estimates at models.<name>.off_policy.<metric> (on a
    200-member world with its ground truth: the command's plumbing, not the sample's figures)."""
    import json

    from typer.testing import CliRunner

    from recsys.cli import app

    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["evaluate", "--data", world_spec, "--folds", "1", "--models", "random,popularity",
                                      "--off-policy", "--out", str(out)])
    assert result.exit_code == 0, result.output
    from recsys.evaluation.off_policy import DEFAULT_ESTIMATOR

    assert f"estimated online ({DEFAULT_ESTIMATOR}" in result.output
    report = json.loads(out.read_text())
    for name in ("random", "popularity"):
        entry = report["models"][name]["off_policy"]
        assert set(entry) == {"engagement_rate", "videos_per_session", "minutes_per_session"}
        assert set(entry["minutes_per_session"]) >= {"estimate", "low", "high", "ess", "estimator"}
        assert entry["minutes_per_session"]["estimator"] == DEFAULT_ESTIMATOR
    assert report["off_policy"]["policies"].keys() >= {"random", "popularity", "logging"}
    # the logs' own policy is estimated too, and popularity beats random as it does online
    assert entry["minutes_per_session"]["estimate"] > report["models"]["random"]["off_policy"][
        "minutes_per_session"]["estimate"]


def test_pipelines_that_differ_only_in_the_ranker_share_stages_in_either_order():
    """A ranker-less pipeline replayed first must not stop its ranked twin from being fitted (and the ranked
    one, fitted first, serves the ranker-less one from the same stages)."""
    from recsys.evaluation.off_policy import _Fitted
    from recsys.pipeline import RecommenderConfig

    data = SyntheticWorld(WorldConfig(seed=5, n_users=200, n_movies=80, n_shows=4, days=70)).simulate()
    plain = RecommenderConfig(ranker=None, sources=("popularity", "ease"), ranker_window_days=10, ranker_windows=1)
    ranked = RecommenderConfig(ranker="logistic", sources=("popularity", "ease"), ranker_window_days=10,
                               ranker_windows=1)
    first = _Fitted(data)
    assert first.model(plain).ranker_ is None
    assert first.model(ranked).ranker_ is not None
    second = _Fitted(data)
    model = second.model(ranked)
    twin = second.model(plain)
    assert twin.ranker_ is None and twin.generators_ is model.generators_


def test_simulate_offline_json_puts_estimates_beside_each_arm(world_spec):
    import json

    from typer.testing import CliRunner

    from recsys.cli import app

    result = CliRunner().invoke(app, ["simulate", "--data", world_spec, "--control", "popularity", "--treatment",
                                      "random", "--users", "200", "--days", "1", "--offline", "--json"])
    from recsys.evaluation.off_policy import DEFAULT_ESTIMATOR

    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{"):])
    for arm in payload["arms"]:
        estimate = arm["off_policy"]["minutes_per_session"]
        assert estimate["low"] <= estimate["estimate"] <= estimate["high"]
        assert estimate["estimator"] == DEFAULT_ESTIMATOR
    agreement = payload["off_policy"]["agreement"][DEFAULT_ESTIMATOR]["minutes_per_session"]
    assert set(agreement) == {"kendall_tau", "median_relative_error", "max_relative_error", "covered", "arms"}
    assert agreement["arms"] == 2


def test_a_log_without_propensities_gets_them_from_a_model_of_the_logging_policy(sample, features):
    """The sample's log with its propensities removed: a Plackett-Luce model of the logging policy fitted to
    the rows recovers them closely, the report says they were estimated, and the estimates still order
    the four policies as the simulated A/B test does."""
    from recsys.evaluation.logging_model import LoggingModel

    world, data = sample
    bare = data._with(data.users, data.items, data.events.assign(propensity=np.nan), data.searches)
    recent = data.events[data.events["timestamp"] >= data.end - pd.Timedelta(days=14)]
    logged = LoggedSessions.from_events(recent, data.items["item_id"])
    stripped = LoggedSessions.from_events(recent.assign(propensity=np.nan), data.items["item_id"])
    modelled = LoggingModel().fit(bare, stripped).propensities(stripped)
    shown = logged.shown
    assert np.corrcoef(np.log(modelled[shown]), np.log(logged.propensity[shown]))[0, 1] > 0.8
    report = evaluate_off_policy(bare, POLICIES, world=world, config=OffPolicyConfig(bootstrap=100), features=features)
    assert report.propensities == "estimated" and any("estimated with a Plackett-Luce" in n for n in report.notes)
    dr = {p: report.policies[p]["dr"]["minutes_per_session"].estimate for p in POLICIES}
    assert dr["random"] < min(dr["popularity"], dr["logging"]) and max(dr["popularity"], dr["logging"]) < dr["oracle"]
