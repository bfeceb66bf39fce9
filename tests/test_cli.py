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
