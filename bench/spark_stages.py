"""Benchmark: where the Spark training table's time goes, stage by stage, from Spark's own event log.

One subprocess reads a Parquet world on `local[N]` (`recsys.spark.source.read_source`) and writes the last 14
days' training table (`write_training_table`, as `bench/spark_training.py` does), with Spark's event log on.
Each completed stage is then listed with what the log says of it: where in the code its job was started, wall
seconds, tasks, the executors' run time and the JVM's CPU time (the rest of the run time is the Python workers'
and waiting), shuffle bytes written and read. It answers what `bench/spark_training.py`'s totals cannot: which part of Spark's
own cost (the Arrow trips between the JVM and Python, the shuffles, the cache) to cut next.

Usage: .venv/bin/python bench/spark_stages.py --world DIR [--master local[2]] [--min-wall 0.3]
         [--out bench/results/spark_stages.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from recsys.atomic import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import pandas as pd
from recsys.spark import spark_session
from recsys.spark.source import read_source
from recsys.spark.training import write_training_table
from recsys.training_table import TrainingConfig
folder, out, master = sys.argv[1:4]
t = time.perf_counter()
spark = spark_session(master)
spark.range(1).count()
session = time.perf_counter() - t
source = read_source(spark, folder)
read = time.perf_counter() - t - session
summary = write_training_table(source, out, source.end - pd.Timedelta(days=14), None, TrainingConfig(sampler="hash"),
                               engine="spark", spark=spark, slot_features=True)
print(json.dumps({"session_s": session, "read_s": read, "table_s": summary.seconds, "rows": summary.rows,
                  "partitions": source.partitions, "app_id": spark.sparkContext.applicationId}))
spark.stop()
"""


def stages(log_dir: Path) -> list[dict]:
    """Every completed stage in the event log under `log_dir`, in order."""
    files = [f for f in log_dir.rglob("*") if f.is_file() and f.name.startswith(("events_", "local-", "app-"))]
    if not files:
        raise SystemExit(f"no Spark event log under {log_dir}")
    found = []
    for f in files:
        for line in f.open():
            event = json.loads(line)
            if event.get("Event") != "SparkListenerStageCompleted":
                continue
            info = event["Stage Info"]
            acc = {a["Name"]: a.get("Value") or 0 for a in info.get("Accumulables", [])}
            found.append({
                "stage": info["Stage ID"], "where": info["Stage Name"],
                "wall_s": round((info["Completion Time"] - info["Submission Time"]) / 1000, 2),
                "tasks": info["Number of Tasks"],
                "executor_run_s": round(int(acc.get("internal.metrics.executorRunTime", 0)) / 1000, 2),
                "jvm_cpu_s": round(int(acc.get("internal.metrics.executorCpuTime", 0)) / 1e9, 2),
                "jvm_gc_s": round(int(acc.get("internal.metrics.jvmGCTime", 0)) / 1000, 2),
                "shuffle_write_mb": round(int(acc.get("internal.metrics.shuffle.write.bytesWritten", 0)) / 1e6, 1),
                "shuffle_read_mb": round((int(acc.get("internal.metrics.shuffle.read.localBytesRead", 0))
                                          + int(acc.get("internal.metrics.shuffle.read.remoteBytesRead", 0))) / 1e6,
                                         1)})
    return sorted(found, key=lambda s: s["stage"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True, help="a Parquet world folder (recsys generate --out)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--min-wall", type=float, default=0.3, help="list stages of at least this many seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "spark_stages.json")
    args = parser.parse_args()
    if not (args.world / "events.parquet").is_file():
        raise SystemExit(f"{args.world} holds no events.parquet: make one with recsys generate --out {args.world}")
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "eventlog"
        logs.mkdir()
        env = {**os.environ, "PYSPARK_SUBMIT_ARGS": f"--conf spark.eventLog.enabled=true --conf "
               f"spark.eventLog.dir={logs.resolve().as_uri()} --conf spark.eventLog.compress=false pyspark-shell"}
        proc = subprocess.run([sys.executable, "-c", CHILD, str(args.world), str(Path(tmp) / "table"), args.master],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"the Spark training table failed on {args.world} (status {proc.returncode})")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        listed = stages(logs)
    shown = [s for s in listed if s["wall_s"] >= args.min_wall]
    for s in shown:
        print(f"{s['stage']:4d} {s['where'][:58]:58s} {s['wall_s']:6.1f} s  {s['tasks']:3d} tasks  run "
              f"{s['executor_run_s']:6.1f} s  JVM CPU {s['jvm_cpu_s']:6.1f} s  GC {s['jvm_gc_s']:5.1f} s  shuffle W "
              f"{s['shuffle_write_mb']:7.1f}"
              f" MB  R {s['shuffle_read_mb']:7.1f} MB", file=sys.stderr)
    total = {k: round(sum(s[k] for s in listed), 1) for k in ("wall_s", "executor_run_s", "jvm_cpu_s", "jvm_gc_s")}
    print(f"session {run['session_s']:.1f} s, read {run['read_s']:.1f} s, table {run['table_s']:.1f} s on "
          f"{run['partitions']} member partitions; all stages: {total['wall_s']} s wall, executors "
          f"{total['executor_run_s']} s, of it JVM CPU {total['jvm_cpu_s']} s (JVM GC {total['jvm_gc_s']} s)",
          file=sys.stderr)
    payload = {"world": str(args.world), "master": args.master, "run": run, "totals": total, "stages": listed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
