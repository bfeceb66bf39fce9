"""Off-policy estimators: hand-computed values on a three-session log, unbiasedness and variance on a
synthetic slate problem with a known value, Plackett-Luce marginals against sampling, and how logged
sessions are read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.estimators import (ESTIMATOR_NAMES, ESTIMATORS, RewardPredictions, SlateProblem,
                                          bootstrap_difference, bootstrap_ratio, estimate)
from recsys.evaluation.logged import LoggedSessions, OffPolicyUnavailable
from recsys.evaluation.propensity import race_marginals, slot_marginals, weights_from_propensities


def _three_sessions() -> LoggedSessions:
    """Titles A, B, C (0, 1, 2), two slots; u1 has sessions s1 and s3, u2 has s2."""
    return LoggedSessions(
        session_id=np.array(["s1", "s2", "s3"], dtype=object), user_id=np.array(["u1", "u2", "u1"], dtype=object),
        timestamp=np.array(["2025-01-01", "2025-01-02", "2025-01-03"], dtype="datetime64[ns]"),
        device=np.array(["tv"] * 3, dtype=object), items=np.array([[0, 1], [1, 2], [2, 0]]),
        item_ids=pd.Index(["A", "B", "C"]), propensity=np.array([[0.5, 0.4], [0.25, 0.5], [0.2, 0.5]]),
        played=np.array([[True, False], [False, True], [False, False]]),
        videos=np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]),
        minutes=np.array([[30.0, 0.0], [0.0, 20.0], [0.0, 0.0]]))


def _three_problem() -> SlateProblem:
    logged = _three_sessions()
    marginals = np.array([[[0.5, 0.2], [0.3, 0.4]], [[0.25, 0.3], [0.4, 0.5]], [[0.2, 0.3], [0.5, 0.4]]])
    flat = RewardPredictions(click=np.full((3, 2), 0.2), click_after=np.full((3, 2), 0.1),
                             minutes=np.full((3, 2), 25.0), videos=np.ones((3, 2)))
    return SlateProblem(logged=logged, target=np.array([[0, 2]] * 3), examination=np.array([1.0, 0.5]),
                        marginals=marginals, logged_pred=flat, target_pred=flat)


class TestHandComputed:
    """Every figure below is worked out by hand in the comments (target list [A, C], e = [1, 0.5])."""

    # rho: s1 A -> 1 / (0.5 + 0.2 * 0.5) = 1/0.6; s2 C -> 0.5 / (0.4 + 0.5 * 0.5) = 0.5/0.65;
    #      s3 C -> 0.5 / (0.2 + 0.15) = 0.5/0.35, s3 A -> 1 / (0.5 + 0.2) = 1/0.7
    def test_rho(self):
        rho = _three_problem().rho  # (session, logged slot, target slot)
        expected = np.zeros((3, 2, 2))
        expected[0, 0, 0], expected[1, 1, 1], expected[2, 0, 1], expected[2, 1, 0] = (
            1 / 0.6, 0.5 / 0.65, 0.5 / 0.35, 1 / 0.7)
        np.testing.assert_allclose(rho, expected)

    def test_ips_minutes_and_engagement(self):
        problem = _three_problem()
        # minutes: (30/0.6 + 20 * 0.5/0.65 + 0) / 3
        assert estimate(problem, "ips", "minutes_per_session").estimate == pytest.approx(
            (50 + 20 * 0.5 / 0.65) / 3)
        # the target's mean play chance by IPS: slot 0 (A) (1/0.6) / 3, so slot 1 (C) is reached with no play
        # above with chance 1 - (1/0.6) / 3; s1's play counts in full, s2's (C, target slot 1) times that
        reach = 1 - (1 / 0.6) / 3
        assert estimate(problem, "ips", "engagement_rate").estimate == pytest.approx(
            (1 / 0.6 + 0.5 / 0.65 * reach) / 3)

    def test_snips(self):
        # c_s = sum_j rho_j e_j / 1.5: s1 (1/0.6)/1.5, s2 (0.5/0.65 * 0.5)/1.5, s3 (0.5/0.35 + 0.5 * 1/0.7)/1.5
        c = [(1 / 0.6) / 1.5, (0.5 / 0.65 * 0.5) / 1.5, (0.5 / 0.35 + 0.5 / 0.7) / 1.5]
        value = estimate(_three_problem(), "snips", "minutes_per_session").estimate
        assert value == pytest.approx((50 + 20 * 0.5 / 0.65) / sum(c))

    def test_direct_method(self):
        # the flat model: plays [0.2, 0.2 * 0.8 + 0.1 * 0.2 = 0.18] x 25 minutes = 9.5 per session
        assert estimate(_three_problem(), "dm", "minutes_per_session").estimate == pytest.approx(9.5)
        # engagement: 0.2 + 0.8 * 0.2 = 0.36
        assert estimate(_three_problem(), "dm", "engagement_rate").estimate == pytest.approx(0.36)

    def test_doubly_robust(self):
        # residuals against the model's per-play expectation 0.2 * 25 = 5 in every logged slot (kappa = 1):
        # s1 (30 - 5)/0.6; s2 0.5/0.65 * (20 - 5); s3 -(0.5/0.35 * 5 + 1/0.7 * 5)
        s1 = 9.5 + 25 / 0.6
        s2 = 9.5 + 0.5 / 0.65 * 15
        s3 = 9.5 - (0.5 / 0.35 * 5 + 5 / 0.7)
        assert estimate(_three_problem(), "dr", "minutes_per_session").estimate == pytest.approx((s1 + s2 + s3) / 3)

    def test_doubly_robust_engagement_is_first_order(self):
        # the model: 1 - 0.8^2 = 0.36 per session; the slope in either slot's play chance is 0.8; engagement
        # residuals (played - 0.2): s1 A +0.8 (rho 1/0.6), s2 C +0.8 (0.5/0.65), s3 C -0.2 (0.5/0.35), A -0.2 (1/0.7)
        s1 = 0.36 + 0.8 * (0.8 / 0.6)
        s2 = 0.36 + 0.8 * (0.8 * 0.5 / 0.65)
        s3 = 0.36 + 0.8 * (-0.2 * 0.5 / 0.35 - 0.2 / 0.7)
        assert estimate(_three_problem(), "dr", "engagement_rate").estimate == pytest.approx((s1 + s2 + s3) / 3)

    def test_an_engagement_rate_past_one_is_clipped_to_one(self):
        # a model that thinks nothing gets played: 0 per session, slope 1 in each slot; residuals as above
        # but against 0: s1 A 1/0.6, s2 C 0.5/0.65, s3 nothing played -> (1/0.6 + 0.5/0.65) / 3 = 0.812;
        # with the propensities a quarter as large every weight is 4x: 3.25, a share of sessions past 1
        problem = _three_problem()
        zero = RewardPredictions(click=np.zeros((3, 2)), click_after=np.zeros((3, 2)), minutes=np.full((3, 2), 25.0),
                                 videos=np.ones((3, 2)))
        low = SlateProblem(problem.logged, problem.target, problem.examination, problem.marginals / 4, zero, zero)
        got = estimate(low, "dr", "engagement_rate")
        assert (got.estimate, got.high) == (1.0, 1.0) and 0 <= got.low <= 1
        assert estimate(low, "dr", "minutes_per_session").estimate == pytest.approx(
            4 * (30 / 0.6 + 0.5 / 0.65 * 20) / 3)  # minutes are not a share: nothing clipped

    def test_kappa_counts_a_later_play_in_full(self):
        """With kappa = 0.5 a play below another play stands for two would-be plays."""
        problem = _three_problem()
        logged = problem.logged
        both = LoggedSessions(**{**logged.__dict__, "played": np.array([[True, True], [False, True], [False, False]]),
                                 "minutes": np.array([[30.0, 10.0], [0.0, 20.0], [0.0, 0.0]])})
        half = SlateProblem(both, problem.target, problem.examination, problem.marginals, problem.logged_pred,
                            problem.target_pred, kappa=0.5)
        np.testing.assert_allclose(half.per_click("minutes_per_session"), [[30.0, 20.0], [0.0, 20.0], [0.0, 0.0]])
        np.testing.assert_allclose(half.per_click("engagement_rate"), [[1.0, 2.0], [0.0, 1.0], [0.0, 0.0]])

    def test_cascade_doubly_robust(self):
        # s1 agrees on slot 0 (A, p = 0.5): 2 * (30 + 4.5 - 9.5) + 9.5 = 59.5; s2 and s3 disagree at once: 9.5
        assert estimate(_three_problem(), "cascade_dr", "minutes_per_session").estimate == pytest.approx(
            (59.5 + 9.5 + 9.5) / 3)

    def test_weights_of_one_when_target_is_logging(self):
        """Target = the logged rows: cascade weights multiply 1/p, but the estimate is sum(r) for a
        deterministic logger (p = 1)."""
        problem = _three_problem()
        logged = problem.logged
        sure = LoggedSessions(**{**logged.__dict__, "propensity": np.ones((3, 2))})
        same = SlateProblem(sure, logged.items, problem.examination, None, problem.logged_pred,
                            problem.target_pred)
        value = estimate(same, "cascade_dr", "minutes_per_session").estimate
        assert value == pytest.approx(logged.session_values("minutes_per_session").mean())

    def test_bootstrap_resamples_members(self):
        """u1's two sessions always travel together: with y = c = 1 per session the ratio is always 1."""
        point, low, high = bootstrap_ratio(np.ones(3), np.ones(3), np.array(["u1", "u2", "u1"]), rounds=50)
        assert (point, low, high) == (1.0, 1.0, 1.0)

    def test_difference_resamples_members_once_for_both_policies(self):
        """Hand-computed: u1 holds sessions 1 and 3, u2 session 2. Policy a earns 1, 2, 3 and b 0, 2, 1, so
        a - b is 2 - 1 = 1. A resample of two members is (u1, u1): 8/4 - 2/4 = 1.5, (u1, u2): 6/3 - 3/3 = 1
        or (u2, u2): 4/2 - 4/2 = 0, the first and last each with chance 1/4: the interval is [0, 1.5]."""
        members = np.array(["u1", "u2", "u1"])
        a, b = (np.array([1.0, 2.0, 3.0]), np.ones(3)), (np.array([0.0, 2.0, 1.0]), np.ones(3))
        point, low, high = bootstrap_difference(a, b, members, rounds=400)
        assert (point, low, high) == (1.0, 0.0, 1.5)
        assert bootstrap_difference(a, a, members, rounds=50) == (0.0, 0.0, 0.0)

    def test_paired_difference_is_surer_than_two_intervals(self):
        """Two policies whose session values share a member effect: the difference's interval is far narrower
        than either estimate's, and it excludes 0 while the two separate intervals overlap."""
        rng = np.random.default_rng(3)
        members = np.repeat(np.arange(200).astype(str), 3)
        shared = rng.normal(50, 20, 200).repeat(3)
        a = (shared + 2.0 + rng.normal(0, 0.5, 600), np.ones(600))
        b = (shared + rng.normal(0, 0.5, 600), np.ones(600))
        point, low, high = bootstrap_difference(a, b, members, rounds=300)
        _, a_low, a_high = bootstrap_ratio(*a, members, rounds=300)
        _, b_low, b_high = bootstrap_ratio(*b, members, rounds=300)
        assert 1.8 < point < 2.2 and low > 0
        assert high - low < 0.1 * (a_high - a_low)
        assert a_low < b_high  # the separate intervals overlap

    def test_registry_has_every_estimator(self):
        assert set(ESTIMATOR_NAMES) == {"dm", "ips", "snips", "dr", "cascade_dr"}
        for name in ESTIMATOR_NAMES:
            assert ESTIMATORS.get(name).estimator == name




