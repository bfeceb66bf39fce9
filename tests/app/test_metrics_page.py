"""The metrics dashboard reads an evaluation report; a missing or broken report is a message, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recsys.data.synthetic import SyntheticWorld, WorldConfig
from recsys.evaluation.protocol import GeneratorPolicy, OraclePolicy, RandomPolicy, temporal_folds
from recsys.evaluation.report import evaluate, write_report

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report_path(tmp_path_factory):
    world = SyntheticWorld(WorldConfig(seed=8, n_users=200, n_movies=120, n_shows=6, days=100))
    data = world.simulate()
    folds = temporal_folds(data, n_folds=2, test_days=14, min_train_days=30)
    report = evaluate(data, {"random": lambda: RandomPolicy(0), "popularity": lambda: GeneratorPolicy(("popularity",)),
                             "oracle": lambda: OraclePolicy(world)}, folds, k=10, max_k=20, n_boot=100)
    return write_report(report, tmp_path_factory.mktemp("reports") / "report.json")


def _page(path) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "metrics.py"), default_timeout=120)
    at.session_state["report_path"] = str(path)
    return at.run()


def test_dashboard_shows_the_comparison_curves_folds_and_segments(report_path):
    at = _page(report_path)
    assert not at.exception
    assert not at.json  # nothing dumped raw
    table = at.dataframe[0].value
    assert list(table["model"]) == ["oracle", "popularity", "random"]
    assert (table["NDCG low"] <= table["NDCG@10"]).all() and (table["NDCG@10"] <= table["NDCG high"]).all()
    for metric in ("recall", "precision", "map", "ndcg"):
        at.selectbox(key="curve_metric").set_value(metric).run()
        assert not at.exception
    at.selectbox(key="segment").set_value("activity").run()
    assert not at.exception


def test_missing_and_broken_reports_are_messages(tmp_path):
    at = _page(tmp_path / "none.json")
    assert not at.exception and any("No evaluation report" in i.value for i in at.info)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    at = _page(broken)
    assert not at.exception and any("cannot be read" in e.value for e in at.error)


def test_the_run_button_evaluates_a_generated_world_with_its_oracle(tmp_path):
    from typer.testing import CliRunner

    from recsys.cli import app

    world = tmp_path / "world"
    assert CliRunner().invoke(app, ["generate", "--out", str(world), "--scale", "0.1", "--seed", "3"]).exit_code == 0
    at = AppTest.from_file(str(ROOT / "pages" / "metrics.py"), default_timeout=600)
    at.session_state["report_path"] = str(tmp_path / "report.json")
    at.session_state["data_spec"] = f"parquet:{world}"
    at.run()
    at.button(key="run_eval").click().run()
    assert not at.exception
    assert any("Report written" in s.value for s in at.success)
    models = set(at.dataframe[0].value["model"])
    assert {"random", "popularity", "ease", "blend", "pipeline", "oracle"} == models


def test_roc_calibration_and_candidate_recall_on_a_held_out_window(tiny_world_dir, tiny_cache, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("RECSYS_APP_CACHE", str(tiny_cache))
    at = AppTest.from_file(str(ROOT / "pages" / "metrics.py"), default_timeout=300)
    at.session_state["report_path"] = str(tmp_path / "none.json")
    at.session_state["data_spec"] = f"csv:{tiny_world_dir}"
    at.run()
    assert not at.exception and any("Not computed" in i.value for i in at.info)
    at.multiselect(key="curve_rankers").set_value(["logistic", "forest"]).run()
    at.button(key="run_curves").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["ranker"]) == ["logistic", "forest"]
    assert ((table["AUC"] > 0.5) & (table["AUC"] <= 1)).all()
    assert ((table["ECE"] >= 0) & (table["Brier"] < 0.5)).all()
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("ROC" in t for t in titles) and any("Calibration" in t for t in titles)
    assert any("Candidate recall" in t for t in titles)
    # computed once: a new session shows it at once
    again = AppTest.from_file(str(ROOT / "pages" / "metrics.py"), default_timeout=60)
    again.session_state["report_path"] = str(tmp_path / "none.json")
    again.session_state["data_spec"] = f"csv:{tiny_world_dir}"
    again.run()
    again.multiselect(key="curve_rankers").set_value(["logistic", "forest"]).run()
    assert not again.exception and len(again.dataframe) == 1 and not any("Not computed" in i.value for i in again.info)


def _with_estimates(report_path, tmp_path, minutes: dict[str, float]) -> Path:
    """The report with an off-policy section whose minutes per session are `minutes` (the page only reads it)."""
    import json

    report = json.loads(Path(report_path).read_text())
    for name, value in minutes.items():
        entry = {"estimate": value, "low": value - 5, "high": value + 5, "ess": 100.0, "estimator": "dr",
                 "sessions": 400, "members": 150}
        report["models"][name]["off_policy"] = {"minutes_per_session": entry, "videos_per_session": entry,
                                                "engagement_rate": {**entry, "estimate": 0.5, "low": 0.4,
                                                                    "high": 0.6}}
    report["off_policy"] = {"default_estimator": "dr", "window": {"start": "2025-12-18 02:00:00",
                                                                  "end": "2026-01-01 01:33:45"}}
    out = tmp_path / "with_estimates.json"
    out.write_text(json.dumps(report))
    return out


def test_estimated_online_value_beside_ndcg_and_a_warning_where_the_orders_differ(report_path, tmp_path):
    # NDCG puts oracle > popularity > random; these minutes put popularity above the oracle
    at = _page(_with_estimates(report_path, tmp_path, {"oracle": 40.0, "popularity": 60.0, "random": 20.0}))
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["est. minutes/session"]) == [40.0, 60.0, 20.0]
    assert (table["est. minutes/session low"] < table["est. minutes/session"]).all()
    warning = " ".join(w.value for w in at.warning)
    assert "oracle above popularity by NDCG, below by minutes" in warning
    assert "random" not in warning


def test_no_warning_when_the_orders_agree_and_the_reason_when_estimates_could_not_run(report_path, tmp_path):
    at = _page(_with_estimates(report_path, tmp_path, {"oracle": 100.0, "popularity": 60.0, "random": 20.0}))
    assert not at.exception and not at.warning
    import json

    report = json.loads(Path(report_path).read_text())
    report["off_policy"] = {"unavailable": "the log has no 'position'"}
    path = tmp_path / "unavailable.json"
    path.write_text(json.dumps(report))
    at = _page(path)
    assert not at.exception and any("no 'position'" in i.value for i in at.info)


def test_a_swapped_pair_the_estimates_cannot_tell_apart_is_noted_not_warned(report_path, tmp_path):
    """NDCG puts the oracle above popularity and the estimates the other way, but their paired difference
    straddles 0: an info line says so and the differences table shows it; a separated swap still warns."""
    import json

    path = _with_estimates(report_path, tmp_path, {"oracle": 40.0, "popularity": 42.0, "random": 50.0})
    report = json.loads(path.read_text())
    pair = lambda a, b, d, lo, hi: {"first": a, "second": b, "metric": "minutes_per_session",  # noqa: E731
                                    "estimator": "dr", "estimate": d, "low": lo, "high": hi,
                                    "separated": lo > 0 or hi < 0}
    report["off_policy"]["differences"] = {"metric": "minutes_per_session", "estimator": "dr", "pairs": [
        pair("oracle", "popularity", -2.0, -4.5, 0.5), pair("oracle", "random", -10.0, -14.0, -6.0),
        pair("popularity", "random", -8.0, -11.0, -5.0)]}
    path.write_text(json.dumps(report))
    at = _page(path)
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    info = " ".join(i.value for i in at.info)
    assert "oracle above random by NDCG" in warning and "popularity by NDCG" not in warning
    assert "cannot tell them apart" in info and "oracle and popularity" in info
    differences = next(d.value for d in at.dataframe if "told apart" in d.value.columns)
    assert list(differences["ahead"]) == ["random", "random", "popularity"]
    assert list(differences["by (minutes/session)"]) == [10.0, 8.0, 2.0]
    row = differences.iloc[2]
    assert (row["behind"], row["low"], row["high"], row["told apart"]) == ("oracle", -0.5, 4.5, False)


def test_order_disagreements_lists_each_swapped_pair_once():
    from recsys.ui.evaluation import order_disagreements

    ndcg = {"a": 0.3, "b": 0.2, "c": 0.1, "d": 0.05}
    minutes = {"a": 10.0, "b": 30.0, "c": 20.0}  # d has no estimate
    assert order_disagreements(ndcg, minutes) == [("a", "b"), ("a", "c")]
    assert order_disagreements(ndcg, ndcg) == []


@pytest.fixture(scope="module")
def tiny_world_spec(world_with_truth):
    """A 60-member world with its ground truth, so the A/B test can run on it. Its own seed: the app keeps trained
    models per server (here: per test process) by data fingerprint, and conftest's tiny world (seed 5) is trained
    by other tests, which would make "no model yet" false here."""
    return world_with_truth("tiny-ab", WorldConfig(seed=13, n_users=60, n_movies=40, n_shows=3, days=60))


def test_the_report_downloads_as_html_with_the_model_manifest_and_the_last_ab_result(report_path, tiny_world_spec,
                                                                                     tmp_path, monkeypatch):
    import json

    from recsys.ui.evaluation import report_download
    from recsys.ui.experiments import run_ab_test
    from recsys.ui.models import train_model

    monkeypatch.setenv("RECSYS_APP_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(ROOT / "pages" / "metrics.py"), default_timeout=120)
    at.session_state["report_path"] = str(report_path)
    at.session_state["data_spec"] = tiny_world_spec
    at.run()
    assert not at.exception
    assert at.download_button(key="report_download").label == "Download the report (HTML)"
    note = " ".join(c.value for c in at.caption)
    assert "no model is trained on this data yet" in note and "run an experiment on the A/B test page" in note

    model = train_model(tiny_world_spec)
    outcome = run_ab_test(tiny_world_spec, ["popularity", "random"], 60, 2.0, 0, 60, None, False,
                          lambda message, fraction: None)
    at.session_state["ab_outcome"] = outcome
    at.run()
    assert not at.exception
    note = " ".join(c.value for c in at.caption)
    assert "with this evaluation, the active model's manifest, the A/B page's last result." in note

    report = json.loads(Path(report_path).read_text())
    download = report_download(report, tiny_world_spec, outcome)
    assert download.file_name == f"recsys-report-{report['dataset']['name']}.html"
    html = download.data().decode("utf-8")
    assert report["dataset"]["fingerprint"] in html and model.fingerprint_ in html
    assert "not the evaluated data" in html  # the report was made on another world than the model's
    assert "Lifts over the control" in html and "Sample ratio" in html
    assert html.count('class="plotly-graph-div"') >= 10
    elsewhere = report_download(report, "sample", outcome)  # the session's data changed after the experiment
    assert not elsewhere.with_ab and "run on other data" in elsewhere.ab_note


def test_a_pipeline_says_which_ranker_it_chose_and_by_what(report_path, tmp_path):
    import json

    report = json.loads(Path(report_path).read_text())
    report["models"]["popularity"]["ranker"] = [{"ranker": "boosting", "chosen_by": {
        "chosen": "boosting", "split": "members", "metric": "ndcg@10", "scores": {"logistic": 0.5379, "boosting": 0.5413},
        "valid_rows": 84985}}]
    path = tmp_path / "chosen.json"
    path.write_text(json.dumps(report))
    at = _page(path)
    assert not at.exception
    assert ("popularity, fold 1: ranker boosting, chosen by ndcg@10 on 84,985 held-out training rows (members): "
            "logistic 0.5379, boosting 0.5413") in [c.value for c in at.caption]
