"""Benchmark: how far does refitting alone move a pipeline's online value? (docs/off-policy.md, "Pairs")

The default pipeline and its LightGBM twin, fitted with seeds 0, 1 and 2, each over the same members in a
paired simulated test (`run_paired`: 2,000 members, 7 days, seed 0). The spread of the twin's lead across
fitting seeds is how much of a gap between the two is a property of the configuration.
Usage: .venv/bin/python bench/refit_spread.py [--seed N] [--out bench/results/refit_spread_sample.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from worlds import open_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="generate a world with this seed (recsys generate)")
    parser.add_argument("--fits", type=int, default=3, help="fitting seeds 0 .. fits-1")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from recsys.atomic import atomic_write_bytes
    from recsys.pipeline import Recommender, RecommenderConfig
    from recsys.simulation import ExperimentConfig, paired_difference, run_paired

    with tempfile.TemporaryDirectory() as tmp:
        data, world, name = open_world(args.seed, tmp)
        fits = []
        for seed in range(args.fits):
            pipeline = Recommender(RecommenderConfig(seed=seed)).fit(data)
            result = run_paired(data, world, {"pipeline": pipeline, "boosting": pipeline.with_ranker("boosting")},
                                ExperimentConfig(users=args.users, days=args.days, seed=0))
            minutes = result.sessions.groupby("arm")["minutes"].mean()
            lead = paired_difference(result.sessions, "boosting", "pipeline")
            fits.append({"fit_seed": seed, "pipeline": float(minutes["pipeline"]),
                         "boosting": float(minutes["boosting"]), "boosting_minus_pipeline": lead})
            print(f"fit seed {seed}: pipeline {minutes['pipeline']:.2f}, boosting {minutes['boosting']:.2f}, "
                  f"boosting - pipeline {lead['estimate']:+.2f} [{lead['low']:+.2f}, {lead['high']:+.2f}] "
                  "minutes/session", flush=True)
    payload = {"world": name, "users": args.users, "days": args.days, "fits": fits}
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(payload, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