class TestSyntheticSlate:
    """Logging draws Plackett-Luce rows; members click slot j with e_j * a(member, title); the target
    always shows the four titles of highest mean appeal. Its true value is sum_r e_r * mean appeal."""

    N, K = 40, 4
    e = np.array([1.0, 0.7, 0.5, 0.4])

    @pytest.fixture(scope="class")
    @classmethod
    def setting(cls):
        base = np.random.default_rng(123)
        appeal = base.uniform(0.05, 0.6, cls.N)
        log_weight = base.normal(0, 1.0, cls.N) - 1.5 * appeal  # the logger prefers the less appealing
        weights = np.exp(log_weight)
        marginals = race_marginals(weights[None, :], ranks=cls.K, points=400)[0]  # (N, K), exact
        target = np.argsort(-appeal)[: cls.K]
        truth = float(cls.e @ appeal[target])
        return appeal, weights, marginals, target, truth

    def _problem(self, seed, setting, sessions=600):
        appeal, weights, marginals, target, _ = setting
        rng = np.random.default_rng(seed)
        keys = np.log(weights)[None, :] + rng.gumbel(size=(sessions, self.N))
        rows = np.argsort(-keys, axis=1)[:, : self.K]
        mood = rng.uniform(0.5, 1.5, sessions)  # session-level appeal, mean 1
        a = np.clip(appeal[rows] * mood[:, None], 0, 1)
        clicks = rng.random((sessions, self.K)) < a * self.e[None, :]
        remaining = weights.sum() - np.concatenate([np.zeros((sessions, 1)), np.cumsum(weights[rows], 1)[:, :-1]], 1)
        logged = LoggedSessions(
            session_id=np.arange(sessions).astype(str).astype(object),
            user_id=(np.arange(sessions) // 3).astype(str).astype(object),
            timestamp=np.zeros(sessions, dtype="datetime64[ns]"), device=np.full(sessions, "tv", dtype=object),
            items=rows, item_ids=pd.Index([f"t{i}" for i in range(self.N)]), propensity=weights[rows] / remaining,
            played=clicks, videos=clicks.astype(float), minutes=clicks * 30.0)
        # a reward model that is right on average but wrong title by title (20% noise, fixed per title)
        bias = 1 + 0.2 * np.random.default_rng(99).standard_normal(self.N)

        def pred(items):
            click = np.clip(appeal[items] * bias[items] * self.e[None, :], 0, 1)
            return RewardPredictions(click=click, click_after=click, minutes=np.full(items.shape, 30.0),
                                     videos=np.ones(items.shape))

        tgt = np.tile(target, (sessions, 1))
        return SlateProblem(logged, tgt, self.e, marginals[rows], pred(rows), pred(tgt))

    def test_ips_unbiased_and_dr_tighter(self, setting):
        truth = setting[4]
        ips, dr, snips = [], [], []
        for seed in range(200):
            problem = self._problem(seed, setting)
            ips.append(estimate(problem, "ips", "videos_per_session", rounds=2).estimate)
            dr.append(estimate(problem, "dr", "videos_per_session", rounds=2).estimate)
            snips.append(estimate(problem, "snips", "videos_per_session", rounds=2).estimate)
        ips, dr = np.array(ips), np.array(dr)
        se = ips.std(ddof=1) / np.sqrt(len(ips))
        assert abs(ips.mean() - truth) <= 2 * se, (ips.mean(), truth, se)
        assert se < 0.02 * truth  # tight enough that a 4% bias would fail it
        assert dr.var(ddof=1) < ips.var(ddof=1)
        assert abs(dr.mean() - truth) <= 2 * dr.std(ddof=1) / np.sqrt(len(dr))
        assert abs(np.mean(snips) - truth) < 0.05 * truth  # consistent, slightly biased at finite n

    def test_marginals_match_sampling(self, setting):
        _, weights, marginals, _, _ = setting
        rng = np.random.default_rng(5)
        keys = np.log(weights)[None, :] + rng.gumbel(size=(100_000, self.N))
        rows = np.argsort(-keys, axis=1)[:, : self.K]
        sampled = np.stack([np.bincount(rows[:, r], minlength=self.N) for r in range(self.K)], axis=1) / 1e5
        np.testing.assert_allclose(marginals, sampled, atol=0.004)
        assert (marginals.sum(axis=0) == pytest.approx(np.ones(self.K), abs=2e-3))


def test_weights_from_propensities_inverts_plackett_luce():
    weights = np.array([0.3, 0.1, 0.05, 0.55])  # all titles: the row shows three of four
    row = [3, 0, 2]
    remaining = 1.0 - np.concatenate([[0], np.cumsum(weights[row])[:-1]])
    share, tail = weights_from_propensities((weights[row] / remaining)[None, :])
    np.testing.assert_allclose(share[0], weights[row])
    assert tail[0] == pytest.approx(0.1)


def test_slot_marginals_close_to_the_full_race():
    """Shown weights plus a Poisson tail versus the exact race over 300 titles."""
    rng = np.random.default_rng(1)
    weights = np.exp(rng.normal(0, 1.0, 300))
    weights /= weights.sum()
    exact = race_marginals(weights[None, :], ranks=10)[0]
    keys = np.log(weights)[None, :] + rng.gumbel(size=(50, 300))
    rows = np.argsort(-keys, axis=1)[:, :10]
    remaining = 1.0 - np.concatenate([np.zeros((50, 1)), np.cumsum(weights[rows], axis=1)[:, :-1]], axis=1)
    approx = slot_marginals(weights[rows] / remaining)
    e = 0.95 * (np.arange(10) + 1.0) ** -0.55
    rel = (approx @ e) / (exact[rows] @ e) - 1
    assert np.median(np.abs(rel)) < 0.03 and np.abs(rel).max() < 0.1


def _events(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "session_id", "position", "propensity",
                                       "watch_fraction", "minutes_watched", "source"]).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"]), device="tv")


