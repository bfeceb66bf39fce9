"""Plotly chart builders used by the pages (pages only place them)."""

from __future__ import annotations

import numpy as np
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


def watch_fraction_histogram(watch_fraction: pd.Series, negative_below: float, positive_above: float) -> go.Figure:
    """Histogram of played watch fractions with the label thresholds marked."""
    played = watch_fraction[watch_fraction > 0]
    fig = px.histogram(played, nbins=50, title="Watch fraction of plays", labels={"value": "watch fraction"})
    for x, text in ((negative_below, f"negative below {negative_below:.0%}"),
                    (positive_above, f"positive above {positive_above:.0%}")):
        fig.add_vline(x=x, line_dash="dash", line_color="crimson", annotation_text=text)
    fig.update_layout(showlegend=False, margin=dict(t=40, b=10), yaxis_title="plays")
    return fig


def class_balance(balance: pd.DataFrame) -> go.Figure:
    """Positives and negatives before and after downsampling."""
    long = balance.melt(id_vars="stage", var_name="class", value_name="rows")
    fig = px.bar(long, x="stage", y="rows", color="class", barmode="group",
                 title="Class balance before and after downsampling")
    fig.update_layout(margin=dict(t=40, b=10))
    return fig


def feature_distribution(values: pd.Series, label: pd.Series, name: str, kind: str) -> go.Figure:
    """Distribution of one feature, split by label (positive / negative)."""
    frame = pd.DataFrame({name: values.to_numpy(), "label": label.map({1: "positive", 0: "negative"}).to_numpy()})
    if kind == "dense":
        fig = px.histogram(frame.dropna(), x=name, color="label", nbins=40, barmode="overlay",
                           histnorm="probability", opacity=0.6)
    else:
        counts = frame.fillna({name: "(missing)"}).groupby([name, "label"]).size().rename("rows").reset_index()
        top = counts.groupby(name)["rows"].sum().nlargest(25).index
        fig = px.bar(counts[counts[name].isin(top)], x=name, y="rows", color="label", barmode="group")
    fig.update_layout(margin=dict(t=30, b=10), title=f"{name} by label")
    return fig


def weight_histogram(weight, label) -> go.Figure:
    """Sample weights of positives (duration x inverse-propensity weights) and negatives (inverse propensity),
    binned on log10 of the weight: the propensity weights span a factor of 400 (plotly's log axis bins linearly
    and loses the bins that start at 0). Rows weighing 0 cannot be drawn on that scale; the title counts them."""
    weight = np.asarray(weight, dtype=float)
    frame = pd.DataFrame({"weight": weight, "label": pd.Series(np.asarray(label)).map({1: "positive", 0: "negative"})})
    zero = int((weight <= 0).sum())
    frame = frame[weight > 0].assign(log10_weight=lambda f: np.log10(f["weight"]))
    title = "Sample weights, log10 (minutes watched x how rarely the title was shown)"
    fig = px.histogram(frame, x="log10_weight", color="label", nbins=40, barmode="overlay", opacity=0.6,
                       title=title + (f"; {zero:,} rows weigh 0" if zero else ""),
                       labels={"log10_weight": "log10(weight): 0 is 1, 1 is 10, -1 is 0.1"})
    fig.update_layout(margin=dict(t=40, b=10))
    return fig


def member_genre_histogram(plays: pd.DataFrame, items: pd.DataFrame) -> go.Figure:
    """Genres of a member's past plays (a title counts once per genre)."""
    genres = plays.merge(items[["item_id", "genres"]], on="item_id")["genres"].explode().dropna()
    counts = genres.value_counts().rename_axis("genre").reset_index(name="plays")
    fig = px.bar(counts, x="plays", y="genre", orientation="h", title="Genres watched")
    fig.update_layout(margin=dict(t=40, b=10), yaxis={"categoryorder": "total ascending"})
    return fig


def watch_timeline(plays: pd.DataFrame, items: pd.DataFrame) -> go.Figure:
    """A member's plays over time, coloured by how much of each title they watched."""
    frame = plays.merge(items[["item_id", "title"]], on="item_id")
    fig = px.scatter(frame, x="timestamp", y="title", color="watch_fraction" if "watch_fraction" in frame else None,
                     color_continuous_scale="RdYlGn", range_color=(0, 1), title="Watch history")
    fig.update_layout(margin=dict(t=40, b=10), height=max(300, 18 * frame["title"].nunique() + 80))
    return fig


def contributions(explanation: pd.DataFrame) -> go.Figure:
    """Feature contributions to one P(watch), largest first."""
    frame = explanation.assign(label=explanation["feature"] + " = " + explanation["value"].astype(str))
    fig = px.bar(frame.iloc[::-1], x="contribution", y="label", orientation="h",
                 color=frame.iloc[::-1]["contribution"] > 0, color_discrete_map={True: "#2a9d8f", False: "#e76f51"},
                 title="Why this score")
    fig.update_layout(showlegend=False, margin=dict(t=40, b=10), yaxis_title="")
    return fig


def metric_curves(report: dict, metric: str) -> go.Figure:
    """metric@k for k = 1..max_k, one line per model."""
    rows = []
    for name, model in report["models"].items():
        for k, value in enumerate(model["curves"][metric], start=1):
            rows.append({"model": name, "k": k, metric: value})
    fig = px.line(pd.DataFrame(rows), x="k", y=metric, color="model", title=f"{metric}@k")
    fig.update_layout(margin=dict(t=40, b=10))
    return fig


