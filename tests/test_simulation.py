"""The online A/B simulator: policies, feedback, determinism, statistics, the sample-ratio check, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.simulation import (
    METRICS, ExperimentConfig, analyze, compare_ratio, make_policy, offline_vs_online, paired_difference,
    ratio_estimate, run_experiment, run_paired, sample_ratio_check,
)


@pytest.fixture(scope="module")
def world_data():
    world = SyntheticWorld(WorldConfig(seed=8, n_users=300, n_movies=120, n_shows=6, days=60))
    return world, world.simulate()


def _run(world_data, arms, **kw):
    world, data = world_data
    config = ExperimentConfig(**{"users": 300, "days": 2, "seed": 1, **kw})
    return run_experiment(data, world, arms, config)


# ------------------------------------------------------------------ behaviour
def test_the_oracle_beats_random_on_every_online_metric(world_data):
    result = _run(world_data, {"random": "random", "oracle": "oracle"}, days=3)
    report = analyze(result)
    table = report.table().set_index("arm")
    for metric in METRICS:
        assert table.loc["oracle", metric] > table.loc["random", metric], metric
    engagement = report.comparisons.set_index("metric").loc["engagement_rate"]
    assert engagement["significant"] and engagement["lift"] > 0.3
    assert not report.srm["mismatch"]


def test_an_aa_test_is_mostly_not_significant(world_data):
    engagement, any_metric = [], []
    for seed in range(10):
        result = _run(world_data, {"a": "popularity", "b": "popularity"}, days=1, seed=seed)
        comparisons = analyze(result).comparisons.set_index("metric")
        engagement.append(bool(comparisons.loc["engagement_rate", "significant"]))
        any_metric.append(bool(comparisons["significant"].any()))
        assert (comparisons["lift_low"] <= comparisons["lift"]).all()
    assert sum(engagement) <= 2, engagement
    assert sum(any_metric) <= 3, any_metric  # five metrics per run: a few false alarms are expected


def test_the_same_seed_gives_identical_results_and_another_seed_does_not(world_data):
    arms = {"popularity": "popularity", "random": "random"}
    one, two = _run(world_data, arms), _run(world_data, arms)
    pd.testing.assert_frame_equal(one.sessions, two.sessions)
    pd.testing.assert_frame_equal(one.events, two.events)
    pd.testing.assert_frame_equal(analyze(one).comparisons, analyze(two).comparisons)
    other = _run(world_data, arms, seed=2)
    assert not one.assignment.equals(other.assignment)


def test_finished_titles_are_not_shown_again_and_sessions_follow_the_members(world_data):
    result = _run(world_data, {"popularity": "popularity", "oracle": "oracle", "random": "random"}, days=3)
    ev = result.events
    assert len(result.sessions) > 50 and set(result.sessions["arm"]) == {"popularity", "oracle", "random"}
    finished = ev[ev["watch_fraction"] > 0.8].groupby(["user_id", "item_id"])["timestamp"].min()
    shown = ev[ev["source"] == "row"].join(finished.rename("finished_at"), on=["user_id", "item_id"])
    assert not (shown["timestamp"] > shown["finished_at"]).any()
    # every member stays in one arm, and the sessions' devices are the world's
    assert result.sessions.groupby("user_id")["arm"].nunique().max() == 1
    assert set(result.sessions["device"]) <= {"tv", "mobile", "tablet", "web"}
    assert (result.sessions["timestamp"] >= result.start).all() and (result.sessions["timestamp"] < result.end).all()


def test_sessions_of_a_member_do_not_depend_on_who_else_is_asked(world_data):
    world, _ = world_data
    ids = world.users["user_id"].tolist()
    alone = world.sessions_between("2025-09-01", "2025-09-08", ids[:1], seed=3)
    together = world.sessions_between("2025-09-01", "2025-09-08", ids[:20], seed=3)
    pd.testing.assert_frame_equal(alone, together[together["user_id"] == ids[0]].reset_index(drop=True))
    assert len(together) > 0 and together["timestamp"].is_monotonic_increasing


def test_a_paired_run_shows_every_policy_the_same_members_sessions_and_draws(world_data):
    world, data = world_data
    config = ExperimentConfig(users=300, days=3, seed=1)
    paired = run_paired(data, world, {"random": "random", "oracle": "oracle", "again": "random"}, config)
    s = paired.sessions
    assert paired.arms == ["random", "oracle", "again"] and len(s) > 100
    keys = ["session_id", "user_id", "timestamp", "device"]
    by_arm = {arm: part[keys].sort_values("session_id").reset_index(drop=True) for arm, part in s.groupby("arm")}
    pd.testing.assert_frame_equal(by_arm["random"], by_arm["oracle"])
    assert (paired.assignment.groupby("arm")["user_id"].nunique() == 300).all()
    # the same seeded policy over the same behaviour draws: identical outcomes, session by session
    one = s[s["arm"] == "random"].set_index("session_id").sort_index()
    two = s[s["arm"] == "again"].set_index("session_id").sort_index()
    pd.testing.assert_series_equal(one["minutes"], two["minutes"])
    table = analyze(paired).table().set_index("arm")
    assert table.loc["oracle", "minutes_per_session"] > 1.5 * table.loc["random", "minutes_per_session"]
    # a split test of the same two policies puts each member in one arm only
    split = _run(world_data, {"random": "random", "oracle": "oracle"}, days=3)
    assert split.sessions.groupby("user_id")["arm"].nunique().max() == 1
    assert len(split.sessions) == len(s) / 3


def test_retraining_on_request(world_data):
    result = _run(world_data, {"popularity": "popularity", "random": "random"}, days=3, retrain_every_days=1)
    assert result.info["retrains"] == 2


def test_bad_policies_and_settings_are_clear_errors(world_data, tmp_path):
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("best-model-ever")
    with pytest.raises(ValueError, match="at least two arms"):
        _run(world_data, {"popularity": "popularity"})
    with pytest.raises(ValueError, match="members"):
        _run(world_data, {"a": "random", "b": "random"}, users=301)
    from recsys.pipeline import ArtifactError

    with pytest.raises(ArtifactError):
        make_policy(str(tmp_path))


# ----------------------------------------------------------------- statistics
def test_ratio_and_lift_by_hand():
    est = ratio_estimate([1, 0, 2, 5], [1, 1, 2, 0])  # the member with no session is left out
    assert est["estimate"] == pytest.approx(0.75) and est["n"] == 3
    # residuals y - 0.75 x = 0.25, -0.75, 0.5; se = sqrt(3/2 * 0.875) / 4
    assert est["se"] == pytest.approx(np.sqrt(1.5 * 0.875) / 4)
    control = {"estimate": 0.5, "se": 0.03, "n": 101}
    treatment = {"estimate": 0.6, "se": 0.03, "n": 101}
    cmp = compare_ratio(control, treatment)
    assert cmp["lift"] == pytest.approx(0.2) and cmp["diff"] == pytest.approx(0.1)
    se_lift = 1.2 * np.sqrt((0.03 / 0.6) ** 2 + (0.03 / 0.5) ** 2)
    q = stats.t.ppf(0.975, 200)  # equal variances and sizes: Welch's df is 2(n-1)
    assert cmp["df"] == pytest.approx(200)
    assert cmp["lift_low"] == pytest.approx(0.2 - q * se_lift) and cmp["lift_high"] == pytest.approx(0.2 + q * se_lift)
    assert cmp["p_value"] == pytest.approx(2 * stats.t.sf(0.1 / np.sqrt(0.0018), 200)) and cmp["significant"]


def test_paired_difference_by_hand():
    """Arms a and b over the same three members (sessions 1, 2, 1): minutes a 10, 20, 30 and b 4, 20, 27,
    so a - b = (6 + 0 + 3) / 4 = 2.25; residuals 6 - 2.25, 0 - 4.5, 3 - 2.25: se = sqrt(3/2 * 34.875) / 4."""
    rows = []
    for arm, minutes in (("a", [10.0, 20.0, 30.0]), ("b", [4.0, 20.0, 27.0])):
        for user, (m, n) in zip(["u1", "u2", "u3"], zip(minutes, [1, 2, 1])):
            rows += [{"session_id": f"{arm}{user}{i}", "user_id": user, "arm": arm, "engaged": m > 0,
                      "plays": 1, "finished": 0, "minutes": m / n} for i in range(n)]
    sessions = pd.DataFrame(rows)
    d = paired_difference(sessions, "a", "b")
    assert d["estimate"] == pytest.approx(2.25)
    assert d["se"] == pytest.approx(np.sqrt(1.5 * (3.75 ** 2 + 4.5 ** 2 + 0.75 ** 2)) / 4)
    assert paired_difference(sessions, "b", "a")["estimate"] == pytest.approx(-2.25)
    with pytest.raises(ValueError, match="not paired"):
        paired_difference(sessions[sessions["session_id"] != "bu20"], "a", "b")


def test_per_member_means_match_welchs_t_test():
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 2, 40), rng.normal(11, 3, 60)
    cmp = compare_ratio(ratio_estimate(a, np.ones(40)), ratio_estimate(b, np.ones(60)))
    assert cmp["p_value"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)


def test_the_sample_ratio_check_catches_an_imbalance(world_data):
    assert sample_ratio_check({"a": 1000, "b": 1200})["mismatch"]
    assert not sample_ratio_check({"a": 1000, "b": 1010})["mismatch"]
    assert not sample_ratio_check({"a": 700, "b": 300}, {"a": 0.7, "b": 0.3})["mismatch"]
    result = _run(world_data, {"a": "random", "b": "random"}, days=3)
    assert not analyze(result).srm["mismatch"]
    # a logging bug that loses the sessions of every other member of arm b
    s = result.sessions
    b_members = s.loc[s["arm"] == "b", "user_id"].drop_duplicates()
    lost = s["user_id"].isin(b_members.iloc[::2])
    srm = analyze(result, sessions=s[~lost]).srm
    assert srm["mismatch"] and srm["observed"]["b"] < srm["observed"]["a"]


def test_offline_versus_online_orders(world_data):
    result = _run(world_data, {"random": "random", "popularity": "popularity", "oracle": "oracle"}, days=3)
    report = analyze(result)
    offline = pd.DataFrame({"policy": ["random", "popularity", "oracle"], "NDCG@10": [0.01, 0.1, 0.2],
                            "mAP@10": [0.005, 0.06, 0.12]})
    table, agreement = offline_vs_online(offline, report)
    assert list(table["policy"]) == ["oracle", "popularity", "random"]
    assert agreement["best_offline"] == "oracle" and agreement["same_best"]
    assert -1 <= agreement["kendall_tau"] <= 1


# -------------------------------------------------------------------- the CLI
def test_the_cli_runs_an_experiment_and_rejects_bad_arms(world_data, tmp_path):
    from typer.testing import CliRunner

    from recsys.cli import app
    from recsys.data.loaders import save_dataset
    from recsys.data.synthetic import write_world_manifest

    world, data = world_data
    folder = tmp_path / "world"
    save_dataset(data, folder)
    write_world_manifest(world, folder)
    runner = CliRunner()
    out = runner.invoke(app, ["simulate", "--data", f"parquet:{folder}", "--control", "random", "--treatment", "oracle",
                              "--users", "120", "--days", "1", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert [a["arm"] for a in payload["arms"]] == ["random", "oracle"]
    assert {c["metric"] for c in payload["comparisons"]} == set(METRICS)
    assert "p_value" in payload["srm"]
    bad = runner.invoke(app, ["simulate", "--data", f"parquet:{folder}", "--treatment", "nonsense", "--users", "50"])
    assert bad.exit_code == 2 and "unknown policy" in bad.output
    no_world = runner.invoke(app, ["simulate", "--data", f"parquet:{tmp_path / 'missing'}", "--treatment", "oracle"])
    assert no_world.exit_code == 2


# ------------------------------------------------- the Recommender as an arm (fits one: about 30 s)
@pytest.fixture(scope="module")
def small_model(world_data):
    from recsys.pipeline import Recommender, RecommenderConfig

    _, data = world_data
    config = RecommenderConfig(sources=("popularity", "ease"), ranker="logistic", n_candidates=40,
                               ranker_window_days=10, ranker_windows=1)
    return Recommender(config).fit(data)


@pytest.mark.slow
def test_observe_feeds_history_and_seen_titles_into_a_fork_only(small_model, world_data):
    world, data = world_data
    user = data.users["user_id"].iloc[0]
    now = data.end + pd.Timedelta(hours=2)
    first = small_model.recommend([user], k=3, context={"now": now, "device": "tv"})
    top = first["item_id"].iloc[0]
    watched = pd.DataFrame({"user_id": [user], "item_id": [top], "timestamp": [data.end + pd.Timedelta(hours=1)],
                            "device": ["tv"], "session_id": ["x-1"], "watch_fraction": [0.95],
                            "minutes_watched": [90.0], "position": pd.array([0], dtype="Int64"),
                            "propensity": [np.nan], "source": ["row"]})
    events_before = len(small_model.history_.events)
    twin = small_model.fork().observe(watched)
    assert len(twin.history_.events) == events_before + 1 and len(small_model.history_.events) == events_before
    assert top not in set(twin.recommend([user], k=10, context={"now": now, "device": "tv"})["item_id"])
    assert top in set(small_model.recommend([user], k=10, context={"now": now, "device": "tv"})["item_id"])
    with pytest.raises(Exception, match="not in the users"):
        small_model.fork().observe(watched.assign(user_id="nobody"))


@pytest.mark.slow
def test_a_recommender_arm_runs_and_never_reshows_finished_titles(small_model, world_data):
    result = _run(world_data, {"popularity": "popularity", "model": small_model}, users=150, days=2)
    report = analyze(result)
    assert set(report.table()["arm"]) == {"popularity", "model"}
    ev = result.events
    finished = ev[ev["watch_fraction"] > 0.8].groupby(["user_id", "item_id"])["timestamp"].min()
    shown = ev[ev["source"] == "row"].join(finished.rename("finished_at"), on=["user_id", "item_id"])
    assert not (shown["timestamp"] > shown["finished_at"]).any()
    assert (ev.loc[ev["arm"] == "model", "source"] == "row").sum() > 0


# ------------------------------------------------------------------ the policy contract
def _recommender_policy(world_data):
    from recsys.pipeline import Recommender, RecommenderConfig
    from recsys.simulation import RecommenderPolicy

    _, data = world_data
    model = Recommender(RecommenderConfig(sources=("popularity", "ease"), n_candidates=40, ranker_window_days=10,
                                          ranker_windows=1)).fit(data)
    return RecommenderPolicy(model, name="pipeline")


#: How the contract test builds each registered online policy (a new one without an entry here fails).
POLICY_FACTORIES = {
    "random": lambda world_data: make_policy("random", seed=3),
    "oracle": lambda world_data: make_policy("oracle", world=world_data[0]),
    "popularity": lambda world_data: make_policy("popularity"),
    "logging": lambda world_data: make_policy("logging", world=world_data[0], seed=3),
    "recommender": _recommender_policy,
}


def test_every_registered_online_policy_runs_the_contract():
    from recsys.simulation import ONLINE_POLICIES

    assert set(POLICY_FACTORIES) == set(ONLINE_POLICIES.names())


@pytest.mark.parametrize("name", list(POLICY_FACTORIES))
def test_online_policy_contract(name, world_data):
    """Lists of at most k distinct titles the member may watch; what they finish is never shown again."""
    world, data = world_data
    policy = POLICY_FACTORIES[name](world_data).start(data, world)
    now = data.end + pd.Timedelta(hours=2)
    members = list(data.users["user_id"].iloc[:30])
    requests = pd.DataFrame({"user_id": members, "timestamp": now, "device": "tv",
                             "session_id": [f"s{k}" for k in range(len(members))]})
    lists = policy.recommend(requests, 5, now)
    assert set(lists) <= set(members) and all(len(v) == len(set(v)) <= 5 for v in lists.values())
    finished = {u: v[0] for u, v in lists.items() if v}
    events = pd.DataFrame({"user_id": list(finished), "item_id": list(finished.values()),
                           "timestamp": now + pd.Timedelta(minutes=1), "watch_fraction": 1.0,
                           "minutes_watched": 40.0, "device": "tv", "session_id": "later", "source": "row"})
    policy.observe(events)
    later = now + pd.Timedelta(hours=3)
    again = policy.recommend(requests.assign(timestamp=later), 5, later)
    assert all(finished[u] not in again.get(u, []) for u in finished)


def test_the_logging_arm_draws_like_the_logs(world_data):
    """The arm's rows are the world's Plackett-Luce draws: reproducible per seed, different across seeds, and
    its online engagement is close to the logged sessions' own."""
    world, data = world_data
    now = data.end + pd.Timedelta(hours=2)
    members = list(data.users["user_id"].iloc[:40])
    requests = pd.DataFrame({"user_id": members, "timestamp": now, "device": "tv",
                             "session_id": [f"s{k}" for k in range(len(members))]})
    first = make_policy("logging", world=world, seed=3).start(data, world).recommend(requests, 10, now)
    again = make_policy("logging", world=world, seed=3).start(data, world).recommend(requests, 10, now)
    other = make_policy("logging", world=world, seed=4).start(data, world).recommend(requests, 10, now)
    assert first == again and first != other
    report = analyze(_run(world_data, {"logging": "logging", "random": "random"}, users=300, days=7))
    online = report.table().set_index("arm").loc["logging", "engagement_rate"]
    rows = data.events[data.events["source"] == "row"]
    logged = rows.groupby("session_id")["watch_fraction"].max().gt(0).mean()
    assert abs(online - logged) < 0.1, (online, logged)


