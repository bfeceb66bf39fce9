"""The two-stage Recommender: candidates from several sources -> a ranker's P(watch) -> re-rank top k.

Training avoids leakage by construction: candidate generators used to make the ranker's
training features are fitted on data before a cut; the ranker learns from the labeled
events after it (each row's features point in time); then the generators are refitted on
everything for serving. See docs/architecture.md.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .data.dataset import Dataset
from .data.errors import DataError
from .features import Feature, FeatureBuilder, FeatureSet, FeatureTable, Ragged
from .features.builder import NotFittedError
from .labels import correct_probability
from .rerank import ReRanker, RerankConfig
from .threads import single_threaded
from .training_table import TrainingConfig, TrainingTable, build_training_table

__all__ = ["Recommender", "RecommenderConfig", "ArtifactError", "Inspection", "SOURCES", "RANKERS"]

FORMAT = "recsys.recommender"
FORMAT_VERSION = 1
SOURCES = ("popularity", "als", "bpr", "ease", "itemknn", "content", "two_tower")
RANKERS = ("logistic", "forest", "boosting", "deep")
Progress = Callable[[str, float], None]


class ArtifactError(DataError):
    """Saved Recommender files are missing, corrupted or do not belong together."""


@dataclass(frozen=True)
class RecommenderConfig:
    """What the pipeline is made of.

    sources / quotas: candidate generators and their shares of the `n_candidates` slots.
    ranker: one of RANKERS, or None to serve the blend's order. Logistic regression is the default
        by measurement: on the sample (3 temporal folds) it ties LightGBM (NDCG@10 0.1669 both) and on
        MovieLens-layout explicit data LightGBM overfits (0.171 against 0.206-0.223).
    training_rows: "candidates" (default) trains the ranker on what it will rank: at the start of
        each of the last `ranker_windows` windows of `ranker_window_days`, the blend's candidates
        for every member active in the window, labeled by what the member then did (finished
        > 80% positive; shown and ignored, abandoned or never played negative; the middle band
        ignored), negatives downsampled, positives weighted by minutes watched. "impressions"
        trains on the logged impressions and plays of those windows instead (P(watch | shown)).
        Either way the generators that make the ranker's features see only data before the window.
        "holdout" mirrors the per-user random protocol of public benchmark tables instead: a random
        `holdout_ratio` of each member's interactions is hidden, generators and features see the
        rest, and candidates are labeled by whether they are among the hidden ones.
    candidate_negatives: ("impressions" only) unplayed blend candidates added per member as negatives.
    source_params: per source, parameters that replace its defaults (e.g. {"ease": {"l2": 200}}).
    tune: "auto" (default) tunes EASE and ALS on a validation split of the training data when the
        data is explicit ratings (MovieLens-like; the defaults were tuned on the sample world),
        "on" always, "off" never (see `recsys.tuning`). `source_params` win over tuning.
    """

    sources: tuple[str, ...] = ("popularity", "ease", "als", "content", "two_tower")
    quotas: dict[str, float] | None = None
    n_candidates: int = 200
    ranker: str | None = "logistic"
    ranker_params: dict[str, Any] = field(default_factory=dict)
    ranker_window_days: float = 14.0
    ranker_windows: int = 3
    training_rows: str = "candidates"
    holdout_ratio: float = 0.2
    candidate_negatives: int = 0
    source_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    tune: str = "auto"
    training: TrainingConfig = field(default_factory=TrainingConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ValueError(f"unknown candidate source(s) {unknown}; choose from {SOURCES}")
        if self.ranker is not None and self.ranker not in RANKERS:
            raise ValueError(f"unknown ranker {self.ranker!r}; choose from {RANKERS} or None")
        if self.n_candidates < 1 or self.ranker_window_days <= 0 or self.candidate_negatives < 0 \
                or self.ranker_windows < 1:
            raise ValueError("n_candidates >= 1, ranker_window_days > 0, ranker_windows >= 1 and "
                             "candidate_negatives >= 0 are required")
        if self.tune not in ("auto", "on", "off"):
            raise ValueError(f"tune must be 'auto', 'on' or 'off', got {self.tune!r}")
        stray = [s for s in self.source_params if s not in SOURCES]
        if stray:
            raise ValueError(f"source_params for unknown source(s) {stray}; choose from {SOURCES}")
        if self.training_rows not in ("candidates", "holdout", "impressions"):
            raise ValueError("training_rows must be 'candidates', 'holdout' or 'impressions', "
                             f"got {self.training_rows!r}")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["sources"] = list(self.sources)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RecommenderConfig":
        from .labels import LabelConfig, WeightConfig

        data = dict(data)
        training = dict(data.pop("training", {}) or {})
        training["labels"] = LabelConfig(**training.get("labels", {}))
        training["weights"] = WeightConfig(**training.get("weights", {}))
        return cls(sources=tuple(data.pop("sources")), training=TrainingConfig(**training),
                   rerank=RerankConfig(**data.pop("rerank", {})), **data)


def make_generator(name: str, seed: int = 0, params: dict[str, Any] | None = None):
    """A candidate generator by source name, with its tuned defaults (or `params` in their place)."""
    from . import candidates as c

    params = dict(params or {})
    seeded = {"als": c.ALSGenerator, "bpr": c.BPRGenerator, "two_tower": c.TwoTowerGenerator}
    plain = {"ease": c.EASEGenerator, "itemknn": c.ItemKNNGenerator, "content": c.ContentGenerator}
    if name == "popularity":
        return c.PopularityGenerator(**{"name": "popularity", **params})
    if name in seeded:
        return seeded[name](**{"seed": seed, **params})
    if name in plain:
        return plain[name](**params)
    raise ValueError(f"unknown candidate source {name!r}")


def tuned_source_params(config: "RecommenderConfig", dataset: Dataset, progress: Callable[[str], None] | None = None
                        ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The parameters each source is fitted with: tuned on `dataset` when the config asks (see `tune`),
    then `config.source_params` on top; with the tuning log."""
    from .tuning import tune_sources

    params: dict[str, dict[str, Any]] = {}
    log: dict[str, Any] = {}
    if config.tune == "on" or (config.tune == "auto" and dataset.feedback == "explicit"):
        todo = [s for s in config.sources if s not in config.source_params]
        how = "holdout" if config.training_rows == "holdout" or dataset.feedback == "explicit" else "temporal"
        params, log = tune_sources(dataset, todo, lambda name, p: make_generator(name, config.seed, p), how=how,
                                   holdout_ratio=config.holdout_ratio, window_days=config.ranker_window_days,
                                   seed=config.seed, progress=progress)
    params.update({k: dict(v) for k, v in config.source_params.items()})
    return params, log


