"""Benchmark: where each default pipeline loses online value against the oracle (docs/online-quality.md).

Fits today's default and the previous one (`recsys.pipeline.PREVIOUS_DEFAULT`) on a world and scores each
stage against the world's truth (`recsys.simulation.gap.online_gap`: 500 members, 20:00 on the day after
the data ends, tv): candidate recall of the oracle's top 10, the ranking and re-rank lists' expected
finished titles per row, and the calibration of P(watch). Prints the markdown tables of the doc.
Usage: .venv/bin/python bench/online_gap.py [--seed 11] [--out bench/results/online_gap_sample.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from worlds import open_world


def _table(frame, columns) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c])
                                             for c in columns) + " |\n" for _, row in frame.iterrows())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="generate a world with this seed (recsys generate)")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from recsys.atomic import atomic_write_bytes
    from recsys.pipeline import PREVIOUS_DEFAULT, Recommender, RecommenderConfig
    from recsys.simulation.gap import GapConfig, online_gap

    payload: dict = {"members": args.members, "pipelines": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data, world, name = open_world(args.seed, tmp)
        payload["world"] = name
        for label, config in (("default", RecommenderConfig()), ("previous default", PREVIOUS_DEFAULT)):
            started = time.perf_counter()
            model = Recommender(config).fit(data)
            fit_s = time.perf_counter() - started
            report = online_gap(model, data, world, GapConfig(members=args.members))
            payload["pipelines"][label] = {"fit_seconds": round(fit_s, 1), **report.to_json()}
            print(f"\n## {name}: {label} (fit {fit_s:.0f} s)\n")
            print(_table(report.stages, ["list", "value", "share_of_oracle", "minutes", "minutes_share"]))
            print(_table(report.recall, ["source", "recall"]))
            print(_table(report.calibration, ["by", "group", "rows", "predicted", "true"]), flush=True)
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(payload, indent=1, default=str) + "\n").encode())


if __name__ == "__main__":
    main()
