"""Loaders: MovieLens layouts parsed exactly, CSV/Parquet folders round-trip, errors name file and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recsys
from recsys.data import (
    DataError,
    Dataset,
    LoadReport,
    load_dataset,
    load_movielens,
    load_table_folder,
    read_parquet_folder,
    save_dataset,
)

ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western"]


def _flags(*genres: str) -> str:
    return "|".join("1" if g in genres else "0" for g in ML100K_GENRES)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def ml100k(tmp_path: Path) -> Path:
    folder = tmp_path / "ml-100k"
    url = "http://us.imdb.com/M/title-exact?x"
    kids = _flags("Animation", "Children's", "Comedy")
    write(folder / "u.item", "\n".join([
        f"1|Toy Story (1995)|01-Jan-1995||{url}|{kids}",
        f"2|Misérables, Les (1995)|01-Jan-1995||{url}|{_flags('Drama', 'Musical')}",
        f"3|Café au lait (1993)|01-Jan-1993||{url}|{_flags('Comedy')}",
        f"4|unknown||||{_flags('unknown')}",
        f"5|Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)|01-Jan-1995||{url}|{_flags('Drama')}",
        f"6|Big Night|20-Sep-1996||{url}|{_flags('Comedy', 'Drama')}",
    ]) + "\n", "latin-1")
    write(folder / "u.data", "\n".join([
        "196\t1\t3\t881250949",
        "186\t2\t3\t891717742",
        "22\t3\t1\t878887116",
        "196\t3\t5\t881250950",
        "22\t1\t4\t878887117",
        "196\t1\t3\t881250949",  # an exact duplicate of the first line
    ]) + "\n")
    write(folder / "u.user", "196|49|M|writer|55105\n186|39|F|executive|00000\n22|25|M|writer|40206\n")
    write(folder / "u.genre", "".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES)) + "\n")
    return folder


@pytest.fixture
def ml1m(tmp_path: Path) -> Path:
    folder = tmp_path / "ml-1m"
    write(folder / "movies.dat", "\n".join([
        "1::Toy Story (1995)::Animation|Children's|Comedy",
        "73::Misérables, Les (1995)::Drama|Musical",
        "3010::Café au lait (1993)::Comedy",
    ]) + "\n", "latin-1")
    write(folder / "ratings.dat", "1::1::5::978300760\n1::73::3::978302109\n2::3010::4::978301968\n")
    write(folder / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


@pytest.fixture
def mllatest(tmp_path: Path) -> Path:
    folder = tmp_path / "ml-latest-small"
    write(folder / "movies.csv", "\n".join([
        "movieId,title,genres",
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
        '11,"American President, The (1995)",Comedy|Drama|Romance',
        "12,Café au lait (1993),Comedy",
        '13,"Misérables, Les (1995)",Drama|War',
        "14,Babylon 5,(no genres listed)",
    ]) + "\n")
    write(folder / "ratings.csv", "\n".join([
        "userId,movieId,rating,timestamp",
        "1,1,4.0,964982703",
        "1,11,3.5,964981247",
        "2,12,0.5,1445714835",
        "2,14,5.0,1445714836",
    ]) + "\n")
    write(folder / "tags.csv", "\n".join([
        "userId,movieId,tag,timestamp",
        "2,1,pixar,1445714994",
        "2,1,Pixar,1445714996",
        "3,11,politics,1445715000",
        "2,1,fun,1445715001",
    ]) + "\n")
    return folder


def by_id(frame: pd.DataFrame, key: str) -> dict[str, dict]:
    return {row[key]: row for row in frame.to_dict("records")}


# ---------------------------------------------------------------- MovieLens
def test_ml100k_items_parsed_exactly(ml100k: Path) -> None:
    ds = load_movielens(ml100k)
    assert ds.name == "movielens-100k"
    items = by_id(ds.items, "item_id")
    assert list(ds.items["item_id"]) == ["1", "2", "3", "4", "5", "6"]
    assert items["1"]["title"] == "Toy Story"
    assert items["2"]["title"] == "Misérables, Les"
    assert items["3"]["title"] == "Café au lait"
    assert items["5"]["title"] == "Shanghai Triad (Yao a yao yao dao waipo qiao)"
    assert items["6"]["title"] == "Big Night"
    assert [items[i]["release_year"] for i in "12356"] == [1995, 1995, 1993, 1995, 1996]  # 6: from its date
    assert pd.isna(items["4"]["release_year"])
    assert items["1"]["release_date"] == pd.Timestamp("1995-01-01")
    assert items["6"]["release_date"] == pd.Timestamp("1996-09-20")
    assert pd.isna(items["4"]["release_date"])
    assert items["1"]["genres"] == ["Animation", "Children's", "Comedy"]
    assert items["2"]["genres"] == ["Drama", "Musical"]
    assert items["4"]["genres"] == []  # the 'unknown' flag means no genre
    assert set(ds.items["kind"]) == {"movie"}
    assert items["1"]["imdb_url"] == "http://us.imdb.com/M/title-exact?x"


def test_ml100k_events_users_and_report(ml100k: Path) -> None:
    ds = load_movielens(ml100k)
    assert ds.feedback == "explicit"
    assert "watch_fraction" not in ds.events.columns
    assert len(ds.events) == 5
    assert ds.report.dropped == {"exact duplicate rows in u.data": 1}
    first = ds.events.iloc[0]  # sorted by time: user 22 at 878887116
    assert (first["user_id"], first["item_id"], first["rating"]) == ("22", "3", 1.0)
    assert first["timestamp"] == pd.Timestamp(878887116, unit="s")
    assert list(ds.events["rating"]) == [1.0, 4.0, 3.0, 5.0, 3.0]
    assert ds.events["timestamp"].is_monotonic_increasing
    users = by_id(ds.users, "user_id")
    assert users["196"]["age"] == 49 and users["196"]["gender"] == "M" and users["196"]["occupation"] == "writer"
    assert users["186"]["zip_code"] == "00000"
    assert ds.summary()["ratings"] == {1.0: 1, 3.0: 2, 4.0: 1, 5.0: 1}


def test_ml1m_layout(ml1m: Path) -> None:
    ds = load_movielens(ml1m)
    assert ds.name == "movielens-1m"
    items = by_id(ds.items, "item_id")
    assert items["73"]["title"] == "Misérables, Les" and items["73"]["release_year"] == 1995
    assert items["3010"]["title"] == "Café au lait" and items["3010"]["release_year"] == 1993
    assert items["1"]["genres"] == ["Animation", "Children's", "Comedy"]
    assert items["73"]["genres"] == ["Drama", "Musical"]
    users = by_id(ds.users, "user_id")
    assert (users["1"]["age"], users["1"]["gender"], users["1"]["occupation"]) == (1, "F", "K-12 student")
    assert (users["2"]["age"], users["2"]["occupation"], users["2"]["zip_code"]) == (56, "self-employed", "70072")
    ev = ds.events
    assert list(zip(ev["user_id"], ev["item_id"], ev["rating"])) == [("1", "1", 5.0), ("2", "3010", 4.0),
                                                                      ("1", "73", 3.0)]
    assert list(ev["timestamp"]) == [pd.Timestamp(t, unit="s") for t in (978300760, 978301968, 978302109)]
    assert ds.report.dropped == {}


def test_ml1m_movies_in_utf8_read_too(ml1m: Path) -> None:
    write(ml1m / "movies.dat", "1::Toy Story (1995)::Comedy\n73::Misérables, Les (1995)::Drama\n"
                               "3010::Café au lait (1993)::Comedy\n", "utf-8")
    titles = set(load_movielens(ml1m).items["title"])
    assert titles == {"Toy Story", "Misérables, Les", "Café au lait"}


def test_ml_latest_layout_with_tags(mllatest: Path) -> None:
    ds = load_movielens(mllatest)
    assert ds.name == "movielens-latest-small"
    items = by_id(ds.items, "item_id")
    assert items["11"]["title"] == "American President, The" and items["11"]["release_year"] == 1995
    assert items["13"]["title"] == "Misérables, Les"
    assert items["12"]["title"] == "Café au lait" and items["12"]["release_year"] == 1993
    assert items["14"]["title"] == "Babylon 5" and pd.isna(items["14"]["release_year"])
    assert items["14"]["genres"] == []
    assert items["1"]["genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert items["1"]["tags"] == ["pixar", "fun"]  # 'Pixar' folds into 'pixar'
    assert items["11"]["tags"] == ["politics"] and items["12"]["tags"] == []
    assert list(ds.events["rating"]) == [3.5, 4.0, 0.5, 5.0]
    assert ds.events["timestamp"].iloc[0] == pd.Timestamp("2000-07-30 18:20:47")  # 964981247
    # no users file: two users derived from the ratings, and the report says so
    assert sorted(ds.users["user_id"]) == ["1", "2"]
    assert any("derived 2 users" in n for n in ds.report.notes)


def test_movielens_spec_and_parent_folder(ml1m: Path) -> None:
    ds = load_dataset(f"movielens:{ml1m}")
    assert len(ds.events) == 3 and len(ds.items) == 3
    # the folder that holds the unzipped ml-1m folder works too
    assert len(load_dataset(f"movielens:{ml1m.parent}").users) == 2


def test_ml100k_non_numeric_rating(ml100k: Path) -> None:
    write(ml100k / "u.data", "196\t1\t3\t881250949\n186\t2\tgood\t891717742\n")
    with pytest.raises(DataError) as err:
        load_movielens(ml100k)
    assert err.value.file == str(ml100k / "u.data")
    assert err.value.column == "rating"
    assert "'good'" in str(err.value) and "row 1" in str(err.value)


def test_ml_latest_rating_for_unknown_movie(mllatest: Path) -> None:
    write(mllatest / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,999,3.0,964982704\n")
    with pytest.raises(DataError) as err:
        load_movielens(mllatest)
    assert err.value.file == str(mllatest / "ratings.csv")
    assert err.value.column == "item_id"
    assert "'999'" in str(err.value) and "movieId" in str(err.value)


def test_ml_latest_tag_for_unknown_movie(mllatest: Path) -> None:
    write(mllatest / "tags.csv", "userId,movieId,tag,timestamp\n2,77,lost,1445714994\n")
    with pytest.raises(DataError) as err:
        load_movielens(mllatest)
    assert err.value.file == str(mllatest / "tags.csv") and err.value.column == "movieId"


def test_ml100k_bad_item_lines(ml100k: Path) -> None:
    good = (ml100k / "u.item").read_bytes().decode("latin-1")
    write(ml100k / "u.item", good + "7|Too Few|01-Jan-1995\n", "latin-1")
    with pytest.raises(DataError) as err:
        load_movielens(ml100k)
    assert err.value.file == str(ml100k / "u.item") and "line 7" in str(err.value)

    write(ml100k / "u.item", good + f"7|Heat (1995)|1995-12-15||x|{_flags('Action')}\n", "latin-1")
    with pytest.raises(DataError) as err:
        load_movielens(ml100k)
    assert err.value.column == "release date" and "'1995-12-15'" in str(err.value)

    write(ml100k / "u.item", good + f"7|Heat (1995)|15-Dec-1995||x|{_flags('Action').replace('1', '2')}\n",
          "latin-1")
    with pytest.raises(DataError) as err:
        load_movielens(ml100k)
    assert err.value.column == "genre flag Action"


def test_ml1m_duplicate_movie_id(ml1m: Path) -> None:
    write(ml1m / "movies.dat", "1::Toy Story (1995)::Comedy\n1::Jumanji (1995)::Adventure\n", "latin-1")
    with pytest.raises(DataError) as err:
        load_movielens(ml1m)
    assert err.value.file == str(ml1m / "movies.dat") and err.value.column == "item_id"


def test_ml_latest_not_utf8(mllatest: Path) -> None:
    write(mllatest / "movies.csv", "movieId,title,genres\n1,Café au lait (1993),Comedy\n", "latin-1")
    with pytest.raises(DataError) as err:
        load_movielens(mllatest)
    assert err.value.file == str(mllatest / "movies.csv") and "utf-8" in str(err.value)


def test_no_movielens_files(tmp_path: Path) -> None:
    write(tmp_path / "ratings.dat", "1::1::5::978300760\n")
    with pytest.raises(DataError) as err:
        load_movielens(tmp_path)
    assert "no MovieLens files" in str(err.value) and "ratings.dat" in str(err.value)
    assert "movies.dat" in str(err.value)  # the hint lists what each layout needs


# ---------------------------------------------------------------- specs
def test_unknown_spec_lists_forms() -> None:
    with pytest.raises(DataError) as err:
        load_dataset("imdb:somewhere")
    text = str(err.value)
    assert all(form in text for form in ("sample", "movielens:PATH", "csv:PATH", "parquet:PATH"))


def test_missing_path_and_empty_spec(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(f"csv:{tmp_path / 'nope'}")
    assert "no such file or folder" in str(err.value) and err.value.file == str(tmp_path / "nope")
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("parquet:")
    with pytest.raises(DataError, match="no data spec"):
        load_dataset("  ")


def test_missing_sample_says_run_generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_SAMPLE_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError) as err:
        load_dataset("sample")
    assert "recsys generate" in str(err.value)


def test_sample_reads_env_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_dataset(hand_dataset(), tmp_path / "s")
    monkeypatch.setenv("RECSYS_SAMPLE_DATA", str(tmp_path / "s"))
    ds = recsys.load_dataset()
    assert ds.name == "sample" and len(ds.events) == 4


def test_top_level_exports() -> None:
    assert recsys.Dataset is Dataset and recsys.DataError is DataError
    assert set(recsys.__all__) >= {"load_dataset", "Dataset", "DataError"}


# ---------------------------------------------------------------- CSV / Parquet folders
def hand_dataset() -> Dataset:
    """Every column kind: ids with a leading zero, lists (one empty), gaps in ints, datetimes, an extra column."""
    users = pd.DataFrame({
        "user_id": ["007", "u2"],
        "age": [34, None],
        "country": ["NA", None],  # Namibia, not a missing value
        "signup_time": pd.to_datetime(["2024-01-01 08:00", "2024-02-01 00:00"]),
    })
    items = pd.DataFrame({
        "item_id": ["m1", "e1"],
        "title": ["Night, Again", "Pilot"],
        "kind": ["movie", "episode"],
        "show_id": [None, "s1"],
        "season": [None, 1],
        "genres": [["drama", "crime"], []],
        "duration_min": [101.5, 42.0],
        "added_at": pd.to_datetime(["2023-12-01", "2024-01-15 12:30:00.25"], format="ISO8601"),
        "public_rating": [7.1, None],
        "studio_note": ["kept as is", None],  # an unknown column
    })
    events = pd.DataFrame({
        "user_id": ["007", "007", "u2", "u2"],
        "item_id": ["m1", "e1", "m1", "e1"],
        "timestamp": ["2024-03-01T20:00:00", "2024-03-02T21:00:00Z", "2024-03-03 10:00:00+02:00", 1709900000],
        "watch_fraction": [0.9, 0.0, 0.05, 1.0],
        "device": ["tv", "web", None, "tv"],
        "position": [0, 3, None, 1],
        "propensity": [0.5, 0.125, None, 1 / 3],
    })
    searches = pd.DataFrame({"user_id": ["u2"], "timestamp": ["2024-03-03T09:59:00"], "query": ["crime drama"]})
    return Dataset.from_frames(users, items, events, searches, name="hand")


def assert_same(a: Dataset, b: Dataset) -> None:
    for table in ("users", "items", "events", "searches"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_dtype=True)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_save_then_load_round_trip(tmp_path: Path, fmt: str) -> None:
    ds = hand_dataset()
    written = save_dataset(ds, tmp_path / "out", fmt=fmt)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{t}.{fmt}" for t in ("users", "items", "events", "searches"))
    assert written["events"] == tmp_path / "out" / f"events.{fmt}"
    back = load_table_folder(tmp_path / "out", fmt)
    assert back.name == "out"
    assert_same(ds, back)
    assert back.fingerprint() == ds.fingerprint()
    assert back.items.loc[0, "genres"] == ["drama", "crime"] and back.items.loc[1, "genres"] == []
    assert back.users.loc[0, "user_id"] == "007" and back.users.loc[0, "country"] == "NA"
    assert back.report.as_dict() == {"dropped": {}, "notes": []}


def test_parquet_bytes_are_deterministic(tmp_path: Path) -> None:
    save_dataset(hand_dataset(), tmp_path / "a")
    save_dataset(hand_dataset(), tmp_path / "b")
    save_dataset(read_parquet_folder(tmp_path / "a"), tmp_path / "c")  # a reloaded copy writes the same bytes
    for table in ("users", "items", "events", "searches"):
        a = (tmp_path / "a" / f"{table}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{table}.parquet").read_bytes()
        assert a == (tmp_path / "c" / f"{table}.parquet").read_bytes()


def test_parquet_list_columns_are_list_of_string(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    save_dataset(hand_dataset(), tmp_path)
    schema = pq.read_schema(tmp_path / "items.parquet")
    assert schema.field("genres").type == pa.list_(pa.string())
    assert schema.field("item_id").type == pa.string()
    assert schema.field("added_at").type == pa.timestamp("ns")
    assert schema.metadata is None  # no pandas version baked into the bytes


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    ds = hand_dataset()
    save_dataset(ds, tmp_path, fmt="csv")
    save_dataset(ds.between(None, "2024-03-02"), tmp_path, fmt="csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "items.csv", "searches.csv", "users.csv"]
    assert len(load_table_folder(tmp_path, "csv").events) == 1


def write_csv_folder(folder: Path, events: str, users: str | None = None) -> Path:
    write(folder / "items.csv", "item_id,title,genres,added_at\n"
                                "m1,\"Night, Again\",drama|crime,2023-12-01\n"
                                "m2,Pilot,,2024-01-15T12:30:00\n")
    write(folder / "events.csv", events)
    if users is not None:
        write(folder / "users.csv", users)
    return folder


def test_csv_folder_without_users_derives_them(tmp_path: Path) -> None:
    folder = write_csv_folder(tmp_path / "logs", "user_id,item_id,timestamp,watch_fraction\n"
                                                 "a,m1,2024-03-01T20:00:00,0.9\n"
                                                 "b,m2,1709900000,0.0\n"
                                                 "a,m1,2024-03-01T20:00:00,0.9\n")
    ds = load_dataset(f"csv:{folder}")
    assert ds.name == "logs"
    assert list(ds.users["user_id"]) == ["a", "b"]
    assert ds.report.notes == ["no users table: derived 2 users from the events"]
    assert ds.report.dropped == {"exact duplicate rows in events.csv": 1}
    assert len(ds.events) == 2 and ds.feedback == "implicit"
    assert ds.items.loc[0, "title"] == "Night, Again" and ds.items.loc[0, "genres"] == ["drama", "crime"]
    assert ds.items.loc[1, "genres"] == []
    assert ds.events.loc[1, "timestamp"] == pd.Timestamp("2024-03-08 12:13:20")


def test_gzipped_csv_folder(tmp_path: Path) -> None:
    import gzip

    save_dataset(hand_dataset(), tmp_path, fmt="csv")
    events = tmp_path / "events.csv"
    (tmp_path / "events.csv.gz").write_bytes(gzip.compress(events.read_bytes()))
    events.unlink()
    assert_same(load_table_folder(tmp_path, "csv"), hand_dataset())


def test_csv_bad_value_names_file_and_column(tmp_path: Path) -> None:
    folder = write_csv_folder(tmp_path, "user_id,item_id,timestamp,watch_fraction\n"
                                        "a,m1,2024-03-01,0.9\n"
                                        "a,m2,2024-03-02,lots\n")
    with pytest.raises(DataError) as err:
        load_table_folder(folder, "csv")
    assert err.value.file == str(folder / "events.csv") and err.value.column == "watch_fraction"
    assert "row 1: {'watch_fraction': 'lots'}" in str(err.value)


def test_csv_event_for_unknown_user(tmp_path: Path) -> None:
    folder = write_csv_folder(tmp_path, "user_id,item_id,timestamp,watch_fraction\na,m1,2024-03-01,0.9\n"
                                        "zed,m1,2024-03-02,0.5\n", users="user_id,age\na,30\n")
    with pytest.raises(DataError) as err:
        load_table_folder(folder, "csv")
    assert err.value.file == str(folder / "events.csv") and err.value.column == "user_id"
    assert "'zed'" in str(err.value)


def test_csv_missing_required_file_and_column(tmp_path: Path) -> None:
    write(tmp_path / "items.csv", "item_id,name\nm1,Night\n")
    with pytest.raises(DataError) as err:
        load_table_folder(tmp_path, "csv")
    assert err.value.file == str(tmp_path / "events.csv")
    write(tmp_path / "events.csv", "user_id,item_id,timestamp,rating\na,m1,2024-03-01,4\n")
    with pytest.raises(DataError) as err:
        load_table_folder(tmp_path, "csv")
    assert err.value.file == str(tmp_path / "items.csv") and err.value.column == "title"


def test_parquet_bad_rows_name_the_file(tmp_path: Path) -> None:
    save_dataset(hand_dataset(), tmp_path)
    events = pd.read_parquet(tmp_path / "events.parquet")
    events.loc[2, "watch_fraction"] = 1.5
    events.to_parquet(tmp_path / "events.parquet", index=False)
    with pytest.raises(DataError) as err:
        load_dataset(f"parquet:{tmp_path}")
    assert err.value.file == str(tmp_path / "events.parquet") and err.value.column == "watch_fraction"
    assert "1.5" in str(err.value)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    save_dataset(hand_dataset(), tmp_path)
    write(tmp_path / "items.parquet", "item_id,title\n")
    with pytest.raises(DataError) as err:
        load_table_folder(tmp_path, "parquet")
    assert err.value.file == str(tmp_path / "items.parquet") and "Parquet" in str(err.value)


def test_report_drop_counts_add_up() -> None:
    report = LoadReport()
    report.drop("x", 2)
    report.drop("x", 3)
    report.drop("y", 0)
    assert report.as_dict() == {"dropped": {"x": 5}, "notes": []}


def test_generated_world_round_trips(tmp_path: Path) -> None:
    """The shipped sample goes through save/read_parquet_folder: a small generated world must survive it."""
    synthetic = pytest.importorskip("recsys.data.synthetic")
    try:
        config = synthetic.WorldConfig(n_users=30, n_movies=40, n_shows=4, days=20, seed=3)
    except TypeError:
        pytest.skip("WorldConfig fields differ")
    _, ds = synthetic.generate_sample(config)
    save_dataset(ds, tmp_path)
    back = read_parquet_folder(tmp_path, name=ds.name)
    assert_same(ds, back)
    assert np.array_equal(back.events["watch_fraction"], ds.events["watch_fraction"])
