"""The inspector's view of the simulated world's ground truth: a member's served list beside the oracle's."""

from __future__ import annotations

import pandas as pd

from .cache import load_cached_dataset, simulated_world

__all__ = ["beside_the_oracle"]


def beside_the_oracle(spec: str, model, user_id: str, now, device: str | None, k: int = 10
                      ) -> tuple[pd.DataFrame, dict[str, float]] | None:
    """(table, totals) of our list and the oracle's for this member now, each title with its true
    P(watch); None when the data has no simulated world. Totals weigh each slot by the world's
    position bias, so they compare the two rows as members see them (docs/online-quality.md)."""
    world = simulated_world(spec)
    if world is None:
        return None
    from ..simulation.gap import oracle_beside

    dataset = load_cached_dataset(spec)
    table = oracle_beside(model, dataset, world, str(user_id), pd.Timestamp(now), device or "tv", k)
    weights = world.examination[: len(table)] / world.examination[0]
    totals = {side: float((table[f"{side}: true P(watch)"].fillna(0.0).to_numpy() * weights).sum())
              for side in ("ours", "oracle")}
    return table, totals
