"""Benchmark: the default pipeline on worlds of 1x, 4x and 16x the default members (and so events).

For each size a fresh subprocess generates the world (`recsys generate --scale X`) and another
fits the default Recommender on it and serves it: fit time of every stage, warm single-member
`recommend` latency (p50 / p99), batch throughput, the size of the saved model per component,
and the peak resident memory (max RSS) of each subprocess, read from the kernel with
os.wait4, so every figure is that process's own. Growth exponents are log(t_16 / t_1) / log(16)
(1 = linear in members, 2 = quadratic). A plotly chart of the growth is written as a PNG.

Before each size the time it will take is predicted from the sizes measured so far (the fitted
growth exponent, at least linear); when the prediction does not fit in what is left of
--budget-s, that size is fitted with one ranker window instead of three (--reduced-windows),
and the result says so.

Usage: .venv/bin/python bench/scale.py [--scales 1 4 16] [--requests 200] [--batch 1000]
         [--budget-s 1500] [--out bench/results/scale.json] [--image docs/images/scale.png]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, resource, sys, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd
t0 = time.perf_counter()
from recsys.data import load_dataset
from recsys.pipeline import Recommender, RecommenderConfig
spec, ranker, windows, requests, batch, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
t = time.perf_counter()
data = load_dataset(spec)
load_s = time.perf_counter() - t
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
summary = data.summary()
t, c = time.perf_counter(), time.process_time()
model = Recommender(RecommenderConfig(ranker=None if ranker == "none" else ranker, seed=seed,
                                      ranker_windows=windows)).fit(data)
fit_s, fit_cpu_s = time.perf_counter() - t, time.process_time() - c
rss_fitted = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
users = model.history_.users["user_id"].to_numpy()
rng = np.random.default_rng(seed)
for u in rng.choice(users, 5):
    model.recommend([u], k=10)
times = []
cpu0 = time.process_time()
for u in rng.choice(users, requests):
    t = time.perf_counter()
    model.recommend([u], k=10)
    times.append((time.perf_counter() - t) * 1000)
single_cpu_ms = (time.process_time() - cpu0) * 1000 / max(1, requests)
chosen = rng.choice(users, min(batch, len(users)), replace=False)
model.recommend(list(chosen), k=10)  # warm-up: the first large batch pays for allocations and threads
walls, cpus = [], []
for _ in range(3):
    chosen = rng.choice(users, min(batch, len(users)), replace=False)
    t, c = time.perf_counter(), time.process_time()
    model.recommend(list(chosen), k=10)
    walls.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
batch_s, batch_cpu_s = float(np.median(walls)), float(np.median(cpus))
# the candidate stage of the same batch alone (blend of every generator), to split serving cost
now = model.history_.end + pd.Timedelta(minutes=1)
t, c = time.perf_counter(), time.process_time()
model.generators_.recommend(list(chosen), n=model.config.n_candidates, now=now)
cand_s, cand_cpu_s = time.perf_counter() - t, time.process_time() - c
table = getattr(model, "training_table_", None)
table_bytes = None
if table is not None:
    table_bytes = int(table.features.nbytes)
ev = data.events
day = ev["timestamp"].dt.floor("D")
per_day = ev.assign(day=day).groupby(["day", "user_id"])["session_id"].nunique()
span_days = (ev["timestamp"].max() - ev["timestamp"].min()).total_seconds() / 86400
sizes = {}
keep = sys.argv[7] if len(sys.argv) > 7 else ""  # where to keep the model (bench/spark_batch.py serves it)
with tempfile.TemporaryDirectory() as tmp:
    folder = model.save(Path(keep) if keep else Path(tmp) / "model")
    for p in Path(folder).rglob("*"):
        if p.is_file():
            rel = p.relative_to(folder).parts
            if rel[0] == "candidates" and len(rel) > 3 and rel[1] == "sources":
                key = "candidates/" + rel[2].split("_", 1)[-1]  # 02_als -> candidates/als
            elif rel[0] == "candidates":
                key = "candidates/blend"
            else:
                key = rel[0]
            sizes[key] = sizes.get(key, 0) + p.stat().st_size
print(json.dumps({
    "users": int(summary["users"]), "items": int(summary["items"]), "events": int(summary["events"]),
    "plays": int(summary["plays"]), "ranker": ranker, "ranker_windows": windows,
    "sources": list(model.config.sources), "load_s": load_s, "fit_s": fit_s,
    "fit_stages": {k: float(v) for k, v in model.fit_timings_.items()},
    "requests": requests, "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
    "p99_ms": float(np.percentile(times, 99)), "mean_ms": float(np.mean(times)),
    "single_cpu_ms": single_cpu_ms, "batch_users": int(len(chosen)), "batch_s": batch_s,
    "batch_users_per_s": len(chosen) / batch_s, "batch_cpu_s": batch_cpu_s, "candidates_batch_s": cand_s,
    "candidates_batch_cpu_s": cand_cpu_s, "n_candidates": model.config.n_candidates,
    "fit_cpu_s": fit_cpu_s,
    "rss_loaded_mb": rss_loaded, "rss_fitted_mb": rss_fitted, "model_bytes": sizes,
    "training_rows": int((model.training_summary_ or {}).get("rows", 0)), "training_table_bytes": table_bytes,
    "training_features": None if table is None else len(table.features.feature_set),
    "span_days": span_days, "sessions_per_active_day": float(per_day.mean()),
    "daily_active_share": float(per_day.groupby(level=0).size().mean() / summary["users"]),
    "child_wall_s": time.perf_counter() - t0,
}))
"""


