"""The inspector: a trained pipeline's list for a member, context controls, and a member with no history."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def test_inspector_shows_a_top_10_and_reacts_to_context_and_members():
    at = AppTest.from_file(str(ROOT / "pages" / "recommendations.py"), default_timeout=600).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 10
    first = at.dataframe[0].value["title"].tolist()
    at.selectbox(key="context_device").set_value("mobile").run()
    at.slider(key="context_hour").set_value(8).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 10
    at.selectbox(key="explain_title").set_value(at.dataframe[0].value["title"].iat[0]).run()
    assert not at.exception
    # the sample has a world: the oracle's list is set beside ours, best true P(watch) first
    beside = next(d.value for d in at.dataframe if "oracle: true P(watch)" in d.value.columns)
    assert beside["ours"].tolist() == at.dataframe[0].value["title"].tolist()
    truth = beside["oracle: true P(watch)"].to_numpy()
    assert len(beside) == 10 and (truth[:-1] >= truth[1:]).all()
    assert any("the oracle's" in c.value for c in at.caption)
    # a member who signs up late in the log has no history at the start of it
    import pandas as pd

    from recsys.data import load_dataset

    users = load_dataset("sample").users
    late = users.sort_values("signup_time")["user_id"].iat[-1]
    at.selectbox(key="inspector_user").set_value(late).run()
    at.date_input(key="context_date").set_value(pd.Timestamp("2025-07-02").date()).run()
    assert not at.exception
    assert any("No viewing history" in i.value for i in at.info)
    assert len(at.dataframe[0].value) == 10
    assert first  # the first member's list was shown
