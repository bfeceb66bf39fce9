"""Run every benchmark `make bench` covers and rewrite docs/benchmarks.md (and docs/scale.md) from the results.

Sections, each a subprocess with a time budget, run one after the other on the same machine:
  quality   `recsys evaluate` on the sample world (temporal protocol, every model, the oracle as
            reference) and, with --data movielens:PATH, on that folder under two protocols, each beside
            published numbers for it: stratified (per-user random 75/25, seed 42, every held-out rating
            relevant, k = 10) and timecut (the latest 20% of all ratings after one cut in time, ratings
            of 3+ relevant, cold members and titles dropped, k = 10);
  scale     bench/scale.py on worlds of 1x, 4x and 16x the default members: fit time per stage,
            warm single-member latency, batch throughput, peak memory, growth (the 1x row is the
            speed section: the 1x world is the sample);
  off_policy bench/off_policy.py: six policies' online value estimated from the logs against a
            simulated A/B test of the six, and how long the estimation takes (docs/off-policy.md);
  spark     bench/spark_training.py: the ranker's training table in one process against Spark
            (local[2]) on worlds of 1x, 4x and 16x: rows/s per core and the driver's peak memory; the
            default pipeline's three ranker windows at 16x (`--windows default`, one member pass on Spark);
            then bench/spark_batch.py: every member's lists from the scale section's models, one
            process against local[2]: members/s per core and the driver's peak memory;
  model     bench/scale_model.py: docs/scale.md from the scale and Spark results.
The machine (CPU count and model, memory, load average at start and end and sampled during the
run), the date and the git commit go into the page with the exact command of every table.

Usage: .venv/bin/python bench/run_all.py [--quick] [--data movielens:PATH] [--budget-s 1800 (3600 with --data)]
                                         [--sections quality,off_policy,scale,spark,model] [--render-only]
--quick: tiny settings for development (a few models on one fold, worlds of 0.1x-0.4x); the page
says so at the top. --render-only: rewrite the pages from bench/results/ without measuring.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("bench/results")
DOC = Path("docs/benchmarks.md")
IMAGE = Path("docs/images/scale.png")
QUICK_MODELS = "random,popularity,ease,blend,logistic,oracle"

# Published MovieLens-100k results for the per-user random split (k = 10), and rating-prediction RMSE.
MSR_URL = "https://github.com/recommenders-team/recommenders/blob/main/README.md#algorithm-comparison"
MSR_NOTEBOOK = "https://github.com/recommenders-team/recommenders/blob/main/examples/06_benchmarks/movielens.ipynb"
MSR_ROWS = [  # algorithm, MAP, nDCG@10, Precision@10, Recall@10, RMSE, MAE (None = N/A)
    ("BiVAE (Cornac)", 0.146126, 0.475077, 0.411771, 0.219145, None, None),
    ("BPR (Cornac)", 0.132478, 0.441997, 0.388229, 0.212522, None, None),
    ("LightGCN", 0.088526, 0.419846, 0.379626, 0.144336, None, None),
    ("NCF", 0.107720, 0.396118, 0.347296, 0.180775, None, None),
    ("SAR", 0.110591, 0.382461, 0.330753, 0.176385, 1.253805, 1.048484),
    ("FastAI (embedding dot bias)", 0.025503, 0.147866, 0.130329, 0.053824, 0.943084, 0.744337),
    ("SVD (Surprise)", 0.012873, 0.095930, 0.091198, 0.032783, 0.938681, 0.742690),
    ("ALS (Spark, explicit ratings)", 0.004732, 0.044239, 0.048462, 0.017796, 0.965038, 0.753001),
]
# Published MovieLens-1M results for the same stratified 75/25 split (k = 10), from the benchmark page of an
# earlier Microsoft Recommenders release (the current one lists MovieLens-100k only).
MSR_1M_URL = ("https://github.com/recommenders-team/recommenders/blob/018153bfb2a75c0abc0935e7c284bfb171b59835/"
              "benchmarks/README.md")
MSR_1M_ROWS = [  # algorithm, MAP, nDCG@10, Precision@10, Recall@10, RMSE, MAE (None = N/A)
    ("NCF", 0.06145, 0.342406, 0.314461, 0.106448, None, None),
    ("FastAI (embedding dot bias)", 0.026113, 0.184184, 0.167881, 0.055633, 0.874465, 0.695509),
    ("SVD (Surprise)", 0.008249, 0.086251, 0.080487, 0.02107, 0.885022, 0.696763),
    ("SAR", 0.002482, 0.034275, 0.042438, 0.015325, None, None),
    ("ALS (Spark, explicit ratings)", 0.002089, 0.026097, 0.032715, 0.010242, 0.86033, 0.679312),
]
# Published MovieLens-1M results for a date split (the latest 20% of interactions to test), RePlay's comparison.
REPLAY_URL = "https://github.com/sberbank-ai-lab/RePlay/blob/main/experiments/res_1m.csv"
REPLAY_NOTEBOOK = "https://github.com/sberbank-ai-lab/RePlay/blob/main/experiments/02_models_comparison.ipynb"
REPLAY_ROWS = [  # model, HitRate@10, MAP@10, MRR@10, NDCG@10
    ("ALS (implicit)", 0.6857, 0.1717, 0.4193, 0.2654), ("LightFM", 0.6989, 0.1673, 0.4310, 0.2628),
    ("SLIM", 0.6690, 0.1715, 0.4187, 0.2614), ("item k-NN", 0.6550, 0.1664, 0.4087, 0.2562),
    ("LightFM (item features)", 0.6910, 0.1598, 0.4123, 0.2547), ("popularity", 0.6453, 0.1572, 0.3904, 0.2436),
    ("MultVAE", 0.6400, 0.1510, 0.3957, 0.2380), ("NeuMF", 0.6269, 0.1106, 0.3179, 0.1931),
    ("ADMM SLIM", 0.5909, 0.0841, 0.3036, 0.1591), ("Word2Vec", 0.5154, 0.0722, 0.2438, 0.1377),
    ("random (popularity-weighted)", 0.3819, 0.0284, 0.1416, 0.0694), ("random (uniform)", 0.1835, 0.0091, 0.0676,
                                                                      0.0256),
]
SURPRISE_URL = "https://github.com/NicolasHug/Surprise/blob/master/README.md#benchmarks"
SURPRISE_ROWS = [  # algorithm, RMSE, MAE (5-fold CV, default parameters)
    ("SVD++", 0.919, 0.721), ("k-NN Baseline", 0.931, 0.733), ("SVD", 0.934, 0.737),
    ("BaselineOnly (bias baseline)", 0.944, 0.748), ("Slope One", 0.946, 0.743),
    ("Centered k-NN", 0.951, 0.749), ("NMF", 0.963, 0.758), ("Co-Clustering", 0.963, 0.753),
    ("k-NN (KNNBasic)", 0.980, 0.774), ("Random (NormalPredictor)", 1.518, 1.219),
]


# ----------------------------------------------------------------------------------------- running
#: Temporary folders a command names, shown as these words (a reader cannot type a path that no longer exists).
PLACEHOLDERS: dict[str, str] = {}


def shown(cmd: list[str]) -> str:
    """The command as a person would type it from the repository root."""
    parts = [next((word for path, word in PLACEHOLDERS.items() if str(p) == path), str(p)) for p in cmd]
    exe = Path(parts[0])
    try:
        parts[0] = str(exe.relative_to(ROOT)) if exe.is_absolute() else parts[0]
    except ValueError:
        parts[0] = "python" if exe == Path(sys.executable) else parts[0]
    if parts[:3] == [parts[0], "-m", "recsys.cli"]:
        parts = [str(Path(parts[0]).parent / "recsys")] + parts[3:]
    return " ".join(shlex.quote(p) for p in parts)


class LoadSampler:
    """Samples the 1-minute load average every `every` seconds while the benchmarks run."""

    def __init__(self, every: float = 15.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(every)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(2)


def run_section(name: str, cmd: list[str], timeout: float, log: Path) -> dict[str, Any]:
    print(f"[bench] {name}: {shown(cmd)} (budget {timeout:.0f} s)", file=sys.stderr, flush=True)
    started = time.perf_counter()
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), "HF_HUB_OFFLINE": "1",
           "TQDM_DISABLE": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the section's own process group: it and the children it started
            rc = proc.wait()
            timed_out = True
    wall = time.perf_counter() - started
    status = "timed out" if timed_out else ("ok" if rc == 0 else f"failed (exit {rc})")
    print(f"[bench] {name}: {status} in {wall:.0f} s (log {log})", file=sys.stderr, flush=True)
    return {"name": name, "command": shown(cmd), "wall_s": wall, "rc": rc, "timed_out": timed_out,
            "budget_s": timeout, "status": status, "log": str(log)}


# ---------------------------------------------------------------------------------------- machine
def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "pandas", "scikit-learn", "lightgbm", "implicit", "torch"):
        try:
            from importlib.metadata import version
            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001 - a missing package is just not listed
            pass
    gpu = "none"
    try:
        import torch
        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001
        gpu = "unknown (torch not importable)"
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"cpu_count": os.cpu_count(), "cpu": cpu, "memory_gb": mem_gb, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions, "gpu": gpu,
            "commit": commit + (" (with uncommitted changes)" if dirty else "")}


# ------------------------------------------------------------------------------------------ render
def f4(v: Any) -> str:
    return "" if v is None else f"{v:.4f}"


def quality_rows(report: dict[str, Any], reference: str | None, precision: bool = False) -> list[str]:
    k = report["k"]
    ref = None
    if reference and reference in report["models"]:
        ref = report["models"][reference]["metrics"]["ndcg"]["estimate"]
    head = f"| model | NDCG@{k} [95% CI] |" + (f" of {reference} |" if ref else "") + \
        (f" precision@{k} |" if precision else "") + f" mAP@{k} | mAR@{k} | recall@{k} | coverage | AUC | fit s |"
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    models = sorted(report["models"].items(), key=lambda kv: -kv[1]["metrics"]["ndcg"]["estimate"])
    for name, m in models:
        met = m["metrics"]
        nd = met["ndcg"]
        auc = m.get("auc")
        fit = m.get("fit_seconds") or []
        cells = [f"`{name}`", f"{nd['estimate']:.4f} [{nd['low']:.4f}, {nd['high']:.4f}]"]
        if ref:
            cells.append(f"{nd['estimate'] / ref:.0%}")
        if precision:
            cells.append(f4(met.get("precision", {}).get("estimate")))
        cells += [f4(met["map"]["estimate"]), f4(met["mar"]["estimate"]), f4(met["recall"]["estimate"]),
                  f"{m.get('coverage', 0):.1%}", "" if not auc else f"{auc['global']:.3f}",
                  f"{sum(fit) / len(fit):.1f}" if fit else ""]
        out.append("| " + " | ".join(cells) + " |")
    from recsys.evaluation.report import ranker_choices  # the default pipeline's ranker, where it chose one

    choices = ranker_choices(report)
    return out + (["", "The `pipeline` row is the default configuration (`ranker=\"auto\"`, docs/ranking.md):", ""]
                  + [f"- {line}" for line in choices] if choices else [])


def msr_table(rows: list[tuple]) -> list[str]:
    """Microsoft Recommenders' published rows (algorithm, MAP, nDCG@10, Precision@10, Recall@10, RMSE, MAE)."""
    out = ["| algorithm | MAP | nDCG@10 | Precision@10 | Recall@10 | RMSE | MAE |", "|---|---|---|---|---|---|---|"]
    for name, *vals in rows:
        out.append(f"| {name} | " + " | ".join("N/A" if v is None else f"{v:.4f}" for v in vals) + " |")
    return out


