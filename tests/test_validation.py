"""The validator rejects every class of bad input with a DataError (never a bare exception), accepts valid
input without dropping anything, and the Dataset slices, indexes, summarises and fingerprints correctly."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.data import EVENTS, ITEMS, SCHEMAS, SEARCHES, USERS, DataError, Dataset
from recsys.data.validation import NA_TOKENS, coerce_table, split_list_cell

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

EPOCH_LO, EPOCH_HI = 946_684_800, 1_893_456_000  # 2000-01-01 .. 2030-01-01
FILES = {"users": "users.csv", "items": "items.csv", "events": "events.csv", "searches": "searches.csv"}

# ------------------------------------------------------------------ strategies
ids = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=8)
titles = st.text(min_size=1, max_size=20).filter(lambda t: t.strip() != "")
words = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6)


@st.composite
def timestamp_cell(draw) -> tuple[object, pd.Timestamp]:
    """A timestamp in one of the accepted spellings, and the UTC instant it means."""
    sec = draw(st.integers(EPOCH_LO, EPOCH_HI))
    when = pd.Timestamp(sec, unit="s")
    form = draw(st.sampled_from(["epoch", "epoch-text", "iso", "iso-z", "iso-offset", "timestamp", "datetime"]))
    cell = {
        "epoch": sec,
        "epoch-text": str(sec),
        "iso": when.strftime("%Y-%m-%dT%H:%M:%S"),
        "iso-z": when.strftime("%Y-%m-%d %H:%M:%SZ"),
        "iso-offset": (when + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
        "timestamp": when,
        "datetime": when.to_pydatetime().replace(tzinfo=dt.timezone.utc),
    }[form]
    return cell, when


@st.composite
def valid_tables(draw, feedback: str | None = None) -> dict:
    """Random but valid users/items/events/searches frames, with the expected event instants."""
    user_ids = draw(st.lists(ids, min_size=1, max_size=6, unique_by=str.strip).filter(
        lambda xs: all(x.strip() for x in xs)))
    item_ids = draw(st.lists(ids, min_size=1, max_size=6, unique_by=str.strip).filter(
        lambda xs: all(x.strip() for x in xs)))
    users = pd.DataFrame({
        "user_id": user_ids,
        "age": draw(st.lists(st.one_of(st.none(), st.integers(0, 120)), min_size=len(user_ids),
                             max_size=len(user_ids))),
        "gender": draw(st.lists(st.sampled_from(["f", "m", None]), min_size=len(user_ids), max_size=len(user_ids))),
    })
    items = pd.DataFrame({
        "item_id": item_ids,
        "title": draw(st.lists(titles, min_size=len(item_ids), max_size=len(item_ids))),
        "genres": draw(st.lists(st.one_of(st.lists(words, max_size=3), words.map(lambda w: f"{w}|x")),
                                min_size=len(item_ids), max_size=len(item_ids))),
        "duration_min": draw(st.lists(st.floats(0.5, 300), min_size=len(item_ids), max_size=len(item_ids))),
    })
    n = draw(st.integers(1, 12))
    stamps = draw(st.lists(timestamp_cell(), min_size=n, max_size=n))
    events = pd.DataFrame({
        "user_id": draw(st.lists(st.sampled_from(user_ids), min_size=n, max_size=n)),
        "item_id": draw(st.lists(st.sampled_from(item_ids), min_size=n, max_size=n)),
        "timestamp": pd.Series([c for c, _ in stamps], dtype=object),
    })
    kind = feedback or draw(st.sampled_from(["implicit", "explicit"]))
    if kind == "implicit":
        events["watch_fraction"] = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    else:
        events["rating"] = draw(st.lists(st.sampled_from([0.5, 1.0, 2.5, 4.0, 5.0]), min_size=n, max_size=n))
    m = draw(st.integers(0, 3))
    searches = pd.DataFrame({
        "user_id": draw(st.lists(st.sampled_from(user_ids), min_size=m, max_size=m)),
        "timestamp": [c for c, _ in draw(st.lists(timestamp_cell(), min_size=m, max_size=m))],
        "query": draw(st.lists(words, min_size=m, max_size=m)),
    })
    return {"users": users, "items": items, "events": events, "searches": searches,
            "when": [w for _, w in stamps]}


def build(t: dict) -> Dataset:
    return Dataset.from_frames(t["users"], t["items"], t["events"], t["searches"], files=FILES)


def not_a_number(text: str) -> bool:
    if text.strip() in NA_TOKENS:
        return False
    try:
        pd.to_numeric(text)
    except (ValueError, TypeError):
        return True
    return False


def not_a_timestamp(text: str) -> bool:
    if text.strip() in NA_TOKENS or not not_a_number(text):
        return False
    parsed = pd.to_datetime(pd.Series([text]), errors="coerce", utc=True, format="ISO8601")
    return bool(parsed.isna().all())


# ------------------------------------------------------------------ valid input
@FAST
@given(valid_tables())
def test_valid_input_is_accepted_and_nothing_dropped(t: dict) -> None:
    ds = build(t)
    assert len(ds.users) == len(t["users"]) and len(ds.items) == len(t["items"])
    assert len(ds.events) == len(t["events"]) and len(ds.searches) == len(t["searches"])
    assert ds.report.dropped == {} and ds.report.notes == []
    assert list(ds.users["user_id"]) == [u.strip() for u in t["users"]["user_id"]]
    assert ds.events["timestamp"].is_monotonic_increasing
    assert ds.events["timestamp"].dtype == "datetime64[ns]"
    # the same (user, item, instant) triples come out, just sorted by time
    got = sorted(zip(ds.events["user_id"], ds.events["item_id"], ds.events["timestamp"]))
    want = sorted(zip((u.strip() for u in t["events"]["user_id"]), (i.strip() for i in t["events"]["item_id"]),
                      t["when"]))
    assert got == want
    assert all(isinstance(g, list) for g in ds.items["genres"])


@FAST
@given(valid_tables(), st.sampled_from(["users", "items", "events"]))
def test_missing_required_column(t: dict, table: str) -> None:
    frame = t[table]
    for col in SCHEMAS[table].required:
        broken = dict(t, **{table: frame.drop(columns=[col])})
        with pytest.raises(DataError) as err:
            build(broken)
        assert err.value.column == col and err.value.file == FILES[table]
        assert col in str(err.value)


NUMERIC_COLUMNS = [("users", "age"), ("items", "duration_min"), ("items", "season"), ("items", "public_rating"),
                   ("events", "watch_fraction"), ("events", "rating"), ("events", "position"),
                   ("events", "propensity"), ("events", "minutes_watched")]


@FAST
@given(valid_tables(), st.sampled_from(NUMERIC_COLUMNS), st.data())
def test_non_numeric_value_in_numeric_column(t: dict, where: tuple[str, str], data) -> None:
    table, col = where
    frame = t[table].copy()
    if col not in frame.columns:
        frame[col] = None
    bad = data.draw(st.text(alphabet=string.ascii_letters + " #?!/", min_size=1, max_size=8).filter(not_a_number))
    row = data.draw(st.integers(0, len(frame) - 1))
    frame[col] = frame[col].astype(object)
    frame.loc[row, col] = bad
    with pytest.raises(DataError) as err:
        build(dict(t, **{table: frame}))
    assert err.value.column == col and err.value.file == FILES[table]
    assert f"row {row}:" in str(err.value)


@FAST
@given(valid_tables(), st.data())
def test_unparseable_timestamp(t: dict, data) -> None:
    bad = data.draw(st.one_of(
        st.sampled_from(["31/12/2024", "yesterday", "2024-13-01", "2024-02-30", "12:00", "1e12", "2300-01-01",
                         "1699999999999"]),
        st.text(alphabet=string.ascii_letters + "-:/ ", min_size=1, max_size=10).filter(not_a_timestamp),
    ))
    table = data.draw(st.sampled_from(["events", "searches"]) if len(t["searches"]) else st.just("events"))
    frame = t[table].copy()
    row = data.draw(st.integers(0, len(frame) - 1))
    frame["timestamp"] = frame["timestamp"].astype(object)
    frame.loc[row, "timestamp"] = bad
    with pytest.raises(DataError) as err:
        build(dict(t, **{table: frame}))
    assert err.value.column == "timestamp" and err.value.file == FILES[table]


@FAST
@given(valid_tables(feedback="implicit"), st.data())
def test_watch_fraction_outside_unit_interval(t: dict, data) -> None:
    value = data.draw(st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1 + 1e-9)).filter(
        lambda v: not np.isnan(v)))
    events = t["events"].copy()
    events.loc[data.draw(st.integers(0, len(events) - 1)), "watch_fraction"] = value
    with pytest.raises(DataError) as err:
        build(dict(t, events=events))
    assert err.value.column == "watch_fraction" and err.value.file == "events.csv"


@FAST
@given(valid_tables(), st.sampled_from(["user_id", "item_id", "search_user"]), st.data())
def test_reference_to_unknown_id(t: dict, which: str, data) -> None:
    table = "searches" if which == "search_user" else "events"
    col = "user_id" if which == "search_user" else which
    frame = t[table]
    if len(frame) == 0:
        frame = pd.DataFrame({"user_id": [t["users"]["user_id"][0]], "timestamp": [EPOCH_LO], "query": ["x"]})
    frame = frame.copy()
    row = data.draw(st.integers(0, len(frame) - 1))
    frame.loc[row, col] = "never-seen-id"
    with pytest.raises(DataError) as err:
        build(dict(t, **{table: frame}))
    assert err.value.column == col and err.value.file == FILES[table]
    assert "never-seen-id" in str(err.value)


@FAST
@given(valid_tables(), st.sampled_from(["users", "items"]), st.booleans(), st.data())
def test_duplicate_ids(t: dict, table: str, padded: bool, data) -> None:
    frame = t[table]
    row = data.draw(st.integers(0, len(frame) - 1))
    copy = frame.iloc[[row]].copy()
    key = SCHEMAS[table].key
    if padded:  # ' x ' and 'x' are the same id once stripped
        copy[key] = " " + copy[key].astype(str) + " "
    with pytest.raises(DataError) as err:
        build(dict(t, **{table: pd.concat([frame, copy], ignore_index=True)}))
    assert err.value.column == key and "duplicate" in str(err.value)


def hand_tables() -> dict:
    ds = hand()
    return {t: getattr(ds, t) for t in ("users", "items", "events", "searches")}


@pytest.mark.parametrize("table", ["users", "items", "events"])
def test_empty_tables(table: str) -> None:
    t = hand_tables()
    with pytest.raises(DataError, match="empty") as err:
        build(dict(t, **{table: t[table].iloc[0:0]}))
    assert err.value.file == FILES[table]
    with pytest.raises(DataError, match="empty"):
        build(dict(t, **{table: pd.DataFrame()}))


def test_empty_searches_are_fine() -> None:
    t = hand_tables()
    ds = build(dict(t, searches=t["searches"].iloc[0:0]))
    assert len(ds.searches) == 0 and list(ds.searches.columns) == ["user_id", "timestamp", "query"]


# ------------------------------------------------------------------ fuzz: DataError or success, nothing else
anything = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(sorted(NA_TOKENS) + ["1e400", "-0", " 7 ", "2024-01-01", "0x1F"]),
    st.datetimes(timezones=st.one_of(st.none(), st.just(dt.timezone.utc))), st.dates(),
    st.lists(st.one_of(st.none(), st.text(max_size=4), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.binary(max_size=4),
    st.decimals(allow_nan=False, allow_infinity=True), st.just(Decimal("NaN")), st.timedeltas(),
)


@st.composite
def fuzz_frame(draw, schema) -> pd.DataFrame:
    n = draw(st.integers(1, 5))
    names = [c.name for c in schema.columns]
    cols = draw(st.lists(st.sampled_from(names), unique=True, max_size=5))
    cols = list(dict.fromkeys(schema.required + cols + draw(st.lists(words, max_size=1))))
    data = {}
    for name in cols:
        homogeneous = draw(st.booleans())
        if homogeneous:  # a typed column, as a file would give
            base = draw(st.sampled_from([st.integers(-10, 10**10), st.floats(allow_nan=True), st.text(max_size=6),
                                         st.datetimes(min_value=dt.datetime(1600, 1, 1))]))
            data[name] = draw(st.lists(base, min_size=n, max_size=n))
        else:
            data[name] = pd.Series(draw(st.lists(anything, min_size=n, max_size=n)), dtype=object)
    return pd.DataFrame(data)


@FUZZ
@given(st.sampled_from([USERS, ITEMS, EVENTS, SEARCHES]), st.data())
def test_coerce_table_never_raises_anything_but_data_error(schema, data) -> None:
    frame = data.draw(fuzz_frame(schema))
    try:
        out = coerce_table(frame, schema, "fuzz.csv")
    except DataError as err:
        assert err.file == "fuzz.csv"
        return
    assert len(out) == len(frame)
    for col in schema.columns:
        if col.name in out and col.kind == "datetime":
            assert out[col.name].dtype == "datetime64[ns]"
        if col.name in out and col.kind == "list":
            assert all(isinstance(v, list) for v in out[col.name])


@FUZZ
@given(valid_tables(), st.data())
def test_from_frames_with_fuzzed_events(t: dict, data) -> None:
    events = t["events"].copy()
    for col in data.draw(st.lists(st.sampled_from(["timestamp", "watch_fraction", "rating", "position", "device",
                                                     "session_id"]), unique=True, min_size=1, max_size=3)):
        events[col] = pd.Series(data.draw(st.lists(anything, min_size=len(events), max_size=len(events))),
                                dtype=object)
    try:
        ds = build(dict(t, events=events))
    except DataError:
        return
    assert len(ds.events) == len(events)


# ------------------------------------------------------------------ coercion details
def test_coercion_details() -> None:
    frame = pd.DataFrame({
        "user_id": [7.0, 8.0],  # a float id column (CSV with gaps) loses the '.0'
        "item_id": [" m1 ", "m2"],
        "timestamp": ["2024-03-01T20:00:00+02:00", "1709900000"],
        "watch_fraction": ["0.5", "NULL"],
        "position": [1.0, None],
        "extra": [{"a": 1}, None],
    })
    out = coerce_table(frame, EVENTS, "e.csv")
    assert list(out["user_id"]) == ["7", "8"] and list(out["item_id"]) == ["m1", "m2"]
    assert list(out["timestamp"]) == [pd.Timestamp("2024-03-01 18:00:00"), pd.Timestamp("2024-03-08 12:13:20")]
    assert out.loc[0, "watch_fraction"] == 0.5 and np.isnan(out.loc[1, "watch_fraction"])
    assert str(out["position"].dtype) == "Int64" and out.loc[0, "position"] == 1 and pd.isna(out.loc[1, "position"])
    assert out.loc[0, "extra"] == {"a": 1}  # unknown columns are kept as they are


def test_list_cells() -> None:
    assert split_list_cell("drama| crime ||") == ["drama", "crime"]
    assert split_list_cell(np.array(["a", None, " b "], dtype=object)) == ["a", "b"]
    assert split_list_cell(None) == [] and split_list_cell(float("nan")) == [] and split_list_cell("") == []


@pytest.mark.parametrize("value, problem", [
    (9_999_999_999, "out of range"),          # epoch seconds beyond 2262
    (1_700_000_000_000, "divide milliseconds"),  # epoch milliseconds
    ("2300-01-01", "outside the supported span"),
    (dt.datetime(3000, 1, 1), "outside the supported span"),
    ("Jan", "could not be parsed"),
])
def test_timestamps_beyond_the_nanosecond_span(value, problem: str) -> None:
    frame = pd.DataFrame({"user_id": ["u"], "timestamp": pd.Series([value], dtype=object), "query": ["q"]})
    with pytest.raises(DataError, match=problem):
        coerce_table(frame, SEARCHES, "s.csv")


def test_int_column_rejects_fractions_and_giants() -> None:
    with pytest.raises(DataError, match="not whole numbers"):
        coerce_table(pd.DataFrame({"item_id": ["a"], "title": ["t"], "season": [1.5]}), ITEMS, "i.csv")
    with pytest.raises(DataError, match="too large"):
        coerce_table(pd.DataFrame({"item_id": ["a"], "title": ["t"], "season": [1e20]}), ITEMS, "i.csv")
    with pytest.raises(DataError, match="dates or durations"):
        coerce_table(pd.DataFrame({"item_id": ["a"], "title": ["t"],
                                   "duration_min": [pd.Timestamp("2024-01-01")]}), ITEMS, "i.csv")


def test_events_need_feedback() -> None:
    t = hand_tables()
    with pytest.raises(DataError, match="watch_fraction .* or a rating"):
        build(dict(t, events=t["events"].drop(columns=["watch_fraction"])))
    events = t["events"].copy()
    events["watch_fraction"] = np.nan
    with pytest.raises(DataError, match="neither a watch fraction nor a rating"):
        build(dict(t, events=events))


# ------------------------------------------------------------------ Dataset behaviour
def hand() -> Dataset:
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"],
                          "signup_time": ["2024-01-01", "2024-03-01", None]})
    items = pd.DataFrame({"item_id": ["m1", "m2", "m3"], "title": ["One", "Two", "Three"],
                          "kind": ["movie", "movie", "episode"],
                          "genres": ["drama", "drama|comedy", None],
                          "added_at": ["2023-12-01", "2024-02-15", None]})
    events = pd.DataFrame({
        "user_id": ["u2", "u1", "u3", "u2", "u1"],
        "item_id": ["m2", "m1", "m1", "m3", "m2"],
        "timestamp": ["2024-03-05", "2024-01-10", "2024-02-25", "2024-03-01", "2024-02-20"],
        "watch_fraction": [1.0, 0.9, 0.0, 0.5, 0.05],
    })
    searches = pd.DataFrame({"user_id": ["u2", "u1"], "timestamp": ["2024-03-02", "2024-02-01"],
                             "query": ["space", "drama"]})
    return Dataset.from_frames(users, items, events, searches, name="hand")


def test_events_sorted_by_time() -> None:
    ds = hand()
    assert list(ds.events["timestamp"].dt.strftime("%m-%d")) == ["01-10", "02-20", "02-25", "03-01", "03-05"]
    assert list(ds.searches["query"]) == ["drama", "space"]


def test_as_of_keeps_only_the_knowable_past() -> None:
    ds = hand().as_of("2024-03-01")
    assert list(ds.events["timestamp"].dt.strftime("%m-%d")) == ["01-10", "02-20", "02-25"]  # 03-01 is not before
    assert list(ds.users["user_id"]) == ["u1", "u3"]  # u2 signs up exactly at t: not yet a member
    assert list(ds.items["item_id"]) == ["m1", "m2", "m3"]  # m3 has no added_at: always there
    assert list(ds.searches["query"]) == ["drama"]
    early = hand().as_of("2024-02-15")
    assert list(early.items["item_id"]) == ["m1", "m3"]  # m2 arrives exactly at t
    assert list(early.events["item_id"]) == ["m1"]
    # a time with an offset means the same instant in UTC
    same = hand().as_of("2024-03-01T01:00:00+01:00")
    pd.testing.assert_frame_equal(same.events, ds.events)


def test_as_of_before_everything() -> None:
    ds = hand().as_of("2023-01-01")
    assert len(ds.events) == 0 and list(ds.users["user_id"]) == ["u3"] and list(ds.items["item_id"]) == ["m3"]
    assert ds.feedback == "implicit" and ds.start is None
    summary = ds.summary()
    assert summary["plays"] == 0 and summary["active_users"] == 0 and summary["days"] is None


def test_between_is_half_open() -> None:
    ds = hand()
    mid = ds.between("2024-02-01", "2024-03-01")
    assert list(mid.events["timestamp"].dt.strftime("%m-%d")) == ["02-20", "02-25"]
    assert list(mid.searches["query"]) == ["drama"]  # the start is included
    assert len(mid.users) == 3 and len(mid.items) == 3
    assert list(ds.between(None, "2024-02-01").events["item_id"]) == ["m1"]
    assert list(ds.between("2024-03-01", None).events["item_id"]) == ["m3", "m2"]


def test_dense_indices() -> None:
    ds = hand()
    assert list(ds.user_index(["u2", "zzz", "u1"])) == [1, -1, 0]
    assert list(ds.item_index("m3")) == [2]
    assert list(ds.item_index([])) == []
    numeric = Dataset.from_frames(None, pd.DataFrame({"item_id": [10, 20], "title": ["a", "b"]}),
                                  pd.DataFrame({"user_id": [7], "item_id": [20], "timestamp": [EPOCH_LO],
                                                "rating": [4]}))
    assert list(numeric.user_index([7, "7", 7.0, 8])) == [0, 0, 0, -1]
    assert list(numeric.item_index(np.array([20, 10]))) == [1, 0]


def test_summary_counts() -> None:
    s = hand().summary()
    assert (s["users"], s["items"], s["events"], s["plays"], s["searches"]) == (3, 3, 5, 4, 2)
    assert s["impressions_without_play"] == 1 and s["feedback"] == "implicit"
    assert s["start"] == "2024-01-10T00:00:00" and s["end"] == "2024-03-05T00:00:00" and s["days"] == 55.0
    assert (s["active_users"], s["played_items"]) == (2, 3)
    assert s["density"] == pytest.approx(4 / 9)
    assert s["genres"] == {"drama": 2, "comedy": 1}
    assert s["item_kinds"] == {"movie": 2, "episode": 1}
    assert s["label_balance"] == {"positive_gt_0.8": 2, "middle_0.1_to_0.8": 1, "negative_lt_0.1": 1,
                                  "shown_not_played": 1}


def test_summary_of_explicit_feedback() -> None:
    ds = Dataset.from_frames(None, pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"]}),
                             pd.DataFrame({"user_id": ["x", "x", "y"], "item_id": ["a", "b", "a"],
                                           "timestamp": [EPOCH_LO, EPOCH_LO + 60, EPOCH_LO + 86400],
                                           "rating": [4.0, 2.5, 4.0]}))
    s = ds.summary()
    assert ds.feedback == "explicit"
    assert s["ratings"] == {2.5: 1, 4.0: 2} and s["plays"] == 3 and s["users"] == 2 and s["density"] == 0.75
    assert s["report"]["notes"] == ["no users table: derived 2 users from the events"]


def test_fingerprint_stable_and_sensitive() -> None:
    a, b = hand(), hand()
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16
    assert a.as_of("2024-03-01").fingerprint() != a.fingerprint()

    def changed(table: str, col: str, value) -> str:
        frames = {t: getattr(hand(), t).copy() for t in ("users", "items", "events", "searches")}
        frames[table].loc[0, col] = value
        return Dataset.from_frames(frames["users"], frames["items"], frames["events"], frames["searches"]).fingerprint()

    assert changed("events", "watch_fraction", 0.8) != a.fingerprint()
    assert changed("events", "timestamp", pd.Timestamp("2024-01-11")) != a.fingerprint()
    assert changed("items", "title", "Uno") != a.fingerprint()
    assert changed("events", "watch_fraction", 0.9) == a.fingerprint()  # the same value: the same print


def test_events_before_signup_or_arrival_are_rejected() -> None:
    ds = hand()
    events = ds.events.copy()
    events.loc[0, "timestamp"] = pd.Timestamp("2023-12-31")  # u1 signs up 2024-01-01
    with pytest.raises(DataError, match="before the signup_time") as err:
        Dataset.from_frames(ds.users, ds.items, events, None, files=FILES)
    assert err.value.file == "events.csv" and err.value.column == "timestamp"
    events = ds.events.copy()
    events.loc[2, ["item_id", "timestamp"]] = ["m2", pd.Timestamp("2024-02-14")]  # m2 arrives 2024-02-15
    with pytest.raises(DataError, match="before the added_at"):
        Dataset.from_frames(ds.users, ds.items, events, None, files=FILES)
