"""Run models through an evaluation protocol and write the report the dashboard reads.

Report layout (JSON, documented in docs/metrics.md): `dataset`, `protocol`, `k`, `folds`
(per-fold info), `models` (per model: `metrics` mean and 95% CI over (fold, member) pairs,
`per_fold` means, `curves` metric@1..max_k, `segments`, `coverage`, `auc`, `fit_seconds`,
`score_seconds`), `comparisons` (each model against the best one, paired over the same
(fold, member) pairs, with the difference, its CI, p-value and significance), and on data
with explicit ratings `ratings` (RMSE / MAE of the rating predictors in `ratings.py`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..fit_cache import shared_fits
from ..labels import LabelConfig, label_events
from ..tuning import ranker_choice_text
from .metrics import (
    auc_by_user, catalogue_coverage, global_auc, intra_list_diversity_by_user, mean_ci, metric_at_k_curve,
    novelty_by_user, paired_bootstrap, ranking_metrics,
)
from .protocol import EvalFold, Policy, segment_users
from .ratings import rating_report

__all__ = ["evaluate", "write_report", "summary_table", "ranker_choices", "REPORT_METRICS"]

REPORT_METRICS = ("ndcg", "map", "mar", "precision", "recall", "hit_rate", "mrr")
_LIBRARY_NAMES = ("ndcg", "ap", "ar", "precision", "recall", "hit_rate", "mrr")
CURVE_METRICS = ("ndcg", "recall", "precision", "map")
Progress = Callable[[str, float], None]


def evaluate(dataset: Dataset, policies: dict[str, Callable[[], Policy]], folds: list[EvalFold], *, k: int = 10,
             max_k: int = 50, protocol: dict[str, Any] | None = None, n_boot: int = 1000, seed: int = 0,
             progress: Progress | None = None) -> dict[str, Any]:
    """Fit every policy on every fold's training data, score its lists, and build the report.

    Within a fold the policies share their sources' fits and tuning (`recsys.fit_cache.shared_fits`), so a
    model's `fit_seconds` is what it added to the models before it in `policies`' order."""
    say = progress or (lambda message, fraction: None)
    per_user: dict[str, list[pd.DataFrame]] = {name: [] for name in policies}
    curves: dict[str, list[pd.DataFrame]] = {name: [] for name in policies}
    extras: dict[str, dict[str, list]] = {name: {"fit": [], "score": [], "coverage": [], "auc": [],
                                                  "auc_user": [], "ranker": []} for name in policies}
    fold_info = []
    steps = max(1, len(folds) * len(policies))
    step = 0
    genres = dataset.items.set_index("item_id")["genres"] if dataset.has("items", "genres") else None
    for fold in folds:
        users = fold.users
        segments = segment_users(fold)
        fold_info.append({"index": fold.index, **fold.info})
        all_users = dataset.users
        popularity = fold.train.plays().groupby("item_id")["user_id"].nunique()
        with shared_fits() as fits:
            for name, make in policies.items():
                say(f"fold {fold.index + 1}/{len(folds)}: {name}", step / steps)
                step += 1
                t = time.perf_counter()
                policy = make().fit(fold.train)
                fit_s = time.perf_counter() - t
                t = time.perf_counter()
                recs = policy.recommend(users, max_k, fold.now, all_users)
                score_s = time.perf_counter() - t
                recs = recs[recs["rank"] <= max_k]
                metrics = ranking_metrics(recs, fold.truth, k, _LIBRARY_NAMES, users=users, no_relevant="drop")
                metrics = metrics.rename(columns={"ap": "map", "ar": "mar"})
                metrics.index.name = "user_id"
                metrics = metrics.reset_index()
                if genres is not None and len(recs):
                    div = intra_list_diversity_by_user(recs, genres.map(list), k)
                    metrics["diversity"] = metrics["user_id"].map(div)
                if len(recs):
                    nov = novelty_by_user(recs, popularity, max(1, len(fold.train.users)), k, normalize=True)
                    metrics["novelty"] = metrics["user_id"].map(nov)
                metrics = metrics.merge(segments, on="user_id", how="left").assign(fold=fold.index)
                per_user[name].append(metrics)
                curve = pd.concat([metric_at_k_curve(recs, fold.truth, {"map": "ap"}.get(m, m),
                                                     range(1, max_k + 1), users=users).mean().rename(m)
                                   for m in CURVE_METRICS], axis=1)
                curves[name].append(curve.assign(n=len(users)))
                extras[name]["fit"].append(fit_s)
                extras[name]["score"].append(score_s)
                extras[name]["coverage"].append(catalogue_coverage(recs, fold.train.items["item_id"], k))
                if hasattr(policy, "ranker_choice"):
                    extras[name]["ranker"].append(policy.ranker_choice())
                if hasattr(policy, "score_rows"):
                    auc = _auc(policy, fold)
                    if auc is not None:
                        extras[name]["auc"].append(auc[0])
                        extras[name]["auc_user"].append(auc[1])
        fold_info[-1].update(fits_made=fits.misses, fits_reused=fits.hits)
    say("statistics", 0.98)
    report = _assemble(dataset, folds, fold_info, per_user, curves, extras, k, max_k, protocol or {}, n_boot, seed)
    ratings = rating_report(folds, n_boot=n_boot, seed=seed)
    if ratings is not None:
        report["ratings"] = ratings
    say("done", 1.0)
    return report


def _auc(policy, fold: EvalFold) -> tuple[float, float] | None:
    """Global and mean per-member AUC of P(watch) on the test window's labeled rows."""
    ev = fold.test_events
    if len(ev) == 0:
        return None
    labels = label_events(ev, LabelConfig()).to_numpy()
    rows = ev[labels >= 0]
    lab = labels[labels >= 0]
    known = rows["user_id"].isin(fold.train.users["user_id"]) & rows["item_id"].isin(fold.train.items["item_id"])
    rows, lab = rows[known.to_numpy()], lab[known.to_numpy()]
    if len(rows) == 0 or lab.min() == lab.max():
        return None
    cols = ["user_id", "item_id", "timestamp"] + (["device"] if "device" in rows.columns else [])
    scores = np.asarray(policy.score_rows(rows[cols].reset_index(drop=True)), dtype=float)
    scored = pd.DataFrame({"user_id": rows["user_id"].to_numpy(), "item_id": rows["item_id"].to_numpy(),
                           "score": scores, "_pos": np.arange(len(rows))})
    # a member may have several rows of one title: score each row, truth is per (user, item) positive
    truth = scored.loc[lab == 1, ["user_id", "item_id"]].drop_duplicates()
    scored = scored.sort_values("_pos").drop_duplicates(["user_id", "item_id"], keep="last")
    return float(global_auc(scored, truth)), float(auc_by_user(scored, truth).mean())


