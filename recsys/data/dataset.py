"""The Dataset container: validated users, items, events and searches, sliceable by time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import DataError
from .schema import EVENTS, ITEMS, SEARCHES, USERS
from .validation import check_references, coerce_table, normalize_ids

__all__ = ["Dataset", "LoadReport", "Timestamp"]

Timestamp = pd.Timestamp | str


@dataclass
class LoadReport:
    """What a loader did beyond copying: rows it dropped (with why) and things it derived."""

    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {"dropped": dict(self.dropped), "notes": list(self.notes)}


def _empty_searches() -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": pd.Series(dtype=object), "timestamp": pd.Series(dtype="datetime64[ns]"),
         "query": pd.Series(dtype=object)}
    )


def _check_not_before(
    log: pd.DataFrame, table: pd.DataFrame, key: str, since: str, log_file: str, table_file: str
) -> None:
    """Raise if a logged row happens before its user signed up / its title was added.

    Such rows would make `Dataset.as_of` point at users or titles it has already removed.
    """
    if since not in table.columns or not table[since].notna().any():
        return
    start = log[key].map(pd.Series(table[since].to_numpy(), index=table[key].to_numpy()))
    early = start.notna() & (log["timestamp"] < start)
    if early.any():
        examples = [
            f"row {pos}: {key}={log.at[pos, key]!r} at {log.at[pos, 'timestamp']} but {since} is {start.at[pos]}"
            for pos in np.flatnonzero(early.to_numpy())[:5]
        ]
        raise DataError(
            f"{int(early.sum())} row(s) happen before the {since} of their {key} (in {table_file})",
            file=log_file, column="timestamp", examples=examples,
        )


def _hashable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose list cells are joined text, so every column can be content-hashed."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_object_dtype(col) and pd.api.types.infer_dtype(col, skipna=True).startswith("mixed"):
            col = col.map(
                lambda v: "\x1f".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray))
                else (repr(v) if isinstance(v, (dict, set)) else v)
            )
        out[name] = col
    return pd.DataFrame(out, index=frame.index)


def _as_ids(ids) -> pd.Index:
    """External ids as the text the validator stores (7, 7.0 and "7" all mean "7")."""
    values = pd.Series(np.atleast_1d(np.asarray(ids, dtype=object)), dtype=object)
    return pd.Index(normalize_ids(values).fillna(""), dtype=object)


def _to_time(t: Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


@dataclass(frozen=True, eq=False)
class Dataset:
    """Users, items, events and searches in the documented schema (docs/data.md).

    Build one with `Dataset.from_frames` (validates) or a loader (`recsys.load_dataset`).
    Events are sorted by time. Ids are text at the surface; `user_index`/`item_index`
    map them to dense integers for models.
    """

    users: pd.DataFrame
    items: pd.DataFrame
    events: pd.DataFrame
    searches: pd.DataFrame
    name: str = "dataset"
    report: LoadReport = field(default_factory=LoadReport)

    @classmethod
    def from_frames(
        cls,
        users: pd.DataFrame | None,
        items: pd.DataFrame,
        events: pd.DataFrame,
        searches: pd.DataFrame | None = None,
        *,
        name: str = "dataset",
        report: LoadReport | None = None,
        files: dict[str, str] | None = None,
    ) -> "Dataset":
        """Validate raw frames and return a Dataset; raise DataError naming file and column on bad input.

        `files` maps table name to the file it came from, for error messages. Without a users
        table, users are derived from the events (and the report says so).
        """
        files = {"users": "users", "items": "items", "events": "events", "searches": "searches", **(files or {})}
        report = report or LoadReport()
        items = coerce_table(items, ITEMS, files["items"])
        events = coerce_table(events, EVENTS, files["events"])
        if users is None:
            ids = pd.unique(events["user_id"])
            users = pd.DataFrame({"user_id": ids})
            report.note(f"no users table: derived {len(ids)} users from the events")
        users = coerce_table(users, USERS, files["users"])
        if "watch_fraction" not in events.columns and "rating" not in events.columns:
            raise DataError(
                "events need a watch_fraction (implicit feedback) or a rating (explicit feedback) column",
                file=files["events"], column="watch_fraction",
            )
        feedback_cols = [c for c in ("watch_fraction", "rating") if c in events.columns]
        no_feedback = events[feedback_cols].isna().all(axis=1)
        if no_feedback.any():
            raise DataError(
                f"{int(no_feedback.sum())} event(s) have neither a watch fraction nor a rating",
                file=files["events"], column=feedback_cols[0],
                examples=[f"row {i}: {r}" for i, r in events.loc[no_feedback].head(5).to_dict("index").items()],
            )
        check_references(events, "user_id", pd.Index(users["user_id"]), files["events"], "users")
        check_references(events, "item_id", pd.Index(items["item_id"]), files["events"], "items")
        _check_not_before(events, users, "user_id", "signup_time", files["events"], files["users"])
        _check_not_before(events, items, "item_id", "added_at", files["events"], files["items"])
        if searches is None or len(searches) == 0:
            searches = _empty_searches()
        else:
            searches = coerce_table(searches, SEARCHES, files["searches"])
            check_references(searches, "user_id", pd.Index(users["user_id"]), files["searches"], "users")
            _check_not_before(searches, users, "user_id", "signup_time", files["searches"], files["users"])
        events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
        searches = searches.sort_values("timestamp", kind="stable").reset_index(drop=True)
        return cls(users=users, items=items, events=events, searches=searches, name=name, report=report)

    # ----------------------------------------------------------------- facts
    @property
    def feedback(self) -> Literal["implicit", "explicit"]:
        """'implicit' when events carry watch fractions, else 'explicit' (ratings).

        Decided by the columns when there are no values (e.g. an `as_of` before the first event).
        """
        cols = self.events.columns
        if "watch_fraction" not in cols:
            return "explicit"
        if self.events["watch_fraction"].notna().any() or "rating" not in cols:
            return "implicit"
        return "explicit"

    @property
    def start(self) -> pd.Timestamp | None:
        return self.events["timestamp"].min() if len(self.events) else None

    @property
    def end(self) -> pd.Timestamp | None:
        return self.events["timestamp"].max() if len(self.events) else None

    def has(self, table: str, column: str) -> bool:
        """Whether `table` has `column` with at least one value (features use this to degrade)."""
        frame = getattr(self, table)
        return column in frame.columns and bool(frame[column].notna().any())

    # ----------------------------------------------------------- vocabularies
    @cached_property
    def user_ids(self) -> pd.Index:
        """All user ids; position in this index is the dense user index."""
        return pd.Index(self.users["user_id"], name="user_id")

    @cached_property
    def item_ids(self) -> pd.Index:
        """All item ids; position in this index is the dense item index."""
        return pd.Index(self.items["item_id"], name="item_id")

    def user_index(self, ids) -> np.ndarray:
        """Dense indices of external user ids; -1 for ids this dataset does not know."""
        return self.user_ids.get_indexer(_as_ids(ids))

    def item_index(self, ids) -> np.ndarray:
        """Dense indices of external item ids; -1 for ids this dataset does not know."""
        return self.item_ids.get_indexer(_as_ids(ids))

    # ------------------------------------------------------------ time slicing
    def as_of(self, t: Timestamp) -> "Dataset":
        """What was knowable just before `t`: events and searches strictly before `t`, and only
        the users who had signed up and titles that were on the platform by then."""
        t = _to_time(t)
        users, items = self.users, self.items
        if "signup_time" in users.columns:
            users = users[~(users["signup_time"] >= t)]
        if "added_at" in items.columns:
            items = items[~(items["added_at"] >= t)]
        events = self.events[self.events["timestamp"] < t]
        searches = self.searches[self.searches["timestamp"] < t]
        if len(users) < len(self.users) or len(items) < len(self.items):
            # Validated data has no such rows; a Dataset built by hand might.
            events = events[events["user_id"].isin(users["user_id"]) & events["item_id"].isin(items["item_id"])]
            searches = searches[searches["user_id"].isin(users["user_id"])]
        return self._with(users, items, events, searches)

    def between(self, start: Timestamp | None, end: Timestamp | None) -> "Dataset":
        """Events and searches in [start, end); users and titles are kept whole (metadata)."""
        ev, se = self.events, self.searches
        if start is not None:
            s = _to_time(start)
            ev, se = ev[ev["timestamp"] >= s], se[se["timestamp"] >= s]
        if end is not None:
            e = _to_time(end)
            ev, se = ev[ev["timestamp"] < e], se[se["timestamp"] < e]
        return self._with(self.users, self.items, ev, se)

    def _with(self, users, items, events, searches) -> "Dataset":
        return replace(
            self,
            users=users.reset_index(drop=True),
            items=items.reset_index(drop=True),
            events=events.reset_index(drop=True),
            searches=searches.reset_index(drop=True),
        )

    # ---------------------------------------------------------------- summary
    def fingerprint(self) -> str:
        """A short content hash, stored in model manifests to catch mismatched artifacts."""
        h = hashlib.sha256()
        for frame in (self.users, self.items, self.events, self.searches):
            h.update(str(len(frame)).encode())
            h.update(",".join(map(str, frame.columns)).encode())
            if len(frame) and len(frame.columns):
                h.update(pd.util.hash_pandas_object(_hashable(frame), index=False).to_numpy().tobytes())
        return h.hexdigest()[:16]

    def plays(self) -> pd.DataFrame:
        """Events where the title was actually played (watch fraction > 0) or rated."""
        ev = self.events
        if self.feedback == "implicit":
            return ev[ev["watch_fraction"] > 0]
        return ev[ev["rating"].notna()]

    def summary(self) -> dict[str, Any]:
        """Counts, time span, genres and density: what `recsys info` prints."""
        ev = self.events
        plays = self.plays()
        n_users, n_items = len(self.users), len(self.items)
        genres: dict[str, int] = {}
        if "genres" in self.items.columns:
            genres = self.items["genres"].explode().dropna().value_counts().astype(int).to_dict()
        pairs = plays[["user_id", "item_id"]].drop_duplicates()
        out: dict[str, Any] = {
            "name": self.name,
            "feedback": self.feedback,
            "users": n_users,
            "items": n_items,
            "events": int(len(ev)),
            "plays": int(len(plays)),
            "impressions_without_play": int(len(ev) - len(plays)) if self.feedback == "implicit" else 0,
            "searches": int(len(self.searches)),
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "days": None if self.start is None else round((self.end - self.start).total_seconds() / 86400, 1),
            "active_users": int(plays["user_id"].nunique()),
            "played_items": int(plays["item_id"].nunique()),
            "density": float(len(pairs) / (n_users * n_items)) if n_users and n_items else 0.0,
            "genres": genres,
            "item_kinds": self.items["kind"].value_counts().astype(int).to_dict() if "kind" in self.items else {},
            "report": self.report.as_dict(),
        }
        if self.feedback == "implicit":
            wf = ev["watch_fraction"].dropna()
            played = wf[wf > 0]
            out["label_balance"] = {
                "positive_gt_0.8": int((played > 0.8).sum()),
                "middle_0.1_to_0.8": int(((played >= 0.1) & (played <= 0.8)).sum()),
                "negative_lt_0.1": int((played < 0.1).sum()),
                "shown_not_played": int((wf == 0).sum()),
            }
        else:
            out["ratings"] = ev["rating"].value_counts().sort_index().astype(int).to_dict()
        return out
