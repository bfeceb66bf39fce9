"""Benchmark: warm single-member `recommend` latency (candidates -> rank -> re-rank) and batch throughput.

Trains the default pipeline on the sample (or loads --artifacts), warms it up, then times
`recommend([user], k=10)` for --requests random members, and `recommend` of --batch random members
--batches times after one warm-up batch (the median is reported).
Usage: .venv/bin/python bench/recommend_latency.py [--artifacts DIR] [--requests 300] [--out bench/results/latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument("--artifacts", type=Path, default=None)
    parser.add_argument("--ranker", default="logistic")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/latency.json"))
    args = parser.parse_args()

    from recsys.data import load_dataset
    from recsys.pipeline import Recommender, RecommenderConfig

    if args.artifacts is not None:
        model = Recommender.load(args.artifacts)
        fit_seconds = None
    else:
        data = load_dataset(args.data)
        t = time.perf_counter()
        model = Recommender(RecommenderConfig(ranker=args.ranker, seed=args.seed)).fit(data)
        fit_seconds = time.perf_counter() - t
    users = model.history_.users["user_id"].to_numpy()
    rng = np.random.default_rng(args.seed)
    for u in rng.choice(users, 5):  # warm-up: caches, lazy imports
        model.recommend([u], k=10)
    times = []
    for u in rng.choice(users, args.requests):
        t = time.perf_counter()
        model.recommend([u], k=10)
        times.append((time.perf_counter() - t) * 1000)
    size = min(args.batch, len(users))
    model.recommend(list(rng.choice(users, size, replace=False)), k=10)  # warm-up batch
    walls = []
    for _ in range(max(1, args.batches)):
        batch_users = rng.choice(users, size, replace=False)
        t = time.perf_counter()
        model.recommend(list(batch_users), k=10)
        walls.append(time.perf_counter() - t)
    batch_s = statistics.median(walls)
    result = {
        "ranker": model.config.ranker, "sources": list(model.config.sources), "requests": args.requests,
        "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
        "p99_ms": float(np.percentile(times, 99)), "mean_ms": statistics.mean(times),
        "batch_users": size, "batch_seconds": batch_s, "batch_users_per_second": size / batch_s,
        "batch_seconds_each": walls,
        "fit_seconds": fit_seconds, "fit_stages": model.fit_timings_, "cpu_count": os.cpu_count(),
    }
    print(f"warm single-member recommend over {args.requests} requests: p50 {result['p50_ms']:.1f} ms, "
          f"p95 {result['p95_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms", file=sys.stderr)
    print(f"batch of {size}: median {batch_s:.2f} s of {len(walls)} ({result['batch_users_per_second']:.0f} members/s)",
          file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
