"""Shareable views and the inspector's side by side: a link's query restores the member, moment, device and
second pipeline in a fresh session; the page writes its state back into the URL; the second pipeline's list is
set beside the active one with overlap, moves and both reasons."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def _inspector(**params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "recommendations.py"), default_timeout=300)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def test_a_link_restores_the_member_view_and_the_page_keeps_its_url():
    at = _inspector(data="sample", member="u00042", date="2025-12-20", hour="8", device="mobile")
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="inspector_user").value == "u00042"
    assert at.slider(key="context_hour").value == 8
    assert at.selectbox(key="context_device").value == "mobile"
    assert str(at.date_input(key="context_date").value) == "2025-12-20"
    assert at.query_params["member"] == "u00042" and at.query_params["hour"] == "8"
    link = next(c.value for c in at.code)
    assert "member=u00042" in link and "date=2025-12-20" in link and "data=sample" in link
    # a change of member goes into the URL
    at.selectbox(key="inspector_user").set_value("u00007").run()
    assert at.query_params["member"] == "u00007" and at.query_params["device"] == "mobile"
    assert "member=u00007" in next(c.value for c in at.code)
    # a rerun carrying a lagging address bar (the old member) does not undo the visitor's pick
    at.query_params["member"] = "u00042"
    at.slider(key="context_hour").set_value(9).run()
    assert at.selectbox(key="inspector_user").value == "u00007" and at.query_params["member"] == "u00007"


def test_a_bad_link_is_a_warning_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_ROOT", str(tmp_path))
    at = _inspector(data="csv:../../etc", member="[click](http://evil.example)", hour="31",
                    compare="no such pipeline")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "\\[click\\]\\(http://evil.example\\)" in text  # shown literally, not as a link
    text = text.replace("\\", "").replace("[click](http://evil.example)", "nobody")
    assert "outside the data root" in text and "hour" in text and "'nobody' is not in" in text
    assert "no such pipeline" in text
    members = at.selectbox(key="inspector_user").options
    assert at.selectbox(key="inspector_user").value == members[0] and at.selectbox(key="compare_with").value == "(nothing)"


def test_side_by_side_sets_a_second_pipeline_beside_the_active_one():
    at = _inspector(data="sample", member="u00042", compare="lists by P(watch)")
    assert not at.exception and at.selectbox(key="compare_with").value == "lists by P(watch)"
    table = next(d.value for d in at.dataframe if "change" in d.value.columns)
    assert {"rank: active", "rank: lists by P(watch)", "reason: active", "reason: lists by P(watch)"} <= set(table.columns)
    ours = table.dropna(subset=["rank: active"])
    assert sorted(ours["rank: active"].tolist()) == list(range(1, 11))
    moved = table.dropna(subset=["rank: active", "rank: lists by P(watch)"])
    shift = (moved["rank: active"] - moved["rank: lists by P(watch)"])
    expected = ["same place" if s == 0 else f"{'up' if s > 0 else 'down'} {abs(s)}" for s in shift]
    assert moved["change"].tolist() == expected
    caption = next(c.value for c in at.caption if "titles are in both lists" in c.value)
    assert f"**{len(moved)} of 10**" in caption


def test_an_ab_link_restores_the_experiment_set_up():
    at = AppTest.from_file(str(ROOT / "pages" / "ab_test.py"), default_timeout=300)
    for key, value in {"data": "sample", "control": "oracle", "treatments": "random,popularity", "members": "300",
                       "days": "2", "seed": "5"}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.selectbox(key="ab_control").value == "oracle"
    assert at.multiselect(key="ab_treatments").value == ["random", "popularity"]
    assert (at.number_input(key="ab_users").value, at.number_input(key="ab_days").value,
            at.number_input(key="ab_seed").value) == (300, 2, 5)
    assert "treatments=random%2Cpopularity" in next(c.value for c in at.code if "control=" in c.value)

    bad = AppTest.from_file(str(ROOT / "pages" / "ab_test.py"), default_timeout=300)
    bad.query_params["control"] = "my favourite"
    bad.query_params["days"] = "400"
    bad.run()
    assert not bad.exception
    text = " ".join(w.value for w in bad.warning)
    assert "'my favourite' cannot be used" in text and "'400' cannot be used" in text
    assert bad.selectbox(key="ab_control").value == "popularity" and bad.number_input(key="ab_days").value == 7


def test_a_metrics_link_restores_the_metric_and_the_rankers(tmp_path):
    at = AppTest.from_file(str(ROOT / "pages" / "metrics.py"), default_timeout=300)
    at.session_state["report_path"] = str(tmp_path / "no-report.json")
    for key, value in {"data": "sample", "metric": "recall", "rankers": "deep,logistic"}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.multiselect(key="curve_rankers").value == ["deep", "logistic"]
    assert at.session_state["curve_metric"] == "recall"
    assert at.query_params["rankers"] == "logistic,deep"  # written back in the registry's order
    at.multiselect(key="curve_rankers").set_value(["forest"]).run()
    assert at.query_params["rankers"] == "forest" and "rankers=forest" in at.code[0].value


def test_a_null_byte_or_a_loop_in_a_link_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_ROOT", str(tmp_path))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for data in ("csv:\x00x", "csv:loop/x"):
        at = _inspector(data=data)
        assert not at.exception, data
        assert any("cannot be used" in w.value for w in at.warning), data
