"""The Home page: the sample in numbers, the data-source choice (bad sources are messages naming the file and
column), and the active model, trained here with a progress bar when none is cached."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from recsys.data import DataError
from recsys.ui.sources import describe_error, save_uploads

ROOT = Path(__file__).resolve().parents[2]


def _home() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=300)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _load_spec(at: AppTest, spec: str) -> AppTest:
    at.radio(key="source_kind").set_value("Data spec").run()
    at.text_input(key="data_spec_input").set_value(spec).run()
    return at.button(key="load_data").click().run()


def test_home_shows_the_sample_in_numbers():
    at = _home().run()
    assert not at.exception
    metrics = _metrics(at)
    assert metrics["Members"] == "2,000"
    assert metrics["Titles"] == "978"
    assert int(metrics["Events"].replace(",", "")) > 100_000


def test_a_bad_data_source_is_an_error_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_ROOT", str(tmp_path))
    at = _load_spec(_home().run(), "csv:missing")
    assert not at.exception
    assert any("Could not load" in e.value and "missing" in e.value for e in at.error)
    assert _metrics(at)["Members"] == "2,000"  # the page still shows the sample
    at.radio(key="source_kind").set_value("MovieLens folder").run()
    at.text_input(key="movielens_path").set_value(".").run()
    at.button(key="load_movielens").click().run()
    assert not at.exception and any("MovieLens" in e.value or "layout" in e.value for e in at.error)


def _write(folder: Path, **tables: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


ITEMS = pd.DataFrame({"item_id": ["m1", "m2"], "title": ["One", "Two"], "genres": ["drama", "comedy"]})


def test_missing_columns_and_bad_timestamps_name_the_file_and_the_column(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_ROOT", str(tmp_path))
    no_ts = _write(tmp_path / "no-ts", items=ITEMS,
                   events=pd.DataFrame({"user_id": ["a"], "item_id": ["m1"], "watch_fraction": [0.9]}))
    at = _load_spec(_home().run(), "csv:no-ts")
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert "events.csv" in message and "**timestamp**" in message
    bad_ts = _write(tmp_path / "bad-ts", items=ITEMS, events=pd.DataFrame(
        {"user_id": ["a", "b"], "item_id": ["m1", "m2"], "timestamp": ["2025-07-01", "01/07/2025"],
         "watch_fraction": [0.9, 0.1]}))
    at = _load_spec(at, f"csv:{bad_ts}")  # an absolute path under the root is fine too
    message = " ".join(e.value for e in at.error)
    assert "events.csv" in message and "**timestamp**" in message and "01/07/2025" in message
    assert _metrics(at)["Members"] == "2,000"


def test_uploads_are_stored_by_content_and_errors_use_the_uploaded_names(tmp_path):
    events = b"user_id,item_id,timestamp,watch_fraction\na,m1,not a time,0.9\n"
    items = ITEMS.to_csv(index=False).encode()
    spec, names = save_uploads([("events.csv", events), ("items.csv", items)], tmp_path)
    again, _ = save_uploads([("items.csv", items), ("events.csv", events)], tmp_path)
    assert spec == again and spec.startswith("csv:") and "upload-" in spec
    from recsys import load_dataset

    try:
        load_dataset(spec)
    except DataError as err:
        text = describe_error(err, names)
    assert "**events.csv**" in text and "**timestamp**" in text and "not a time" in text
    for files, needle in (([("items.csv", items)], "events"), ([("movies.csv", items)], "which table"),
                          ([("items.csv", items), ("events.parquet", b"")], "mixed")):
        try:
            save_uploads(files, tmp_path)
        except DataError as err:
            assert needle in str(err)
        else:
            raise AssertionError(files)


def test_a_good_folder_changes_the_numbers_and_training_shows_the_manifest(tiny_world_dir, tiny_cache, monkeypatch):
    monkeypatch.setenv("RECSYS_APP_CACHE", str(tiny_cache))
    monkeypatch.setenv("RECSYS_DATA_ROOT", str(tiny_world_dir.parent))
    at = _load_spec(_home().run(), f"csv:{tiny_world_dir.name}")
    assert not at.exception
    assert _metrics(at)["Members"] == "60"
    assert at.session_state["data_spec"] == f"csv:{tiny_world_dir.resolve()}"
    assert any("No model is trained" in i.value for i in at.info)
    at.button(key="train_model").click().run()
    assert not at.exception
    assert any("Active model: logistic ranker" in s.value for s in at.success)
    assert at.json and at.json[0].value  # the manifest
    assert '"fingerprint"' in at.json[0].value
    # the model is cached: a fresh session sees it without training
    at = _load_spec(_home().run(), f"csv:{tiny_world_dir.name}")
    assert any("Active model" in s.value for s in at.success) and not at.info
    # and the other pages read the chosen data
    page = AppTest.from_file(str(ROOT / "pages" / "recommendations.py"), default_timeout=300)
    page.session_state["data_spec"] = f"csv:{tiny_world_dir}"
    page.run()
    assert not page.exception and len(page.dataframe[0].value) == 10


def test_app_routes_to_home():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any("recsys" in t.value for t in at.title)


def test_paths_outside_the_data_root_are_refused_without_a_listing(tmp_path, monkeypatch):
    root = _write(tmp_path / "root" / "ok", items=ITEMS).parent
    secret = _write(tmp_path / "secret", items=ITEMS.assign(title=["Hidden-One", "Hidden-Two"]))
    (root / "escape").symlink_to(secret)
    monkeypatch.setenv("RECSYS_DATA_ROOT", str(root))
    at = _home().run()
    for spec in ("csv:../secret", f"csv:{secret}", "csv:escape", "movielens:/etc", "parquet:../../.."):
        at = _load_spec(at, spec)
        assert not at.exception
        message = " ".join(e.value for e in at.error)
        assert "outside the data root" in message and str(root) in message, (spec, message)
        assert "items.csv" not in message and "Hidden" not in message and "passwd" not in message, (spec, message)
        assert _metrics(at)["Members"] == "2,000"
    at.radio(key="source_kind").set_value("MovieLens folder").run()
    at.text_input(key="movielens_path").set_value("/etc").run()
    at.button(key="load_movielens").click().run()
    message = " ".join(e.value for e in at.error)
    assert "outside the data root" in message and "passwd" not in message
    assert "`ok`" in " ".join(c.value for c in at.caption) and "escape" not in " ".join(c.value for c in at.caption)