def movielens_result(meta: dict[str, Any], run: dict[str, Any] | None, key: str, path: Path
                     ) -> tuple[list[str], dict[str, Any] | None]:
    """A MovieLens section's command and status lines, and its report (None, said in a line, when it did not finish)."""
    lines = [f"Command: `{(run or {}).get('command') or meta['commands'].get(key)}` — {section_status(run)}.", ""]
    if not path.exists() or (run is not None and run["rc"] != 0):
        return lines + ["No result: the section did not finish (see its log in `bench/results/`).", ""], None
    return lines, json.loads(path.read_text())


def data_sentence(data: str, report: dict[str, Any]) -> str:
    """What a MovieLens report ran on, as the opening of its section's protocol paragraph."""
    ds = report.get("dataset", {})
    return (f"Data `{data}`: {ds.get('users', '?'):,} members, {ds.get('items', '?'):,} titles, "
            f"{ds.get('events', '?'):,} ratings.")


def time_cut_section(meta: dict[str, Any], run: dict[str, Any] | None, data: str | None) -> list[str]:
    """MovieLens under the time-cut protocol (bench/results/eval_movielens_timecut.json) beside RePlay's table."""
    L = ["## Quality on MovieLens (time-cut protocol)", ""]
    if data:
        lines, report = movielens_result(meta, run, "quality_movielens_timecut",
                                         RESULTS / "eval_movielens_timecut.json")
        L += lines
        if report is not None:
            fold = (report.get("folds") or [{}])[0]
            L += [f"{data_sentence(data, report)} One cut in time at {fold.get('cut', '?')}, the latest 20% "
                  f"of all ratings after it ({fold.get('test_interactions', 0):,}); every model is fitted on the "
                  f"{fold.get('train_interactions', 0):,} before it and asked at the cut. Relevant: a rating of 3 "
                  f"or more after the cut, for the {fold.get('test_users', 0):,} members and the titles with a "
                  f"rating before it ({fold.get('relevant', 0):,} hits; {fold.get('dropped_cold_users', 0):,} "
                  f"members and {fold.get('dropped_cold_titles', 0):,} titles without one dropped); titles rated "
                  "before the cut are not recommended; k = 10.", ""]
            L += quality_rows(report, None, precision=True)
            L += [""]
    else:
        L += ["No MovieLens folder was given to this run (the hand-measured ML-1M runs are in `docs/movielens.md`). "
              f"With one, the run adds `{meta['commands']['quality_movielens_timecut_template']}`.", ""]
    L += ["### Published MovieLens-1M numbers for a date split", "",
          "Not measured here: quoted from their source for comparison.", "",
          f"RePlay's model comparison ({REPLAY_URL}; produced by {REPLAY_NOTEBOOK}): MovieLens 1M, ratings of 3 "
          "or more kept as positives, split by date with the latest 20% of them in test, cold members and "
          "titles dropped from test (1,139 test members), top 10, hyper-parameters tuned by Optuna on a second "
          "date split of the training part.", "",
          "| model | HitRate@10 | MAP@10 | MRR@10 | NDCG@10 |", "|---|---|---|---|---|"]
    for name, *vals in REPLAY_ROWS:
        L.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    L += ["", "Protocol differences to keep in mind when reading these beside ours:", "",
          "- Training data: RePlay's models see only the ratings of 3 or more, and its 20% is a share of those; ours "
          "see every rating (the rankers learn 4+ as positive) and the cut leaves 20% of all ratings after it, so "
          "the two cuts differ slightly (ours leaves 1,136 test members and 85,803 hits, theirs 1,139 members and "
          "86,542 test rows).",
          "- NDCG@10 is defined alike (binary gains, the ideal list truncated at min(relevant, 10), the mean over "
          "test members; RePlay's `replay/metrics/ndcg.py`). Its MAP@10 was not checked against ours, so compare "
          "NDCG@10.",
          "- Tuning: our sources are tuned on a validation split carved from the training part (`recsys.tuning`); "
          "RePlay tunes on a date split of it.", ""]
    return L