class TestLoggedSessions:
    def test_autoplay_credited_to_the_slot_that_started_it_and_search_left_out(self):
        events = _events([
            ["u1", "m1", "2025-01-01 20:00", "s1", None, None, 0.9, 90.0, "search"],
            ["u1", "m2", "2025-01-01 21:30", "s1", 0, 0.5, 0.0, 0.0, "row"],
            ["u1", "e1", "2025-01-01 21:31", "s1", 1, 0.2, 0.9, 40.0, "row"],
            ["u1", "e2", "2025-01-01 22:15", "s1", None, None, 0.95, 42.0, "autoplay"],
            ["u1", "e3", "2025-01-01 23:00", "s1", None, None, 0.5, 20.0, "autoplay"],
        ])
        logged = LoggedSessions.from_events(events, ["m1", "m2", "e1", "e2", "e3"], slots=2)
        assert logged.n_sessions == 1
        np.testing.assert_array_equal(logged.items, [[1, 2]])
        np.testing.assert_allclose(logged.minutes, [[0.0, 102.0]])
        np.testing.assert_allclose(logged.videos, [[0.0, 3.0]])
        assert logged.session_values("engagement_rate")[0] == 1.0
        np.testing.assert_allclose(logged.propensity, [[0.5, 0.2]])

    def test_no_positions_says_why(self):
        events = _events([["u1", "m1", "2025-01-01", "s1", None, None, 0.9, 90.0, "row"]])
        with pytest.raises(OffPolicyUnavailable, match="position"):
            LoggedSessions.from_events(events, ["m1"])

    def test_two_titles_in_one_slot_is_named(self):
        events = _events([["u1", "m1", "2025-01-01", "s1", 0, 0.5, 0.0, 0.0, "row"],
                          ["u1", "m2", "2025-01-01", "s1", 0, 0.5, 0.0, 0.0, "row"]])
        with pytest.raises(ValueError, match="one slot of one session holds two titles"):
            LoggedSessions.from_events(events, ["m1", "m2"])


