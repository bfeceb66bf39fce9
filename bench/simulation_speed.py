"""Benchmark: how long a simulated A/B test takes, and each arm's own share (its recommend + observe calls).

Popularity against a saved model (`recsys train --out DIR`), 2,000 members over 7 days, seed 0, on the
sample world. The arms' calls are timed from outside `run_experiment`, so the script measures any
version of the package the same way (how docs/simulation.md compares the implementation before the
batch-path rewrite with the current one).
Usage: .venv/bin/python bench/simulation_speed.py MODEL_DIR [--users 2000] [--days 7] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from recsys.data import load_dataset
    from recsys.data.synthetic import load_world
    from recsys.data.loaders import sample_data_dir
    from recsys.simulation import ExperimentConfig, make_policy, run_experiment

    data, world = load_dataset("sample"), load_world(sample_data_dir())
    spent: dict[str, float] = {}

    def timed(name: str, policy):
        for method in ("recommend", "observe"):
            call = getattr(policy, method)

            def wrapper(*a, call=call, **k):
                t = time.perf_counter()
                try:
                    return call(*a, **k)
                finally:
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
            setattr(policy, method, wrapper)
        return policy

    arms = {"popularity": timed("popularity", make_policy("popularity")),
            "model": timed("model", make_policy(str(args.model)))}
    t = time.perf_counter()
    result = run_experiment(data, world, arms, ExperimentConfig(users=args.users, days=args.days, seed=args.seed))
    out = {"experiment_s": round(time.perf_counter() - t, 2), "arm_seconds": {k: round(v, 2) for k, v in spent.items()},
           "sessions": len(result.sessions), "users": args.users, "days": args.days}
    text = json.dumps(out, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