def section_status(run: dict[str, Any] | None) -> str:
    if run is None:
        return "not run in this invocation (results from an earlier run, if any, are shown)"
    return f"{run['status']} in {run['wall_s']:.0f} s (budget {run['budget_s']:.0f} s)"


def off_policy_section(meta: dict[str, Any], run: dict[str, Any] | None) -> list[str]:
    """The page's off-policy section, from bench/results/off_policy_sample.json (docs/off-policy.md)."""
    path = RESULTS / "off_policy_sample.json"
    L = ["## Estimated online value on the sample (off-policy)", ""]
    command = (run or {}).get("command") or meta["commands"].get("off_policy", "bench/off_policy.py")
    L += [f"Command: `{command}` — {section_status(run)}.", ""]
    if not path.exists():
        return L + ["No results yet.", ""]
    d = json.loads(path.read_text())
    parts = d["seconds"]["estimate_parts"]
    refit = parts.get("replay pipeline", 0.0) + parts.get("replay boosting", 0.0)
    L += [f"Six policies ({', '.join(d['policies'])}) estimated from the last {d.get('window_days', 14):g} days of "
          f"logged impressions ({d['off_policy']['window']['sessions']:,} sessions) against the simulated value of "
          f"each ({'every policy over the same ' if 'reference' in d else 'one split test of the six, '}"
          f"{d['users']:,} members, {d['days']:g} days, seed 0). Estimating all six took "
          f"**{d['seconds']['estimate']:.0f} s** (target 120 s; re-fitting and replaying the two pipelines "
          f"{refit:.0f} s); the simulation {d['seconds']['simulate']:.0f} s. Minutes per session:", "",
          "| estimator | Kendall tau | median relative error | largest | intervals covering the simulated value |",
          "|---|---|---|---|---|"]
    for est, per in d["agreement"].items():
        a = per["minutes_per_session"]
        L.append(f"| `{est}` | {a['kendall_tau']:.3f} | {a['median_relative_error']:.1%} | "
                 f"{a['max_relative_error']:.1%} | {a['covered']} of {a['arms']} |")
    L.append("")
    for est, pairs in d.get("pairs", {}).items():
        s = pairs["summary"]
        L.append(f"- `{est}`, pairs of policies: the simulation tells {s['pairs the simulation tells apart']} of "
                 f"{s['pairs']} apart, and the estimates order {s['of those, in the same order']} of those the same "
                 f"way; they tell {s['pairs the estimate tells apart']} apart, "
                 f"{s['pairs the estimate tells apart the wrong way']} of them the wrong way.")
    return L + ["", "Per policy, with intervals and the second world: `docs/off-policy.md`.", ""]


