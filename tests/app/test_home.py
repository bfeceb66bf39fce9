"""The Home page renders the sample's numbers and turns a bad data source into a message."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def _home() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=60)


def test_home_shows_the_sample_in_numbers():
    at = _home().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Members"] == "2,000"
    assert metrics["Titles"] == "978"
    assert int(metrics["Events"].replace(",", "")) > 100_000


def test_a_bad_data_source_is_an_error_message_not_a_traceback(tmp_path):
    at = _home().run()
    at.text_input(key="data_spec_input").set_value(f"csv:{tmp_path}/missing").run()
    at.button(key="load_data").click().run()
    assert not at.exception
    assert any("Could not load" in e.value for e in at.error)
    # the page still shows the sample
    assert {m.label: m.value for m in at.metric}["Members"] == "2,000"


def test_app_routes_to_home():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("recsys" in t.value for t in at.title)