def per_fold(report: dict, metric: str) -> go.Figure:
    """Each model's metric in each fold."""
    rows = [{"model": name, "fold": str(f["fold"]), metric: f[metric]}
            for name, model in report["models"].items() for f in model["per_fold"]]
    fig = px.bar(pd.DataFrame(rows), x="model", y=metric, color="fold", barmode="group", title=f"{metric} per fold")
    fig.update_layout(margin=dict(t=40, b=10))
    return fig


def per_segment(report: dict, segment: str, metric: str) -> go.Figure:
    """Each model's metric by member segment (activity, device or language)."""
    rows = [{"model": name, segment: value, metric: stats[metric], "members": stats["users"]}
            for name, model in report["models"].items()
            for value, stats in model.get("segments", {}).get(segment, {}).items()]
    fig = px.bar(pd.DataFrame(rows), x=segment, y=metric, color="model", barmode="group", hover_data=["members"],
                 title=f"{metric} by {segment}")
    fig.update_layout(margin=dict(t=40, b=10))
    return fig


AB_METRIC_LABELS = {"engagement_rate": "engagement rate", "videos_per_session": "videos per session",
                    "finished_per_session": "finished per session", "minutes_per_session": "minutes per session",
                    "minutes_per_member": "minutes per member"}


def ab_arm_metric(arms: pd.DataFrame, metric: str) -> go.Figure:
    """One online metric per arm with its 95% interval (`arms`: ABReport.table())."""
    label = AB_METRIC_LABELS.get(metric, metric)
    fig = go.Figure(go.Bar(x=arms["arm"], y=arms[metric], marker_color=px.colors.qualitative.Plotly[:len(arms)],
                           error_y=dict(type="data", symmetric=False, array=arms[f"{metric} high"] - arms[metric],
                                        arrayminus=arms[metric] - arms[f"{metric} low"])))
    fig.update_layout(title=f"{label} per arm (95% interval)", yaxis_title=label, margin=dict(t=40, b=10))
    return fig


def ab_lifts(comparisons: pd.DataFrame) -> go.Figure:
    """Relative lift of each treatment over the control on every metric, with intervals; significant ones solid."""
    frame = comparisons.assign(metric_label=comparisons["metric"].map(lambda m: AB_METRIC_LABELS.get(m, m)),
                               verdict=comparisons["significant"].map({True: "significant", False: "not significant"}))
    fig = go.Figure()
    for (arm, verdict), part in frame.groupby(["treatment", "verdict"], sort=False):
        fig.add_trace(go.Scatter(
            x=part["lift"] * 100, y=part["metric_label"], mode="markers", name=f"{arm} ({verdict})",
            marker=dict(size=11, symbol="circle" if verdict == "significant" else "circle-open"),
            error_x=dict(type="data", symmetric=False, array=(part["lift_high"] - part["lift"]) * 100,
                         arrayminus=(part["lift"] - part["lift_low"]) * 100)))
    fig.add_vline(x=0, line_dash="dash", line_color="gray")
    fig.update_layout(title="Lift over the control (%, 95% interval)", xaxis_title="lift %", margin=dict(t=40, b=10))
    return fig


def ab_daily(daily: pd.DataFrame, metric: str = "engagement_rate") -> go.Figure:
    """A daily metric per arm over the simulated period."""
    label = AB_METRIC_LABELS.get(metric, metric)
    fig = px.line(daily, x="day", y=metric, color="arm", markers=True, hover_data=["sessions"],
                  title=f"Daily {label}", labels={"day": "day of the experiment", metric: label})
    fig.update_layout(margin=dict(t=40, b=10))
    return fig


def offline_vs_online_chart(table: pd.DataFrame, offline_metric: str, online_metric: str) -> go.Figure:
    """Each policy's offline metric against its online metric."""
    fig = px.scatter(table, x=offline_metric, y=online_metric, text="policy",
                     title=f"Offline {offline_metric} vs online {AB_METRIC_LABELS.get(online_metric, online_metric)}",
                     labels={online_metric: AB_METRIC_LABELS.get(online_metric, online_metric)})
    fig.update_traces(textposition="top center", marker=dict(size=12))
    fig.update_layout(margin=dict(t=40, b=10))
    return fig


def estimate_vs_simulated_chart(table: pd.DataFrame, metric: str, estimator: str) -> go.Figure:
    """Each arm's off-policy estimate (with its 95% interval) against its simulated value; the diagonal is
    a perfect estimate. `table` is `off_policy_vs_online`'s long table."""
    rows = table[(table["metric"] == metric) & (table["estimator"] == estimator)]
    label = AB_METRIC_LABELS.get(metric, metric)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=rows["simulated"], y=rows["estimate"], mode="markers+text", text=rows["policy"],
        textposition="top center", marker=dict(size=11), name=estimator,
        error_y=dict(type="data", symmetric=False, array=rows["high"] - rows["estimate"],
                     arrayminus=rows["estimate"] - rows["low"])))
    if len(rows):
        lo = float(min(rows["simulated"].min(), rows["low"].min()))
        hi = float(max(rows["simulated"].max(), rows["high"].max()))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dot", color="gray"),
                                 name="estimate = simulated"))
    fig.update_layout(title=f"Estimated from the logs ({estimator}) vs simulated: {label}",
                      xaxis_title=f"simulated {label}", yaxis_title=f"estimated {label}", margin=dict(t=40, b=10))
    return fig