def render(meta: dict[str, Any], runs: dict[str, dict[str, Any]], data: str | None) -> str:
    quick = meta["quick"]
    m = meta["machine"]
    L: list[str] = ["# Benchmarks", ""]
    if quick:
        L += ["> **Quick run** (`bench/run_all.py --quick`): tiny settings for development (a few models on one "
              "fold; worlds of 0.1x, 0.2x and 0.4x the default members). These numbers are not the benchmark: "
              "run `make bench` for it.", ""]
    L += [
        f"Every figure on this page was measured by one run of `{meta['command']}` (what `make bench"
        + (" BENCH_ARGS=--quick" if quick else "") + "` runs) on "
        "one machine, in the order of the sections below; each section names the exact command that produced "
        "its numbers, and its raw results stay in `bench/results/`. Absolute times depend on the machine and on "
        "what else it was doing: read them beside the ratios to the smallest world, which travel better.",
        "",
        "| | |", "|---|---|",
        f"| date | {meta['started']} to {meta['finished']} (UTC) |",
        f"| commit | `{m['commit']}` |",
        f"| machine | {m['cpu_count']} CPU cores ({m['cpu'] or 'model unknown'}), "
        f"{m['memory_gb'] or 0:.0f} GB memory, GPU: {m['gpu']} |",
        f"| software | Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + " |",
        f"| load at start | `{meta['uptime_start']}` |",
        f"| load at end | `{meta['uptime_end']}` |",
        f"| load during the run | 1-minute load average sampled every 15 s: mean {meta['load_mean']:.1f}, max "
        f"{meta['load_max']:.1f} (on {m['cpu_count']} cores: above {m['cpu_count']} the benchmarks shared the "
        "CPUs with other work, and times are inflated accordingly) |",
        f"| total | {meta['total_s']:.0f} s of a {meta['budget_s']:.0f} s budget |",
        "",
    ]
    # --------------------------------------------------------------------------- quality (sample)
    L += ["## Quality on the sample world (temporal protocol)", ""]
    run = runs.get("quality_sample")
    report_path = RESULTS / "eval_sample.json"
    L += [f"Command: `{(run or {}).get('command') or meta['commands']['quality_sample']}` — "
          f"{section_status(run)}.", ""]
    if report_path.exists() and (run is None or run["rc"] == 0):
        report = json.loads(report_path.read_text())
        proto = report.get("protocol", {})
        L += [f"Time-series cross-validation: {proto.get('folds', '?')} fold(s), each testing the "
              f"{proto.get('test_days', '?'):g} days after its cut-off with every model fitted on the data before "
              "it; relevant = titles the member finished (>80%) in the window. NDCG@10 with a 95% bootstrap "
              "interval over (fold, member) pairs; \"of oracle\" is each model's NDCG@10 as a share of the oracle "
              "ranker's, which ranks every title by the world's true watch probability at the fold's cut-off. It "
              "is the reference, not a strict ceiling: it scores expected watches at the cut-off, not what was "
              "realised in the window, where what the service then showed members shaped what they watched "
              "(`docs/architecture.md`), so a learned ranker can exceed it. Evaluation took "
              f"{report.get('seconds', 0):.0f} s.", ""]
        L += quality_rows(report, "oracle" if "oracle" in report["models"] else None)
        L += [""]
    else:
        L += ["No result: the section did not finish (see its log in `bench/results/`).", ""]
    # --------------------------------------------------------------------------- quality (MovieLens)
    L += ["## Quality on MovieLens (stratified protocol)", ""]
    if data:
        lines, report = movielens_result(meta, runs.get("quality_movielens"), "quality_movielens",
                                         RESULTS / "eval_movielens.json")
        L += lines
        if report is not None:
            L += [f"{data_sentence(data, report)} One per-user random split (75% of each member's ratings "
                  "to train, 25% to test, seed 42); every held-out rating is relevant whatever its value; titles "
                  "seen in training are not recommended; k = 10.", ""]
            L += quality_rows(report, None, precision=True)
            ratings = report.get("ratings") or {}
            if ratings:
                L += ["", "Rating prediction on the same split (RMSE / MAE over the held-out ratings, 95% CI):", "",
                      "| predictor | RMSE [95% CI] | MAE | test ratings |", "|---|---|---|---|"]
                for name, r in ratings.items():
                    L.append(f"| `{name}` | {r['rmse']:.4f} [{r['rmse_ci'][0]:.4f}, {r['rmse_ci'][1]:.4f}] | "
                             f"{r['mae']:.4f} | {r['ratings']:,} |")
            L += [""]
    else:
        L += ["No MovieLens folder was given to this run, so there are no measured MovieLens numbers here (the "
              "ML-1M runs measured by hand are in `docs/movielens.md`). To add them, point the run at an unpacked "
              "MovieLens folder (ml-100k, ml-1m or ml-latest-small layout): "
              "`make bench BENCH_ARGS=\"--data movielens:PATH\"`, which runs "
              f"`{meta['commands']['quality_movielens_template']}`.", ""]
    L += [
        "### Published MovieLens numbers for the same protocol",
        "",
        "Not measured here: quoted from their sources for comparison.",
        "",
        f"Microsoft Recommenders, \"Algorithm Comparison\" ({MSR_URL}; produced by {MSR_NOTEBOOK}): MovieLens "
        "100k, a stratified 75/25 split of each user's ratings, k = 10, run on a 6-vCPU / P100 Azure VM, "
        "15 epochs.",
        "",
    ]
    L += msr_table(MSR_ROWS)
    L += [
        "",
        f"Microsoft Recommenders' earlier benchmark page ({MSR_1M_URL}): MovieLens 1M, the same stratified "
        "75/25 split, k = 10, on the same VM.",
        "",
    ]
    L += msr_table(MSR_1M_ROWS)
    L += [
        "",
        f"Surprise, \"Benchmarks\" ({SURPRISE_URL}): MovieLens 100k, rating prediction with default "
        "parameters, mean over a 5-fold cross-validation.",
        "",
        "| algorithm | RMSE | MAE |", "|---|---|---|",
    ]
    for name, rmse, mae in SURPRISE_ROWS:
        L.append(f"| {name} | {rmse:.3f} | {mae:.3f} |")
    L += [
        "",
        "Protocol differences to keep in mind when reading these beside ours:",
        "",
        "- Split: ours is the same per-user random 75/25 split (`recsys evaluate --protocol stratified "
        "--test-ratio 0.25`), but with our seed: a different random split of the same data, one split "
        "(no repeats). Surprise's RMSE table is a 5-fold cross-validation over all ratings (not per user, "
        "80/20), averaged over folds.",
        "- Relevance: both rank against every held-out rating as relevant (Microsoft Recommenders' ranking "
        "metrics take the test set as the ground truth whatever the rating), as ours does; titles rated in "
        "training are removed from the lists in both.",
        "- MAP: Microsoft Recommenders' MAP divides each user's sum of precisions at hits by all of the user's "
        "relevant items; our mAP@10 divides by min(relevant, 10) (`docs/metrics.md`), so ours is larger for "
        "the same lists. Compare NDCG@10, precision@10 and recall@10, which are defined alike.",
        "- RMSE: our `ratings` table scores a global-mean and a bias (user + item) baseline on the stratified "
        "split; Surprise's `BaselineOnly` is the comparable bias baseline (ALS-fitted biases, 5-fold CV).",
        "",
    ]
    L += time_cut_section(meta, runs.get("quality_movielens_timecut"), data)
    # --------------------------------------------------------------------------- off-policy
    L += off_policy_section(meta, runs.get("off_policy"))
    # --------------------------------------------------------------------------- speed + scale
    scale_path = RESULTS / "scale.json"
    run = runs.get("scale")
    scale = json.loads(scale_path.read_text()) if scale_path.exists() else None
    ok = [r for r in (scale or {}).get("results", []) if r.get("ok")]
    base = ok[0] if ok else None
    L += [f"## Speed (the x{base['scale']:g} world)" if base else "## Speed", ""]
    L += [f"Command: `{(run or {}).get('command') or meta['commands']['scale']}` — {section_status(run)}. "
          "Its first size is the speed benchmark. WORLDS and MODELS, where shown, are temporary folders in which "
          "it keeps each size's world and fitted model for the Spark sections (docs/scale.md).", ""]
    if base:
        stages_total = sum(base["fit_stages"].values())
        L += [
            f"The default pipeline (sources {', '.join(base['sources'])}; ranker `{base['ranker']}`, "
            f"{base['ranker_windows']} ranker windows) fitted on the x{base['scale']:g} world "
            f"({base['users']:,} members, {base['items']:,} titles, {base['events']:,} events) in a fresh process, "
            "then served from memory:",
            "",
            "| measure | value |", "|---|---|",
            f"| warm single-member `recommend(k=10)` latency, p50 | {base['p50_ms']:.1f} ms |",
            f"| warm single-member latency, p95 | {base['p95_ms']:.1f} ms |",
            f"| warm single-member latency, p99 | {base['p99_ms']:.1f} ms |",
            f"| requests timed | {base['requests']} (after 5 warm-up requests; random members) |",
            f"| batch `recommend` of {base['batch_users']:,} members | {base['batch_s']:.2f} s = "
            f"{base['batch_users_per_s']:.0f} members/s ({base['batch_users_per_s'] * 10:.0f} recommendations/s) |",
            f"| of which candidate generation (the blend alone, same members) | {base['candidates_batch_s']:.2f} s |",
            f"| fit, all stages | {base['fit_s']:.1f} s wall, {base.get('fit_cpu_s', 0):.0f} CPU-s |",
            f"| peak memory (fit and serve, max RSS) | {base['peak_rss_mb']:,.0f} MB |",
            "",
            "Fit time per stage:",
            "",
            "| stage | seconds | share |", "|---|---|---|",
        ]
        for stage, sec in base["fit_stages"].items():
            L.append(f"| {stage} | {sec:.1f} | {sec / stages_total:.0%} |" if stages_total else f"| {stage} | {sec:.1f} | |")
        L += ["", "`candidates_before_windows` fits the generators at each ranker window's start and collects "
              "the members' candidates; `training_table` labels them and computes their features; `ranker` "
              "fits the ranker; `candidates` refits the generators on all data for serving.", ""]
    else:
        L += ["No result: the scale section did not measure any size.", ""]
    sizes = ", ".join(f"{r['scale']:g}x" for r in (scale or {}).get("results", [])) or "1x, 4x and 16x"
    L += [f"## Scale: worlds of {sizes} the default members", ""]
    if scale:
        L += [f"Command: `{(run or {}).get('command') or meta['commands']['scale']}` — {section_status(run)}.", "",
              "Each size: `recsys generate --scale X` in one process, then fit and serve in another (peak memory "
              "is each process's own max RSS from `os.wait4`). Members grow with the scale; the catalogue stays "
              f"at the same titles. The \"x\" columns are ratios to the x{base['scale']:g} world." if base else "",
              ""]
        L += ["| world | members | events | generate | fit | x fit | p50 | p99 | x p50 | batch members/s | "
              "peak RSS (fit) | x RSS | peak RSS (generate) | saved model |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in scale["results"]:
            if not r.get("ok"):
                L.append(f"| x{r['scale']:g} | | | {r.get('generate_s', 0):.0f} s | not measured: "
                         f"{str(r.get('error', ''))[:160]} | | | | | | | | | |")
                continue
            full = r.get("fit_s_full", r["fit_s"])
            fit_cell = f"{r['fit_s']:.0f} s" if abs(full - r["fit_s"]) < 0.5 else (
                f"{r['fit_s']:.0f} s with {r['ranker_windows']} ranker window; {full:.0f} s estimated with "
                f"{scale.get('ranker_windows', 3)}")
            blend = r.get("ranker") == "none" and base.get("ranker") != "none"
            if blend:
                fit_cell = f"{r['fit_s']:.0f} s without a ranker (blend only)"
            xfit = "n/a" if blend else f"{full / base.get('fit_s_full', base['fit_s']):.1f}"
            xp50 = "n/a" if blend else f"{r['p50_ms'] / base['p50_ms']:.2f}"
            xrss = "n/a" if blend else f"{r['peak_rss_mb'] / base['peak_rss_mb']:.1f}"
            L.append(f"| x{r['scale']:g} | {r['users']:,} | {r['events']:,} | {r['generate_s']:.0f} s | "
                     f"{fit_cell} | {xfit} | {r['p50_ms']:.0f} ms | "
                     f"{r['p99_ms']:.0f} ms | {xp50} | {r['batch_users_per_s']:.0f} | "
                     f"{r['peak_rss_mb']:,.0f} MB | {xrss} | "
                     f"{r['generate_peak_rss_mb']:,.0f} MB | {sum(r['model_bytes'].values()) / 1e6:,.0f} MB |")
        notes = [f"x{r['scale']:g}: {r['note']}" for r in scale["results"] if r.get("note")]
        if notes:
            L += ["", "**Reduced** to fit the time budget: " + "; ".join(notes) + ". With fewer ranker windows, the "
                  "two per-window stages "
                  "(`candidates_before_windows`, `training_table`: the generators fitted at each window's start "
                  "and the window's labeled feature rows) are sums over windows of similar cost, so the estimate "
                  "with the default windows scales them by the window ratio; the per-stage table and the growth "
                  "exponents use that estimate, and the chart marks the size as scaled."]
        stages = list(base["fit_stages"]) if base else []
        if ok:
            L += ["", "Fit time per stage (seconds):", "",
                  "| world | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
            for r in ok:
                st = r.get("full_stages") or r["fit_stages"]
                mark = "" if st == r["fit_stages"] else " (scaled to the default windows)"
                L.append(f"| x{r['scale']:g}{mark} | " + " | ".join(f"{st.get(s, 0):.1f}" for s in stages) + " |")
        g = scale.get("growth") or {}
        if g:
            comp = [r for r in ok if r.get("ranker") == base.get("ranker")]
            last = comp[-1]
            L += ["", f"Growth from x{base['scale']:g} to x{last['scale']:g} ({last['events'] / base['events']:.1f}x "
                  "the events) as an exponent: log(value at the largest / value at the smallest) / log(events "
                  "ratio); 1 = linear, 0 = flat, 2 = quadratic" + (
                      f" (world generation: to x{ok[-1]['scale']:g}; sizes served without a ranker are left out "
                      "of the others)" if last is not ok[-1] else "") + ".", "",
                  "| quantity | growth exponent |", "|---|---|"]
            for key, e in g.items():
                L.append(f"| {key.replace('stage:', 'fit stage ')} | {'n/a' if e is None else f'{e:.2f}'} |")
        if scale.get("image"):
            img = Path(scale["image"])
            rel = os.path.relpath(img if img.is_absolute() else ROOT / img, ROOT / "docs")
            L += ["", f"![Growth with the world's size]({rel})", "",
                  f"The chart (`{scale['image']}`, written by the same command with plotly and kaleido): left, each "
                  "quantity relative to the smallest world on log-log axes with the linear line dashed; right, "
                  "fit time per stage."]
        elif scale.get("chart_error"):
            L += ["", f"No chart: {scale['chart_error']}."]
        L += [""]
    else:
        L += ["No result: the scale section did not run.", ""]
    # --------------------------------------------------------------------------- scale model / GPU / budget
    run = runs.get("model")
    L += ["## At the design note's scope", "",
          f"`docs/scale.md` turns the measured per-member and per-event costs above into what 150M members and "
          f"50M daily actives would take. Command: `{(run or {}).get('command') or meta['commands']['model']}` — "
          f"{section_status(run)}.", ""]
    L += ["## GPU", "",
          f"GPU on this machine: {m['gpu']}. " + (
              "No GPU machine was lent to the session that wrote this page, so there are no GPU figures: every "
              "number here is CPU-only. " if m["gpu"] == "none" else "") +
          "Device selection is automatic where it matters: the deep ranker defaults to `device=\"auto\"` "
          "(CUDA when `torch.cuda.is_available()`, else CPU; `recsys/ranking/deep.py`), and so does the "
          "two-tower candidate generator, which is part of the default pipeline (`recsys/candidates/two_tower.py`; "
          "`device=\"cpu\"` forces the CPU). The logistic ranker and the other sources run on the CPU.", ""]
    L += ["## This run's budget", "",
          "| section | command | status | seconds | budget |", "|---|---|---|---|---|"]
    for name, r in runs.items():
        L.append(f"| {name} | `{r['command']}` | {r['status']} | {r['wall_s']:.0f} | {r['budget_s']:.0f} |")
    limit = "an hour with `--data movielens:PATH`" if data else "30 minutes"
    L += ["", f"`make bench` must finish within {limit} on 2 cores: this run took {meta['total_s']:.0f} s.", ""]
    return "\n".join(L)


# -------------------------------------------------------------------------------------------- main
@contextlib.contextmanager
def removed_after(folder: Path):
    """`folder` deleted when the block ends, however it ends (the worlds and models it holds take gigabytes)."""
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Tiny settings for development.")
    parser.add_argument("--data", default=None, help="movielens:PATH for the MovieLens quality section.")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="Seconds for the whole run (default 1800, or 3600 with --data: each MovieLens protocol "
                             "gets a quarter, and ML-1M's every-model runs take 8 to 11 minutes on 2 cores).")
    parser.add_argument("--sections", default="quality,off_policy,scale,spark,model")
    parser.add_argument("--render-only", action="store_true", help="Rewrite the pages from bench/results/ only.")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args()
    if args.data and not args.data.startswith("movielens:"):
        parser.error("--data takes movielens:PATH")
    if args.budget_s is None:
        args.budget_s = 3600.0 if args.data else 1800.0
    os.chdir(ROOT)
    py = sys.executable
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    started_wall = time.perf_counter()
    started = datetime.now(timezone.utc)
    meta: dict[str, Any] = {"quick": args.quick, "budget_s": args.budget_s, "machine": machine(),
                            "started": f"{started:%Y-%m-%d %H:%M}", "uptime_start": uptime()}
    meta["command"] = ".venv/bin/python bench/run_all.py" + (" --quick" if args.quick else "") + (
        f" --data {args.data}" if args.data else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    evaluate = [py, "-m", "recsys.cli", "evaluate", "--data", "sample", "--protocol", "temporal", "--k", "10",
                "--out", str(RESULTS / "eval_sample.json"), "--json"]
    if args.quick:
        evaluate += ["--models", QUICK_MODELS, "--folds", "1"]
    ml = [py, "-m", "recsys.cli", "evaluate", "--data", args.data or "movielens:PATH", "--protocol", "stratified",
          "--test-ratio", "0.25", "--seed", "42", "--k", "10", "--out", str(RESULTS / "eval_movielens.json"), "--json"]
    ml_cut = [py, "-m", "recsys.cli", "evaluate", "--data", args.data or "movielens:PATH", "--protocol", "timecut",
              "--test-ratio", "0.2", "--relevant-rating", "3", "--k", "10", "--out",
              str(RESULTS / "eval_movielens_timecut.json"), "--json"]
    if args.quick:
        ml += ["--models", "popularity,ease,als,blend,pipeline"]
        ml_cut += ["--models", "popularity,ease,als,blend,pipeline"]
    shared = Path(tempfile.mkdtemp(prefix="recsys-bench-"))  # the scale section's worlds and fits, for Spark's runs
    models, worlds = shared / "models", shared / "worlds"
    models.mkdir()
    worlds.mkdir()
    PLACEHOLDERS.update({str(models): "MODELS", str(worlds): "WORLDS"})
    scale_cmd = [py, "bench/scale.py", "--out", str(RESULTS / "scale.json"), "--image", str(IMAGE)]
    if "spark" in sections:
        scale_cmd += ["--models", str(models), "--worlds", str(worlds)]
    scale_cmd += (["--scales", "0.1", "0.2", "0.4", "--requests", "30", "--batch", "200"] if args.quick
                  else ["--scales", "1", "4", "16"])
    model_cmd = [py, "bench/scale_model.py", "--results", str(RESULTS / "scale.json"), "--out", "docs/scale.md"]
    spark_cmd = [py, "bench/spark_training.py", "--out", str(RESULTS / "spark_training.json"), "--worlds",
                 str(worlds), "--scales"]
    spark_cmd += ["0.1", "0.2"] if args.quick else ["1", "4", "16"]
    windows_cmd = [py, "bench/spark_training.py", "--windows", "default", "--out",
                   str(RESULTS / "spark_training_windows.json"), "--worlds", str(worlds), "--scales",
                   "0.2" if args.quick else "16"]
    batch_cmd = [py, "bench/spark_batch.py", "--models", str(models)]
    off_cmd = [py, "bench/off_policy.py", "--out", str(RESULTS / "off_policy_sample.json")]
    if args.quick:
        off_cmd += ["--users", "300", "--days", "2"]
    meta["commands"] = {"quality_sample": shown(evaluate), "quality_movielens": shown(ml) if args.data else None,
                        "quality_movielens_template": shown(ml),
                        "quality_movielens_timecut": shown(ml_cut) if args.data else None,
                        "quality_movielens_timecut_template": shown(ml_cut),
                        "scale": shown(scale_cmd) + " --budget-s B", "model": shown(model_cmd),
                        "off_policy": shown(off_cmd), "spark": shown(spark_cmd), "spark_windows": shown(windows_cmd),
                        "spark_batch": shown(batch_cmd)}
    runs: dict[str, dict[str, Any]] = {}
    reserve = 60.0  # rendering and the scale model

    def left() -> float:
        return args.budget_s - (time.perf_counter() - started_wall) - reserve

    with LoadSampler() as load, removed_after(shared):
        if not args.render_only:
            if "quality" in sections:
                runs["quality_sample"] = run_section("quality_sample", evaluate, min(left(), 0.45 * args.budget_s),
                                                     RESULTS / "logs" / "quality_sample.log")
                if args.data:
                    runs["quality_movielens"] = run_section("quality_movielens", ml,
                                                            min(left(), 0.25 * args.budget_s),
                                                            RESULTS / "logs" / "quality_movielens.log")
                    runs["quality_movielens_timecut"] = run_section(
                        "quality_movielens_timecut", ml_cut, min(left(), 0.25 * args.budget_s),
                        RESULTS / "logs" / "quality_movielens_timecut.log")
            if "off_policy" in sections:
                runs["off_policy"] = run_section("off_policy", off_cmd, min(left(), 0.2 * args.budget_s),
                                                 RESULTS / "logs" / "off_policy.log")
            if "scale" in sections:
                budget = max(left() - (1100.0 if "spark" in sections else 0.0), 60.0)  # the Spark runs follow
                cmd = scale_cmd + ["--budget-s", f"{budget - 30:.0f}"]
                runs["scale"] = run_section("scale", cmd, budget, RESULTS / "logs" / "scale.log")
            if "spark" in sections:
                kept = any(models.glob("model_x*"))  # the scale section's fits, which the batch runs serve
                runs["spark"] = run_section("spark", spark_cmd, max(min(left() - (650.0 if kept else 400.0), 900.0),
                                                                    60.0), RESULTS / "logs" / "spark.log")
                runs["spark_windows"] = run_section("spark_windows", windows_cmd,
                                                    max(min(left() - (250.0 if kept else 0.0), 600.0), 60.0),
                                                    RESULTS / "logs" / "spark_windows.log")
                if kept:
                    runs["spark_batch"] = run_section("spark_batch", batch_cmd, max(min(left(), 600.0), 60.0),
                                                      RESULTS / "logs" / "spark_batch.log")
        if "model" in sections and (RESULTS / "scale.json").exists():
            runs["model"] = run_section("model", model_cmd, 120, RESULTS / "logs" / "model.log")
    meta["load_mean"] = sum(load.samples) / len(load.samples) if load.samples else os.getloadavg()[0]
    meta["load_max"] = max(load.samples) if load.samples else os.getloadavg()[0]
    meta["uptime_end"] = uptime()
    meta["finished"] = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
    meta["total_s"] = time.perf_counter() - started_wall
    if args.render_only:
        previous = RESULTS / "run_all.json"
        if previous.exists():
            old = json.loads(previous.read_text())
            meta = {**old["meta"], "commands": meta["commands"]}
            runs = old.get("runs", {})
            args.data = args.data or old.get("data")  # the run's MovieLens folder, unless another is named
    else:
        (RESULTS / "run_all.json").write_text(json.dumps({"meta": meta, "runs": runs, "data": args.data}, indent=2))
    text = render(meta, runs, args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, args.out)
    print(f"[bench] wrote {args.out} in {meta['total_s']:.0f} s", file=sys.stderr)
    failed = [r["name"] for r in runs.values() if r["rc"] != 0]
    if failed:
        print(f"[bench] sections that did not finish: {', '.join(failed)}", file=sys.stderr)


if __name__ == "__main__":
    main()
