"""The command line: info on every kind of spec, generate, and clear errors for bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recsys.cli import app
from recsys.data import load_dataset

runner = CliRunner()


def test_info_json_on_the_sample():
    result = runner.invoke(app, ["info", "--data", "sample", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["users"], info["items"], info["feedback"]) == (2000, 978, "implicit")
    assert info["events"] == info["plays"] + info["impressions_without_play"]
    balance = info["label_balance"]
    assert sum(balance.values()) == info["events"]
    assert 0 < info["density"] < 0.1


def test_info_text_on_the_sample():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    assert "members        2,000" in result.stdout
    assert "time span      2025-07-01" in result.stdout


def test_info_on_a_bad_spec_is_an_error_not_a_traceback(tmp_path):
    result = runner.invoke(app, ["info", "--data", f"csv:{tmp_path / 'nope'}"])
    assert result.exit_code == 2
    assert "error:" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["info", "--data", "mystery:thing"])
    assert result.exit_code == 2 and "error:" in result.output


def test_generate_writes_a_loadable_world(tmp_path):
    out = tmp_path / "world"
    result = runner.invoke(app, ["generate", "--out", str(out), "--scale", "0.02", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["users"] == 40
    assert {p.name for p in out.iterdir()} >= {"users.parquet", "items.parquet", "events.parquet", "world.json"}
    data = load_dataset(f"parquet:{out}")
    assert len(data.users) == 40 and len(data.events) == summary["events"] > 0
    assert runner.invoke(app, ["generate", "--scale", "0"]).exit_code == 2


def test_train_saves_the_previous_default_when_asked(tmp_path):
    import pytest

    from recsys.pipeline import PREVIOUS_DEFAULT, Recommender

    world = tmp_path / "world"
    assert runner.invoke(app, ["generate", "--out", str(world), "--scale", "0.05", "--seed", "3"]).exit_code == 0
    bad = runner.invoke(app, ["train", "--data", f"parquet:{world}", "--preset", "newest"])
    assert bad.exit_code == 2 and "unknown preset 'newest'" in bad.output
    out = tmp_path / "old"
    done = runner.invoke(app, ["train", "--data", f"parquet:{world}", "--preset", "previous", "--sources",
                               "popularity,ease", "--out", str(out), "--json"])
    assert done.exit_code == 0, done.output
    model = Recommender.load(out)
    assert (model.config.training_rows, model.config.objective, model.config.exclude_features) == (
        PREVIOUS_DEFAULT.training_rows, PREVIOUS_DEFAULT.objective, PREVIOUS_DEFAULT.exclude_features)
    assert model.training_summary_["rows_from"] == "candidates"
    assert "user_genre_exposure" not in model.builder_.feature_set.names()
    with pytest.raises(ValueError, match="objective must be one of"):
        type(model.config)(objective="clicks")


def test_report_writes_one_html_file_from_evaluate_simulate_and_train(tmp_path):
    world = tmp_path / "world"
    assert runner.invoke(app, ["generate", "--out", str(world), "--scale", "0.05", "--seed", "3"]).exit_code == 0
    spec = f"parquet:{world}"
    assert runner.invoke(app, ["evaluate", "--data", spec, "--models", "random,popularity", "--folds", "1",
                               "--out", str(tmp_path / "R.json")]).exit_code == 0
    simulated = runner.invoke(app, ["simulate", "--data", spec, "--control", "popularity", "--treatment", "random",
                                    "--users", "100", "--days", "1", "--json"])
    assert simulated.exit_code == 0, simulated.output
    (tmp_path / "AB.json").write_text(simulated.stdout)
    assert runner.invoke(app, ["train", "--data", spec, "--ranker", "none", "--sources", "popularity",
                               "--out", str(tmp_path / "model")]).exit_code == 0
    out = tmp_path / "out" / "report.html"
    done = runner.invoke(app, ["report", "--report", str(tmp_path / "R.json"), "--ab", str(tmp_path / "AB.json"),
                               "--artifacts", str(tmp_path / "model"), "--out", str(out)])
    assert done.exit_code == 0, done.output
    html = out.read_text(encoding="utf-8")
    report = json.loads((tmp_path / "R.json").read_text())
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert report["dataset"]["fingerprint"] in html and manifest["data"]["fingerprint"] in html
    assert "<h3>Configuration</h3>" in html and "not the evaluated data" not in html
    assert "Lifts over the control" in html and "Daily engagement rate" in html
    charts = html.count('class="plotly-graph-div"')
    assert f"wrote {out} (" in done.stdout and f"{charts} charts)" in done.stdout and charts >= 10


def test_report_bad_input_is_a_message_naming_the_file(tmp_path):
    out = tmp_path / "r.html"

    def fails(*args: str) -> str:
        result = runner.invoke(app, ["report", *args, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert "error:" in result.output and "Traceback" not in result.output
        return result.output

    assert "missing.json" in fails("--report", str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("{not json")
    assert "broken.json" in fails("--report", str(tmp_path / "broken.json"))
    (tmp_path / "ab.json").write_text(json.dumps({"arms": [], "comparisons": []}))
    assert "not an evaluation report" in fails("--report", str(tmp_path / "ab.json"))
    report = {"k": 10, "dataset": {"name": "x"}, "models": {"m": {"metrics": {"ndcg": {"estimate": 0.1}}}}}
    (tmp_path / "R.json").write_text(json.dumps(report))
    assert "ab.json" in fails("--report", str(tmp_path / "R.json"), "--ab", str(tmp_path / "ab.json"))
    assert "manifest.json" in fails("--report", str(tmp_path / "R.json"), "--artifacts", str(tmp_path))
    assert not out.exists()
    assert runner.invoke(app, ["report", "--report", str(tmp_path / "R.json"), "--out", str(out)]).exit_code == 0
    assert out.exists()


def test_evaluate_timecut_on_ratings_reports_its_cut_and_relevance(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_movielens_pipeline import write_ml100k

    from recsys.evaluation.protocol import time_cut_folds
    from recsys.labels import LabelConfig

    write_ml100k(tmp_path / "ml", seed=3)
    spec = f"movielens:{tmp_path / 'ml'}"
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["evaluate", "--data", spec, "--protocol", "timecut", "--test-ratio", "0.2",
                                 "--relevant-rating", "3", "--models", "random,popularity", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    fold = time_cut_folds(load_dataset(spec), test_ratio=0.2, labels=LabelConfig(rating_threshold=3))[0]
    assert report["protocol"]["name"] == "timecut" and report["protocol"]["relevant"] == "rated >= 3"
    assert report["protocol"]["cut"] == fold.info["cut"] == str(fold.now)
    assert report["folds"][0]["relevant"] == len(fold.truth) > 0
    assert report["models"]["popularity"]["metrics"]["ndcg"]["estimate"] > report["models"]["random"]["metrics"][
        "ndcg"]["estimate"]
    bad = runner.invoke(app, ["evaluate", "--data", spec, "--protocol", "stratified", "--relevant-rating", "3",
                              "--models", "random", "--out", str(out)])
    assert bad.exit_code == 2 and "--relevant-rating applies to --protocol temporal or timecut" in bad.output
    implicit = runner.invoke(app, ["evaluate", "--data", "sample", "--protocol", "timecut", "--relevant-rating", "3",
                                   "--models", "random", "--out", str(out)])
    assert implicit.exit_code == 2 and "needs rating data" in implicit.output and "Traceback" not in implicit.output
    unknown = runner.invoke(app, ["evaluate", "--data", spec, "--protocol", "future", "--out", str(out)])
    assert unknown.exit_code == 2 and "temporal, stratified or timecut" in unknown.output