def _assemble(dataset, folds, fold_info, per_user, curves, extras, k, max_k, protocol, n_boot, seed) -> dict:
    models: dict[str, Any] = {}
    pooled: dict[str, pd.DataFrame] = {}
    for name, parts in per_user.items():
        frame = pd.concat(parts, ignore_index=True)
        pooled[name] = frame
        metric_cols = [c for c in REPORT_METRICS + ("diversity", "novelty") if c in frame.columns]
        metrics = {m: mean_ci(frame[m].dropna(), n_boot=n_boot, seed=seed).as_dict() for m in metric_cols}
        mp, mr = metrics["map"]["estimate"], metrics["mar"]["estimate"]
        metrics["f1"] = {"estimate": 0.0 if mp + mr == 0 else 2 * mp * mr / (mp + mr)}
        per_fold = frame.groupby("fold")[metric_cols].mean().reset_index().to_dict("records")
        segs: dict[str, Any] = {}
        for seg in ("activity", "device", "language"):
            if seg in frame.columns and frame[seg].notna().any():
                g = frame.groupby(seg)
                segs[seg] = {str(v): {"users": int(len(rows)), "ndcg": float(rows["ndcg"].mean()),
                                      "recall": float(rows["recall"].mean()), "map": float(rows["map"].mean())}
                             for v, rows in g}
        weights = np.array([c["n"].iat[0] for c in curves[name]], dtype=float)
        curve = sum(c.drop(columns="n") * w for c, w in zip(curves[name], weights)) / weights.sum()
        ex = extras[name]
        models[name] = {
            "metrics": metrics,
            "per_fold": per_fold,
            "curves": {m: [float(v) for v in curve[m].to_numpy()] for m in CURVE_METRICS},
            "segments": segs,
            "coverage": float(np.mean(ex["coverage"])),
            "auc": None if not ex["auc"] else {"global": float(np.mean(ex["auc"])),
                                               "per_user": float(np.mean(ex["auc_user"]))},
            "fit_seconds": [round(s, 3) for s in ex["fit"]],
            "score_seconds": [round(s, 3) for s in ex["score"]],
            "users": int(len(frame)),
        }
        if ex["ranker"]:  # a pipeline: the ranker it served in each fold, and how it was chosen
            models[name]["ranker"] = ex["ranker"]
    best = max(models, key=lambda n: models[n]["metrics"]["ndcg"]["estimate"])
    comparisons = []
    key = ["fold", "user_id"]
    for name in models:
        if name == best:
            continue
        for metric in ("ndcg", "map", "recall"):
            a = pooled[best].set_index(key)[metric]
            b = pooled[name].set_index(key)[metric]
            both = a.index.intersection(b.index)
            cmp = paired_bootstrap(a.loc[both].reset_index(drop=True), b.loc[both].reset_index(drop=True),
                                   n_boot=n_boot, seed=seed)
            comparisons.append({"a": best, "b": name, "metric": metric, "diff": cmp.diff, "low": cmp.low,
                                "high": cmp.high, "p_value": cmp.p_value, "significant": bool(cmp.significant())})
    return {
        "dataset": {"name": dataset.name, "users": len(dataset.users), "items": len(dataset.items),
                    "events": len(dataset.events), "feedback": dataset.feedback,
                    "fingerprint": dataset.fingerprint()},
        "protocol": protocol,
        "k": k,
        "max_k": max_k,
        "folds": fold_info,
        "best": best,
        "models": models,
        "comparisons": comparisons,
        "created": pd.Timestamp.now(tz="UTC").isoformat(),
    }


