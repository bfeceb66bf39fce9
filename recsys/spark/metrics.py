"""Offline ranking metrics over a table of lists on Spark: lists and relevant titles are grouped by member on the
cluster and each member's metrics come from `recsys.evaluation.metrics` itself (one definition of every metric),
so the means equal the single-process ones; only the per-member rows are spread."""

from __future__ import annotations

import pandas as pd

__all__ = ["METRIC_SCHEMA", "member_metrics", "list_metrics"]

#: One row per member with at least one relevant title.
METRIC_SCHEMA = ("member string, precision double, recall double, average_precision double, average_recall double, "
                 "ndcg double, hit_rate double")
_METRICS = [part.split()[0] for part in METRIC_SCHEMA.split(", ")][1:]


def _per_member(k: int):
    def compute(lists: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
        from ..evaluation import metrics as m

        if truth.empty:  # no relevant title: the member is left out, as the single-process metrics drop them
            return pd.DataFrame({c: pd.Series(dtype=object if c == "member" else float) for c in ["member", *_METRICS]})
        recs = pd.DataFrame({"user_id": lists["member"].astype(str), "item_id": lists["title"].astype(str),
                             "rank": lists["rank"].astype(int)})
        rel = pd.DataFrame({"user_id": truth["member"].astype(str), "item_id": truth["title"].astype(str)})
        if "grade" in truth:
            rel[m.GAIN] = truth["grade"].astype(float)
        values = {"precision": m.precision_by_user(recs, rel, k), "recall": m.recall_by_user(recs, rel, k),
                  "average_precision": m.average_precision_by_user(recs, rel, k),
                  "average_recall": m.average_recall_by_user(recs, rel, k), "ndcg": m.ndcg_by_user(recs, rel, k),
                  "hit_rate": m.hit_rate_by_user(recs, rel, k)}
        frame = pd.DataFrame(values)
        return frame.rename_axis("member").reset_index()[["member", *_METRICS]]
    return compute


def member_metrics(lists, truth, k: int = 10):
    """Per-member metrics@k (Spark DataFrame, lazy) of `lists` (member, rank, title) against `truth` (member,
    title[, grade]): both grouped by member and cogrouped, each group scored by recsys.evaluation.metrics."""
    truth_cols = ["member", "title"] + (["grade"] if "grade" in truth.columns else [])
    return (lists.select("member", "rank", "title").groupBy("member")
            .cogroup(truth.select(*truth_cols).groupBy("member"))
            .applyInPandas(_per_member(int(k)), METRIC_SCHEMA))


def list_metrics(lists, truth, k: int = 10) -> dict[str, float]:
    """The means over members (mAP@k, mAR@k, NDCG@k, ...), F1 from mAP and mAR, and the member count."""
    from pyspark.sql import functions as F

    from ..evaluation.metrics import f1_from_map_mar

    row = member_metrics(lists, truth, k).agg(F.count("member").alias("members"),
                                               *[F.avg(c).alias(c) for c in _METRICS]).collect()[0]
    out = {"members": int(row["members"]), **{c: float(row[c]) if row[c] is not None else float("nan")
                                              for c in _METRICS}}
    out["f1"] = f1_from_map_mar(out["average_precision"], out["average_recall"]) if out["members"] else float("nan")
    return out
