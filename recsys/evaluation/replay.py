"""Ask a policy what it would have shown in each logged session, at the session's moment.

The log's sessions are replayed in time order the way the simulated A/B test serves them: one call
per `slot_minutes` slot for every member starting a session in it (a member's second session in a
slot comes in the next round), and before each call the policy observes every logged event before
that moment, so what it knows is what had happened, never what came after.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .logged import LoggedSessions

__all__ = ["replay_lists", "session_batches"]


def session_batches(logged: LoggedSessions, slot_minutes: int = 60) -> list[np.ndarray]:
    """Session indices per request batch, in time order (slot, then round within the slot)."""
    if logged.n_sessions == 0:
        return []
    t = pd.to_datetime(logged.timestamp)
    start = t.min().floor("h")
    slot = ((t - start) // pd.Timedelta(minutes=int(slot_minutes))).to_numpy(dtype=np.int64)
    frame = pd.DataFrame({"slot": slot, "user": logged.user_id, "t": t}).sort_values(["slot", "t"], kind="stable")
    frame["round"] = frame.groupby(["slot", "user"]).cumcount()
    groups = frame.groupby(["slot", "round"], sort=True).indices
    return [frame.index.to_numpy()[rows] for _, rows in sorted(groups.items())]


def replay_lists(policy, logged: LoggedSessions, events: pd.DataFrame, k: int = 10, slot_minutes: int = 60,
                 progress: Callable[[float], None] | None = None) -> np.ndarray:
    """(S, k) dense title indices (-1 for empty) of `policy`'s list in each logged session. `policy` is a
    started OnlinePolicy (recsys.simulation.policies); `events` are the log's events from the first
    session on (every source), handed to `observe` in time order."""
    out = np.full((logged.n_sessions, k), -1, dtype=np.int64)
    events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    times = events["timestamp"].to_numpy(dtype="datetime64[ns]")
    seen_upto = 0
    batches = session_batches(logged, slot_minutes)
    for b, rows in enumerate(batches):
        now = pd.Timestamp(logged.timestamp[rows].min())
        upto = int(np.searchsorted(times, np.datetime64(now.to_datetime64(), "ns"), side="left"))
        if upto > seen_upto:
            policy.observe(events.iloc[seen_upto:upto].reset_index(drop=True))
            seen_upto = upto
        requests = pd.DataFrame({"user_id": logged.user_id[rows], "timestamp": pd.to_datetime(logged.timestamp[rows]),
                                 "device": logged.device[rows], "session_id": logged.session_id[rows]})
        lists = policy.recommend(requests, k, now)
        for row, user in zip(rows, logged.user_id[rows]):
            titles = list(lists.get(str(user), []))[:k]
            if titles:
                index = logged.item_ids.get_indexer(pd.Index([str(x) for x in titles]))
                out[row, : len(index)] = index
        if progress is not None:
            progress((b + 1) / len(batches))
    return out
