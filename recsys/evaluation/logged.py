"""Logged row sessions as arrays: what the logging policy showed in each slot, with what propensity,
and what each slot earned (plays, videos and minutes, autoplayed episodes credited to the slot whose
play started them). The off-policy estimators read only this.

A session is one row shown to one member at one moment (`session_id`; slot = `position`). Plays a
search led to are not the row's doing and are left out of every reward; an autoplayed episode counts
for the row slot whose play came last before it in the session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.errors import DataError

__all__ = ["LoggedSessions", "OffPolicyUnavailable", "METRICS"]

#: The online metrics the estimators estimate, as the simulated A/B test defines them per session.
METRICS: tuple[str, ...] = ("engagement_rate", "videos_per_session", "minutes_per_session")


class OffPolicyUnavailable(DataError):
    """The log cannot support off-policy estimates (no slots, no sessions); the message says why."""


@dataclass(frozen=True)
class LoggedSessions:
    """S sessions x K slots. `items` holds dense title indices (-1 for an empty slot); `propensity` is
    the logging policy's P(this title in this slot | the slots above), NaN where the log has none."""

    session_id: np.ndarray  # (S,) object
    user_id: np.ndarray  # (S,) object
    timestamp: np.ndarray  # (S,) datetime64[ns]
    device: np.ndarray  # (S,) object
    items: np.ndarray  # (S, K) int64, -1 = empty
    item_ids: pd.Index  # dense index -> external title id
    propensity: np.ndarray  # (S, K) float
    played: np.ndarray  # (S, K) bool
    videos: np.ndarray  # (S, K) float: the slot's play and the episodes it autoplayed
    minutes: np.ndarray  # (S, K) float: minutes of that play and its autoplays

    @property
    def n_sessions(self) -> int:
        return len(self.session_id)

    @property
    def slots(self) -> int:
        return self.items.shape[1]

    @property
    def shown(self) -> np.ndarray:
        return self.items >= 0

    @property
    def has_propensities(self) -> bool:
        shown = self.shown
        return bool(shown.any()) and bool(np.isfinite(self.propensity[shown]).all())

    @property
    def played_above(self) -> np.ndarray:
        """(S, K) whether a slot above this one was played in the session."""
        return (np.cumsum(self.played, axis=1) - self.played) > 0

    @property
    def first_play(self) -> np.ndarray:
        """(S, K) the session's first played slot: its sum over slots is the session's engagement."""
        return self.played & ~self.played_above

    def rewards(self, metric: str) -> np.ndarray:
        """(S, K) per-slot reward whose sum over slots is the session's value of `metric`."""
        if metric == "engagement_rate":
            return self.first_play.astype(float)
        if metric == "videos_per_session":
            return self.videos
        if metric == "minutes_per_session":
            return self.minutes
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")

    def session_values(self, metric: str) -> np.ndarray:
        """(S,) the logged sessions' own value: the logging policy's on-policy outcome."""
        return self.rewards(metric).sum(axis=1)

    def take(self, rows: np.ndarray) -> "LoggedSessions":
        rows = np.asarray(rows)
        return LoggedSessions(self.session_id[rows], self.user_id[rows], self.timestamp[rows], self.device[rows],
                              self.items[rows], self.item_ids, self.propensity[rows], self.played[rows],
                              self.videos[rows], self.minutes[rows])

    @classmethod
    def from_events(cls, events: pd.DataFrame, item_ids, slots: int | None = None,
                    file: str = "events") -> "LoggedSessions":
        """Build from events in the logged schema (docs/data.md): rows with a `position` are shown slots,
        `source == "autoplay"` rows are credited to the session's last row play before them. `slots`
        defaults to the longest row in the log."""
        for column in ("session_id", "position"):
            if column not in events.columns or events[column].isna().all():
                raise OffPolicyUnavailable(
                    f"the log has no {column!r}: off-policy estimates need the row each title was shown in "
                    "(session_id) and its slot (position)", file=file, column=column,
                    hint="MovieLens-style ratings carry neither; logs from a service (CSV/Parquet per "
                         "docs/data.md) do")
        item_ids = pd.Index(item_ids)
        source = events["source"].astype(object) if "source" in events.columns else pd.Series("row", index=events.index)
        has_slot = events["position"].notna() & events["session_id"].notna()
        row = events[has_slot & source.ne("search") & source.ne("autoplay")]
        if len(row) == 0:
            raise OffPolicyUnavailable("the log has no shown rows (events with a session_id and a position)",
                                       file=file, column="position")
        pos = row["position"].to_numpy(dtype=np.int64)
        slots = int(pos.max()) + 1 if slots is None else int(slots)
        if (pos >= slots).any():
            bad = row[pos >= slots].head(3)
            raise DataError(f"positions go up to {int(pos.max())}, beyond the {slots} slots of a row",
                            file=file, column="position", examples=bad.to_dict("records"))
        dup = row.duplicated(["session_id", "position"], keep=False)
        if dup.any():
            raise DataError("one slot of one session holds two titles", file=file, column="position",
                            examples=row[dup].head(4).to_dict("records"))
        sessions, s_of = np.unique(row["session_id"].to_numpy(dtype=object).astype(str), return_inverse=True)
        S = len(sessions)
        items = np.full((S, slots), -1, dtype=np.int64)
        index = item_ids.get_indexer(row["item_id"].astype(str))
        if (index < 0).any():
            raise DataError("titles missing from the items table", file=file, column="item_id",
                            examples=row[index < 0].head(3).to_dict("records"))
        items[s_of, pos] = index
        prop = np.full((S, slots), np.nan)
        if "propensity" in row.columns:
            prop[s_of, pos] = pd.to_numeric(row["propensity"], errors="coerce").to_numpy(dtype=float)
        fraction = row["watch_fraction"].to_numpy(dtype=float)
        played = np.zeros((S, slots), dtype=bool)
        played[s_of, pos] = fraction > 0
        minutes = np.zeros((S, slots))
        minutes[s_of, pos] = np.where(fraction > 0, _minutes(row), 0.0)
        videos = played.astype(float)

        first = row.groupby(s_of, sort=True)
        user = first["user_id"].first().to_numpy(dtype=object)
        when = first["timestamp"].min().to_numpy(dtype="datetime64[ns]")
        device = (first["device"].first().to_numpy(dtype=object) if "device" in row.columns
                  else np.full(S, None, dtype=object))

        auto = events[source.eq("autoplay") & events["session_id"].notna()]
        if len(auto):
            _credit_autoplay(auto, row[fraction > 0], sessions, s_of[fraction > 0], pos[fraction > 0], minutes,
                             videos)
        return cls(sessions.astype(object), user, when, device, items, item_ids, prop, played, videos, minutes)


