"""Onboarding: picked genres give a list at once, mostly of those genres, with reasons; watching adapts it."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def _titles(at: AppTest) -> list[str]:
    return [m.value.split("**")[1] for m in at.markdown if m.value.startswith("**")]


def test_picking_genres_gives_matching_recommendations_and_watching_adapts():
    at = AppTest.from_file(str(ROOT / "pages" / "onboarding.py"), default_timeout=180).run()
    assert not at.exception
    assert any("Pick a few genres" in i.value for i in at.info)
    at.multiselect(key="onboarding_genres").set_value(["Horror", "Comedy"]).run()
    assert not at.exception
    cards = [m.value for m in at.markdown if m.value.startswith("**")]
    assert len(cards) == 10
    assert sum(("Horror" in c or "Comedy" in c) for c in cards) >= 8
    before = _titles(at)
    first = at.button(key=next(b.key for b in at.button if b.key.startswith("watch_")))
    first.click().run()
    assert not at.exception
    after = _titles(at)
    assert before[0] not in after and len(after) == 10
    assert any("Adapted to what you watched" in c.value for c in at.caption)


def test_an_unknown_age_filter_and_free_text_do_not_break_the_page():
    at = AppTest.from_file(str(ROOT / "pages" / "onboarding.py"), default_timeout=180).run()
    at.text_input(key="onboarding_text").set_value("a haunted house on halloween night").run()
    at.number_input(key="onboarding_age").set_value(10).run()
    assert not at.exception
    assert len([m for m in at.markdown if m.value.startswith("**")]) == 10
