"""Benchmark: do the off-policy estimates agree with the simulated A/B test? (docs/off-policy.md)

Six policies: random, popularity, logging, the default pipeline, the pipeline with the LightGBM
ranker, and the oracle. Online (2,000 members, 7 days, seed 0): the reference is `run_paired`, every
policy over all 2,000 members (an A/A test of each), so the policies meet the same members, sessions
and behaviour draws; a split test with six arms of about 333 members each is reported beside it.
Offline: `evaluate_off_policy` on the last 14 days of the log, every pipeline re-fitted on the data
before them. Writes, per estimator and metric, Kendall's tau, the relative errors and interval
coverage; per pair of policies, the estimated difference beside the paired simulated one, each with its
interval (`pairs`); and how long the estimation took.
Usage: .venv/bin/python bench/off_policy.py [--world sample | --seed N] [--users 2000] [--days 7]
       [--window-days D] [--out bench/results/off_policy_sample.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from worlds import open_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="sample", help="sample, or ignored when --seed is given")
    parser.add_argument("--seed", type=int, default=None, help="generate a world with this seed (recsys generate)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--window-days", type=float, default=None, help="default: OffPolicyConfig's")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from recsys.atomic import atomic_write_bytes
    from recsys.evaluation.off_policy import OffPolicyConfig, evaluate_off_policy
    from recsys.pipeline import Recommender, RecommenderConfig
    from recsys.simulation import (ExperimentConfig, analyze, off_policy_vs_online, pairwise_agreement,
                                   run_experiment, run_paired)

    with tempfile.TemporaryDirectory() as tmp:
        data, world, name = open_world(args.seed, tmp)
        t = time.perf_counter()
        pipeline = Recommender(RecommenderConfig(seed=0)).fit(data)
        boosting = pipeline.with_ranker("boosting")
        train_s = time.perf_counter() - t
        arms = {"random": "random", "popularity": "popularity", "logging": "logging", "pipeline": pipeline,
                "boosting": boosting, "oracle": "oracle"}
        experiment = ExperimentConfig(users=args.users, days=args.days, seed=0)
        t = time.perf_counter()
        paired = run_paired(data, world, dict(arms), experiment)
        report = analyze(paired)
        simulate_s = time.perf_counter() - t
        split = analyze(run_experiment(data, world, dict(arms), experiment))
        t = time.perf_counter()
        config = OffPolicyConfig(seed=0) if args.window_days is None else \
            OffPolicyConfig(seed=0, window_days=args.window_days)
        estimates = evaluate_off_policy(data, arms, world=world, config=config)
        estimate_s = time.perf_counter() - t
    table, agreement = off_policy_vs_online(estimates, report)
    split_table, split_agreement = off_policy_vs_online(estimates, split)
    pairs = {est: pairwise_agreement(estimates, paired, "minutes_per_session", est) for est in ("ips", "dr")}
    payload = {
        "world": name, "users": args.users, "days": args.days, "policies": list(arms),
        "window_days": config.window_days,
        "seconds": {"train": round(train_s, 1), "simulate": round(simulate_s, 1), "estimate": round(estimate_s, 1),
                    "estimate_parts": {k: round(v, 1) for k, v in estimates.seconds.items()}},
        "reference": "paired: every policy over all the members (run_paired)",
        "agreement": agreement, "table": table.to_dict("records"), "online": report.table().to_dict("records"),
        "pairs": {est: {"summary": summary, "table": t.to_dict("records")} for est, (t, summary) in pairs.items()},
        "split": {"agreement": split_agreement, "table": split_table.to_dict("records"),
                  "online": split.table().to_dict("records")},
        "off_policy": estimates.as_dict(),
    }
    text = json.dumps(payload, indent=1, default=str)
    if args.out:
        atomic_write_bytes(args.out, (text + "\n").encode())
    for label, agree in (("paired", agreement), ("split", split_agreement)):
        for est, per in agree.items():
            a = per["minutes_per_session"]
            print(f"{label:6s} {est:11s} minutes/session: tau {a['kendall_tau']:.3f}, median rel. error "
                  f"{a['median_relative_error']:.1%}, covered {a['covered']}/{a['arms']}")
    for est, (t, summary) in pairs.items():
        print(f"pairs  {est:11s} minutes/session: the simulation tells {summary['pairs the simulation tells apart']} "
              f"of {summary['pairs']} apart, {summary['of those, in the same order']} of them in the same order; the "
              f"estimate tells {summary['pairs the estimate tells apart']} apart, "
              f"{summary['pairs the estimate tells apart the wrong way']} the wrong way")
    print(f"estimating {len(arms)} policies took {estimate_s:.0f} s")


if __name__ == "__main__":
    main()