def run_measured(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`, return its stdout, exit status, wall seconds and the child's own peak RSS (MB).

    os.wait4 returns the resource usage of that one child (RUSAGE_CHILDREN would be the maximum over
    every child waited for so far). The child is killed after `timeout` seconds.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    err_chunks: list[str] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    timer.cancel()
    reader.join(5)
    return {"stdout": out, "stderr": "".join(err_chunks)[-4000:], "rc": proc.returncode,
            "timed_out": killed.is_set(), "wall_s": time.perf_counter() - started,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def exponent(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y on log x (the growth exponent); None with fewer than two points."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den else None


PER_WINDOW_STAGES = ("candidates_before_windows", "training_table")


def full_stages(r: dict[str, Any], windows: int) -> dict[str, float]:
    """Fit seconds per stage as they would be with `windows` ranker windows.

    The two per-window stages (generators fitted at each window start and asked for candidates; the
    window's labeled feature rows) are sums over windows of similar cost: a size fitted with fewer
    windows is scaled up by windows / its windows. Identity for a size fitted with `windows`.
    """
    done = r.get("ranker_windows") or windows
    return {k: v * (windows / done if k in PER_WINDOW_STAGES else 1.0) for k, v in r["fit_stages"].items()}


def growth(results: list[dict[str, Any]]) -> dict[str, float | None]:
    """Growth exponent per measured quantity against the number of events, end to end (first to last size)."""
    ok = [r for r in results if r.get("ok")]
    if len(ok) < 2:
        return {}
    same = comparable(ok)
    out: dict[str, float | None] = {}
    keys = ["generate_s", "fit_s", "p50_ms", "p99_ms", "batch_ms_per_member", "peak_rss_mb", "model_total_bytes"]
    keys += [f"stage:{s}" for s in ok[0]["fit_stages"]]
    for key in keys:
        rows = ok if key == "generate_s" else same
        if len(rows) < 2:
            out[key] = None
            continue
        a, b = rows[0], rows[-1]
        ratio = b["events"] / a["events"]
        va, vb = _value(a, key), _value(b, key)
        out[key] = math.log(vb / va) / math.log(ratio) if va and vb and va > 0 and vb > 0 and ratio > 1 else None
    return out


def comparable(ok: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured sizes fitted with the first size's ranker (a size served by the blend alone is not)."""
    return [r for r in ok if r.get("ranker") == ok[0].get("ranker")]


def _value(r: dict[str, Any], key: str) -> float | None:
    if key.startswith("stage:"):
        return r["full_stages"].get(key[6:])
    if key == "fit_s":
        return r.get("fit_s_full", r.get("fit_s"))
    if key == "batch_ms_per_member":
        return 1000 * r["batch_s"] / r["batch_users"] if r.get("batch_users") else None
    if key == "model_total_bytes":
        return float(sum(r["model_bytes"].values()))
    return r.get(key)


def chart(results: list[dict[str, Any]], image: Path) -> str | None:
    """Write the growth chart (each quantity relative to the smallest world, log-log) as a PNG; the error, if any."""
    ok = [r for r in results if r.get("ok")]
    if len(ok) < 2:
        return "fewer than two sizes measured"
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as err:  # pragma: no cover
        return str(err)
    base = ok[0]
    x = [r["events"] / base["events"] for r in ok]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"Growth relative to the x{base['scale']:g} world (log-log)",
                                                        "Fit time per stage (s)"))
    series = [("fit time", "fit_s"), ("single-member p50", "p50_ms"), ("single-member p99", "p99_ms"),
              ("batch time per member", "batch_ms_per_member"), ("peak RSS", "peak_rss_mb"), ("world generation", "generate_s")]
    same = comparable(ok)
    for label, key in series:
        rows = ok if key == "generate_s" else same
        ys = [_value(r, key) for r in rows]
        if len(rows) < 2 or any(v is None for v in ys) or not ys[0]:
            continue
        fig.add_trace(go.Scatter(x=[r["events"] / base["events"] for r in rows], y=[v / ys[0] for v in ys],
                                 mode="lines+markers", name=label), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=x, mode="lines", name="linear (x events)",
                             line={"dash": "dash", "color": "grey"}), 1, 1)
    labels = [f"x{r['scale']:g}" + (" (no ranker)" if r.get("ranker") == "none" else
                                    "" if r["ranker_windows"] == base["ranker_windows"]
                                    else f" ({r['ranker_windows']} window, scaled)") for r in ok]
    for stage in base["fit_stages"]:
        fig.add_trace(go.Bar(x=labels, y=[r["full_stages"].get(stage, 0) for r in ok], name=stage), 1, 2)
    fig.update_layout(barmode="stack", width=1200, height=500, template="plotly_white",
                      legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(type="log", title_text=f"events relative to the x{base['scale']:g} world", row=1, col=1)
    fig.update_yaxes(type="log", title_text=f"relative to the x{base['scale']:g} world", row=1, col=1)
    image.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.write_image(str(image), scale=1)
    except Exception as err:  # kaleido missing or no Chromium: keep the HTML, say why
        fig.write_html(str(image.with_suffix(".html")), include_plotlyjs="cdn")
        return f"PNG export failed ({type(err).__name__}: {err}); wrote {image.with_suffix('.html')}"
    return None


def predict_seconds(done: list[dict[str, Any]], scale: float, windows: int, default_windows: int) -> float | None:
    """Generate + fit + serve seconds predicted for `scale` with `windows` ranker windows.

    Generation and the fitting process are extrapolated separately from the sizes measured so far
    (their growth exponents, at least linear); the fitting process's per-window share (measured at the
    last size) shrinks with fewer windows.
    """
    ok = comparable([r for r in done if r.get("ok")])
    if not ok:
        return None
    last = ok[-1]
    ratio = scale / last["scale"]
    scales = [r["scale"] for r in ok]
    e_gen = exponent(scales, [r["generate_s"] for r in ok]) if len(ok) > 1 else 1.0
    fit_full = [r["wall_s"] - r["fit_s"] + r.get("fit_s_full", r["fit_s"]) for r in ok]
    e_fit = exponent(scales, fit_full) if len(ok) > 1 else 1.0
    gen = last["generate_s"] * ratio ** max(1.0, e_gen or 1.0)
    fit = fit_full[-1] * ratio ** max(1.0, e_fit or 1.0)
    stages = last.get("full_stages") or last["fit_stages"]
    share = sum(v for k, v in stages.items() if k in PER_WINDOW_STAGES) / max(fit_full[-1], 1e-9)
    if windows == 0:  # no ranker: neither the windows nor the ranker's fit
        share += stages.get("ranker", 0.0) / max(fit_full[-1], 1e-9)
    return gen + fit * (1 - share + share * windows / default_windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 4, 16])
    parser.add_argument("--ranker", default="logistic")
    parser.add_argument("--ranker-windows", type=int, default=3, help="Ranker windows (the pipeline's default: 3).")
    parser.add_argument("--reduced-windows", type=int, default=1,
                        help="Windows used for a size whose predicted time does not fit the budget.")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--world-seed", type=int, default=7, help="Seed of the generated worlds (7 = the sample).")
    parser.add_argument("--budget-s", type=float, default=1500.0, help="Seconds for all sizes together.")
    parser.add_argument("--worlds", type=Path, default=None, help="Keep generated worlds here (default: a temp dir).")
    parser.add_argument("--models", type=Path, default=None, help="Keep each size's fitted model here as model_xS "
                                                                  "(bench/spark_batch.py --models serves them).")
    parser.add_argument("--out", type=Path, default=Path("bench/results/scale.json"))
    parser.add_argument("--image", type=Path, default=Path("docs/images/scale.png"))
    args = parser.parse_args()

    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
           "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    tmp = None
    worlds = args.worlds
    if worlds is None:
        tmp = tempfile.mkdtemp(prefix="recsys-scale-")
        worlds = Path(tmp)
    results: list[dict[str, Any]] = []
    try:
        for scale in args.scales:
            left = args.budget_s - (time.perf_counter() - started)
            predicted = predict_seconds(results, scale, args.ranker_windows, args.ranker_windows)
            windows = args.ranker_windows
            note = None
            ranker = args.ranker
            if predicted is not None and predicted > left:
                windows = min(args.reduced_windows, args.ranker_windows)
                reduced = predict_seconds(results, scale, windows, args.ranker_windows)
                note = (f"predicted {predicted:.0f} s with {args.ranker_windows} ranker windows but {left:.0f} s "
                        f"of the budget were left: fitted with {windows} ranker window(s) (predicted {reduced:.0f} s)")
                if reduced > left:
                    blend = predict_seconds(results, scale, 0, args.ranker_windows)
                    note = (f"predicted {predicted:.0f} s with {args.ranker_windows} ranker windows and {reduced:.0f} s "
                            f"with {windows}, but {left:.0f} s of the budget were left: fitted without a ranker "
                            f"(the candidate blend serves; predicted {blend:.0f} s), so its fit and latency are the "
                            "blend's and not comparable with the other sizes'")
                    ranker, windows, reduced = "none", args.ranker_windows, blend
                predicted = reduced
            if predicted is not None and predicted > 1.5 * left:
                results.append({"scale": scale, "ok": False, "predicted_s": predicted,
                                "error": f"skipped: predicted {predicted:.0f} s even with {windows} ranker window(s), "
                                         f"{left:.0f} s of the budget left"})
                print(f"x{scale:g}: skipped (predicted {predicted:.0f} s, {left:.0f} s left)", file=sys.stderr)
                continue
            if left < 30:
                results.append({"scale": scale, "ok": False, "error": f"skipped: {left:.0f} s of the budget left"})
                print(f"x{scale:g}: skipped ({left:.0f} s of the budget left)", file=sys.stderr)
                continue
            folder = worlds / f"world_x{scale:g}"
            gen = run_measured([sys.executable, "-m", "recsys.cli", "generate", "--out", str(folder), "--scale",
                                str(scale), "--seed", str(args.world_seed), "--json"], timeout=left, env=env)
            row: dict[str, Any] = {"scale": scale, "generate_s": gen["wall_s"], "generate_peak_rss_mb": gen["peak_rss_mb"],
                                   "predicted_s": predicted, "note": note}
            if gen["rc"] != 0:
                results.append({**row, "ok": False, "error": f"generate failed: {gen['stderr'][-800:]}"})
                print(f"x{scale:g}: generate failed", file=sys.stderr)
                continue
            print(f"x{scale:g}: generated in {gen['wall_s']:.0f} s", file=sys.stderr)
            left = args.budget_s - (time.perf_counter() - started)
            fit = run_measured([sys.executable, "-c", CHILD, f"parquet:{folder}", ranker, str(windows),
                                str(args.requests), str(args.batch), str(args.seed),
                                str(args.models / f"model_x{scale:g}") if args.models else ""],
                               timeout=max(left, 30), env=env)
            if fit["rc"] != 0 or not fit["stdout"].strip():
                why = "timed out" if fit["timed_out"] else f"exit {fit['rc']}: {fit['stderr'][-800:]}"
                results.append({**row, "ok": False, "error": why, "wall_s": fit["wall_s"],
                                "peak_rss_mb": fit["peak_rss_mb"]})
                print(f"x{scale:g}: fit failed ({why[:200]})", file=sys.stderr)
                continue
            measured = json.loads(fit["stdout"].strip().splitlines()[-1])
            row.update(measured)
            row.update({"ok": True, "wall_s": fit["wall_s"], "peak_rss_mb": fit["peak_rss_mb"]})
            row["full_stages"] = full_stages(row, args.ranker_windows)
            row["fit_s_full"] = row["fit_s"] + sum(row["full_stages"].values()) - sum(row["fit_stages"].values())
            results.append(row)
            print(f"x{scale:g}: {row['users']:,} members, {row['events']:,} events; fit {row['fit_s']:.0f} s "
                  f"({', '.join(f'{k} {v:.0f}' for k, v in row['fit_stages'].items())}); p50 {row['p50_ms']:.0f} ms, "
                  f"p99 {row['p99_ms']:.0f} ms; {row['batch_users_per_s']:.0f} members/s; peak RSS "
                  f"{row['peak_rss_mb']:.0f} MB", file=sys.stderr)
            if args.worlds is None:  # kept where asked: bench/spark_training.py --worlds reads the same worlds
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    chart_error = chart(results, args.image)
    payload = {"cpu_count": os.cpu_count(), "ranker": args.ranker, "ranker_windows": args.ranker_windows,
               "requests": args.requests, "batch": args.batch, "budget_s": args.budget_s,
               "seconds": time.perf_counter() - started, "results": results, "growth": growth(results),
               "image": str(args.image) if chart_error is None else None, "chart_error": chart_error}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(payload, indent=2))
    os.replace(tmp_out, args.out)
    print(json.dumps({k: v for k, v in payload.items() if k != "results"}, indent=2))


if __name__ == "__main__":
    main()
