"""Where an impression was shown: its slot in the row and the plays above it in the same session.

A logged play depends on the slot (members look less far down a row) and on what was played
above it (after a first play a second one is rarer), not only on the member and the title. A
ranker trained on impressions with these two features learns both effects apart from the
title's appeal; serving sets them to the top slot with nothing played above (`serving`), so it
ranks by the appeal a title would have first in the row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .spec import Feature
from .table import Block

__all__ = ["SlotFeatures"]


class SlotFeatures:
    """`shown_slot` (0 = first) and `plays_above` of logged impressions; zeros when serving."""

    name = "slot"
    features_ = (
        Feature("shown_slot", "slot", "dense",
                "Slot the title was shown in (0 = first); the top slot when serving."),
        Feature("plays_above", "slot", "dense",
                "Titles the member played above it in the same row; none when serving."),
    )

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features_]

    def from_events(self, events: pd.DataFrame) -> Block:
        """The features of logged rows (session_id, position, watch_fraction), in their order; rows with
        no slot (searches, autoplay) count as the top slot with nothing above."""
        position = pd.to_numeric(events["position"], errors="coerce").to_numpy(dtype=float)
        in_row = np.isfinite(position) & (position >= 0)
        slot = np.where(in_row, position, 0.0)
        played = (events["watch_fraction"].to_numpy(dtype=float) > 0) & in_row
        frame = pd.DataFrame({"session": events["session_id"].astype(str).to_numpy(), "slot": slot,
                              "played": played.astype(np.int64), "row": np.arange(len(events))})
        frame = frame.sort_values(["session", "slot"], kind="stable")
        above = frame.groupby("session", sort=False)["played"].cumsum() - frame["played"]
        plays_above = np.zeros(len(events))
        plays_above[frame["row"].to_numpy()] = above.to_numpy(dtype=float)
        plays_above[~in_row] = 0.0
        return Block(self.name, None, {"shown_slot": slot, "plays_above": plays_above}, len(events))

    def serving(self, n: int) -> Block:
        """The features of `n` rows to be ranked: the top slot, nothing played above."""
        return Block(self.name, None, {"shown_slot": np.zeros(n), "plays_above": np.zeros(n)}, n)
