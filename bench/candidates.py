"""Benchmark the candidate generators on the sample world with time-series CV.

For every evaluation fold: fit each source on what was known before the test window,
retrieve the top 200 titles for every member who finished (watch fraction > 0.8) at least
one title in the window, and measure recall@50, recall@200 and catalogue coverage, split by
warm members (more than `--cold-max` finished titles in training) and cold members (the
rest, including members who signed up since). The oracle ranks every title on the platform
at the start of the window by the world's true watch probability (`world.oracle_scores`).
Hyper-parameters were chosen on the tuning fold (the fold before the evaluation folds;
`--tuning` scores that fold alone). Also reports fit time per source and users/second for a
batch of 1,000 users.

    python bench/candidates.py --out docs/candidates-bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.candidates import (  # noqa: E402
    ALSGenerator, BlendGenerator, BPRGenerator, CandidateGenerator, ContentGenerator, EASEGenerator,
    ItemKNNGenerator, PopularityGenerator,
)
from recsys.data import Dataset, load_dataset  # noqa: E402
from recsys.data.loaders import sample_data_dir  # noqa: E402
from recsys.data.synthetic import load_world  # noqa: E402
from recsys.splits import Fold, TimeSeriesCV  # noqa: E402

KS = (50, 200)
SOURCES: dict[str, Callable[[], CandidateGenerator]] = {
    "popular": PopularityGenerator,
    "als": ALSGenerator,
    "bpr": BPRGenerator,
    "ease": EASEGenerator,
    "itemknn": ItemKNNGenerator,
    "content": ContentGenerator,
    "two_tower": lambda **kw: __import__("recsys.candidates.two_tower", fromlist=["x"]).TwoTowerGenerator(**kw),
}


@dataclass
class FoldData:
    """What one fold's scoring needs: the training data, test positives and the warm/cold split."""

    fold: Fold
    train: Dataset
    positives: pd.DataFrame  # user_id, item_id (test plays with watch fraction > 0.8)
    users: np.ndarray  # evaluated members
    warm: pd.Series  # bool by user_id
    n_available: int


def prepare(fold: Fold, cold_max: int) -> FoldData:
    train, test = fold.train, fold.test
    ev = test.events
    positives = ev.loc[ev["watch_fraction"] > 0.8, ["user_id", "item_id"]].drop_duplicates()
    users = pd.unique(positives["user_id"])
    tev = train.events
    finished = tev.loc[tev["watch_fraction"] > 0.8].groupby("user_id").size()
    warm = pd.Series(users, index=users).map(finished).fillna(0) > cold_max
    added = train.items["added_at"] if "added_at" in train.items else pd.Series(pd.NaT, index=train.items.index)
    n_available = int((added.isna() | (added <= fold.test_start)).sum())
    return FoldData(fold, train, positives, np.asarray(users, dtype=object), warm, n_available)


def metrics(recs: pd.DataFrame, data: FoldData) -> dict[str, float]:
    """Recall@K (mean over members of hits / positives) and coverage@K, overall, warm and cold."""
    pos_count = data.positives.groupby("user_id").size()
    out: dict[str, float] = {}
    for k in KS:
        top = recs.loc[recs["rank"] <= k, ["user_id", "item_id"]]
        hits = top.merge(data.positives, on=["user_id", "item_id"]).groupby("user_id").size()
        recall = (hits.reindex(pos_count.index).fillna(0) / pos_count).reindex(data.users)
        warm = data.warm.reindex(data.users).to_numpy()
        out[f"recall@{k}"] = float(recall.mean())
        out[f"recall@{k}_warm"] = float(recall[warm].mean()) if warm.any() else float("nan")
        out[f"recall@{k}_cold"] = float(recall[~warm].mean()) if (~warm).any() else float("nan")
        out[f"coverage@{k}"] = float(top["item_id"].nunique() / max(data.n_available, 1))
    return out


def oracle(world, data: FoldData, k: int) -> pd.DataFrame:
    """The ceiling: every title ranked by the true watch probability at the window's start, finished ones excluded."""
    tev = data.train.events
    seen = tev.loc[tev["watch_fraction"] > 0.8, ["user_id", "item_id"]].drop_duplicates()
    seen_by_user = seen.groupby("user_id")["item_id"].agg(list).to_dict()
    frames = []
    for user in data.users:
        scores = world.oracle_scores(user, data.fold.test_start)
        scores = scores.drop(seen_by_user.get(user, []), errors="ignore")
        top = scores[scores > 0].nlargest(k)
        frames.append(pd.DataFrame({"user_id": user, "item_id": top.index.to_numpy(), "score": top.to_numpy(),
                                    "rank": np.arange(1, len(top) + 1)}))
    return pd.concat(frames, ignore_index=True)


