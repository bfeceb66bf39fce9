"""Training labels, negative downsampling, duration and propensity weights (docs/training-data.md).

The design note turns implicit feedback into confident labels: a title watched past 80%
is a positive, one abandoned before 10% (or shown and never played) is a negative, and the
noisy middle band is ignored. Negatives vastly outnumber positives, so they are randomly
downsampled; positives are weighted by minutes watched because the business metric is
session watch time. Logged impressions are weighted by the inverse of the logging policy's
propensity, so that the titles it rarely showed stand for the many like them it did not show.
Everything here is vectorised (no Python loops over rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .data.errors import DataError

__all__ = [
    "SAMPLERS",
    "watched_minutes",
    "row_keys",
    "POSITIVE",
    "NEGATIVE",
    "IGNORED",
    "LabelConfig",
    "label_events",
    "label_counts",
    "DownsampleResult",
    "downsample_negatives",
    "correct_probability",
    "WeightConfig",
    "duration_weights",
    "propensity_weights",
]

POSITIVE: int = 1
NEGATIVE: int = 0
IGNORED: int = -1


def _round_half_up(x: np.ndarray | float) -> np.ndarray | int:
    """Round .5 upwards (not to even), so counts are predictable: 1.5 -> 2, 2.5 -> 3."""
    if np.isscalar(x):
        return int(math.floor(float(x) + 0.5))
    return np.floor(np.asarray(x, dtype=float) + 0.5).astype(np.int64)


def _require_frame(frame: Any, what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    return frame


# ------------------------------------------------------------------ labels
@dataclass(frozen=True)
class LabelConfig:
    """Thresholds turning feedback into labels.

    Implicit (watch_fraction): positive when fraction > `positive_above`, negative when
    fraction < `negative_below` (0 = shown but not played counts when
    `unplayed_is_negative`), ignored otherwise. Explicit (rating): positive when
    rating >= `rating_threshold`, else negative.
    """

    positive_above: float = 0.8
    negative_below: float = 0.1
    rating_threshold: float = 4.0
    unplayed_is_negative: bool = True

    def __post_init__(self) -> None:
        for name in ("positive_above", "negative_below", "rating_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"LabelConfig.{name} must be a finite number, got {value!r}")
        if not 0.0 <= self.negative_below <= self.positive_above <= 1.0:
            raise ValueError(
                "LabelConfig needs 0 <= negative_below <= positive_above <= 1, got "
                f"negative_below={self.negative_below}, positive_above={self.positive_above}"
            )


def label_events(events: pd.DataFrame, config: LabelConfig | None = None) -> pd.Series:
    """Label each event 1 (positive), 0 (negative) or -1 (ignored); int8, aligned to `events.index`.

    Implicit rows (watch_fraction present), with the defaults:
      fraction > 0.8 -> 1;  0 < fraction < 0.1 -> 0;  fraction == 0 (shown, not played) -> 0;
      0.1 <= fraction <= 0.8 -> -1. Both edges (0.1 and 0.8 exactly) are ignored.
    The middle band is dropped because a half-watched title is neither a confident like nor
    a confident dislike; keeping it would add label noise. Ignored impressions are the main
    source of negatives: the member saw the title and chose something else.

    Explicit rows (no watch_fraction, a rating, e.g. MovieLens): rating >= rating_threshold
    -> 1, below -> 0. Caveat (design note): explicit ratings are missing not at random:
    members mostly rate what they chose and liked, so low ratings are rarer than true
    dislikes and unrated titles are not negatives. Rows with neither value are ignored (-1).
    """
    events = _require_frame(events, "events")
    config = config or LabelConfig()
    has_wf = "watch_fraction" in events.columns
    has_rating = "rating" in events.columns
    if not has_wf and not has_rating:
        raise DataError(
            "cannot label events without a watch_fraction (implicit) or rating (explicit) column",
            file="events", column="watch_fraction",
            hint=f"found columns {list(events.columns)[:20]}",
        )
    labels = np.full(len(events), IGNORED, dtype=np.int8)
    implicit = np.zeros(len(events), dtype=bool)
    if has_wf:
        wf = pd.to_numeric(events["watch_fraction"], errors="coerce").to_numpy(dtype=float)
        bad = events["watch_fraction"].notna().to_numpy() & np.isnan(wf)
        bad |= ~np.isnan(wf) & ((wf < 0) | (wf > 1))
        if bad.any():
            raise DataError(
                f"{int(bad.sum())} watch fraction(s) are not numbers in [0, 1]",
                file="events", column="watch_fraction",
                examples=[f"row {i}: {v!r}" for i, v in zip(np.flatnonzero(bad)[:5], events["watch_fraction"].to_numpy()[bad][:5])],
            )
        implicit = ~np.isnan(wf)
        labels[implicit & (wf > config.positive_above)] = POSITIVE
        played_negative = implicit & (wf > 0) & (wf < config.negative_below)
        labels[played_negative] = NEGATIVE
        if config.unplayed_is_negative:
            labels[implicit & (wf == 0)] = NEGATIVE
    if has_rating:
        rating = pd.to_numeric(events["rating"], errors="coerce").to_numpy(dtype=float)
        bad = events["rating"].notna().to_numpy() & np.isnan(rating)
        if bad.any():
            raise DataError(
                f"{int(bad.sum())} rating(s) are not numbers", file="events", column="rating",
                examples=[f"row {i}: {v!r}" for i, v in zip(np.flatnonzero(bad)[:5], events["rating"].to_numpy()[bad][:5])],
            )
        explicit = ~implicit & ~np.isnan(rating)
        labels[explicit] = np.where(rating[explicit] >= config.rating_threshold, POSITIVE, NEGATIVE)
    return pd.Series(labels, index=events.index, name="label", dtype=np.int8)


def label_counts(labels: pd.Series) -> dict[str, int]:
    """Counts of positives, negatives and ignored rows: the class balance the app shows."""
    values = np.asarray(labels)
    return {
        "positive": int((values == POSITIVE).sum()),
        "negative": int((values == NEGATIVE).sum()),
        "ignored": int((values == IGNORED).sum()),
    }


# ------------------------------------------------------------ downsampling
@dataclass(frozen=True)
class DownsampleResult:
    """Rows kept by `downsample_negatives` and the counts before and after, for class-balance charts.

    `frame` keeps the input's index (so rows can be matched back to events) and order.
    """

    frame: pd.DataFrame
    positives: int
    negatives_before: int
    negatives_after: int
    ignored_dropped: int
    ratio: float
    seed: int
    by: str | None
    reweighted: bool

    @property
    def negatives_dropped(self) -> int:
        return self.negatives_before - self.negatives_after

    @property
    def negative_keep_rate(self) -> float:
        """Share of negatives kept (1.0 when there were none); feed it to `correct_probability`."""
        return self.negatives_after / self.negatives_before if self.negatives_before else 1.0

    def balance(self) -> pd.DataFrame:
        """Class counts before and after, one row per stage: what a class-balance chart plots."""
        return pd.DataFrame(
            {
                "stage": ["before", "after"],
                "positive": [self.positives, self.positives],
                "negative": [self.negatives_before, self.negatives_after],
                "ignored": [self.ignored_dropped, 0],
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "positives": self.positives,
            "negatives_before": self.negatives_before,
            "negatives_after": self.negatives_after,
            "negatives_dropped": self.negatives_dropped,
            "ignored_dropped": self.ignored_dropped,
            "negative_keep_rate": self.negative_keep_rate,
            "ratio": self.ratio,
            "seed": self.seed,
            "by": self.by,
            "reweighted": self.reweighted,
        }


SAMPLERS = ("random", "hash")
#: The columns a row's sampling key hashes, where present: the member, the title and the moment (and the logged
#: session and slot, which tell apart two impressions of one title in the same second).
ROW_KEY_COLUMNS = ("user_id", "item_id", "timestamp", "session_id", "position")


def row_keys(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A uint64 per row from its `ROW_KEY_COLUMNS` and `seed`: the same row and seed give the same key in any
    process, partition or order (pandas' fixed-key SipHash of the values' text)."""
    cols = [c for c in ROW_KEY_COLUMNS if c in frame.columns]
    if "user_id" not in cols or "item_id" not in cols:
        raise DataError("hash sampling needs user_id and item_id", column="user_id" if "user_id" not in cols
                        else "item_id")
    parts = {}
    for c in cols:
        values = frame[c]
        if c == "timestamp":
            parts[c] = pd.to_datetime(values).to_numpy(dtype="datetime64[ns]").astype(np.int64)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            parts[c] = pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)  # 3, 3.0 and Int64 alike
        else:
            text = values.astype(object).to_numpy()
            parts[c] = np.where(pd.isna(text), "", text.astype(str)).astype(object)  # None, NaN and <NA> alike
    keyed = pd.DataFrame(parts).assign(_seed=np.int64(seed))
    return pd.util.hash_pandas_object(keyed, index=False).to_numpy(dtype=np.uint64)