def ranker_choices(report: dict[str, Any]) -> list[str]:
    """One sentence per pipeline and fold whose ranker `ranker="auto"` chose: which, and the validation scores
    it was chosen by (the command line and the Metrics page print these)."""
    lines = []
    for name, entry in report["models"].items():
        for fold, choice in enumerate(entry.get("ranker", [])):
            how = ranker_choice_text(choice.get("chosen_by", {}))
            if how is not None:
                lines.append(f"{name}, fold {fold + 1}: ranker {choice['ranker']}, {how}")
    return lines


def write_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the report as JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=_plain) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def summary_table(report: dict[str, Any], reference: str | None = "oracle") -> pd.DataFrame:
    """One row per model: NDCG@k (with CI), mAP, mAR, F1, recall, coverage, AUC, share of the reference's NDCG."""
    k = report["k"]
    rows = []
    ref = report["models"].get(reference, {}).get("metrics", {}).get("ndcg", {}).get("estimate") if reference else None
    for name, m in report["models"].items():
        met = m["metrics"]
        nd = met["ndcg"]
        rows.append({
            "model": name,
            f"NDCG@{k}": nd["estimate"], "NDCG CI": f"[{nd['low']:.4f}, {nd['high']:.4f}]",
            f"mAP@{k}": met["map"]["estimate"], f"mAR@{k}": met["mar"]["estimate"], "F1": met["f1"]["estimate"],
            f"recall@{k}": met["recall"]["estimate"], "coverage": m["coverage"],
            "AUC": None if m["auc"] is None else m["auc"]["global"],
            "of reference": None if not ref else nd["estimate"] / ref,
            "fit s": float(np.mean(m["fit_seconds"])),
        })
    return pd.DataFrame(rows).sort_values(f"NDCG@{k}", ascending=False).reset_index(drop=True)


def attach_off_policy(report: dict[str, Any], off_policy) -> dict[str, Any]:
    """Add the off-policy section to an evaluation report: `models.<name>.off_policy.<metric>` with the
    default estimator's estimate, low, high, ess and estimator, and the whole estimation under
    `off_policy`. `off_policy` is an OffPolicyReport, or the text of why it could not run."""
    if isinstance(off_policy, str):
        report["off_policy"] = {"unavailable": off_policy}
        return report
    report["off_policy"] = off_policy.as_dict()
    for name, by in off_policy.policies.items():
        if name in report["models"]:
            report["models"][name]["off_policy"] = {m: e.as_dict() for m, e in by[off_policy.lead].items()}
    return report
