"""Benchmark: how well each genre-taste feature reads a member's true genre utility (docs/features.md, exposure).

The mean within-member Spearman correlation, over 300 sample members' candidate lists at 20:00 on the day after
the data ends, between each feature and the world's hidden genre utility (pipeline: popularity and EASE
candidates). Usage: .venv/bin/python bench/genre_taste.py
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from worlds import open_world

FEATURES = ("user_genre_exposure", "user_genre_finish_rate", "user_genre_match")


def main() -> None:
    from recsys.pipeline import Recommender, RecommenderConfig

    data, world, _ = open_world(None, tempfile.mkdtemp())
    model = Recommender(RecommenderConfig(sources=("popularity", "ease"))).fit(data)
    rng = np.random.default_rng(0)
    members = np.sort(rng.choice(data.users["user_id"].to_numpy(dtype=object), 300, replace=False))
    now = data.end.normalize() + pd.Timedelta(days=1, hours=20)
    ids = model.generators_.item_ids_.to_numpy(dtype=object)
    out: dict[str, list[float]] = {c: [] for c in FEATURES}
    for part in model.prepare(members, {"now": now, "device": "tv"}):
        cands, features = part.candidates, part.features
        u = world._user_index.get_indexer(pd.Index(part.member_ids[cands.member].astype(str)))
        i = world._item_index.get_indexer(pd.Index(ids[cands.item].astype(str)))
        truth = world._genre_utility[u, i]
        for j in range(len(part.member_ids)):
            rows = cands.member == j
            for name in FEATURES:
                values = features.column(name)[rows]
                if np.ptp(values) > 0:
                    out[name].append(spearmanr(values, truth[rows]).correlation)
    for name, values in out.items():
        print(f"{name}: {np.mean(values):.3f} (members: {len(values)})")


if __name__ == "__main__":
    main()
