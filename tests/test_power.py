"""The experiment planner: minimum detectable effect and members needed against hand computations, their
inverse relation, the 1/sqrt(n) law, input errors, and a pilot's spread predicting a real run's error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data import load_dataset
from recsys.data.loaders import sample_data_dir
from recsys.data.synthetic import load_world
from recsys.simulation import (
    METRICS, ExperimentConfig, absolute_effect, analyze, members_needed, minimum_detectable_effect, plan,
    relative_effect, run_experiment, run_pilot,
)

# z[0.975] = 1.959964, z[0.80] = 0.841621: their sum 2.801585 is the planner's multiplier at 5% / 80%.


def test_the_minimum_detectable_effect_matches_a_hand_computation():
    # sd 2 in both arms, 800 members over 2 arms = 400 per arm:
    # 2.801585 * sqrt((4 + 4) / 400) = 2.801585 * 0.1414214 = 0.396204
    assert minimum_detectable_effect(2.0, 800) == pytest.approx(0.396204, abs=1e-6)
    # 3 arms, sd 3 (control) and 4 (treatment), 900 members = 300 per arm, half of them active = 150:
    # 2.801585 * sqrt((9 + 16) / 150) = 2.801585 * 0.4082483 = 1.143742
    assert minimum_detectable_effect(3.0, 900, 3, sd_treatment=4.0, active_share=0.5) == pytest.approx(
        1.143742, abs=1e-6)
    # 1% significance, 90% power: z[0.995] = 2.575829, z[0.90] = 1.281552, sum 3.857381;
    # 3.857381 * sqrt(8 / 400) = 3.857381 * 0.1414214 = 0.545516
    assert minimum_detectable_effect(2.0, 800, alpha=0.01, power=0.9) == pytest.approx(0.545516, abs=1e-6)


def test_members_needed_matches_a_hand_computation():
    # effect 0.25, sd 2 in both arms: counted members per arm = 2.801585^2 * (4 + 4) / 0.25^2
    # = 7.848880 * 128 = 1004.657; over 2 arms 2009.31, rounded up: 2010
    assert members_needed(0.25, 2.0) == 2010
    # the same with 3 arms and 40% active: 3 * 1004.657 / 0.4 = 7534.92 -> 7535
    assert members_needed(0.25, 2.0, 3, active_share=0.4) == 7535
    # a huge effect still needs 2 counted members per arm: 2 arms * 2 / 0.5 active = 8
    assert members_needed(100.0, 1.0, active_share=0.5) == 8


def test_relative_and_absolute_effects_are_fractions_of_the_control_mean():
    assert relative_effect(1.5, 60.0) == pytest.approx(0.025)
    assert absolute_effect(0.02, 60.0) == pytest.approx(1.2)
    with pytest.raises(ValueError, match="control mean > 0"):
        relative_effect(1.0, 0.0)


@settings(max_examples=200)
@given(sd_c=st.floats(0.05, 200.0), sd_t=st.floats(0.05, 200.0), arms=st.integers(2, 5),
       share=st.floats(0.05, 1.0), effect=st.floats(0.01, 50.0), alpha=st.floats(0.001, 0.2),
       power=st.floats(0.5, 0.99))
def test_members_needed_is_the_inverse_of_the_minimum_detectable_effect(sd_c, sd_t, arms, share, effect, alpha,
                                                                       power):
    kw = dict(sd_treatment=sd_t, active_share=share, alpha=alpha, power=power)
    n = members_needed(effect, sd_c, arms, **kw)
    assert minimum_detectable_effect(sd_c, n, arms, **kw) <= effect * (1 + 1e-9)
    floor = arms * 2 / share  # the fewest members the test accepts
    if n - 1 >= floor:
        assert minimum_detectable_effect(sd_c, n - 1, arms, **kw) > effect * (1 - 1e-9)
    # and the other way round: the effect detectable at n members needs no more than n
    mde = minimum_detectable_effect(sd_c, n, arms, **kw)
    assert members_needed(mde * (1 + 1e-9), sd_c, arms, **kw) <= n


def test_the_minimum_detectable_effect_falls_as_one_over_the_root_of_the_members():
    base = minimum_detectable_effect(5.0, 1000, 3, sd_treatment=7.0, active_share=0.4)
    for factor in (4, 9, 100):
        assert minimum_detectable_effect(5.0, 1000 * factor, 3, sd_treatment=7.0, active_share=0.4) == pytest.approx(
            base / math.sqrt(factor), rel=1e-12)
    # and grows with the spread, linearly
    assert minimum_detectable_effect(10.0, 1000, 3, sd_treatment=14.0, active_share=0.4) == pytest.approx(2 * base)


@pytest.mark.parametrize("call, message", [
    (lambda: minimum_detectable_effect(1.0, 3), "at least 2"),  # 1.5 per arm
    (lambda: minimum_detectable_effect(1.0, 10, active_share=0.2), "counted members"),  # 1 active per arm
    (lambda: minimum_detectable_effect(1.0, 100, power=1.0), "power must be a number strictly between 0 and 1"),
    (lambda: minimum_detectable_effect(1.0, 100, alpha=0.0), "alpha must be"),
    (lambda: minimum_detectable_effect(1.0, 100, power=0.01), "power must exceed alpha / 2"),
    (lambda: minimum_detectable_effect(-1.0, 100), "sd_control"),
    (lambda: minimum_detectable_effect(1.0, 100, sd_treatment=float("nan")), "sd_treatment"),
    (lambda: minimum_detectable_effect(1.0, 100, arms=1), "arms must be an integer >= 2"),
    (lambda: minimum_detectable_effect(1.0, 100, active_share=0.0), "active_share"),
    (lambda: minimum_detectable_effect(1.0, 100, active_share=1.5), "active_share"),
    (lambda: members_needed(0.0, 1.0), "effect must be a finite number > 0"),
    (lambda: members_needed(-0.5, 1.0), "effect must be a finite number > 0"),
    (lambda: members_needed(float("inf"), 1.0), "effect must be a finite number > 0"),
    (lambda: members_needed(0.5, 1.0, alpha=1.2), "alpha must be"),
])
def test_bad_inputs_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------ the pilot, on the shipped sample world
@pytest.fixture(scope="module")
def sample():
    return load_world(sample_data_dir()), load_dataset("sample")


ARMS = {"popularity": "popularity", "random": "random", "oracle": "oracle"}


@pytest.fixture(scope="module")
def pilot(sample):
    world, data = sample
    return run_pilot(data, world, ARMS, days=3, members=300, seed=1)


def test_the_pilot_reports_each_arm_and_metric_in_the_analysis_unit(pilot):
    table = pilot.table
    assert pilot.arms == list(ARMS) and pilot.control == "popularity"
    assert set(zip(table["arm"], table["metric"])) == {(a, m) for a in ARMS for m in METRICS}
    assert table["assigned"].groupby(table["arm"]).first().sum() == 300
    per_member = table[table["metric"] == "minutes_per_member"]
    assert (per_member["active_share"] == 1.0).all()  # every assigned member counts, with 0 minutes if absent
    per_session = table[table["metric"] == "engagement_rate"]
    assert ((per_session["active_share"] > 0.1) & (per_session["active_share"] < 1.0)).all()
    # every per-session metric is counted over the same members (those with a session)
    assert table[table["metric"] != "minutes_per_member"].groupby("arm")["n"].nunique().eq(1).all()
    assert (table["sd"] > 0).all() and np.isfinite(table["sd"]).all()
    oracle, popularity = pilot.row("oracle", "engagement_rate"), pilot.row("popularity", "engagement_rate")
    assert oracle["mean"] > popularity["mean"]
    with pytest.raises(ValueError, match="no arm"):
        pilot.row("nobody", "engagement_rate")
    with pytest.raises(ValueError, match="unknown metric"):
        pilot.row("oracle", "clicks")


def test_the_pilot_predicts_the_standard_error_of_a_real_runs_difference(sample, pilot):
    # a pilot of 300 members (about 35 active per arm over 3 days) measures the spread to within about a third;
    # heavy-tailed minutes (binges) can be further off (here minutes per member against random: 1.67)
    world, data = sample
    members = 1200
    result = run_experiment(data, world, ARMS, ExperimentConfig(users=members, days=3, seed=2))
    report = analyze(result)
    arms = report.arms.set_index(["arm", "metric"])
    ratios = []
    for metric in METRICS:
        control, share = pilot.row("popularity", metric), pilot.active_share(metric)
        for treatment in ("random", "oracle"):
            other = pilot.row(treatment, metric)
            predicted = math.sqrt((control["sd"] ** 2 + other["sd"] ** 2) / (members / 3 * share))
            observed = math.hypot(arms.loc[(treatment, metric), "se"], arms.loc[("popularity", metric), "se"])
            assert 0.5 < predicted / observed < 2.0, (metric, treatment, predicted, observed)
            ratios.append(predicted / observed)
            # the MDE is that standard error times 2.801585
            mde = minimum_detectable_effect(control["sd"], members, 3, sd_treatment=other["sd"], active_share=share)
            assert mde == pytest.approx(2.801585 * predicted, rel=1e-6)
    assert 0.8 < float(np.median(ratios)) < 1.25, ratios
    # the share of members with a session is the same in the pilot and the run (sessions ignore the arm)
    active = (report.members["sessions"] > 0).mean()
    assert pilot.active_share("engagement_rate") == pytest.approx(active, abs=0.06), active


def test_the_plan_gives_each_treatment_its_mde_and_members_needed(pilot):
    table = plan(pilot, "minutes_per_session", 2000, 0.05).set_index("treatment")
    assert list(table.index) == ["random", "oracle"]
    control = pilot.row("popularity", "minutes_per_session")
    share = pilot.active_share("minutes_per_session")
    for treatment, row in table.iterrows():
        sd_t = pilot.row(treatment, "minutes_per_session")["sd"]
        mde = minimum_detectable_effect(control["sd"], 2000, 3, sd_treatment=sd_t, active_share=share)
        assert row["mde"] == pytest.approx(mde)
        assert row["mde_relative"] == pytest.approx(mde / control["mean"])
        needed = members_needed(0.05 * control["mean"], control["sd"], 3, sd_treatment=sd_t, active_share=share)
        assert row["members_needed"] == needed and row["enough"] == (needed <= 2000)
    # a 5% effect on minutes per session needs far more than 2,000 members on the sample
    assert not table["enough"].any()
    with pytest.raises(ValueError, match="fraction > 0"):
        plan(pilot, "minutes_per_session", 2000, 0.0)
