"""The A/B test page: configure arms, run a small simulated experiment, see tables and charts, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recsys.data.loaders import save_dataset

ROOT = Path(__file__).resolve().parents[2]






def test_a_small_experiment_shows_arms_lifts_srm_and_offline_view(world_spec, ab_page):
    at = ab_page(world_spec)
    assert not at.exception
    assert any("Run the experiment" in i.value for i in at.info)
    at.selectbox(key="ab_control").set_value("random").run()
    at.multiselect(key="ab_treatments").set_value(["oracle", "popularity"]).run()
    at.number_input(key="ab_users").set_value(150)
    at.number_input(key="ab_days").set_value(2)
    at.checkbox(key="ab_offline").check()
    at.button(key="ab_run").click().run()
    assert not at.exception and not at.error
    arms = at.dataframe[0].value
    assert list(arms["arm"]) == ["random", "oracle", "popularity"]
    assert arms["members"].sum() == 150
    comparisons = at.dataframe[1].value
    assert set(comparisons["treatment"]) == {"oracle", "popularity"}
    assert any("Sample ratio check passed" in s.value for s in at.success)
    offline = at.dataframe[2].value
    assert offline["policy"].iloc[0] == "oracle"  # sorted by offline NDCG@10: the oracle is the ceiling
    assert any("Kendall" in m.value for m in at.markdown)
    at.selectbox(key="ab_metric").set_value("minutes_per_session").run()
    assert not at.exception
    # the same arms estimated from the logs, beside their simulated values, with the agreement and a chart
    estimated = at.dataframe[3].value
    assert set(estimated["policy"]) == {"random", "oracle", "popularity"}
    assert "minutes per session simulated" in estimated.columns
    assert any("median relative error" in m.value for m in at.markdown)
    at.selectbox(key="ab_estimated_metric").set_value("engagement_rate").run()
    assert not at.exception


def test_data_without_a_world_is_a_message(tmp_path, world_spec, ab_page):
    from recsys.data import load_dataset

    folder = tmp_path / "plain"
    save_dataset(load_dataset(world_spec), folder)  # the same data, no world.json
    at = ab_page(f"parquet:{folder}")
    assert not at.exception
    assert any("behaviour model" in i.value for i in at.info)
    at = ab_page("parquet:/nowhere/at/all")
    assert not at.exception and at.error


def test_a_minimal_folder_without_a_world_is_a_message(tmp_path, ab_page):
    import pandas as pd

    pd.DataFrame({"item_id": ["m1", "m2"], "title": ["One", "Two"], "genres": ["drama", "comedy|drama"]}).to_csv(
        tmp_path / "items.csv", index=False)
    pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["m1", "m2", "m1"],
                  "timestamp": ["2025-07-01", "2025-07-02", "2025-07-03"], "watch_fraction": [0.9, 0.05, 0.95]}
                 ).to_csv(tmp_path / "events.csv", index=False)
    at = ab_page(f"csv:{tmp_path}")
    assert not at.exception and not at.error
    assert any("behaviour model" in i.value for i in at.info)


def test_the_control_alone_is_a_warning_not_a_run(world_spec, ab_page):
    at = ab_page(world_spec)
    at.selectbox(key="ab_control").set_value("random").run()
    at.multiselect(key="ab_treatments").set_value(["random"]).run()
    at.button(key="ab_run").click().run()
    assert not at.exception and not at.error
    assert any("other than the control" in w.value for w in at.warning)
    assert not at.dataframe


@pytest.mark.slow
def test_the_previous_default_runs_against_the_new_one(world_spec):
    from recsys.ui.experiments import PIPELINE, PREVIOUS

    at = AppTest.from_file(str(ROOT / "pages" / "ab_test.py"), default_timeout=600)
    at.session_state["data_spec"] = world_spec
    at.run()
    at.selectbox(key="ab_control").set_value(PREVIOUS).run()
    at.multiselect(key="ab_treatments").set_value([PIPELINE]).run()
    assert any("previous default configuration" in c.value for c in at.caption)
    at.number_input(key="ab_users").set_value(120)
    at.number_input(key="ab_days").set_value(2)
    at.button(key="ab_run").click().run()
    assert not at.exception and not at.error
    arms = at.dataframe[0].value
    assert list(arms["arm"]) == [PREVIOUS, PIPELINE] and arms["members"].sum() == 120
    assert set(at.dataframe[1].value["treatment"]) == {PIPELINE}
