"""The Features page: thresholds, balance, and every feature group renders without an exception."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def test_features_page_shows_label_counts_and_every_group():
    at = AppTest.from_file(str(ROOT / "pages" / "features.py"), default_timeout=120).run()
    assert not at.exception
    metrics = {m.label: int(m.value.replace(",", "")) for m in at.metric}
    assert metrics["Positives (>80%)"] > metrics["Negatives (<10%)"] > 0
    for group in ("context", "media", "user_x_media", "sparse", "user"):
        at.segmented_control(key="feature_group").set_value(group).run()
        assert not at.exception, group
    at.segmented_control(key="feature_group").set_value("user_x_media").run()
    at.selectbox(key="feature_name").set_value("user_genre_match").run()
    assert not at.exception
    assert any("genre" in c.value for c in at.caption)