def make_ranker(name: str, params: dict[str, Any], seed: int = 0):
    """A ranker by name (imports torch / lightgbm only when asked for)."""
    params = {"seed": seed, **params}
    if name == "logistic":
        from .ranking import LogisticRanker as cls
    elif name == "forest":
        from .ranking import ForestRanker as cls
    elif name == "boosting":
        from .ranking.boosting import BoostingRanker as cls
    elif name == "deep":
        from .ranking.deep import DeepRanker as cls
    else:
        raise ValueError(f"unknown ranker {name!r}")
    return cls(**params)


@dataclass
class Inspection:
    """Everything behind one member's list: candidates by source, ranked list, final list, changes."""

    candidates: pd.DataFrame
    ranked: pd.DataFrame
    final: pd.DataFrame
    changes: pd.DataFrame
    features: FeatureTable


class Recommender:
    """Candidates -> ranking -> re-rank; `fit(dataset)`, `recommend(user_ids, k, context)`, save/load."""

    def __init__(self, config: RecommenderConfig | None = None) -> None:
        self.config = config or RecommenderConfig()

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset, progress: Progress | None = None, reuse: "Recommender | None" = None
            ) -> "Recommender":
        """Fit every stage on `dataset` (see the module docstring for the time split).

        `reuse`: a Recommender fitted on the same dataset with the same configuration apart from
        the ranker; its features, candidates and training rows are shared, only the ranker is fitted
        (how the evaluation compares rankers without refitting everything).
        """
        if reuse is not None:
            return self._fit_ranker_only(dataset, reuse, progress)
        if not isinstance(dataset, Dataset):
            raise TypeError(f"fit needs a recsys Dataset, got {type(dataset).__name__}")
        if len(dataset.events) == 0:
            raise DataError("the dataset has no events to learn from", file=dataset.name, column="timestamp")
        say = progress or (lambda message, fraction: None)
        cfg = self.config
        timings: dict[str, float] = {}
        end = dataset.end + pd.Timedelta(seconds=1)
        span = pd.Timedelta(days=cfg.ranker_window_days)
        first_cut = end - span * cfg.ranker_windows
        if cfg.training_rows != "holdout" and (dataset.start is None or first_cut <= dataset.start + span):
            raise DataError(f"the data spans {(end - dataset.start).days} days; the ranker's {cfg.ranker_windows} "
                            f"window(s) of {cfg.ranker_window_days:g} days need more history before them",
                            file=dataset.name, column="timestamp", hint="lower ranker_window_days or ranker_windows")

        t = time.perf_counter()
        say("tuning the collaborative sources", 0.01)
        self.source_params_, self.tuning_ = tuned_source_params(cfg, dataset, lambda m: say(m, 0.01))
        timings["tuning"] = time.perf_counter() - t
        t = time.perf_counter()
        say("features: title attributes and synopsis embeddings", 0.02)
        self.builder_ = FeatureBuilder(seed=cfg.seed).fit(dataset)
        timings["features"] = time.perf_counter() - t

        self.ranker_ = None
        self.training_summary_: dict[str, Any] = {}
        if cfg.ranker is not None:
            tables = []
            timings["candidates_before_windows"] = 0.0
            timings["training_table"] = 0.0
            if cfg.training_rows == "holdout":
                tables.append(self._holdout_table(dataset, say, timings))
            for w in range(cfg.ranker_windows if cfg.training_rows != "holdout" else 0):
                cut = first_cut + span * w
                lo = 0.05 + 0.5 * w / cfg.ranker_windows
                t = time.perf_counter()
                say(f"window {w + 1}/{cfg.ranker_windows}: candidates as of {cut:%Y-%m-%d}", lo)
                early = self._generators(dataset.as_of(cut), say, lo, lo + 0.3 / cfg.ranker_windows)
                timings["candidates_before_windows"] += time.perf_counter() - t
                t = time.perf_counter()
                say(f"window {w + 1}/{cfg.ranker_windows}: training rows", lo + 0.4 / cfg.ranker_windows)
                if cfg.training_rows == "candidates":
                    table = self._candidate_table(dataset, early, cut, cut + span, seed=cfg.seed + w)
                else:
                    table = build_training_table(dataset, cut, cut + span, cfg.training, self.builder_)
                    table = self._with_candidate_negatives(table, dataset, early, cut)
                if table is not None and len(table):
                    tables.append(TrainingTable(self._with_candidate_features(table.features, early, dataset.users),
                                                table.label, table.weight, table.balance, table.label_counts,
                                                table.window))
                timings["training_table"] += time.perf_counter() - t
            if not tables or sum(int((tb.label == 1).sum()) for tb in tables) == 0:
                raise DataError("no positive examples in the ranker's windows", file=dataset.name, column="label")
            table = _stack_tables(tables)
            self.training_table_ = table
            t = time.perf_counter()
            say(f"ranker ({cfg.ranker}) on {len(table):,} rows", 0.6)
            self.ranker_ = make_ranker(cfg.ranker, cfg.ranker_params, cfg.seed).fit(table)
            timings["ranker"] = time.perf_counter() - t
            before = sum(tb.balance.get("negatives_before", 0) for tb in tables)
            after = sum(tb.balance.get("negatives_after", 0) for tb in tables)
            self.negative_keep_rate_ = after / before if before else 1.0
            self.training_summary_ = {"rows": len(table), "positives": int((table.label == 1).sum()),
                                      "negative_keep_rate": self.negative_keep_rate_,
                                      "first_window_start": str(first_cut), "windows": cfg.ranker_windows,
                                      "rows_from": cfg.training_rows,
                                      "balance": [tb.balance for tb in tables]}
        t = time.perf_counter()
        say("candidates (all data, for serving)", 0.7)
        self.generators_ = self._generators(dataset, say, 0.7, 0.97)
        timings["candidates"] = time.perf_counter() - t
        self.reranker_ = ReRanker(cfg.rerank).fit(dataset, self.builder_.embeddings_[:-1]
                                                  if self.builder_.embeddings_ is not None else None)
        self.history_ = dataset
        self._batch_memo: dict[str, Any] = {}
        self.fit_timings_ = timings
        self.fingerprint_ = dataset.fingerprint()
        say("done", 1.0)
        return self

    def _fit_ranker_only(self, dataset: Dataset, other: "Recommender", progress: Progress | None) -> "Recommender":
        other._check()
        mine = dict(self.config.to_json(), ranker=None, ranker_params={})
        theirs = dict(other.config.to_json(), ranker=None, ranker_params={})
        if other.history_ is not dataset or mine != theirs or getattr(other, "training_table_", None) is None:
            raise ValueError("reuse needs a Recommender fitted on this same dataset with the same configuration "
                             "apart from the ranker")
        say = progress or (lambda message, fraction: None)
        for name in ("builder_", "generators_", "reranker_", "history_", "fingerprint_", "training_table_",
                     "negative_keep_rate_", "source_params_", "tuning_"):
            setattr(self, name, getattr(other, name))
        # rankers over the same candidates see the same feature rows: a batch built for one serves all
        self._batch_memo = other.__dict__.setdefault("_batch_memo", {})
        self.training_summary_ = dict(other.training_summary_)
        t = time.perf_counter()
        say(f"ranker ({self.config.ranker}) on {len(self.training_table_):,} rows", 0.5)
        self.ranker_ = None if self.config.ranker is None else make_ranker(
            self.config.ranker, self.config.ranker_params, self.config.seed).fit(self.training_table_)
        self.fit_timings_ = {"ranker": time.perf_counter() - t}
        say("done", 1.0)
        return self

    def _generators(self, dataset: Dataset, say: Progress, lo: float, hi: float):
        from .candidates import BlendGenerator

        gens = []
        for k, name in enumerate(self.config.sources):
            say(f"candidate source {name}", lo + (hi - lo) * k / len(self.config.sources))
            gens.append(make_generator(name, self.config.seed, self.source_params_.get(name)).fit(dataset))
        return BlendGenerator(generators=tuple(gens), quotas=self.config.quotas, prefit=True).fit(dataset)

    @staticmethod
    def _candidate_feature_set(base: FeatureSet, blend) -> FeatureSet:
        extra = []
        for name in blend.source_names:
            extra.append(Feature(f"cand_score_{name}", "user_x_media", "dense",
                                 f"Score the {name} candidate generator gives the title for this member."))
            extra.append(Feature(f"cand_rank_{name}", "user_x_media", "dense",
                                 f"Rank of the title in the {name} generator's list for this member (1 = top)."))
        return FeatureSet(tuple(base.features) + tuple(extra))

    def _with_candidate_features(self, features: FeatureTable, blend, users: pd.DataFrame) -> FeatureTable:
        """Add every source's score and rank of each row's title for its member (NaN where it has none)."""
        extra: dict[str, np.ndarray] = {}
        rows = features.rows
        member_ids = pd.Index(pd.unique(rows["user_id"].astype(str)))
        for gen in blend.generators:
            name = gen.source_name
            scores = gen.score_items(member_ids, users=users)
            values = scores.to_numpy(dtype=float)
            values = np.where(np.isfinite(values), values, np.nan)
            order = np.argsort(-np.nan_to_num(values, nan=-np.inf), axis=1, kind="stable")
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.arange(1, values.shape[1] + 1)[None, :].repeat(len(values), 0), axis=1)
            r = member_ids.get_indexer(rows["user_id"].astype(str))
            c = scores.columns.get_indexer(rows["item_id"].astype(str))
            ok = (r >= 0) & (c >= 0)
            s = np.full(len(rows), np.nan)
            k = np.full(len(rows), np.nan)
            s[ok] = values[r[ok], c[ok]]
            k[ok] = np.where(np.isnan(values[r[ok], c[ok]]), np.nan, ranks[r[ok], c[ok]])
            extra[f"cand_score_{name}"] = s
            extra[f"cand_rank_{name}"] = k
        frame = pd.concat([features.frame, pd.DataFrame(extra, index=features.frame.index)], axis=1)
        return FeatureTable(rows=features.rows, frame=frame, sparse=features.sparse,
                            feature_set=self._candidate_feature_set(features.feature_set, blend))

    def _holdout_table(self, dataset: Dataset, say: Progress, timings: dict[str, float]) -> TrainingTable:
        """Candidates of generators fitted without a random part of each member's interactions, labeled by
        whether they are in that hidden part (features see only the visible part)."""
        from .labels import downsample_negatives
        from .splits import stratified_split

        cfg = self.config
        t = time.perf_counter()
        visible, hidden = stratified_split(dataset, test_ratio=cfg.holdout_ratio, seed=cfg.seed)
        say("candidates without the hidden interactions", 0.1)
        early = self._generators(visible, say, 0.1, 0.4)
        timings["candidates_before_windows"] += time.perf_counter() - t
        t = time.perf_counter()
        truth = hidden.plays()[["user_id", "item_id"]].drop_duplicates().assign(label=1)
        members = pd.unique(truth["user_id"])
        now = dataset.end + pd.Timedelta(seconds=1)
        cands = early.recommend(members, n=cfg.n_candidates, now=now, users=dataset.users)
        rows = cands[["user_id", "item_id"]].merge(truth, on=["user_id", "item_id"], how="left")
        rows["label"] = rows["label"].fillna(0).astype(np.int8)
        counts = {"positive": int((rows["label"] == 1).sum()), "negative": int((rows["label"] == 0).sum()),
                  "ignored": 0}
        result = downsample_negatives(rows, cfg.training.negatives_per_positive or 1e9, cfg.seed,
                                      by=cfg.training.downsample_by)
        kept = result.frame.reset_index(drop=True)
        feature_rows = pd.DataFrame({"user_id": kept["user_id"].to_numpy(), "item_id": kept["item_id"].to_numpy(),
                                     "timestamp": now})
        if self.builder_.has_device_:
            feature_rows["device"] = None
        features = self._with_candidate_features(self.builder_.transform(feature_rows, visible), early,
                                                 dataset.users)
        timings["training_table"] += time.perf_counter() - t
        return TrainingTable(features, kept["label"].to_numpy(dtype=np.int8), np.ones(len(kept)), result.as_dict(),
                             counts, (None, now))

    def _candidate_table(self, dataset: Dataset, blend, start, end, seed: int) -> TrainingTable | None:
        """Rows (member, candidate) at `start` for members active in [start, end), labeled by what they did."""
        from .labels import POSITIVE, downsample_negatives, duration_weights, label_events

        cfg = self.config
        window = dataset.between(start, end).events
        if len(window) == 0:
            return None
        members = pd.unique(window["user_id"])
        cands = blend.recommend(members, n=cfg.n_candidates, now=start, users=dataset.users)
        if len(cands) == 0:
            return None
        labels = label_events(window, cfg.training.labels).to_numpy()
        window = window.assign(label=labels)
        played = window["watch_fraction"] > 0 if "watch_fraction" in window.columns else window["rating"].notna()
        # per (member, title): finished at least once -> 1; otherwise any middle-band play -> ignored; else 0
        outcome = window.assign(pos=window["label"] == POSITIVE, mid=(window["label"] < 0) & played.to_numpy())
        outcome = outcome.groupby(["user_id", "item_id"], sort=False).agg(
            pos=("pos", "any"), mid=("mid", "any"),
            minutes=("minutes_watched", "max") if "minutes_watched" in window.columns else ("pos", "size"))
        rows = cands[["user_id", "item_id"]].join(outcome, on=["user_id", "item_id"])
        pos = rows["pos"].fillna(False).to_numpy(dtype=bool)
        mid = rows["mid"].fillna(False).to_numpy(dtype=bool) & ~pos
        rows = rows.assign(label=np.where(pos, 1, np.where(mid, -1, 0)).astype(np.int8))
        counts = {"positive": int(pos.sum()), "negative": int((rows["label"] == 0).sum()), "ignored": int(mid.sum())}
        if counts["positive"] == 0:
            return None
        ratio = cfg.training.negatives_per_positive
        if ratio is not None:
            result = downsample_negatives(rows, ratio, seed, by=cfg.training.downsample_by)
            kept, balance = result.frame, result.as_dict()
        else:
            kept, balance = rows[rows["label"] >= 0], dict(counts)
        kept = kept.reset_index(drop=True)
        first_seen = window.groupby("user_id", sort=False).first()
        feature_rows = pd.DataFrame({"user_id": kept["user_id"].to_numpy(), "item_id": kept["item_id"].to_numpy(),
                                     "timestamp": start})
        if self.builder_.has_device_:
            feature_rows["device"] = kept["user_id"].map(first_seen["device"]).to_numpy()
        weight_frame = kept.assign(minutes_watched=kept["minutes"] if "minutes_watched" in window.columns else np.nan,
                                   watch_fraction=np.where(kept["label"] == 1, 1.0, 0.0))
        weight = duration_weights(weight_frame, dataset.items, cfg.training.weights).to_numpy(dtype=float)
        features = self.builder_.transform(feature_rows, dataset)
        return TrainingTable(features, kept["label"].to_numpy(dtype=np.int8), weight, balance, counts,
                             (pd.Timestamp(start), pd.Timestamp(end)))

    def _with_candidate_negatives(self, table: TrainingTable, dataset: Dataset, blend, cut) -> TrainingTable:
        """Add unplayed blend candidates as negatives (at the member's session times in the window)."""
        n = self.config.candidate_negatives
        if n == 0:
            return table
        rng = np.random.default_rng(self.config.seed)
        rows = table.features.rows
        positives = rows[table.label == 1]
        members = pd.unique(positives["user_id"])
        cands = blend.recommend(members, n=self.config.n_candidates, now=cut, users=dataset.users)
        played = set(zip(dataset.plays()["user_id"], dataset.plays()["item_id"]))
        cands = cands[[(u, i) not in played for u, i in zip(cands["user_id"], cands["item_id"])]]
        picked = cands.groupby("user_id", sort=False).sample(frac=1.0, random_state=self.config.seed)
        picked = picked.groupby("user_id", sort=False).head(n)
        times = positives.groupby("user_id")["timestamp"].apply(list)
        when = [times[u][rng.integers(len(times[u]))] for u in picked["user_id"]]
        extra_rows = pd.DataFrame({"user_id": picked["user_id"].to_numpy(), "item_id": picked["item_id"].to_numpy(),
                                   "timestamp": pd.to_datetime(when)})
        if "device" in rows.columns:
            extra_rows["device"] = None
        extra = self.builder_.transform(extra_rows, dataset)
        merged = FeatureTable(
            rows=pd.concat([rows, extra.rows], ignore_index=True),
            frame=pd.concat([table.features.frame, extra.frame], ignore_index=True),
            sparse={k: Ragged.concat([v, extra.sparse[k]]) for k, v in table.features.sparse.items()},
            feature_set=table.features.feature_set,
        )
        balance = dict(table.balance, candidate_negatives=len(extra_rows))
        return TrainingTable(merged, np.concatenate([table.label, np.zeros(len(extra_rows), np.int8)]),
                             np.concatenate([table.weight, np.ones(len(extra_rows))]), balance,
                             table.label_counts, table.window)

    # ------------------------------------------------------------ serving
    def _check(self) -> None:
        if not hasattr(self, "generators_"):
            raise NotFittedError("this Recommender is not fitted yet: call fit(dataset) or Recommender.load(dir)")

    def _now(self, context: dict[str, Any] | None):
        context = context or {}
        now = context.get("now")
        now = pd.Timestamp(now) if now is not None else self.history_.end + pd.Timedelta(minutes=1)
        if now.tzinfo is not None:
            now = now.tz_convert("UTC").tz_localize(None)
        device = context.get("device")
        if device is not None and self.builder_.has_device_:
            known = set(self.history_.events["device"].dropna().unique())
            if device not in known:
                raise ValueError(f"unknown device {device!r}; this data knows {sorted(known)}")
        return now, device

    def _score_candidates(self, user_ids, context, users: pd.DataFrame | None = None):
        now, device = self._now(context)
        history = self.history_.as_of(now) if now <= self.history_.end else self.history_
        # the generators know every member of the history; only attributes of others need passing
        member_table = None
        if users is not None:
            wanted = pd.Index(np.atleast_1d(np.asarray(user_ids, dtype=object)).astype(str))
            member_table = users[users["user_id"].astype(str).isin(wanted)
                                 & ~users["user_id"].astype(str).isin(self.history_.users["user_id"])]
            member_table = member_table if len(member_table) else None
        cands, features = self._candidate_features(user_ids, now, device, history, member_table)
        if self.ranker_ is not None:
            p = correct_probability(self.ranker_.predict_proba(features), self.negative_keep_rate_)
        else:
            p = cands["score"].to_numpy(dtype=float)
        ranked = cands.assign(score=p, candidate_score=cands["score"].to_numpy(), candidate_rank=cands["rank"])
        ranked = ranked.drop(columns=["rank"])
        ranked["_row"] = np.arange(len(ranked))
        order = pd.Index(pd.unique(ranked["user_id"]))
        ranked = ranked.assign(_user=order.get_indexer(ranked["user_id"])).sort_values(
            ["_user", "score"], ascending=[True, False], kind="stable").drop(columns="_user")
        return cands, ranked, features, history, now

    #: Below this many members a call is "small": it runs single-threaded and skips the batch memo.
    _SMALL_CALL = 100

    def _candidate_features(self, user_ids, now, device, history: Dataset, member_table):
        """Candidates and their feature rows (with every source's score when a ranker reads them).

        A large batch is remembered (the last one only) in a memo that Recommenders fitted with
        `reuse=` share, so comparing rankers on the same members builds the rows once. Single-user
        calls (serving, the app) never touch it.
        """
        wanted = np.atleast_1d(np.asarray(user_ids, dtype=object))
        memo = getattr(self, "_batch_memo", None) if len(wanted) >= self._SMALL_CALL else None
        key = None
        if memo is not None and member_table is None:
            key = (hash(tuple(map(str, wanted))), len(wanted), now, device, id(history))
            hit = memo.get("last")
            if hit is not None and hit[0] == key:
                return hit[1], hit[2]
        cands = self.generators_.recommend(user_ids, n=self.config.n_candidates, now=now, users=member_table)
        rows = pd.DataFrame({"user_id": cands["user_id"].to_numpy(), "item_id": cands["item_id"].to_numpy(),
                             "timestamp": now})
        if self.builder_.has_device_:
            rows["device"] = device
        features = self.builder_.transform(rows, history)
        if self.ranker_ is not None:
            features = self._with_candidate_features(features, self.generators_, member_table)
        if key is not None:
            memo["last"] = (key, cands, features)
        return cands, features

    def recommend(self, user_ids, k: int = 10, context: dict[str, Any] | None = None,
                  users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Top-k per member: user_id, rank, item_id, title, score (P(watch)), source, reason.

        `context` may hold `now` (a time; default just after the data ends) and `device`.
        `users` adds attributes (age, language, ...) for members the model has not seen.
        """
        self._check()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        with self._threads(user_ids):
            _, ranked, features, history, now = self._score_candidates(user_ids, context, users)
            ids = pd.unique(ranked["user_id"])
            ignored = self.reranker_.ignored_titles(history, ids, now)
            ages = None if users is None or "age" not in users else dict(zip(users["user_id"].astype(str),
                                                                             users["age"]))
            result = self.reranker_.rerank(ranked, k=k, ignored=ignored, ages=ages)
            return self._present(result.items, features)

    def _threads(self, user_ids):
        """A few members' work is too small to share between threads (see `recsys.threads`)."""
        n = len(np.atleast_1d(np.asarray(user_ids, dtype=object)))
        return single_threaded() if n < self._SMALL_CALL else nullcontext()

    def inspect(self, user_id, k: int = 10, context: dict[str, Any] | None = None,
                users: pd.DataFrame | None = None) -> Inspection:
        """One member's candidates (with every source's score), ranked list, re-ranked top k and changes."""
        self._check()
        with single_threaded():
            cands, ranked, features, history, now = self._score_candidates([user_id], context, users)
            ignored = self.reranker_.ignored_titles(history, [str(user_id)], now)
            ages = None if users is None or "age" not in users else dict(zip(users["user_id"].astype(str),
                                                                             users["age"]))
            result = self.reranker_.rerank(ranked, k=k, ignored=ignored, ages=ages)
        ranked = ranked.assign(rank=np.arange(1, len(ranked) + 1))
        return Inspection(candidates=cands, ranked=self._titled(ranked.drop(columns=["_row"])),
                          final=self._present(result.items, features), changes=self._titled(result.changes),
                          features=features)

    def predict_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """P(watch) for arbitrary (user_id, item_id, timestamp[, device]) rows, features point in time."""
        self._check()
        if self.ranker_ is None:
            raise ValueError("this Recommender has no ranker (ranker=None)")
        rows = rows.reset_index(drop=True)
        if self.builder_.has_device_ and "device" not in rows.columns:
            rows = rows.assign(device=None)
        features = self.builder_.transform(rows, self.history_)
        features = self._with_candidate_features(features, self.generators_, self.history_.users)
        return correct_probability(self.ranker_.predict_proba(features), self.negative_keep_rate_)

    def explain(self, user_id, item_id, context: dict[str, Any] | None = None, top: int = 10) -> pd.DataFrame:
        """The top feature contributions to P(watch) of this title for this member now."""
        self._check()
        if self.ranker_ is None:
            raise ValueError("this Recommender has no ranker (ranker=None): nothing to explain")
        now, device = self._now(context)
        history = self.history_.as_of(now) if now <= self.history_.end else self.history_
        rows = pd.DataFrame({"user_id": [str(user_id)], "item_id": [str(item_id)], "timestamp": [now]})
        if self.builder_.has_device_:
            rows["device"] = device
        with single_threaded():
            features = self._with_candidate_features(self.builder_.transform(rows, history), self.generators_,
                                                     self.history_.users)
            return self.ranker_.explain(features, 0, top=top)

    def _titled(self, frame: pd.DataFrame) -> pd.DataFrame:
        if getattr(self, "_titles", None) is None:
            self._titles = self.history_.items.set_index("item_id")["title"]
        titles = self._titles
        return frame.assign(title=frame["item_id"].map(titles).to_numpy()) if len(frame) else frame.assign(title=[])

    def _present(self, items: pd.DataFrame, features: FeatureTable) -> pd.DataFrame:
        cols = ["user_id", "rank", "item_id", "title", "score", "source", "reason"]
        if len(items) == 0:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
        wanted = [c for c in _REASON_FEATURES if c in features.frame.columns]
        rows = features.frame[wanted].iloc[items["_row"].to_numpy()].to_dict("records")
        out = self._titled(items.reset_index(drop=True))
        out["reason"] = [self._reason(src, row, item) for src, row, item in zip(out["source"], rows, out["item_id"])]
        return out[cols + [c for c in ("sources", "rank_before_rerank") if c in out.columns]]

    def _reason(self, source: str, row: dict[str, Any], item_id: str) -> str:
        """A short, human reason from the features behind this title's score."""
        if getattr(self, "_genres", None) is None:
            items = self.history_.items
            self._genres = dict(zip(items["item_id"], items["genres"])) if "genres" in items.columns else {}
        get = row.get
        if (get("user_show_plays") or 0) > 0:
            return "Next in a show you are watching"
        if (get("is_holiday_title") or 0) > 0 and (get("days_to_holiday") or 99) <= 45:
            return f"For the coming {str(get('upcoming_holiday')).replace('_', ' ')}"
        genres = list(self._genres.get(item_id, []))
        if (get("user_genre_match") or 0) >= 0.3 and genres:
            return f"Matches what you watch: {', '.join(genres[:2])}"
        if (get("user_actor_match") or 0) > 0:
            return "With actors from titles you watched"
        if (get("days_on_platform") or 1e9) <= 21:
            return "New on the platform"
        if source == "popularity":
            return "Popular on the platform right now"
        if source == "content":
            return "Similar to titles you watched" if (get("user_plays") or 0) > 0 else "Fits your profile"
        if (get("user_plays") or 0) == 0:
            return "Popular with members like you"
        return "Members with similar taste watched it"

    # ------------------------------------------------------ online feedback
    def fork(self) -> "Recommender":
        """A copy that can `observe` new events without changing this model.

        The fitted parameters (generators' factors, ranker, feature vocabularies) are shared and only
        read; what `observe` replaces (history, generators' seen titles, caches) is per copy. The
        online A/B simulator forks the app's shared model so a run never alters it.
        """
        import copy

        self._check()
        twin = copy.copy(self)
        twin.builder_ = copy.copy(self.builder_)
        twin.reranker_ = copy.copy(self.reranker_)
        twin.generators_ = copy.copy(self.generators_)
        if hasattr(twin.generators_, "generators"):
            twin.generators_.generators = tuple(copy.copy(g) for g in self.generators_.generators)
        return twin

    def observe(self, events: pd.DataFrame) -> "Recommender":
        """Add events that happened after fit (logged schema) to what the model knows, without re-training.

        Features (member history, shows in progress, genre match, ...), the re-ranker's
        recommended-and-ignored memory and the generators' finished-title exclusion all see them; the
        learned parameters stay as fitted. Members and titles must be known to the model's data. Mutates
        this model: `fork()` first to keep the original. Returns self.
        """
        from .data.schema import EVENTS
        from .data.validation import check_references, coerce_table
        from .labels import LabelConfig, POSITIVE, label_events

        self._check()
        if events is None or len(events) == 0:
            return self
        history = self.history_
        new = coerce_table(events.reset_index(drop=True), EVENTS, "observed events")
        check_references(new, "user_id", pd.Index(history.users["user_id"]), "observed events", "users")
        check_references(new, "item_id", pd.Index(history.items["item_id"]), "observed events", "items")
        new = new[[c for c in history.events.columns if c in new.columns]]
        merged = pd.concat([history.events, new], ignore_index=True)
        if len(history.events) and new["timestamp"].min() < history.events["timestamp"].max():
            merged = merged.sort_values("timestamp", kind="stable").reset_index(drop=True)
        self.history_ = history._with(history.users, history.items, merged, history.searches)
        finished = new[label_events(new, LabelConfig()).to_numpy() == POSITIVE]
        if len(finished):
            self.generators_.mark_seen(finished["user_id"].to_numpy(), finished["item_id"].to_numpy())
        self._titles = None
        return self

    # --------------------------------------------------------------- persist
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model as plain files (data copy, generators, ranker, manifest) atomically to `path`."""
        from .data.loaders import save_dataset

        self._check()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            save_dataset(self.history_, tmp / "data")
            self.generators_.save(tmp / "candidates")
            if self.ranker_ is not None:
                self.ranker_.save(tmp / "ranker")
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "config": self.config.to_json(),
                "data": {"name": self.history_.name, "fingerprint": self.fingerprint_,
                         "end": str(self.history_.end)},
                "training": _jsonable(self.training_summary_), "fit_seconds": self.fit_timings_,
                "metrics": _jsonable(getattr(self, "metrics_", {})),
                "source_params": _jsonable(self.source_params_), "tuning": _jsonable(self.tuning_),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            backup = None
            if path.exists():
                backup = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, backup)
            os.replace(tmp, path)
            if backup is not None:
                shutil.rmtree(backup, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Recommender":
        """Read a saved Recommender; missing, corrupted or mismatched files raise ArtifactError."""
        from .candidates import CandidateGenerator
        from .data.loaders import read_parquet_folder
        from .ranking import load_ranker

        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise ArtifactError("no manifest.json: not a saved recsys model (train one with `recsys train`)",
                                file=str(path))
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ArtifactError(f"unreadable manifest ({err})", file=str(manifest_path)) from err
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ArtifactError("not a recsys Recommender manifest", file=str(manifest_path))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(f"format version {manifest.get('format_version')!r} is not supported "
                                f"(this recsys reads {FORMAT_VERSION})", file=str(manifest_path), hint="retrain the model")
        try:
            config = RecommenderConfig.from_json(manifest["config"])
        except (KeyError, TypeError, ValueError) as err:
            raise ArtifactError(f"the saved configuration is invalid ({err})", file=str(manifest_path)) from err
        model = cls(config)
        try:
            history = read_parquet_folder(path / "data", name=manifest.get("data", {}).get("name"))
        except DataError as err:
            raise ArtifactError(f"the model's data copy is unreadable: {err}", file=str(path / "data")) from err
        if history.fingerprint() != manifest.get("data", {}).get("fingerprint"):
            raise ArtifactError("the data copy does not match the manifest's fingerprint: files from different "
                                "trainings were mixed, or a file was changed", file=str(path / "data"))
        try:
            model.generators_ = CandidateGenerator.load(path / "candidates")
            model.ranker_ = load_ranker(path / "ranker") if config.ranker is not None else None
        except DataError as err:
            raise ArtifactError(f"could not load the model: {err}", file=str(path)) from err
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ArtifactError(f"could not load the model ({type(err).__name__}: {err})", file=str(path)) from err
        model.builder_ = FeatureBuilder(seed=config.seed).fit(history)
        model.reranker_ = ReRanker(config.rerank).fit(history, model.builder_.embeddings_[:-1]
                                                      if model.builder_.embeddings_ is not None else None)
        model.history_ = history
        model.fingerprint_ = manifest["data"]["fingerprint"]
        model.training_summary_ = manifest.get("training", {})
        model.negative_keep_rate_ = float(model.training_summary_.get("negative_keep_rate", 1.0))
        model.fit_timings_ = manifest.get("fit_seconds", {})
        model.metrics_ = manifest.get("metrics", {})
        model.source_params_ = manifest.get("source_params", {})
        model.tuning_ = manifest.get("tuning", {})
        return model


_REASON_FEATURES = ("user_show_plays", "is_holiday_title", "days_to_holiday", "upcoming_holiday", "user_genre_match",
                    "user_actor_match", "days_on_platform", "user_plays")


def _stack_tables(tables: list[TrainingTable]) -> TrainingTable:
    """One training table from several windows' tables (same features)."""
    if len(tables) == 1:
        return tables[0]
    first = tables[0].features
    features = FeatureTable(
        rows=pd.concat([t.features.rows for t in tables], ignore_index=True),
        frame=pd.concat([t.features.frame for t in tables], ignore_index=True),
        sparse={k: Ragged.concat([t.features.sparse[k] for t in tables]) for k in first.sparse},
        feature_set=first.feature_set,
    )
    counts = {k: sum(t.label_counts[k] for t in tables) for k in tables[0].label_counts}
    return TrainingTable(features, np.concatenate([t.label for t in tables]),
                         np.concatenate([t.weight for t in tables]), tables[-1].balance, counts,
                         (tables[0].window[0], tables[-1].window[1]))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
