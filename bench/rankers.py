"""Benchmark: every ranker on a world under the temporal protocol (train before a cut, score after it).

Training rows are the events before the cut (negatives downsampled 4:1, the default training
table); test rows are every labeled event of the last `--test-days` days, not downsampled, so
AUC is measured on the impression mix the ranker meets in production. Reports global AUC,
mean per-member AUC (members with both a positive and a negative in the window), fit time,
predict throughput and single-row explanation latency, plus the gradient-boosting variants
behind the LightGBM choice (HistGradientBoosting, LambdaRank, ids and high-cardinality
categoricals) and the deep ranker with direct id embeddings.

Usage: .venv/bin/python bench/rankers.py [--data sample] [--test-days 28] [--no-variants]
                                          [--out bench/results/rankers.json]
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads of
# torch and LightGBM steal the cores they wait for (5-8x slower fits measured, docs/ranking.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from recsys.data import load_dataset  # noqa: E402
from recsys.evaluation.metrics import auc_score  # noqa: E402
from recsys.features import FeatureBuilder  # noqa: E402
from recsys.ranking import BoostingRanker, DeepRanker, ForestRanker, LogisticRanker, Ranker  # noqa: E402
from recsys.atomic import atomic_write_bytes  # noqa: E402
from recsys.ranking.base import time_holdout  # noqa: E402
from recsys.ranking.encoding import TabularEncoder  # noqa: E402
from recsys.training_table import TrainingConfig, TrainingTable, build_training_table  # noqa: E402


def per_user_auc(users: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Mean AUC over members whose rows hold both classes (ties count 1/2), and how many members."""
    df = pd.DataFrame({"u": users, "s": scores, "y": labels.astype(int)})
    df["r"] = df.groupby("u")["s"].rank(method="average")
    df["rp"] = df["r"] * df["y"]
    g = df.groupby("u").agg(n=("y", "size"), pos=("y", "sum"), rp=("rp", "sum"))
    g = g[(g["pos"] > 0) & (g["pos"] < g["n"])]
    neg = g["n"] - g["pos"]
    auc = (g["rp"] - g["pos"] * (g["pos"] + 1) / 2) / (g["pos"] * neg)
    return float(auc.mean()), int(len(g))


