"""Ranking training tables: labeled, downsampled, weighted point-in-time feature rows.

Three kinds of rows, one function each:
- `build_training_table`: a window's logged impressions and plays (P(watch | shown));
- `candidate_table`: the blend's candidates for every member active in a window, at its start,
  labeled by what the member then did (the rows the ranker will rank when serving);
- `holdout_table`: candidates of sources fitted without a random part of each member's
  interactions, labeled by whether they are in that part (the per-user random protocol).
`with_source_scores` adds every candidate source's score and rank of each row's title, and
`stack_tables` joins windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data.dataset import Dataset, Timestamp
from .data.errors import DataError
from .candidates.base import member_chunk
from .features import Block, FeatureBuilder, FeatureTable, History
from .features.slot import SlotFeatures
from .features.source_scores import SourceScores
from .labels import (POSITIVE, DownsampleResult, LabelConfig, WeightConfig, downsample_negatives, duration_weights,
                     label_counts, label_events, propensity_weights)

__all__ = ["TrainingConfig", "TrainingTable", "build_training_table", "window_tables", "candidate_table",
           "holdout_table", "with_candidate_negatives", "with_source_scores", "stack_tables", "window_balance"]


@dataclass(frozen=True)
class TrainingConfig:
    """How events become training rows.

    negatives_per_positive: downsampling target (None keeps every negative).
    downsample_by: "user_id" balances each member separately; None downsamples globally.
    reweight_negatives: give kept negatives weight n_neg / n_kept so probabilities stay calibrated.
    sampler: "hash" (default: each row's fate from a hash of the row and the seed, the same on any partition,
        so one process and Spark keep the same rows) or "random" (one seeded draw over the table);
        `labels.downsample_negatives`.
    """

    labels: LabelConfig = field(default_factory=LabelConfig)
    weights: WeightConfig = field(default_factory=WeightConfig)
    negatives_per_positive: float | None = 4.0
    downsample_by: str | None = "user_id"
    reweight_negatives: bool = False
    seed: int = 0
    sampler: str = "hash"


@dataclass
class TrainingTable:
    """Labeled, weighted feature rows; `balance` tells what downsampling kept."""

    features: FeatureTable
    label: np.ndarray
    weight: np.ndarray
    balance: dict[str, Any]
    label_counts: dict[str, int]
    window: tuple[pd.Timestamp | None, pd.Timestamp | None]

    def __len__(self) -> int:
        return len(self.label)

    @property
    def frame(self) -> pd.DataFrame:
        return self.features.frame

    def take(self, index) -> "TrainingTable":
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return TrainingTable(self.features.take(index), self.label[index], self.weight[index], self.balance,
                             self.label_counts, self.window)

    def in_row_order(self) -> "TrainingTable":
        """These rows in one canonical order (moment, member, title, device, label, weight, slot), whichever
        engine or partitioning built them: what a fit reads never depends on how the rows arrived. Rows equal
        in every key are equal in every feature, so their order among themselves cannot matter."""
        keys = self.features.rows.copy()
        keys["label"], keys["weight"] = self.label, self.weight
        for name in ("shown_slot", "plays_above"):
            if name in self.features:
                keys[name] = self.features.column(name)
        if "device" in keys.columns:
            keys["device"] = keys["device"].astype(object).where(keys["device"].notna(), "")
        order = ["timestamp"] + [c for c in keys.columns if c != "timestamp"]
        keys["user_id"], keys["item_id"] = keys["user_id"].astype(str), keys["item_id"].astype(str)
        return self.take(keys.sort_values(order, kind="stable").index.to_numpy())


def build_training_table(
    dataset: Dataset,
    start: Timestamp | None = None,
    end: Timestamp | None = None,
    config: TrainingConfig | None = None,
    builder: FeatureBuilder | None = None,
    history: History | None = None,
    slot_features: bool = False,
) -> TrainingTable:
    """Events in [start, end) of `dataset` as a ranking training table.

    Each row's features use only events strictly before that row's time (the builder enforces
    it), so rows late in the window see the window's earlier events, as production would.
    `builder` defaults to a `FeatureBuilder` fitted on `dataset`; `history` to its index of `dataset`.
    `slot_features` adds each impression's slot and the plays above it (`features.slot`), from the
    whole logged row (before negatives are downsampled). Each row weighs its duration weight times its
    inverse-propensity weight (`labels.propensity_weights`; 1 without a logged propensity).
    """
    config = config or TrainingConfig()
    if slot_features and not (dataset.has("events", "position") and dataset.has("events", "session_id")):
        raise DataError("slot features need the logged rows' position and session_id", file=dataset.name,
                        column="position")
    window = dataset.between(start, end).events
    if len(window) == 0:
        raise DataError(no_events(start, end), file=dataset.name, column="timestamp")
    labels = label_events(window, config.labels)
    counts = label_counts(labels)
    frame = window.assign(label=labels.to_numpy())
    if counts["positive"] == 0:
        raise DataError(no_positives(start, end), file=dataset.name, column="label")
    if config.negatives_per_positive is not None:
        kept = downsample_negatives(frame, config.negatives_per_positive, config.seed, by=config.downsample_by,
                                    reweight=config.reweight_negatives, sampler=config.sampler).frame
    else:
        kept = frame[frame["label"] >= 0]
    balance = window_balance(counts, int((kept["label"] == 0).sum()), config)
    weight = duration_weights(kept, dataset.items, config.weights).to_numpy(dtype=float)
    weight = weight * propensity_weights(kept, config.weights).to_numpy(dtype=float)
    if "weight" in kept.columns:
        weight = weight * kept["weight"].to_numpy(dtype=float)
    builder = builder if builder is not None else FeatureBuilder(seed=config.seed).fit(dataset)
    row_cols = ["user_id", "item_id", "timestamp"] + (["device"] if "device" in kept.columns else [])
    features = builder.transform(kept[row_cols], history if history is not None else builder.index(dataset))
    if slot_features:
        slot = SlotFeatures()
        block = slot.from_events(frame).take(frame.index.get_indexer(kept.index))
        features = features.with_features(block, slot.features_)
    return TrainingTable(
        features=features,
        label=kept["label"].to_numpy(dtype=np.int8),
        weight=weight,
        balance=balance,
        label_counts=counts,
        window=(None if start is None else pd.Timestamp(start), None if end is None else pd.Timestamp(end)),
    )


def no_events(start: Timestamp | None, end: Timestamp | None) -> str:
    """The message of a window without events (either engine's)."""
    return f"no events between {start} and {end}"


def no_positives(start: Timestamp | None, end: Timestamp | None) -> str:
    """The message of a window without a positive event (either engine's)."""
    return f"the window from {start} to {end} has no positive events to learn from"


def window_tables(dataset: Dataset, windows: list[tuple[Timestamp | None, Timestamp | None]],
                  config: TrainingConfig | None = None, builder: FeatureBuilder | None = None,
                  history: History | None = None, slot_features: bool = False) -> list[TrainingTable]:
    """`build_training_table` of each window [start, end) in `windows`, in order: the pipeline's ranker windows in
    this process (`recsys.spark.SparkWindowTables` builds the same tables on Spark, every window in one pass).
    Every window is checked for events before any is built, as Spark checks them."""
    if not windows:
        raise ValueError("no windows to build training tables for")
    for start, end in windows:
        if len(dataset.between(start, end).events) == 0:
            raise DataError(no_events(start, end), file=dataset.name, column="timestamp")
    builder = builder if builder is not None else FeatureBuilder(seed=(config or TrainingConfig()).seed).fit(dataset)
    history = history if history is not None else builder.index(dataset)
    return [build_training_table(dataset, start, end, config, builder, history, slot_features)
            for start, end in windows]


def window_balance(counts: dict[str, int], negatives_after: int, config: TrainingConfig) -> dict[str, Any]:
    """What a window's downsampling kept (`TrainingTable.balance`), from its class counts before (`label_counts`)
    and the negatives kept: the same dict whichever engine sampled the rows."""
    if config.negatives_per_positive is None:
        return {"positives": counts["positive"], "negatives_before": counts["negative"],
                "negatives_after": negatives_after, "ignored_dropped": counts["ignored"]}
    return DownsampleResult(pd.DataFrame(), counts["positive"], counts["negative"], negatives_after,
                            counts["ignored"], float(config.negatives_per_positive), int(config.seed),
                            config.downsample_by, bool(config.reweight_negatives)).as_dict()


def _feature_rows(user_ids, item_ids, when, device=None, with_device: bool = False) -> pd.DataFrame:
    rows = pd.DataFrame({"user_id": np.asarray(user_ids), "item_id": np.asarray(item_ids), "timestamp": when})
    if with_device:
        rows["device"] = device
    return rows


def candidate_table(dataset: Dataset, blend, builder: FeatureBuilder, history: History, start, end,
                    n_candidates: int, config: TrainingConfig, seed: int, members=None) -> TrainingTable | None:
    """Rows (member, candidate) at `start` for members active in [start, end) (those of `members` only, when
    given), labeled by what they did.

    Per (member, title): finished at least once in the window -> 1; otherwise any middle-band
    play -> ignored; otherwise 0. Negatives are downsampled per member, positives weighted by
    minutes watched; features are computed at `start`, with the member's first device in the
    window, and every source's score from the candidate stage (`blend`, fitted before `start`).
    """
    window = dataset.between(start, end).events
    if members is not None:
        window = window[window["user_id"].isin(set(members))]
    if len(window) == 0:
        return None
    members = np.asarray(pd.unique(window["user_id"]), dtype=object)
    cands, scores = _scored_candidates(blend, members, n_candidates, start, dataset.users)
    if len(cands) == 0:
        return None
    labels = label_events(window, config.labels).to_numpy()
    window = window.assign(label=labels)
    played = window["watch_fraction"] > 0 if "watch_fraction" in window.columns else window["rating"].notna()
    outcome = window.assign(pos=window["label"] == POSITIVE, mid=(window["label"] < 0) & played.to_numpy())
    outcome = outcome.groupby(["user_id", "item_id"], sort=False).agg(
        pos=("pos", "any"), mid=("mid", "any"),
        minutes=("minutes_watched", "max") if "minutes_watched" in window.columns else ("pos", "size"))
    rows = cands.assign(_row=np.arange(len(cands))).join(outcome, on=["user_id", "item_id"])
    pos = rows["pos"].fillna(False).to_numpy(dtype=bool)
    mid = rows["mid"].fillna(False).to_numpy(dtype=bool) & ~pos
    rows = rows.assign(label=np.where(pos, 1, np.where(mid, -1, 0)).astype(np.int8))
    counts = {"positive": int(pos.sum()), "negative": int((rows["label"] == 0).sum()), "ignored": int(mid.sum())}
    if counts["positive"] == 0:
        return None
    if config.negatives_per_positive is not None:
        result = downsample_negatives(rows, config.negatives_per_positive, seed, by=config.downsample_by,
                                      sampler=config.sampler)
        kept, balance = result.frame, result.as_dict()
    else:
        kept, balance = rows[rows["label"] >= 0], dict(counts)
    kept = kept.reset_index(drop=True)
    first_seen = window.groupby("user_id", sort=False).first()
    device = kept["user_id"].map(first_seen["device"]).to_numpy() if builder.has_device_ else None
    feature_rows = _feature_rows(kept["user_id"], kept["item_id"], start, device, builder.has_device_)
    weight_frame = kept.assign(minutes_watched=kept["minutes"] if "minutes_watched" in window.columns else np.nan,
                               watch_fraction=np.where(kept["label"] == 1, 1.0, 0.0))
    weight = duration_weights(weight_frame, dataset.items, config.weights).to_numpy(dtype=float)
    features = builder.transform(feature_rows, history)
    features = features.with_features(scores.take(kept["_row"].to_numpy()), SourceScores(blend.source_names).features_)
    return TrainingTable(features, kept["label"].to_numpy(dtype=np.int8), weight, balance, counts,
                         (pd.Timestamp(start), pd.Timestamp(end)))


def holdout_table(dataset: Dataset, visible: Dataset, hidden: Dataset, blend, builder: FeatureBuilder,
                  n_candidates: int, config: TrainingConfig, seed: int, members=None) -> TrainingTable:
    """Candidates of `blend` (fitted on `visible`) labeled by whether they are among the `hidden`
    interactions (of `members` only, when given); features see only `visible`."""
    truth = hidden.plays()[["user_id", "item_id"]].drop_duplicates().assign(label=1)
    if members is not None:
        truth = truth[truth["user_id"].isin(set(members))]
    members = np.asarray(pd.unique(truth["user_id"]), dtype=object)
    now = dataset.end + pd.Timedelta(seconds=1)
    cands, scores = _scored_candidates(blend, members, n_candidates, now, dataset.users)
    rows = cands.assign(_row=np.arange(len(cands))).merge(truth, on=["user_id", "item_id"], how="left")
    rows["label"] = rows["label"].fillna(0).astype(np.int8)
    counts = {"positive": int((rows["label"] == 1).sum()), "negative": int((rows["label"] == 0).sum()),
              "ignored": 0}
    result = downsample_negatives(rows, config.negatives_per_positive or 1e9, seed, by=config.downsample_by,
                                  sampler=config.sampler)
    kept = result.frame.reset_index(drop=True)
    feature_rows = _feature_rows(kept["user_id"], kept["item_id"], now, None, builder.has_device_)
    features = builder.transform(feature_rows, builder.index(visible))
    features = features.with_features(scores.take(kept["_row"].to_numpy()), SourceScores(blend.source_names).features_)
    return TrainingTable(features, kept["label"].to_numpy(dtype=np.int8), np.ones(len(kept)), result.as_dict(),
                         counts, (None, now))


def with_candidate_negatives(table: TrainingTable, dataset: Dataset, blend, builder: FeatureBuilder,
                             history: History, cut, end, n: int, n_candidates: int, seed: int) -> TrainingTable:
    """An impressions table plus `n` blend candidates per member with a positive that the member did not
    play before the window's `end`, as negatives (at that member's positive times in the window)."""
    if n == 0:
        return table
    rng = np.random.default_rng(seed)
    rows = table.features.rows
    positives = rows[table.label == 1]
    members = pd.unique(positives["user_id"])
    cands = blend.recommend(members, n=n_candidates, now=cut, users=dataset.users)
    plays = dataset.plays()
    plays = plays[plays["timestamp"] < pd.Timestamp(end)]  # what came after the window is not known yet
    played = set(zip(plays["user_id"], plays["item_id"]))
    cands = cands[[(u, i) not in played for u, i in zip(cands["user_id"], cands["item_id"])]]
    picked = cands.groupby("user_id", sort=False).sample(frac=1.0, random_state=seed)
    picked = picked.groupby("user_id", sort=False).head(n)
    times = positives.groupby("user_id")["timestamp"].apply(list)
    when = [times[u][rng.integers(len(times[u]))] for u in picked["user_id"]]
    extra_rows = _feature_rows(picked["user_id"], picked["item_id"], pd.to_datetime(when), None,
                               "device" in rows.columns)
    extra = builder.transform(extra_rows, history)
    if "shown_slot" in table.features.feature_set:  # candidates that were not shown: ranked as when serving
        slot = SlotFeatures()
        extra = extra.with_features(slot.serving(len(extra_rows)), slot.features_)
    balance = dict(table.balance, candidate_negatives=len(extra_rows))
    return TrainingTable(FeatureTable.concat([table.features, extra]),
                         np.concatenate([table.label, np.zeros(len(extra_rows), np.int8)]),
                         np.concatenate([table.weight, np.ones(len(extra_rows))]), balance,
                         table.label_counts, table.window)


def _scored_candidates(blend, members: np.ndarray, n: int, now, users: pd.DataFrame) -> tuple[pd.DataFrame, Block]:
    """The blend's candidates of `members` at `now` (user_id, item_id), and every source's score and rank of
    each (one row block), computed chunk by chunk so memory stays bounded."""
    group = SourceScores(blend.source_names)
    personal = [g.personal for g in blend.generators]
    item_ids = blend.item_ids_.to_numpy(dtype=object)
    frames, blocks = [], []
    step = member_chunk(len(item_ids))
    for lo in range(0, len(members), step):
        cands = blend.candidates(members[lo:lo + step], n=n, now=now, users=users)
        frames.append(pd.DataFrame({"user_id": cands.member_ids[cands.member], "item_id": item_ids[cands.item]}))
        blocks.append(group.compute(cands.member, cands.item, cands.raw, personal))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"user_id": [], "item_id": []})
    cols = {name: np.concatenate([b.columns[name] for b in blocks]) if blocks else np.zeros(0)
            for name in group.names}
    return frame, Block(group.name, None, cols, len(frame))


