"""Benchmark: the ranker's training table (the last 14 days) in one process against Spark (local[N]), on worlds
of several sizes; with `--windows default`, the default pipeline's ranker windows instead (three of 14 days: what
`recsys train` builds), which Spark builds in one pass and the single process one after the other.

Each engine runs in its own subprocess, from the Parquet folder to the written table: the single process loads
the dataset and builds the table; Spark reads the folder on its executors (`recsys.spark.source`), checks it and
builds the table there. Figures: seconds, rows per second per core (the single process is one Python thread of
pandas; Spark gets the local[N] cores), the Python driver's own peak resident memory, the JVM's (the driver and,
in local mode, the executors) and the sum of the Python workers' peaks. The two tables' keys and labels are
compared row for row (tests/spark checks every value).

Usage: .venv/bin/python bench/spark_training.py [--scales 1 4 16] [--master local[2]] [--worlds DIR]
         [--windows last|default] [--out bench/results/spark_training.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recsys.atomic import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, resource, sys, time
import pandas as pd
from recsys.spark.training import write_training_table
from recsys.training_table import TrainingConfig
engine, folder, out, master, windows = sys.argv[1:6]
config = TrainingConfig(sampler="hash")
t = time.perf_counter()
if engine == "local":
    from recsys.data import load_dataset
    data = load_dataset(f"parquet:{folder}")
    spark, end = None, data.end
else:
    from recsys.spark import spark_session
    from recsys.spark.source import read_source
    spark = spark_session(master)
    data = read_source(spark, folder)
    end = data.end
read = time.perf_counter() - t
if windows == "last":
    summary = write_training_table(data, out, end - pd.Timedelta(days=14), None, config, engine=engine, spark=spark,
                                   slot_features=True)
    rows, positives, table_s = summary.rows, summary.positives, summary.seconds
else:  # the default pipeline's ranker windows, as `recsys train` builds them
    from recsys.pipeline import RecommenderConfig
    u = time.perf_counter()
    if engine == "local":
        from recsys.training_table import window_tables
        tables = window_tables(data, RecommenderConfig().window_bounds(data), config, slot_features=True)
    else:
        from recsys.spark.windows import SparkWindowTables
        tables = SparkWindowTables(spark, data)(data.shell, RecommenderConfig().window_bounds(data), config,
                                                slot_features=True)
    table_s = time.perf_counter() - u
    flat = pd.concat([tb.features.rows[["user_id", "item_id", "timestamp"]].assign(label=tb.label, window=w)
                      for w, tb in enumerate(tables)], ignore_index=True)
    flat.to_parquet(out)
    rows, positives = len(flat), int((flat["label"] == 1).sum())
total = time.perf_counter() - t
jvm = workers = 0.0
if spark is not None:
    def peak(pid):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0
    def children(pid):
        try:
            kids = [int(c) for t in os.listdir(f"/proc/{pid}/task")
                    for c in open(f"/proc/{pid}/task/{t}/children").read().split()]
        except OSError:
            return []
        return kids + [g for k in kids for g in children(k)]
    pid = spark.sparkContext._gateway.proc.pid
    jvm = peak(pid)
    workers = sum(peak(k) for k in children(pid))
    spark.stop()
print(json.dumps({"rows": rows, "positives": positives, "read_s": read, "table_s": table_s,
                  "total_s": total, "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "jvm_peak_rss_mb": jvm, "workers_peak_rss_mb": workers}))
"""


def run(engine: str, folder: Path, out: Path, master: str, windows: str) -> dict:
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", CHILD, engine, str(folder), str(out), master, windows], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} training table failed on {folder} (status {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    cores = 1 if engine == "local" else (int(master[6:-1]) if master.startswith("local[") and master[6:-1].isdigit()
                                         else os.cpu_count())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"engine": engine, "cores": cores, "process_wall_s": round(wall, 2), "cpu_s": round(cpu, 1),
            **{k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()},
            "rows_per_s_per_core": round(result["rows"] / result["total_s"] / cores, 1)}


def world(scale: float, worlds: Path) -> Path:
    """The Parquet folder of the world at `scale` (the sample at 1), generated once into `worlds`."""
    if scale == 1:
        from recsys.data.loaders import sample_data_dir

        return sample_data_dir()
    folder = worlds / f"world_x{scale:g}"
    if not (folder / "events.parquet").is_file():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "recsys.cli", "generate", "--out", str(folder), "--scale", str(scale)],
                       check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        print(f"generated the x{scale:g} world in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 4, 16])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--worlds", type=Path, default=None, help="where generated worlds are kept (default: a "
                                                                   "temporary folder)")
    parser.add_argument("--windows", choices=("last", "default"), default="last",
                        help="last: the last 14 days' table; default: the default pipeline's ranker windows")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "spark_training.json")
    args = parser.parse_args()
    from recsys.spark.training import read_training_table

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        worlds = args.worlds or Path(tmp)
        for scale in args.scales:
            folder = world(scale, worlds)
            runs = [run(engine, folder, Path(tmp) / f"table-{engine}-{scale:g}", args.master, args.windows)
                    for engine in ("local", "spark")]
            local, spark = (read_training_table(Path(tmp) / f"table-{engine}-{scale:g}")
                            for engine in ("local", "spark"))
            equal = len(local) == len(spark) and list(local.columns) == list(spark.columns) and \
                local[["user_id", "item_id", "label"]].equals(spark[["user_id", "item_id", "label"]])
            ratio = runs[0]["rows_per_s_per_core"] / runs[1]["rows_per_s_per_core"]
            results.append({"scale": scale, "world": str(folder), "runs": runs, "keys_equal": bool(equal),
                            "local_over_spark_per_core": round(ratio, 2)})
            for r in runs:
                print(f"x{scale:g} {r['engine']:6s} {r['rows']:,} rows in {r['total_s']} s ({r['rows_per_s_per_core']} "
                      f"rows/s per core); driver peak {r['driver_peak_rss_mb']:.0f} MB, JVM "
                      f"{r['jvm_peak_rss_mb']:.0f} MB, Python workers {r['workers_peak_rss_mb']:.0f} MB",
                      file=sys.stderr)
            print(f"x{scale:g}: single process / Spark per core {ratio:.2f}x; keys equal: {equal}", file=sys.stderr)
    payload = {"master": args.master, "cores": os.cpu_count(), "windows": args.windows,
               "date": time.strftime("%Y-%m-%d", time.gmtime()), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
