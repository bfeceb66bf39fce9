"""Benchmark: building the ranking training table on the sample world and on a world 10x larger.

Each measurement runs in a fresh subprocess so peak memory (max RSS) is the table build's own.
Usage: .venv/bin/python bench/training_table.py [--scales 1 10] [--repeats 3] [--out bench/results/training_table.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from recsys.data import load_dataset
from recsys.training_table import build_training_table
spec = sys.argv[1]
data = load_dataset(spec)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
table = build_training_table(data)
elapsed = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "rows": len(table), "events": len(data.events),
                  "users": len(data.users), "peak_rss_mb": peak / 1024, "rss_before_mb": base / 1024,
                  "features": len(table.features.feature_set)}))
"""


def measure(spec: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", CHILD, spec], check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {**runs[-1], "seconds_median": statistics.median(r["seconds"] for r in runs),
            "seconds_all": [round(r["seconds"], 2) for r in runs],
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/training_table.json"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            if scale == 1:
                spec = "sample"
            else:
                folder = Path(tmp) / f"world_x{scale:g}"
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "recsys.cli", "generate", "--out", str(folder),
                                "--scale", str(scale)], check=True, capture_output=True)
                print(f"generated the x{scale:g} world in {time.perf_counter() - t:.0f} s", file=sys.stderr)
                spec = f"parquet:{folder}"
            r = measure(spec, args.repeats)
            r["scale"] = scale
            results.append(r)
            print(f"x{scale:g}: {r['rows']:,} rows from {r['events']:,} events in {r['seconds_median']:.1f} s "
                  f"(runs {r['seconds_all']}); peak RSS {r['peak_rss_mb_max']:.0f} MB "
                  f"({r['rss_before_mb']:.0f} MB with the data loaded)", file=sys.stderr)
    base = results[0]
    lines = ["| world | members | events | rows | build time (median) | x time | peak RSS |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| x{r['scale']:g} | {r['users']:,} | {r['events']:,} | {r['rows']:,} | "
                     f"{r['seconds_median']:.1f} s | {r['seconds_median'] / base['seconds_median']:.1f} | "
                     f"{r['peak_rss_mb_max']:.0f} MB |")
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2))
    os.replace(tmp_out, args.out)


if __name__ == "__main__":
    main()
