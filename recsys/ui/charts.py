"""Plotly chart builders used by the pages (pages only place them)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def activity_over_time(events: pd.DataFrame, feedback: str) -> go.Figure:
    """Plays (and impressions, for implicit data) per week."""
    ev = events[["timestamp"]].copy()
    if feedback == "implicit":
        ev["what"] = events["watch_fraction"].gt(0).map({True: "plays", False: "shown, not played"})
    else:
        ev["what"] = "ratings"
    weekly = ev.groupby([pd.Grouper(key="timestamp", freq="W"), "what"]).size().rename("events").reset_index()
    fig = px.bar(weekly, x="timestamp", y="events", color="what", labels={"timestamp": "week"},
                 title="Activity per week")
    fig.update_layout(legend_title_text="", margin=dict(t=40, b=10))
    return fig


def genre_counts(genres: dict[str, int]) -> go.Figure:
    """Titles per genre."""
    frame = pd.DataFrame({"genre": list(genres), "titles": list(genres.values())})
    fig = px.bar(frame.sort_values("titles"), x="titles", y="genre", orientation="h", title="Titles per genre")
    fig.update_layout(margin=dict(t=40, b=10))
    return fig


def label_balance(balance: dict[str, int]) -> go.Figure:
    """How events split by watch fraction into the label bands."""
    names = {"positive_gt_0.8": "positive (>80%)", "middle_0.1_to_0.8": "ignored (10-80%)",
             "negative_lt_0.1": "negative (<10%)", "shown_not_played": "shown, not played"}
    frame = pd.DataFrame({"band": [names.get(k, k) for k in balance], "events": list(balance.values())})
    fig = px.bar(frame, x="band", y="events", title="Events by watch-fraction band", color="band")
    fig.update_layout(showlegend=False, margin=dict(t=40, b=10))
    return fig
