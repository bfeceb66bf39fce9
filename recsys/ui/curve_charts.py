"""Plotly charts of the held-out ranker curves (`recsys.evaluation.curves`): ROC, reliability, candidate recall."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def roc_chart(curves: dict[str, Any]) -> go.Figure:
    """One ROC curve per ranker, the chance diagonal, AUC in the legend."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance (AUC 0.5)",
                             line=dict(dash="dot", color="grey")))
    for name, r in curves["rankers"].items():
        auc = r["roc"]["auc"]
        fig.add_trace(go.Scatter(x=r["roc"]["fpr"], y=r["roc"]["tpr"], mode="lines",
                                 name=f"{name} (AUC {auc:.3f})" if auc is not None else name))
    fig.update_layout(title="ROC: finished titles against the rest", xaxis_title="false positive rate",
                      yaxis_title="true positive rate", margin=dict(t=40, b=10), legend=dict(x=0.45, y=0.05))
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1])
    return fig


def calibration_chart(curves: dict[str, Any]) -> go.Figure:
    """Reliability diagram: mean predicted P(watch) per bin against the observed share finished."""
    fig = go.Figure()
    top = max([max(r["calibration"]["predicted"] + r["calibration"]["observed"]) for r in curves["rankers"].values()]
              + [0.01])
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dot", color="grey")))
    for name, r in curves["rankers"].items():
        c = r["calibration"]
        fig.add_trace(go.Scatter(x=c["predicted"], y=c["observed"], mode="lines+markers",
                                 name=f"{name} (ECE {c['ece']:.4f})",
                                 customdata=c["count"], hovertemplate="predicted %{x:.4f}<br>observed %{y:.4f}"
                                                                      "<br>%{customdata} rows<extra></extra>"))
    fig.update_layout(title="Calibration: does a predicted p come true p of the time?",
                      xaxis_title="mean predicted P(watch) in the bin", yaxis_title="share finished",
                      margin=dict(t=40, b=10))
    return fig


def candidate_recall_chart(curves: dict[str, Any]) -> go.Figure:
    """Held-out recall of each candidate source's top-n list, and of the blend."""
    rec = curves["candidate_recall"]
    frame = pd.DataFrame([{"source": s, "recall": v["recall"], "per-member recall": v["member_recall"]}
                          for s, v in rec["sources"].items()])
    frame = frame.melt(id_vars="source", var_name="measure", value_name="value")
    fig = px.bar(frame, x="source", y="value", color="measure", barmode="group",
                 title=f"Candidate recall@{rec['n']}: share of held-out finished titles in each source's list")
    fig.update_layout(yaxis_range=[0, 1], legend_title_text="", margin=dict(t=40, b=10))
    return fig
