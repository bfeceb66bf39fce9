"""Every page renders on a tiny world and on a minimal three-event folder: a message at worst, never an exception."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["home", "onboarding", "recommendations", "features", "metrics"]


@pytest.fixture(scope="module")
def minimal_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("minimal")
    pd.DataFrame({"item_id": ["m1", "m2"], "title": ["One", "Two"], "genres": ["drama", "comedy|drama"]}).to_csv(
        folder / "items.csv", index=False)
    pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["m1", "m2", "m1"],
                  "timestamp": ["2025-07-01", "2025-07-02", "2025-07-03"], "watch_fraction": [0.9, 0.05, 0.95]}).to_csv(
        folder / "events.csv", index=False)
    return folder


def _page(name: str, spec: str, tmp_path) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=300)
    at.session_state["data_spec"] = spec
    at.session_state["report_path"] = str(tmp_path / "no-report.json")
    return at.run()


@pytest.mark.parametrize("name", PAGES)
def test_every_page_works_on_a_tiny_world(name, tiny_world_dir, tiny_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_APP_CACHE", str(tiny_cache))
    at = _page(name, f"csv:{tiny_world_dir}", tmp_path)
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    if name == "onboarding":
        genres = at.multiselect(key="onboarding_genres").options[:2]
        at.multiselect(key="onboarding_genres").set_value(genres).run()
        assert not at.exception and any(m.value.startswith("**1.") for m in at.markdown)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_explains_a_minimal_folder_instead_of_failing(name, minimal_dir, tiny_cache, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("RECSYS_APP_CACHE", str(tiny_cache))
    at = _page(name, f"csv:{minimal_dir}", tmp_path)
    assert not at.exception
    if name == "onboarding":
        at.multiselect(key="onboarding_genres").set_value(["drama"]).run()
        assert not at.exception


def test_onboarding_starts_over_when_the_data_source_changes(tiny_world_dir, tiny_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_APP_CACHE", str(tiny_cache))
    at = AppTest.from_file(str(ROOT / "pages" / "onboarding.py"), default_timeout=300).run()
    at.multiselect(key="onboarding_genres").set_value(["Horror"]).run()
    at.button(key=next(b.key for b in at.button if b.key.startswith("watch_"))).click().run()
    assert at.session_state["onboarding_watched"]
    at.session_state["data_spec"] = f"csv:{tiny_world_dir}"
    at.run()
    assert not at.exception
    assert at.session_state["onboarding_watched"] == []