#: What each registered estimator must satisfy when the target shows exactly the logged rows of a
#: deterministic logger: "log" estimators return the logged value, "model" ones the reward model's.
CONTRACT = {"dm": "model", "ips": "log", "snips": "log", "dr": "log", "cascade_dr": "log"}


def test_every_registered_estimator_runs_the_contract():
    assert set(CONTRACT) == set(ESTIMATORS.names())


@pytest.mark.parametrize("name", list(CONTRACT))
@pytest.mark.parametrize("metric", ["videos_per_session", "minutes_per_session"])
def test_estimator_contract(name, metric):
    problem = _three_problem()
    logged = problem.logged
    sure = LoggedSessions(**{**logged.__dict__, "propensity": np.ones((3, 2))})
    identity = np.zeros((3, 2, 2))
    identity[:, 0, 0] = identity[:, 1, 1] = 1.0
    # a reward model consistent with kappa = 1 (a play above changes nothing)
    flat = RewardPredictions(click=np.full((3, 2), 0.2), click_after=np.full((3, 2), 0.2),
                             minutes=np.full((3, 2), 25.0), videos=np.ones((3, 2)))
    same = SlateProblem(sure, logged.items, problem.examination, identity, flat, flat)
    y, c = ESTIMATORS.get(name)().contributions(same, metric)
    assert y.shape == c.shape == (3,) and np.isfinite(y).all() and (c >= 0).all()
    value = estimate(same, name, metric, rounds=20).estimate
    if CONTRACT[name] == "log":
        assert value == pytest.approx(logged.session_values(metric).mean())
    else:
        model = SlateProblem(logged, problem.target, problem.examination, None, flat, flat)
        assert value == pytest.approx(estimate(model, name, metric, rounds=20).estimate)


