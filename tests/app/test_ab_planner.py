"""The A/B page's planner: a pilot of the chosen arms and days, and the minimum detectable effect and members
needed it shows, equal to recsys.simulation.power's figures for the same inputs; never a traceback."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from recsys.data import load_dataset
from recsys.data.loaders import world_of
from recsys.simulation import members_needed, minimum_detectable_effect, run_pilot





def _plan_table(at: AppTest):
    tables = [d.value for d in at.dataframe if any(str(c).startswith("detectable difference") for c in d.value)]
    assert len(tables) == 1
    return tables[0]


def test_the_planner_shows_the_power_modules_figures_for_the_pilot(world_spec, ab_page):
    at = ab_page(world_spec)
    assert not at.exception
    assert any("Run a pilot" in i.value for i in at.info)
    at.selectbox(key="ab_control").set_value("popularity").run()
    at.multiselect(key="ab_treatments").set_value(["oracle"]).run()
    at.number_input(key="ab_users").set_value(150)
    at.number_input(key="ab_days").set_value(2)
    at.selectbox(key="ab_plan_metric").set_value("minutes_per_session")
    at.number_input(key="ab_plan_effect").set_value(5.0)
    at.button(key="ab_pilot").click().run()
    assert not at.exception and not at.error

    # the same pilot, computed here: the world's 200 members (fewer than 300), 2 days, seed 0
    pilot = run_pilot(load_dataset(world_spec), world_of(world_spec), {"popularity": "popularity", "oracle": "oracle"},
                      days=2, members=200, seed=0)
    control, oracle = pilot.row("popularity", "minutes_per_session"), pilot.row("oracle", "minutes_per_session")
    share = pilot.active_share("minutes_per_session")
    mde = minimum_detectable_effect(control["sd"], 150, 2, sd_treatment=oracle["sd"], active_share=share)
    needed = members_needed(0.05 * control["mean"], control["sd"], 2, sd_treatment=oracle["sd"], active_share=share)

    table = _plan_table(at)
    assert list(table["treatment"]) == ["oracle"]
    row = table.iloc[0]
    assert row["detectable difference at 150 members"] == pytest.approx(mde, rel=1e-9)
    assert row["control minutes per session (pilot)"] == pytest.approx(control["mean"], rel=1e-9)
    assert row["detectable, % of control"] == pytest.approx(100 * mde / control["mean"], rel=1e-9)
    assert row["members needed for 5%"] == needed
    assert needed > 150  # a 5% change needs far more than 150 members: the page says so
    assert any("too few to detect a 5% change" in w.value and f"{needed:,}" in w.value for w in at.warning)
    assert any("minimum detectable effect" in c.value for c in at.caption)

    # more members: the same pilot (nothing re-run), a smaller detectable difference
    at.number_input(key="ab_users").set_value(200).run()
    row = _plan_table(at).iloc[0]
    assert row["detectable difference at 200 members"] == pytest.approx(
        minimum_detectable_effect(control["sd"], 200, 2, sd_treatment=oracle["sd"], active_share=share), rel=1e-9)

    # a doubling of the engagement rate is within reach, and the page says that plainly
    at.selectbox(key="ab_plan_metric").set_value("engagement_rate")
    at.number_input(key="ab_plan_effect").set_value(100.0).run()
    control, oracle = pilot.row("popularity", "engagement_rate"), pilot.row("oracle", "engagement_rate")
    needed = members_needed(control["mean"], control["sd"], 2, sd_treatment=oracle["sd"],
                            active_share=pilot.active_share("engagement_rate"))
    row = _plan_table(at).iloc[0]
    assert row["members needed for 100%"] == needed and needed <= 200
    assert any("are enough to detect a 100% change in engagement rate" in s.value for s in at.success)

    # other days need another pilot
    at.number_input(key="ab_days").set_value(3).run()
    assert not at.exception
    assert any("Run a pilot" in i.value for i in at.info)
    assert not any(any(str(c).startswith("detectable difference") for c in d.value) for d in at.dataframe)


def test_a_pilot_of_the_control_alone_is_a_warning(world_spec, ab_page):
    at = ab_page(world_spec)
    at.selectbox(key="ab_control").set_value("random").run()
    at.multiselect(key="ab_treatments").set_value(["random"]).run()
    at.button(key="ab_pilot").click().run()
    assert not at.exception and not at.error
    assert any("other than the control" in w.value for w in at.warning)


def test_too_few_members_or_a_too_short_pilot_is_a_message_not_a_traceback(world_spec, ab_page):
    at = ab_page(world_spec)
    at.selectbox(key="ab_control").set_value("popularity").run()
    at.multiselect(key="ab_treatments").set_value(["oracle", "random", "logging"]).run()
    at.number_input(key="ab_users").set_value(20)
    at.number_input(key="ab_days").set_value(3)
    at.button(key="ab_pilot").click().run()
    assert not at.exception and not at.error
    # 20 members over 4 arms, about a third of them active over 3 days: fewer than 2 counted per arm
    assert any("No plan for these settings" in w.value and "counted members per arm" in w.value for w in at.warning)
    # a pilot of one day: 200 members over 4 arms leave too few active members to measure a spread
    at.number_input(key="ab_days").set_value(1)
    at.button(key="ab_pilot").click().run()
    assert not at.exception and not at.error
    assert any("No plan for these settings" in w.value and "run it over more days" in w.value for w in at.warning)
