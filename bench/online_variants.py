"""Benchmark: the default pipeline and what each of its choices is worth online (docs/online-quality.md).

Every variant differs from today's default in one choice (or is the previous default), all over the same
members, sessions and behaviour draws (`run_paired`: 2,000 members, 7 days, seed 0), with each one's
paired difference from the default; the default and the previous default are also estimated from the logs
(off-policy, the lead estimator, docs/off-policy.md), the way a choice is made where no simulator exists.
Usage: .venv/bin/python bench/online_variants.py [--seed 11] [--out bench/results/online_variants_sample.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from worlds import open_world

METRICS = ("minutes_per_session", "engagement_rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="generate a world with this seed (recsys generate)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from recsys.atomic import atomic_write_bytes
    from recsys.evaluation.off_policy import evaluate_off_policy
    from recsys.labels import WeightConfig
    from recsys.pipeline import PREVIOUS_DEFAULT, Recommender, RecommenderConfig
    from recsys.training_table import TrainingConfig
    from recsys.simulation import ExperimentConfig, paired_difference, run_paired

    with tempfile.TemporaryDirectory() as tmp:
        data, world, name = open_world(args.seed, tmp)
        fits: dict[str, float] = {}

        def fit(label: str, config: RecommenderConfig) -> Recommender:
            started = time.perf_counter()
            model = Recommender(config).fit(data)
            fits[label] = round(time.perf_counter() - started, 1)
            return model

        default = fit("default", RecommenderConfig())
        by_watch = copy.copy(default)
        by_watch.config = replace(default.config, objective="watch")
        arms = {
            "oracle": "oracle",
            "default": default,
            "LightGBM ranker": default.with_ranker("boosting"),
            "lists by P(watch), not minutes": by_watch,
            "ranker on candidate rows": fit("candidate rows", RecommenderConfig(training_rows="candidates")),
            "no exposure features": fit("no exposure", RecommenderConfig(
                exclude_features=("user_genre_exposure", "user_genre_finish_rate"))),
            "no holiday-season features": fit("no holiday season", RecommenderConfig(
                exclude_features=("days_to_title_holiday", "title_holiday_season"))),
            "no propensity weights": fit("no propensity weights", RecommenderConfig(
                training=TrainingConfig(weights=WeightConfig(propensity_clip=None)))),
            "previous default": fit("previous default", PREVIOUS_DEFAULT),
        }
        started = time.perf_counter()
        result = run_paired(data, world, arms, ExperimentConfig(users=args.users, days=args.days, seed=0))
        simulated_s = time.perf_counter() - started
        sessions = result.sessions
        rows = []
        for arm in arms:
            row = {"arm": arm}
            for metric in METRICS:
                num = "minutes" if metric == "minutes_per_session" else "engaged"
                row[metric] = float(sessions.loc[sessions["arm"] == arm, num].mean())
                if arm != "default":
                    row[f"{metric} minus default"] = paired_difference(sessions, arm, "default", metric)
            rows.append(row)
        oracle = rows[0]
        for row in rows:
            row["share_of_oracle"] = {m: row[m] / oracle[m] for m in METRICS}
        started = time.perf_counter()
        report = evaluate_off_policy(data, {"default": default, "previous default": arms["previous default"]},
                                     world=world)
        estimated = {p: {m: report.policies[p][report.lead][m].as_dict() for m in METRICS}
                     for p in ("default", "previous default")}
        estimated["default minus previous"] = {m: report.difference("default", "previous default", m).__dict__
                                               for m in METRICS}
        off_policy_s = time.perf_counter() - started
    for row in rows:
        print(f"{row['arm']:32s} minutes {row['minutes_per_session']:7.2f} ({row['share_of_oracle']['minutes_per_session']:.1%})"
              f"  engagement {row['engagement_rate']:.3f} ({row['share_of_oracle']['engagement_rate']:.1%})"
              + ("" if "minutes_per_session minus default" not in row else
                 "  minus default: {estimate:+.2f} [{low:+.2f}, {high:+.2f}]".format(
                     **row["minutes_per_session minus default"])))
    print("off-policy (" + report.lead + "):", json.dumps(estimated, default=str))
    payload = {"world": name, "users": args.users, "days": args.days, "fit_seconds": fits, "arms": rows,
               "simulated_seconds": round(simulated_s, 1), "off_policy": {"estimator": report.lead, **estimated},
               "off_policy_seconds": round(off_policy_s, 1)}
    if args.out:
        atomic_write_bytes(args.out, (json.dumps(payload, indent=1, default=str) + "\n").encode())


if __name__ == "__main__":
    main()