def downsample_negatives(
    labeled_frame: pd.DataFrame,
    ratio: float,
    seed: int = 0,
    *,
    by: str | None = None,
    min_per_user: int = 1,
    label_col: str = "label",
    reweight: bool = False,
    weight_col: str = "weight",
    sampler: str = "random",
) -> DownsampleResult:
    """Keep every positive and a seeded uniform random subset of negatives (about `ratio` per positive).

    `sampler="random"` draws the subset from one generator over the whole frame; `sampler="hash"` keeps the
    negatives with the smallest `row_keys` (a hash of the row and the seed), so a member's sample depends on
    their own rows alone and a distributed engine recomputing any partition keeps the same rows.

    Global (`by=None`): exactly min(n_neg, round(ratio * n_pos)) negatives are kept.
    Per group (`by="user_id"`): user u keeps min(neg_u, max(min_per_user, round(ratio * pos_u)))
    negatives, so heavy and light users stay balanced alike. Rounding is half-up.
    Ignored rows (label -1) are dropped and counted. Same frame and seed -> same rows.

    `reweight=True` multiplies `weight_col` (created as 1.0 if absent) of each kept negative
    by n_neg / n_kept (per group when `by` is set), so weighted losses see the original
    class balance and predicted probabilities stay calibrated. Without it, undo the shift
    afterwards with `correct_probability(p, result.negative_keep_rate)` (global mode).
    """
    frame = _require_frame(labeled_frame, "labeled_frame")
    if label_col not in frame.columns:
        raise DataError(
            f"no {label_col!r} column: label the events first (label_events)",
            column=label_col, hint=f"found columns {list(frame.columns)[:20]}",
        )
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)) or not math.isfinite(ratio) or ratio <= 0:
        raise ValueError(f"ratio must be a finite number > 0 (negatives per positive), got {ratio!r}")
    if isinstance(min_per_user, bool) or not isinstance(min_per_user, (int, np.integer)) or min_per_user < 0:
        raise ValueError(f"min_per_user must be an integer >= 0, got {min_per_user!r}")
    if by is not None and by not in frame.columns:
        raise DataError(f"cannot downsample per {by!r}: no such column", column=by,
                        hint=f"found columns {list(frame.columns)[:20]}")
    labels = pd.to_numeric(frame[label_col], errors="coerce").to_numpy()
    unknown = ~np.isin(labels, (POSITIVE, NEGATIVE, IGNORED))
    if unknown.any():
        raise DataError(
            f"{int(unknown.sum())} label(s) are not 1, 0 or -1", column=label_col,
            examples=[f"row {i}: {v!r}" for i, v in zip(np.flatnonzero(unknown)[:5], frame[label_col].to_numpy()[unknown][:5])],
        )
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    pos_mask = labels == POSITIVE
    neg_mask = labels == NEGATIVE
    neg_pos = np.flatnonzero(neg_mask)
    n_pos, n_neg = int(pos_mask.sum()), int(neg_pos.size)
    rng = np.random.default_rng(seed)
    neg_weight = np.ones(n_neg)
    hashed = row_keys(frame.iloc[neg_pos], seed) if sampler == "hash" else None

    if by is None:
        target = min(n_neg, _round_half_up(ratio * n_pos))
        if hashed is not None:
            chosen = np.sort(np.argsort(hashed, kind="stable")[:target])
        elif target:
            chosen = np.sort(rng.choice(n_neg, size=target, replace=False, shuffle=False))
        else:
            chosen = np.empty(0, int)
        keep_neg = np.zeros(n_neg, dtype=bool)
        keep_neg[chosen] = True
        if target:
            neg_weight[:] = n_neg / target
    else:
        groups = frame[by]
        if groups.isna().any():
            raise DataError(f"{int(groups.isna().sum())} row(s) have no {by}", column=by)
        codes, uniques = pd.factorize(groups, sort=False)
        n_groups = len(uniques)
        pos_per = np.bincount(codes[pos_mask], minlength=n_groups)
        neg_codes = codes[neg_pos]
        neg_per = np.bincount(neg_codes, minlength=n_groups)
        quota = np.minimum(neg_per, np.maximum(min_per_user, _round_half_up(ratio * pos_per)))
        # Random rank of each negative within its group: sort by (group, random key).
        keys = hashed if hashed is not None else rng.random(n_neg)
        order = np.lexsort((keys, neg_codes))
        sorted_codes = neg_codes[order]
        starts = np.concatenate(([0], np.cumsum(neg_per)[:-1]))
        rank = np.empty(n_neg, dtype=np.int64)
        rank[order] = np.arange(n_neg) - starts[sorted_codes]
        keep_neg = rank < quota[neg_codes]
        per_group_weight = np.where(quota > 0, neg_per / np.maximum(quota, 1), 1.0)
        neg_weight = per_group_weight[neg_codes]

    keep = pos_mask.copy()
    keep[neg_pos[keep_neg]] = True
    kept = frame.loc[keep].copy()
    if reweight:
        weights = np.ones(len(frame))
        weights[neg_pos] = neg_weight
        base = frame[weight_col].to_numpy(dtype=float) if weight_col in frame.columns else np.ones(len(frame))
        kept[weight_col] = (base * weights)[keep]
    return DownsampleResult(
        frame=kept,
        positives=n_pos,
        negatives_before=n_neg,
        negatives_after=int(keep_neg.sum()),
        ignored_dropped=int(len(frame) - n_pos - n_neg),
        ratio=float(ratio),
        seed=int(seed),
        by=by,
        reweighted=bool(reweight),
    )


