"""Writes tests/golden/top10_sample.csv: the default pipeline's top-10 lists of 500 sample members.

Run once on the implementation before a change that must not alter results, then commit the CSV (the
current one comes from a1c05b8 with the days_since_signup fix, 75ddd61, the code before the batch-path
rewrite);
`tests/test_golden.py` trains the current code the same way and compares.
Usage: .venv/bin/python tests/golden/make_top10.py [--out tests/golden/top10_sample.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MEMBERS = 500
SEED = 0


def members(dataset) -> list[str]:
    """The 500 members the golden lists are for (a seeded draw, sorted)."""
    ids = dataset.users["user_id"].astype(str).to_numpy()
    rng = np.random.default_rng(SEED)
    return sorted(rng.choice(ids, size=MEMBERS, replace=False).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("top10_sample.csv"))
    args = parser.parse_args()

    from recsys.data import load_dataset
    from recsys.pipeline import Recommender, RecommenderConfig

    data = load_dataset("sample")
    model = Recommender(RecommenderConfig()).fit(data)
    lists = model.recommend(members(data), k=10)
    out = lists[["user_id", "rank", "item_id", "score"]]
    tmp = args.out.with_suffix(".tmp")
    out.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(args.out)
    print(f"{len(out)} rows for {out['user_id'].nunique()} members -> {args.out}")


if __name__ == "__main__":
    main()
