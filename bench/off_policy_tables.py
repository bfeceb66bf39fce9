"""Markdown tables of an off-policy agreement result (bench/off_policy.py's JSON), as docs/off-policy.md
shows them: minutes per session per policy and estimator against the paired simulated value, the
agreement per estimator, and the pairs the estimates and the simulation tell apart.
Usage: .venv/bin/python bench/off_policy_tables.py bench/results/off_policy_sample.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ESTIMATORS = ("dm", "ips", "snips", "dr", "cascade_dr")


def tables(result: dict) -> str:
    """The three tables for one result file."""
    rows = [r for r in result["table"] if r["metric"] == "minutes_per_session"]
    online = {r["arm"]: r for r in result["online"]}
    policies = sorted({r["policy"] for r in rows}, key=lambda p: -online[p]["minutes_per_session"])
    cell = {(r["policy"], r["estimator"]): r for r in rows}
    out = ["| policy | simulated [95% CI] | " + " | ".join(ESTIMATORS) + " |",
           "|---|---|" + "---|" * len(ESTIMATORS)]
    for p in policies:
        o = online[p]
        line = [p, f"{o['minutes_per_session']:.1f} [{o['minutes_per_session low']:.1f}, "
                   f"{o['minutes_per_session high']:.1f}]"]
        for est in ESTIMATORS:
            r = cell[(p, est)]
            line.append(f"{r['estimate']:.1f} [{r['low']:.1f}, {r['high']:.1f}]" + ("" if r["covered"] else " *"))
        out.append("| " + " | ".join(line) + " |")
    out += ["", "| estimator | Kendall tau | median relative error | largest | intervals covering |", "|---|---|---|---|---|"]
    for est in ESTIMATORS:
        a = result["agreement"][est]["minutes_per_session"]
        out.append(f"| `{est}` | {a['kendall_tau']:.3f} | {a['median_relative_error']:.1%} | "
                   f"{a['max_relative_error']:.1%} | {a['covered']} of {a['arms']} |")
    out += ["", "| estimator | pairs the simulation tells apart | of those, same order | pairs the estimate tells "
            "apart | of those, the wrong way | pairs in a different order |", "|---|---|---|---|---|---|"]
    for est, pairs in result.get("pairs", {}).items():
        s = pairs["summary"]
        swapped = [f"{r['first']}/{r['second']} (simulated {r['simulated']:+.2f} [{r['simulated low']:+.2f}, "
                   f"{r['simulated high']:+.2f}], estimated {r['estimate']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}])"
                   for r in pairs["table"] if not r["same order"]]
        out.append(f"| `{est}` | {s['pairs the simulation tells apart']} of {s['pairs']} | "
                   f"{s['of those, in the same order']} | {s['pairs the estimate tells apart']} | "
                   f"{s['pairs the estimate tells apart the wrong way']} | {'; '.join(swapped) or 'none'} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    for path in args.results:
        result = json.loads(path.read_text())
        print(f"{path} ({result['world']}, window {result['window_days']:g} days, estimation "
              f"{result['seconds']['estimate']:.0f} s)\n")
        print(tables(result) + "\n")


if __name__ == "__main__":
    main()
