"""Benchmark: every member's batch lists in one process against Spark (local[N]), from one saved model.

Each engine runs in its own subprocess: a first batch with start-up (the model loaded; on Spark the Python
workers started and each loading the shipped model) and a second, warm one (the single process: `recommend`
of every member on the loaded model; Spark: the same batch again in the session). Figures: seconds, members per
second per core (the single process spreads a batch over every core too), the Python driver's peak resident
memory (os.wait4) and the largest child's (the JVM, its Python workers). Both tables are compared row for row.

Usage: .venv/bin/python bench/spark_batch.py --artifacts DIR [--master local[2]] [--k 10]
         [--out bench/results/spark_batch.json]
       .venv/bin/python bench/spark_batch.py --models DIR  (every DIR/model_xS that `bench/scale.py --models DIR`
         kept, each into bench/results/spark_batch_xS.json: what `make bench` runs)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
from recsys.spark import batch_local, batch_spark, spark_session
engine, artifacts, out, k, master = sys.argv[1:6]
if engine == "local":
    cold = batch_local(artifacts, out, k=int(k))
    from recsys.persistence import saved_member_ids
    from recsys.pipeline import Recommender
    model, members = Recommender.load(artifacts), saved_member_ids(artifacts)
    t = time.perf_counter()
    for start in range(0, len(members), 2048):
        model.recommend(members[start:start + 2048], k=int(k))
    warm = time.perf_counter() - t
else:
    session = spark_session(master)
    cold = batch_spark(session, artifacts, out, k=int(k))
    warm = batch_spark(session, artifacts, out + "-warm", k=int(k)).seconds
    session.stop()
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"members": cold.members, "rows": cold.rows, "seconds": cold.seconds, "warm_seconds": warm,
                  "children_max_rss_mb": children}))
"""


def run(engine: str, artifacts: Path, out: Path, k: int, master: str) -> dict:
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, engine, str(artifacts), str(out), str(k), master],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    stdout = proc.stdout.read()
    if status != 0:
        raise SystemExit(f"{engine} batch failed (status {status})")
    result = json.loads(stdout.strip().splitlines()[-1])
    cores = int(master[6:-1]) if master.startswith("local[") and master[6:-1].isdigit() else os.cpu_count()
    members = result["members"]
    return {"engine": engine, "cores": cores, "process_wall_s": round(wall, 2), "batch_s": result["seconds"],
            "warm_s": round(result["warm_seconds"], 2), "members": members, "rows": result["rows"],
            "members_per_s": round(members / result["seconds"], 1),
            "members_per_s_per_core": round(members / result["seconds"] / cores, 1),
            "warm_members_per_s_per_core": round(members / result["warm_seconds"] / cores, 1),
            "driver_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "children_peak_rss_mb": round(result["children_max_rss_mb"], 1)}


def compare(artifacts: Path, out: Path, master: str, k: int) -> dict:
    """Both engines' batch of one saved model, checked equal, written to `out`."""
    import pandas as pd

    from recsys.spark import read_lists

    with tempfile.TemporaryDirectory() as tmp:
        results = [run("local", artifacts, Path(tmp) / "local", k, master),
                   run("spark", artifacts, Path(tmp) / "spark", k, master)]
        local, spark = read_lists(Path(tmp) / "local"), read_lists(Path(tmp) / "spark")
        pd.testing.assert_frame_equal(local, spark, check_exact=False, rtol=0, atol=1e-9)
    cold = results[0]["members_per_s_per_core"] / results[1]["members_per_s_per_core"]
    warm = results[0]["warm_members_per_s_per_core"] / results[1]["warm_members_per_s_per_core"]
    payload = {"artifacts": str(artifacts), "master": master, "k": k, "cores": os.cpu_count(),
               "runs": results, "tables_equal": True, "local_over_spark_per_core": round(cold, 2),
               "local_over_spark_per_core_warm": round(warm, 2)}
    for r in results:
        print(f"{r['engine']:6s} {r['members']:,} members in {r['batch_s']} s with start-up ({r['members_per_s_per_core']}"
              f" per core), {r['warm_s']} s warm ({r['warm_members_per_s_per_core']} per core); driver peak "
              f"{r['driver_peak_rss_mb']} MB")
    print(f"single process / Spark, members per core: {payload['local_over_spark_per_core']}x with start-up, "
          f"{payload['local_over_spark_per_core_warm']}x warm; tables equal")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp_out, out)
    print(f"wrote {out}")
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=None, help="a folder written by `recsys train`")
    parser.add_argument("--models", type=Path, default=None, help="a folder of model_xS folders (bench/scale.py "
                                                                  "--models)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="with --artifacts (default "
                                                               "bench/results/spark_batch.json)")
    args = parser.parse_args()
    if (args.artifacts is None) == (args.models is None):
        parser.error("give --artifacts DIR (one model) or --models DIR (bench/scale.py's kept models)")
    if args.artifacts is not None:
        compare(args.artifacts, args.out or ROOT / "bench" / "results" / "spark_batch.json", args.master, args.k)
        return
    if args.out is not None:
        parser.error("--models writes bench/results/spark_batch_xS.json per model; --out goes with --artifacts")
    models = sorted(args.models.glob("model_x*"), key=lambda p: float(p.name[len("model_x"):]))
    if not models:
        raise SystemExit(f"no model_xS folders in {args.models}")
    for stale in (ROOT / "bench" / "results").glob("spark_batch_x*.json"):  # what this run does not measure
        stale.unlink()                                                        # must not be rendered as current
    failed = []
    for folder in models:
        try:
            compare(folder, ROOT / "bench" / "results" / f"spark_batch_{folder.name[len('model_'):]}.json",
                    args.master, args.k)
        except (SystemExit, subprocess.CalledProcessError, AssertionError) as err:
            failed.append(f"{folder.name}: {err}")
            print(f"{folder.name} failed: {err}", file=sys.stderr)
    if failed:
        raise SystemExit("; ".join(failed))


if __name__ == "__main__":
    main()