def test_an_unfitted_logging_model_says_so():
    from recsys.errors import NotFittedError
    from recsys.evaluation.logging_model import LoggingModel

    with pytest.raises(NotFittedError, match="fit"):
        LoggingModel().propensities(_three_sessions())


def test_a_csv_log_keeps_sessions_slots_and_propensities(tmp_path):
    from recsys.data import load_dataset

    pd.DataFrame({"item_id": ["m1", "m2"], "title": ["One", "Two"], "genres": ["drama", "comedy|drama"]}).to_csv(
        tmp_path / "items.csv", index=False)
    pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["m1", "m2", "m1"],
                  "timestamp": ["2025-07-01 20:00", "2025-07-01 20:00", "2025-07-03 21:00"],
                  "watch_fraction": [0.9, 0.0, 0.95], "minutes_watched": [80.0, 0.0, 85.0],
                  "session_id": ["s1", "s1", "s2"], "position": [0, 1, 0], "propensity": [0.5, 0.4, 0.7]}
                 ).to_csv(tmp_path / "events.csv", index=False)
    data = load_dataset(f"csv:{tmp_path}")
    logged = LoggedSessions.from_events(data.events, data.items["item_id"])
    np.testing.assert_array_equal(logged.items, [[0, 1], [0, -1]])
    np.testing.assert_allclose(logged.propensity[:, 0], [0.5, 0.7])
    assert logged.session_values("minutes_per_session").tolist() == [80.0, 85.0]
