"""The app's data root: typed paths and links resolve under it (symlinks resolved) or are refused with a message
that names only the root, never what lies outside; uploads are capped in rows."""

from __future__ import annotations

import gzip
import io
import os

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from recsys.data import DataError
from recsys.ui.data_root import DataRoot
from recsys.ui.sources import save_uploads


@pytest.fixture()
def tree(tmp_path):
    """root/ with ml/ (a data folder), inner/ml-1m/ (nested), outside/ beside it holding a secret file."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "ml").mkdir(parents=True)
    (root / "ml" / "items.csv").write_text("item_id,title\nm1,One\n")
    (root / "inner" / "ml-1m").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret-file.csv").write_text("password\nhunter2\n")
    return DataRoot((root).resolve(), (tmp_path / "uploads").resolve()), outside


def _refused(root: DataRoot, key: str) -> str:
    with pytest.raises(DataError) as info:
        root.spec(key)
    return str(info.value)


def test_folders_under_the_root_resolve_relative_or_absolute(tree):
    root, _ = tree
    assert root.spec("csv:ml") == f"csv:{root.path / 'ml'}"
    assert root.spec(f"movielens:{root.path / 'inner' / 'ml-1m'}") == f"movielens:{root.path / 'inner' / 'ml-1m'}"
    assert root.spec(" CSV: ml ") == f"csv:{root.path / 'ml'}"
    assert root.spec("parquet:inner/../ml") == f"parquet:{root.path / 'ml'}"  # stays inside: fine
    assert root.spec("sample") == "sample"
    assert root.folders() == ["inner", "inner/ml-1m", "ml"]


@pytest.mark.parametrize("typed", ["../outside", "../../", "/etc", "/", "ml/../../outside", "~"])
def test_paths_outside_the_root_are_refused_naming_only_the_root(tree, typed):
    root, outside = tree
    if typed == "~":
        message = _refused(root, "csv:~")  # no home expansion: "~" is a (missing) folder under the root
        assert "no folder '~'" in message
        return
    message = _refused(root, f"csv:{typed}")
    assert "outside the data root" in message and str(root.path) in message
    assert "secret-file" not in message and "passwd" not in message and "hunter2" not in message


def test_a_symlink_out_of_the_root_is_refused_folder_or_file(tree):
    root, outside = tree
    os.symlink(outside, root.path / "escape")
    message = _refused(root, "csv:escape")
    assert "outside the data root" in message and "secret-file" not in message
    (root.path / "sneaky").mkdir()
    os.symlink(outside / "secret-file.csv", root.path / "sneaky" / "events.csv")
    message = _refused(root, "csv:sneaky")
    assert "link leading outside" in message and "hunter2" not in message
    assert "escape" not in root.folders()
    os.symlink(root.path / "ml", root.path / "alias")  # a link that stays inside is fine
    assert root.spec("csv:alias") == f"csv:{root.path / 'ml'}"


def test_missing_folders_and_unknown_kinds_say_what_is_there(tree):
    root, _ = tree
    assert "no folder 'nope'" in _refused(root, "csv:nope") and "ml" in _refused(root, "csv:nope")
    assert "unknown data source" in _refused(root, "json:ml")
    assert "unknown data source" in _refused(root, str(root.path / "ml"))  # a bare path: which kind?
    assert "no folder given" in _refused(root, "csv:")
    assert "not a folder name" in _refused(root, "csv:ml\x00")
    (root.path / ".hidden" / "inner").mkdir(parents=True)
    assert not any(f.startswith(".hidden") for f in root.folders())


def test_uploads_are_reachable_by_their_id_only(tree):
    root, _ = tree
    spec, _ = save_uploads([("items.csv", b"item_id,title\nm1,One\n"),
                            ("events.csv", b"user_id,item_id,timestamp\na,m1,2025-01-01\n")], root.uploads)
    key = root.key(spec)
    assert key.startswith("upload:") and str(root.uploads) not in key
    assert root.spec(key) == f"csv:{root.uploads / ('upload-' + key.split(':')[1])}"
    assert "not on this server" in _refused(root, "upload:0123456789abcdef")
    assert "not on this server" in _refused(root, "upload:../../outside")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["ml", "inner", "ml-1m", "..", ".", "x"]), min_size=1, max_size=5))
def test_whatever_is_typed_the_resolved_folder_lies_under_the_root(tmp_path_factory, parts):
    base = tmp_path_factory.mktemp("prop")
    (base / "root" / "ml").mkdir(parents=True)
    (base / "root" / "inner" / "ml-1m").mkdir(parents=True)
    root = DataRoot((base / "root").resolve(), (base / "up").resolve())
    try:
        spec = root.spec("csv:" + "/".join(parts))
    except DataError as err:
        assert "outside the data root" in str(err) or "no folder" in str(err)
    else:
        folder = spec.split(":", 1)[1]
        assert os.path.realpath(folder).startswith(str(root.path))
        assert root.spec(root.key(spec)) == spec  # the link's key reads the same folder


def test_uploads_over_the_row_cap_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_MAX_UPLOAD_ROWS", "3")
    items = b"item_id,title\nm1,One\n"
    events = b"user_id,item_id,timestamp\n" + b"".join(f"u{i},m1,2025-01-01\n".encode() for i in range(4))
    with pytest.raises(DataError) as info:
        save_uploads([("items.csv", items), ("events.csv", events)], tmp_path / "up")
    assert "'events.csv' has 4 rows" in str(info.value) and "at most 3" in str(info.value)
    assert info.value.file == "events.csv" and not (tmp_path / "up").exists()
    with pytest.raises(DataError, match="has 4 rows"):
        save_uploads([("items.csv", items), ("events.csv.gz", gzip.compress(events))], tmp_path / "up")
    frame = pd.DataFrame({"user_id": ["a"] * 5, "item_id": ["m1"] * 5, "timestamp": ["2025-01-01"] * 5})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    item_buf = io.BytesIO()
    pd.DataFrame({"item_id": ["m1"], "title": ["One"]}).to_parquet(item_buf)
    with pytest.raises(DataError, match="has 5 rows"):
        save_uploads([("items.parquet", item_buf.getvalue()), ("events.parquet", buf.getvalue())], tmp_path / "up")
    monkeypatch.setenv("RECSYS_MAX_UPLOAD_ROWS", "4")  # exactly at the cap is fine; no trailing newline counts too
    spec, _ = save_uploads([("items.csv", items), ("events.csv", events.rstrip(b"\n"))], tmp_path / "up")
    assert spec.startswith("csv:")
