"""Benchmark: today's default pipeline against the previous default and the oracle, online (docs/online-quality.md).

Runs the commands a user would: `recsys train` (the default, and `--preset previous`), then one
`recsys simulate` split test with the previous default as the control and the new default and the
oracle as treatments (2,000 members, 7 days, seed 0), on the sample or a world generated with a seed.
Writes each arm's online metrics, the Welch comparisons and the shares of the oracle.
Usage: .venv/bin/python bench/online_quality.py [--seed 11] [--out bench/results/online_quality_sample.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS = ("minutes_per_session", "engagement_rate")


def recsys(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "recsys.cli", *args, "--json"], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="generate a world with this seed (recsys generate)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from recsys.atomic import atomic_write_bytes

    with tempfile.TemporaryDirectory() as tmp:
        if args.seed is None:
            spec, name = "sample", "sample"
        else:
            folder = Path(tmp) / f"world_seed{args.seed}"
            recsys("generate", "--seed", str(args.seed), "--out", str(folder))
            spec, name = f"parquet:{folder}", f"seed{args.seed}"
        new, old = Path(tmp) / "default", Path(tmp) / "previous"
        started = time.perf_counter()
        fit_new = recsys("train", "--data", spec, "--out", str(new))
        fit_old = recsys("train", "--data", spec, "--preset", "previous", "--out", str(old))
        result = recsys("simulate", "--data", spec, "--control", str(old), "--treatment", str(new),
                        "--treatment", "oracle", "--users", str(args.users))
        seconds = time.perf_counter() - started
    arms = {Path(a["arm"]).name if a["arm"] != "oracle" else "oracle": a for a in result["arms"]}
    shares = {m: {arm: arms[arm][m] / arms["oracle"][m] for arm in ("default", "previous")} for m in METRICS}
    versus_previous = [c for c in result["comparisons"] if Path(c["treatment"]).name == "default"]
    payload = {"world": name, "users": args.users, "days": result["config"]["days"], "seed": result["config"]["seed"],
               "fit_seconds": {"default": fit_new["seconds"], "previous": fit_old["seconds"]},
               "arms": arms, "share_of_oracle": shares, "default_vs_previous": versus_previous,
               "seconds": round(seconds, 1)}
    for m in METRICS:
        print(f"{name} {m}: default {arms['default'][m]:.3f} ({shares[m]['default']:.1%} of the oracle), "
              f"previous {arms['previous'][m]:.3f} ({shares[m]['previous']:.1%}), oracle {arms['oracle'][m]:.3f}")
    for c in versus_previous:
        if c["metric"] in METRICS:
            print(f"  default - previous, {c['metric']}: {c['diff']:+.3f} [{c['diff_low']:+.3f}, {c['diff_high']:+.3f}]"
                  f", Welch p = {c['p_value']:.2g}")
    print(f"fit: default {fit_new['seconds']} s, previous {fit_old['seconds']} s")
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(payload, indent=1, default=str) + "\n").encode())


if __name__ == "__main__":
    main()