def build(names: list[str], params: dict[str, dict]) -> dict[str, CandidateGenerator]:
    return {name: SOURCES[name](**params.get(name, {})) for name in names}


def run(args: argparse.Namespace) -> dict:
    params = json.loads(args.params) if args.params else {}
    dataset = load_dataset("sample")
    world = load_world(sample_data_dir())
    folds = TimeSeriesCV(n_folds=args.folds + 1, test_days=args.test_days).folds(dataset)
    chosen = folds[:1] if args.tuning else folds[1:]
    names = [s for s in args.sources.split(",") if s]
    results: list[dict] = []
    fit_times: dict[str, list[float]] = {}
    last_models: dict[str, CandidateGenerator] = {}
    for fold in chosen:
        data = prepare(fold, args.cold_max)
        print(f"fold {fold.index}: train < {fold.train_end:%Y-%m-%d}, test {fold.test_start:%Y-%m-%d} .. "
              f"{fold.test_end:%Y-%m-%d}: {len(data.users)} members ({int(data.warm.sum())} warm, "
              f"{int((~data.warm).sum())} cold)", flush=True)
        models = build(names, params)
        for name, model in models.items():
            t0 = time.perf_counter()
            model.fit(data.train)
            fit_times.setdefault(name, []).append(time.perf_counter() - t0)
            print(f"  fit {name}: {fit_times[name][-1]:.1f}s", flush=True)
        runs = dict(models)
        if args.blend and len(models) > 1:
            blend_params = params.get("blend", {})
            runs["blend"] = BlendGenerator(generators=list(models.values()), prefit=True, **blend_params).fit(data.train)
        for name, model in runs.items():
            recs = model.recommend(data.users, n=max(KS), now=fold.test_start, users=dataset.users)
            results.append({"fold": fold.index, "source": name, **metrics(recs, data)})
        if world is not None and not args.no_oracle:
            results.append({"fold": fold.index, "source": "oracle", **metrics(oracle(world, data, max(KS)), data)})
        last_models = runs
        last_data = data
    throughput = {}
    batch = np.asarray(last_data.train.user_ids[:1000], dtype=object)
    for name, model in last_models.items():
        t0 = time.perf_counter()
        model.recommend(batch, n=max(KS), now=last_data.fold.test_start)
        throughput[name] = len(batch) / (time.perf_counter() - t0)
    table = pd.DataFrame(results).groupby("source", sort=False).mean(numeric_only=True).drop(columns="fold")
    return {
        "command": "python bench/candidates.py " + " ".join(sys.argv[1:]),
        "folds": [f.as_dict() for f in chosen],
        "cold_max": args.cold_max,
        "params": params,
        "per_fold": results,
        "mean": table.reset_index().to_dict("records"),
        "fit_seconds": {k: float(np.mean(v)) for k, v in fit_times.items()},
        "users_per_second": throughput,
    }


def markdown(report: dict) -> str:
    rows = report["mean"]
    cols = ["recall@50", "recall@50_warm", "recall@50_cold", "recall@200", "recall@200_warm", "recall@200_cold",
            "coverage@50", "coverage@200"]
    head = "| source | " + " | ".join(cols) + " | fit s | users/s |"
    lines = [head, "|" + "---|" * (len(cols) + 3)]
    for row in rows:
        fit = report["fit_seconds"].get(row["source"])
        ups = report["users_per_second"].get(row["source"])
        cells = [f"{row[c]:.3f}" for c in cols]
        lines.append(f"| {row['source']} | " + " | ".join(cells)
                     + f" | {'' if fit is None else f'{fit:.1f}'} | {'' if ups is None else f'{ups:,.0f}'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--folds", type=int, default=3, help="evaluation folds (one more, earlier, is for tuning)")
    parser.add_argument("--test-days", type=float, default=7.0)
    parser.add_argument("--cold-max", type=int, default=2, help="members with at most this many finished titles are cold")
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--params", default="", help='JSON: {"source": {"param": value}, "blend": {...}}')
    parser.add_argument("--tuning", action="store_true", help="score the tuning fold only")
    parser.add_argument("--no-blend", dest="blend", action="store_false")
    parser.add_argument("--no-oracle", action="store_true")
    args = parser.parse_args(argv)
    report = run(args)
    print(markdown(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