def _minutes(frame: pd.DataFrame) -> np.ndarray:
    if "minutes_watched" in frame.columns:
        return pd.to_numeric(frame["minutes_watched"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    return np.zeros(len(frame))


def _credit_autoplay(auto: pd.DataFrame, plays: pd.DataFrame, sessions: np.ndarray, play_session: np.ndarray,
                     play_slot: np.ndarray, minutes: np.ndarray, videos: np.ndarray) -> None:
    """Add each autoplayed episode to the slot of the last row play at or before it in its session."""
    a_session = pd.Index(sessions).get_indexer(auto["session_id"].astype(str))
    left = pd.DataFrame({"s": a_session, "t": auto["timestamp"].to_numpy(dtype="datetime64[ns]"),
                         "minutes": _minutes(auto), "video": (auto["watch_fraction"].to_numpy(dtype=float) > 0)})
    left = left[left["s"] >= 0].sort_values("t", kind="stable")
    right = pd.DataFrame({"s": play_session, "t": plays["timestamp"].to_numpy(dtype="datetime64[ns]"),
                          "slot": play_slot}).sort_values("t", kind="stable")
    joined = pd.merge_asof(left, right, on="t", by="s", direction="backward").dropna(subset=["slot"])
    s, k = joined["s"].to_numpy(dtype=np.int64), joined["slot"].to_numpy(dtype=np.int64)
    np.add.at(minutes, (s, k), joined["minutes"].to_numpy(dtype=float))
    np.add.at(videos, (s, k), joined["video"].to_numpy(dtype=float))