# ------------------------------------------------- where the online value is lost (recsys.simulation.gap)
@pytest.mark.slow
def test_the_gap_table_orders_lists_the_way_the_truth_must(small_model, world_data):
    from recsys.simulation.gap import GapConfig, online_gap

    world, data = world_data
    report = online_gap(small_model, data, world, GapConfig(members=60, k=10))
    value = report.stages.set_index("list")["value"]
    # the oracle's top k maximises sum_k w_k * truth_k (weights fall with the slot): nothing beats it
    assert value.max() == pytest.approx(value["oracle"]) and report.stages["share_of_oracle"].iloc[0] == 1.0
    # the same candidates in the oracle's order beat our ranker's order of them
    assert value["oracle order of our candidates"] >= value["our ranker, before the re-rank"]
    assert value["oracle order of our candidates"] >= value["oracle order of our candidates, re-ranked"]
    recall = report.recall.set_index("source")["recall"]
    assert set(recall.index) == {"blend", "popularity", "ease"} and recall.between(0, 1).all()
    # the calibration table covers every scored candidate once per grouping
    rows = report.calibration.groupby("by")["rows"].sum()
    assert rows.nunique() == 1 and rows.iloc[0] > 0


@pytest.mark.slow
def test_the_recall_of_the_oracles_top_k_counts_hits_by_hand(small_model, world_data):
    from recsys.simulation import OraclePolicy
    from recsys.simulation.gap import GapConfig, online_gap

    world, data = world_data
    config = GapConfig(members=20, k=5)
    report = online_gap(small_model, data, world, config)
    oracle = OraclePolicy(world).start(data, world)
    rng = np.random.default_rng(np.random.SeedSequence([0, 61]))
    members = np.sort(rng.choice(data.users["user_id"].astype(str).to_numpy(dtype=object), 20, replace=False))
    best = oracle.recommend(pd.DataFrame({"user_id": members, "device": "tv"}), 5, report.when)
    cands = small_model.generators_.recommend(list(members), n=small_model.config.n_candidates, now=report.when,
                                              users=data.users)
    got = cands.groupby("user_id")["item_id"].apply(set)
    hits = [len(set(best[m]) & got.get(m, set())) / len(best[m]) for m in members if best[m]]
    assert report.recall.set_index("source").loc["blend", "recall"] == pytest.approx(np.mean(hits), abs=1e-4)


@pytest.mark.slow
def test_the_inspector_sets_the_oracles_list_beside_ours(small_model, world_data):
    from recsys.simulation import OraclePolicy
    from recsys.simulation.gap import oracle_beside

    world, data = world_data
    user, now = str(data.users["user_id"].iloc[3]), data.end + pd.Timedelta(hours=5)
    table = oracle_beside(small_model, data, world, user, now, "tv", k=10)
    oracle = OraclePolicy(world).start(data, world)
    best = oracle.recommend(pd.DataFrame({"user_id": [user], "device": ["tv"]}), 10, now)[user]
    titles = data.items.set_index("item_id")["title"]
    assert table["oracle"].dropna().tolist() == [titles[i] for i in best]
    truth = table["oracle: true P(watch)"].dropna().to_numpy()
    assert (np.diff(truth) <= 1e-12).all()  # the oracle's list is in the truth's order
    served = small_model.recommend([user], k=10, context={"now": now, "device": "tv"})
    assert table["ours"].dropna().tolist() == [titles[i] for i in served.sort_values("rank")["item_id"]]