def with_source_scores(features: FeatureTable, blend, member: np.ndarray | None = None,
                       item: np.ndarray | None = None, raw: list[np.ndarray] | None = None,
                       users: pd.DataFrame | None = None) -> FeatureTable:
    """`features` plus every source's score and rank of each row's title for its member.

    `member` / `item` / `raw` come from the candidate stage when the rows are its candidates;
    otherwise each source scores the rows' distinct members here (with `users`' attributes).
    """
    group = SourceScores(blend.source_names)
    if raw is None:
        ids = features.key("user_id").astype(str)
        member_ids, member = np.unique(ids, return_inverse=True)
        item = blend.item_ids_.get_indexer(pd.Index(features.key("item_id").astype(str), dtype=object))
        item = np.where(item < 0, len(blend.item_ids_), item)
        raw = [np.asarray(g._score(g.batch(member_ids.astype(object), users)), dtype=np.float64)
               for g in blend.generators]
    block = group.compute(np.asarray(member), np.asarray(item), raw, [g.personal for g in blend.generators])
    return features.with_features(block, group.features_)


def stack_tables(tables: list[TrainingTable]) -> TrainingTable:
    """One training table from several windows' tables (same features)."""
    if len(tables) == 1:
        return tables[0]
    counts = {k: sum(t.label_counts[k] for t in tables) for k in tables[0].label_counts}
    return TrainingTable(FeatureTable.concat([t.features for t in tables]), np.concatenate([t.label for t in tables]),
                         np.concatenate([t.weight for t in tables]), tables[-1].balance, counts,
                         (tables[0].window[0], tables[-1].window[1]))