def correct_probability(p: np.ndarray | pd.Series | float, negative_keep_rate: float) -> np.ndarray | float:
    """Undo uniform negative downsampling on predicted probabilities (calibration restore).

    A model trained with only a fraction w of negatives predicts odds inflated by 1/w; the
    calibrated probability is q = p / (p + (1 - p) / w).
    """
    if not 0 < negative_keep_rate <= 1:
        raise ValueError(f"negative_keep_rate must be in (0, 1], got {negative_keep_rate!r}")
    arr = np.asarray(p, dtype=float)
    q = arr / (arr + (1.0 - arr) / negative_keep_rate)
    if isinstance(p, pd.Series):
        return pd.Series(q, index=p.index, name=p.name)
    return float(q) if np.ndim(q) == 0 else q


# ------------------------------------------------------------------ weights
@dataclass(frozen=True)
class WeightConfig:
    """Duration weights: w = clip((watched_minutes / reference_minutes) ** power, min_weight, max_weight).

    `reference_minutes=None` uses the median watched minutes of the weighted rows; pass a
    number to keep weights comparable across folds. Negatives (label 0) and ignored rows get
    `negative_weight`; rows whose watched minutes cannot be known get `missing_weight`.

    Inverse-propensity weights (`propensity_weights`) multiply these for rows with a logged
    propensity: reference / propensity, clipped to [1 / propensity_clip, propensity_clip];
    `propensity_reference=None` uses the median propensity of the rows; `propensity_clip=None`
    turns them off.
    """

    reference_minutes: float | None = None
    power: float = 0.5
    min_weight: float = 0.1
    max_weight: float = 5.0
    negative_weight: float = 1.0
    missing_weight: float = 1.0
    propensity_clip: float | None = 20.0
    propensity_reference: float | None = None

    def __post_init__(self) -> None:
        if self.reference_minutes is not None and not (math.isfinite(self.reference_minutes) and self.reference_minutes > 0):
            raise ValueError(f"WeightConfig.reference_minutes must be > 0 or None, got {self.reference_minutes!r}")
        if not (math.isfinite(self.power) and self.power > 0):
            raise ValueError(f"WeightConfig.power must be > 0, got {self.power!r}")
        if not (0 < self.min_weight <= self.max_weight and math.isfinite(self.max_weight)):
            raise ValueError(
                f"WeightConfig needs 0 < min_weight <= max_weight < inf, got {self.min_weight!r}, {self.max_weight!r}"
            )
        clip = self.propensity_clip
        if clip is not None and not (math.isfinite(clip) and clip >= 1):
            raise ValueError(f"WeightConfig.propensity_clip must be a number >= 1 or None, got {clip!r}")
        if self.propensity_reference is not None and not (0 < self.propensity_reference <= 1):
            raise ValueError("WeightConfig.propensity_reference must be in (0, 1] or None, got "
                             f"{self.propensity_reference!r}")
        for name in ("negative_weight", "missing_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"WeightConfig.{name} must be a finite number >= 0, got {value!r}")


def watched_minutes(frame: pd.DataFrame, items: pd.DataFrame | None = None) -> np.ndarray:
    """Minutes watched per row: minutes_watched where known, else watch_fraction x the title's duration_min;
    NaN where neither is known (what `duration_weights` weighs, and the pool its reference median is taken of)."""
    frame = _require_frame(frame, "frame")
    n = len(frame)
    watched = np.full(n, np.nan)
    if "minutes_watched" in frame.columns:
        watched = pd.to_numeric(frame["minutes_watched"], errors="coerce").to_numpy(dtype=float, copy=True)
    need = np.isnan(watched)
    if need.any() and "watch_fraction" in frame.columns:
        if items is not None:
            items = _require_frame(items, "items")
            if "item_id" not in items.columns or "item_id" not in frame.columns:
                raise DataError("duration weights need item_id in both frame and items", column="item_id")
            if "duration_min" in items.columns:
                duration = pd.to_numeric(items["duration_min"], errors="coerce")
                duration = pd.Series(duration.to_numpy(dtype=float), index=pd.Index(items["item_id"]))
                duration = duration[~duration.index.duplicated()]
                item_minutes = frame["item_id"].map(duration).to_numpy(dtype=float, copy=True)
                wf = pd.to_numeric(frame["watch_fraction"], errors="coerce").to_numpy(dtype=float)
                item_minutes[item_minutes <= 0] = np.nan
                watched = np.where(need, wf * item_minutes, watched)
        elif "minutes_watched" not in frame.columns:
            raise DataError(
                "duration weights need minutes_watched, or watch_fraction with an items table that has duration_min",
                column="minutes_watched",
            )
    if np.any(watched[~np.isnan(watched)] < 0):
        raise DataError("negative minutes watched", column="minutes_watched")

    return watched


def duration_weights(
    frame: pd.DataFrame,
    items: pd.DataFrame | None = None,
    config: WeightConfig | None = None,
    *,
    label_col: str = "label",
) -> pd.Series:
    """Sample weights growing (concavely, capped) with minutes watched; float, aligned to `frame.index`.

    watched_minutes = minutes_watched where known, else watch_fraction * items.duration_min.
    Rows with `label_col` == 1 (all rows if the column is absent) get
    clip((watched_minutes / reference_minutes) ** power, min_weight, max_weight); other rows
    get `negative_weight`; rows with unknown watched minutes get `missing_weight`. With the
    defaults and a 60-minute reference, 80% of a 120-minute film (96 min) weighs 1.265 and 80%
    of a 22-minute episode (17.6 min) weighs 0.542: the note's session-watch-time argument.
    The result's `.attrs` records `reference_minutes`, `missing` and `capped` counts.
    """
    frame = _require_frame(frame, "frame")
    config = config or WeightConfig()
    n = len(frame)
    watched = watched_minutes(frame, items)
    if label_col in frame.columns:
        weighted = pd.to_numeric(frame[label_col], errors="coerce").to_numpy() == POSITIVE
    else:
        weighted = np.ones(n, dtype=bool)
    known = ~np.isnan(watched)
    reference = config.reference_minutes
    if reference is None:
        pool = watched[weighted & known & (watched > 0)]
        reference = float(np.median(pool)) if pool.size else 1.0
    raw = np.power(np.where(known, watched, 0.0) / reference, config.power)
    clipped = np.clip(raw, config.min_weight, config.max_weight)
    weights = np.full(n, float(config.negative_weight))
    weights[weighted & known] = clipped[weighted & known]
    missing = weighted & ~known
    weights[missing] = config.missing_weight
    out = pd.Series(weights, index=frame.index, name="duration_weight")
    out.attrs = {
        "reference_minutes": float(reference),
        "missing": int(missing.sum()),
        "capped": int((weighted & known & (raw > config.max_weight)).sum()),
        "floored": int((weighted & known & (raw < config.min_weight)).sum()),
    }
    return out


def _logged_propensity(frame: pd.DataFrame) -> np.ndarray:
    """Each row's logged propensity, NaN where none was logged (plays from search or autoplay, data without the
    column); a logged value outside [0, 1] is refused, naming the rows (the loader refuses them in a file)."""
    if "propensity" not in frame.columns:
        return np.full(len(frame), np.nan)
    p = pd.to_numeric(frame["propensity"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isnan(p) & ~((p >= 0) & (p <= 1))
    if bad.any():
        rows = frame.index[bad][:5].tolist()
        raise DataError(f"propensity must be in [0, 1]: {p[bad][:5].tolist()} at rows {rows}", column="propensity")
    return p


def propensity_weights(frame: pd.DataFrame, config: WeightConfig | None = None) -> pd.Series:
    """Inverse-propensity weights: reference / propensity, clipped to [1 / clip, clip], for rows with a logged
    propensity (the chance the logging policy gave the title its slot; 0 weighs the clip); 1 for the others and
    when `config.propensity_clip` is None.

    The logging policy shows what it already believes a member likes, so among logged impressions an unpopular
    title is one it picked for a strong taste match: unweighted, a ranker learns that unpopularity itself
    predicts a watch. Weighting each impression by 1 / propensity makes the rows stand for every title the
    policy could have shown (docs/online-quality.md). The result's `.attrs` records `reference`, `weighted`
    and `clipped` counts."""
    frame = _require_frame(frame, "frame")
    config = config or WeightConfig()
    p = _logged_propensity(frame)
    logged = ~np.isnan(p)
    weights = np.ones(len(frame))
    reference = config.propensity_reference
    if config.propensity_clip is not None and logged.any():
        if reference is None:  # the median of the logged rows (1 where most logged 0)
            reference = float(np.median(p[logged])) or 1.0
        with np.errstate(divide="ignore", over="ignore"):
            raw = reference / p[logged]
        clip = float(config.propensity_clip)
        weights[logged] = np.clip(raw, 1.0 / clip, clip)
        clipped = int(((raw > clip) | (raw < 1.0 / clip)).sum())
    else:
        clipped = 0
    out = pd.Series(weights, index=frame.index, name="propensity_weight")
    out.attrs = {"reference": None if reference is None else float(reference),
                 "weighted": int(logged.sum()) if config.propensity_clip is not None else 0, "clipped": clipped}
    return out