def score(name: str, scores: np.ndarray, test: TrainingTable, fit_s: float, predict_s: float,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    users = test.features.rows["user_id"].to_numpy()
    mean_auc, n_users = per_user_auc(users, scores, test.label)
    return {"ranker": name, "auc": auc_score(scores, test.label), "auc_per_user": mean_auc, "users": n_users,
            "fit_s": fit_s, "predict_rows_per_s": len(test) / max(predict_s, 1e-9), **(extra or {})}


def run_ranker(name: str, ranker: Ranker, train: TrainingTable, test: TrainingTable) -> dict[str, Any]:
    t = time.perf_counter()
    ranker.fit(train)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    p = ranker.predict_proba(test.features)
    predict_s = time.perf_counter() - t
    latencies = []
    for start in np.linspace(0, len(test) - CANDIDATES, 40).astype(int):
        chunk = test.features.take(np.arange(start, start + CANDIDATES))
        t = time.perf_counter()
        ranker.predict_proba(chunk)
        latencies.append((time.perf_counter() - t) * 1000)
    rows = np.linspace(0, len(test) - 1, 20).astype(int)
    t = time.perf_counter()
    for r in rows:
        ranker.explain(test.features, int(r))
    explain_ms = (time.perf_counter() - t) / len(rows) * 1000
    top = ranker.feature_importance().head(5)["feature"].tolist()
    extra = {"explain_ms": explain_ms, "candidates_p50_ms": float(np.percentile(latencies, 50)),
             "candidates_p99_ms": float(np.percentile(latencies, 99)), "top_features": top, "config": ranker.get_config()}
    for attr in ("best_iteration_", "best_epoch_"):
        if hasattr(ranker, attr):
            extra[attr.rstrip("_")] = int(getattr(ranker, attr))
    return score(name, p, test, fit_s, predict_s, extra)


CANDIDATES = 300  # rows scored at once for one member's request: the latency a recommendation pays


# ------------------------------------------------------------------ gradient-boosting variants
def _boosting_inputs(train: TrainingTable, test: TrainingTable):
    enc = TabularEncoder(categorical="codes", impute=False, standardize=False, missing_indicators=False,
                         max_categories=50, exclude=("user_id", "item_id")).fit(train.features)
    cats = [k for k, c in enumerate(enc.columns) if c.role == "code"]
    fit_rows, hold = time_holdout(train.features.rows["timestamp"].to_numpy(), 0.1)
    return enc, enc.matrix(train.frame), enc.matrix(test.frame), cats, fit_rows, hold


def run_hist_gradient_boosting(train: TrainingTable, test: TrainingTable) -> dict[str, Any]:
    """scikit-learn's HistGradientBoosting on the same inputs and the same time-based stopping fold."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    enc, x, x_test, cats, fit_rows, hold = _boosting_inputs(train, test)
    t = time.perf_counter()
    model = HistGradientBoostingClassifier(
        learning_rate=0.05, max_iter=1000, max_leaf_nodes=31, min_samples_leaf=50, l2_regularization=1.0,
        categorical_features=cats or None, early_stopping=True, n_iter_no_change=50, random_state=0)
    model.fit(x[fit_rows], train.label[fit_rows], sample_weight=train.weight[fit_rows], X_val=x[hold],
              y_val=train.label[hold], sample_weight_val=train.weight[hold])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    p = model.predict_proba(x_test)[:, 1]
    return score("HistGradientBoosting (sklearn, stop on latest 10%)", p, test, fit_s, time.perf_counter() - t,
                 {"best_iteration": int(model.n_iter_)})


def run_lambdarank(train: TrainingTable, test: TrainingTable, gap_minutes: float = 30.0) -> dict[str, Any]:
    """LightGBM LambdaRank, queries = a member's rows less than `gap_minutes` apart (a session)."""
    import lightgbm as lgb

    enc, x, x_test, cats, fit_rows, hold = _boosting_inputs(train, test)
    rows = train.features.rows

    def grouped(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        users = rows["user_id"].to_numpy()[idx]
        times = rows["timestamp"].to_numpy()[idx]
        order = np.lexsort((times, users))
        u, ts = users[order], times[order]
        new = np.r_[True, (u[1:] != u[:-1]) | ((ts[1:] - ts[:-1]) > np.timedelta64(int(gap_minutes * 60), "s"))]
        return idx[order], np.bincount(np.cumsum(new))[1:]

    (tr, g_tr), (va, g_va) = grouped(fit_rows), grouped(hold)
    params = {**BoostingRanker()._params(), "objective": "lambdarank", "metric": "ndcg", "eval_at": [10]}
    t = time.perf_counter()
    d_train = lgb.Dataset(x[tr], train.label[tr], group=g_tr, categorical_feature=cats)
    d_valid = lgb.Dataset(x[va], train.label[va], group=g_va, categorical_feature=cats, reference=d_train)
    booster = lgb.train(params, d_train, 1000, valid_sets=[d_valid],
                        callbacks=[lgb.early_stopping(50, verbose=False)])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    p = booster.predict(x_test, num_iteration=booster.best_iteration)
    return score(f"LightGBM LambdaRank (queries: member sessions, {gap_minutes:g}-min gap)", p, test, fit_s,
                 time.perf_counter() - t, {"best_iteration": int(booster.best_iteration),
                                           "mean_query_rows": float(g_tr.mean())})


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument("--test-days", type=float, default=28.0)
    parser.add_argument("--no-variants", action="store_true", help="only the four shipped rankers")
    parser.add_argument("--out", type=Path, default=Path("bench/results/rankers.json"))
    args = parser.parse_args()

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    data = load_dataset(args.data)
    builder = FeatureBuilder(seed=0).fit(data)
    cut = data.end.normalize() - pd.Timedelta(days=args.test_days)
    train = build_training_table(data, None, cut, TrainingConfig(seed=0), builder)
    test = build_training_table(data, cut, None, TrainingConfig(negatives_per_positive=None), builder)
    print(f"{args.data}: train {len(train):,} rows before {cut} ({int(train.label.sum()):,} positives), "
          f"test {len(test):,} rows after it ({test.label.mean():.1%} positive); tables in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)

    jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("logistic regression", lambda: run_ranker("logistic regression", LogisticRanker(), train, test)),
        ("random forest", lambda: run_ranker("random forest", ForestRanker(), train, test)),
        ("gradient boosting (LightGBM)", lambda: run_ranker("gradient boosting (LightGBM)", BoostingRanker(),
                                                            train, test)),
        ("deep (PyTorch)", lambda: run_ranker("deep (PyTorch)", DeepRanker(), train, test)),
    ]
    if not args.no_variants:
        jobs += [
            ("LightGBM, no refit", lambda: run_ranker("LightGBM binary, stop on latest 10%, no refit",
                                                      BoostingRanker(refit=False), train, test)),
            ("HGB", lambda: run_hist_gradient_boosting(train, test)),
            ("LambdaRank", lambda: run_lambdarank(train, test)),
            ("LightGBM + ids", lambda: run_ranker("LightGBM with ids, directors, composers",
                                                  BoostingRanker(exclude=(), max_categories=None), train, test)),
            ("deep + ids", lambda: run_ranker("deep with member/title id embeddings", DeepRanker(exclude=()),
                                              train, test)),
        ]
    results = []
    for label, job in jobs:
        r = job()
        results.append(r)
        print(f"  {label}: AUC {r['auc']:.4f}, per-member {r['auc_per_user']:.4f}, fit {r['fit_s']:.1f} s",
              file=sys.stderr)

    lines = [f"| ranker | AUC | mean per-member AUC | fit (s) | predict (rows/s) | {CANDIDATES} rows p50 / p99 (ms) "
             "| explain one row (ms) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        explain = f"{r['explain_ms']:.0f}" if "explain_ms" in r else "-"
        small = f"{r['candidates_p50_ms']:.1f} / {r['candidates_p99_ms']:.1f}" if "candidates_p50_ms" in r else "-"
        lines.append(f"| {r['ranker']} | {r['auc']:.4f} | {r['auc_per_user']:.4f} | {r['fit_s']:.1f} | "
                     f"{r['predict_rows_per_s']:,.0f} | {small} | {explain} |")
    print("\n".join(lines))
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "data": args.data, "cut": str(cut), "test_days": args.test_days,
        "train_rows": len(train), "train_positives": int(train.label.sum()),
        "test_rows": len(test), "test_positive_rate": float(test.label.mean()),
        "test_members_with_both_classes": results[0]["users"],
        "machine": {"cpu_count": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg(), "python": platform.python_version(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, json.dumps(report, indent=2, default=str).encode("utf-8"))


if __name__ == "__main__":
    main()
