"""The two-stage Recommender: candidates from several sources -> a ranker's P(watch) -> re-rank top k.

Training avoids leakage by construction: candidate generators used to make the ranker's
training features are fitted on data before a cut; the ranker learns from the labeled
events after it (each row's features point in time); then the generators are refitted on
everything for serving. See docs/architecture.md.

Serving has one path, the batch path: a single member's request is a batch of one. Members are
taken in chunks; per chunk the sources score every title for every member, the blend picks the
candidates, the feature groups compute the rows, the ranker scores them and the re-rank picks
each member's list, all on whole columns.
"""

from __future__ import annotations

import copy
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .candidates.base import SOURCES, member_chunk
from .data.dataset import Dataset
from .data.errors import DataError
from .errors import ArtifactError, NotFittedError
from .features import FeatureBuilder, FeatureTable, Rows
from .features.slot import SlotFeatures
from .features.source_scores import SourceScores
from .ids import IdIndex
from .labels import WeightConfig, correct_probability
from .reasons import Reasons
from .rerank import ReRanker, RankedLists, RerankConfig
from .threads import single_threaded
from .training_table import (
    TrainingConfig, TrainingTable, candidate_table, holdout_table, stack_tables, with_candidate_negatives,
    with_source_scores, window_tables as build_window_tables,
)

__all__ = ["Recommender", "RecommenderConfig", "PREVIOUS_DEFAULT", "OBJECTIVES", "logs_impressions", "watch_minutes", "ArtifactError", "Inspection", "Prepared", "make_generator",
           "make_ranker", "fit_generator", "tuned_source_params", "learned_quotas", "tunes", "TRAINING_ROWS", "SMALL_CALL",
           "AUTO", "AUTO_RANKERS"]

TRAINING_ROWS = ("auto", "candidates", "holdout", "impressions")
VALIDATIONS = ("auto", "holdout", "temporal")
#: Features added with the online-quality work (exposure per genre, a holiday title's own season); the
#: previous default and models saved before them go without.
FEATURES_SINCE_PREVIOUS = ("user_genre_exposure", "user_genre_finish_rate", "days_to_title_holiday",
                           "title_holiday_season")
#: What a member's list is ordered by: the ranker's P(watch), or the minutes a watch of the title gives.
OBJECTIVES = ("watch", "minutes")
#: `ranker="auto"`: chosen among these on validation where tuning runs; the first where it does not (or on ties).
AUTO = "auto"
AUTO_RANKERS = ("logistic", "boosting")
#: Below this many members a call is "small": it runs with every thread pool limited to one thread.
SMALL_CALL = 100
Progress = Callable[[str, float], None]
#: Builds the ranker windows' impression rows, one table per window in order; `training_table.window_tables`'s
#: signature (dataset, windows, config, builder, history, slot_features=...).
WindowTables = Callable[..., list[TrainingTable]]


def _rankers():
    from .ranking import RANKERS

    return RANKERS


@dataclass(frozen=True)
class RecommenderConfig:
    """What the pipeline is made of.

    sources / quotas: candidate generators (names in `recsys.candidates.SOURCES`) and their shares
        of the `n_candidates` slots.
    ranker: a name in `recsys.ranking.RANKERS`, None to serve the blend's order, or "auto" (default): where
        tuning runs (see `tune`), the one of `AUTO_RANKERS` that best orders the latest part of its own
        training rows (`recsys.tuning.tune_ranker`; on ML-1M under a time cut LightGBM beats logistic
        regression by 0.04 NDCG@10), else logistic regression, which on the sample (3 temporal folds) ties
        LightGBM at a fraction of the fit time. A fitted Recommender's `config.ranker` is the one it chose.
    training_rows: "auto" (default) is "impressions" when the data logs impressions (rows shown and not
        played, with their slot), else "candidates". "impressions" trains on the logged impressions
        and plays of the last `ranker_windows` windows of `ranker_window_days` (P(watch | shown)), each
        row with its slot and the plays above it (`features.slot`; serving ranks as if in the top slot),
        so the ranker learns a title's appeal apart from where the logging policy put it. On the sample
        and a world of another seed it beats "candidates" online by 10+ minutes per session
        (docs/online-quality.md). "candidates" trains on what the ranker will rank: at the start of
        each window, the blend's candidates for every member active in it, labeled by what the member
        then did (finished > 80% positive; shown and ignored, abandoned or never played negative; the
        middle band ignored), which mixes what members like with what the logging policy showed them.
        Either way negatives are downsampled, positives weighted by minutes watched, impressions with a
        logged propensity by its inverse (`labels.propensity_weights`), and the generators that make the
        ranker's features see only data before the window.
        "holdout" mirrors the per-user random protocol of public benchmark tables instead: a random
        `holdout_ratio` of each member's interactions is hidden, generators and features see the
        rest, and candidates are labeled by whether they are among the hidden ones.
    objective: "minutes" (default) orders each list by expected minutes, P(watch) x the title's
        duration (what a finished watch gives; P(watch) alone where durations are unknown), the
        measure members' sessions are judged by; "watch" by P(watch). `score` is P(watch) either way.
    exclude_features: feature names the ranker does without (`FeatureBuilder.exclude`).
    candidate_negatives: ("impressions" only) unplayed blend candidates added per member as negatives.
    source_params: per source, parameters that replace its defaults (e.g. {"ease": {"l2": 200}}).
    tune: "auto" (default) tunes EASE and ALS on a validation split of the training data when the
        data is explicit ratings (MovieLens-like; the defaults were tuned on the sample world),
        "on" always, "off" never (see `recsys.tuning`). `source_params` win over tuning. When tuning runs
        and `quotas` is None, the blend's quotas are learned on the same validation split (`learned_quotas`:
        recall@n_candidates under a ranker, NDCG@10 of the blend's order without one).
    validation: the split tuning validates on: "holdout" (a per-user random share hidden), "temporal" (the
        last `ranker_window_days` hidden) or "auto" (default: holdout for holdout rows and rating data, else
        temporal). An evaluation sets the one that mirrors its protocol.
    """

    sources: tuple[str, ...] = ("popularity", "ease", "als", "content", "two_tower")
    quotas: dict[str, float] | None = None
    n_candidates: int = 200
    ranker: str | None = AUTO
    ranker_params: dict[str, Any] = field(default_factory=dict)
    ranker_window_days: float = 14.0
    ranker_windows: int = 3
    training_rows: str = "auto"
    objective: str = "minutes"
    exclude_features: tuple[str, ...] = ()
    holdout_ratio: float = 0.2
    candidate_negatives: int = 0
    source_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    tune: str = "auto"
    validation: str = "auto"
    training: TrainingConfig = field(default_factory=TrainingConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError(f"no candidate source; choose from {', '.join(SOURCES.names())}")
        SOURCES.check(self.sources, "candidate source")
        if self.ranker == AUTO:
            if self.ranker_params:
                raise ValueError(f"ranker_params need a named ranker, not {AUTO!r}: choose one of "
                                 f"{', '.join(_rankers().names())}")
        elif self.ranker is not None:
            _rankers().check([self.ranker])
        if self.n_candidates < 1 or self.ranker_window_days <= 0 or self.candidate_negatives < 0 \
                or self.ranker_windows < 1:
            raise ValueError("n_candidates >= 1, ranker_window_days > 0, ranker_windows >= 1 and "
                             "candidate_negatives >= 0 are required")
        if self.tune not in ("auto", "on", "off"):
            raise ValueError(f"tune must be 'auto', 'on' or 'off', got {self.tune!r}")
        if self.validation not in VALIDATIONS:
            raise ValueError(f"validation must be one of {VALIDATIONS}, got {self.validation!r}")
        SOURCES.check(list(self.source_params), "source with source_params")
        if self.training_rows not in TRAINING_ROWS:
            raise ValueError(f"training_rows must be one of {TRAINING_ROWS}, got {self.training_rows!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")

    def window_bounds(self, dataset: Dataset) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The ranker's training windows [start, end) on `dataset`, oldest first: `ranker_windows` of
        `ranker_window_days` each, the last ending just after the data's last event."""
        end = dataset.end + pd.Timedelta(seconds=1)
        span = pd.Timedelta(days=self.ranker_window_days)
        first = end - span * self.ranker_windows
        return [(first + span * w, first + span * (w + 1)) for w in range(self.ranker_windows)]

    def rows_for(self, dataset: Dataset) -> str:
        """The training rows this configuration uses on `dataset` (resolves "auto")."""
        if self.training_rows != "auto":
            return self.training_rows
        return "impressions" if logs_impressions(dataset) else "candidates"

    def window_rows_refusal(self, dataset: Dataset) -> str | None:
        """Why `Recommender.fit(window_tables=...)` cannot build this configuration's ranker rows on `dataset`
        (they are built per window from logged impressions only), or None when it can."""
        if self.ranker is None:
            return "a configuration without a ranker has no training rows to build"
        rows = self.rows_for(dataset)
        if rows == "impressions":
            return None
        if self.training_rows != "auto":
            return f"this configuration trains on {rows} rows (training_rows={self.training_rows!r})"
        if dataset.feedback == "explicit":
            return f"explicit ratings train on held-out rows ({dataset.name})"
        return f"{dataset.name} logs no impressions (shown, not played), so it trains on candidate rows"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["sources"] = list(self.sources)
        out["exclude_features"] = list(self.exclude_features)
        out["rerank"]["steps"] = list(self.rerank.steps)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RecommenderConfig":
        from .labels import LabelConfig

        data = dict(data)
        # saved before these options existed: keep serving the way the model was trained to
        data.setdefault("objective", "watch")
        data["exclude_features"] = tuple(data.get("exclude_features", FEATURES_SINCE_PREVIOUS))
        training = dict(data.pop("training", {}) or {})
        training.setdefault("sampler", "random")  # the only sampler before "hash" became the default
        training["labels"] = LabelConfig(**training.get("labels", {}))
        weights = dict(training.get("weights", {}) or {})
        weights.setdefault("propensity_clip", None)  # no propensity weights before they became the default
        training["weights"] = WeightConfig(**weights)
        rerank = dict(data.pop("rerank", {}) or {})
        if "steps" in rerank:
            rerank["steps"] = tuple(rerank["steps"])
        return cls(sources=tuple(data.pop("sources")), training=TrainingConfig(**training),
                   rerank=RerankConfig(**rerank), **data)


#: The default before the online-quality work (docs/online-quality.md): the ranker trained on candidate rows,
#: lists ordered by P(watch), without the features added since, negatives drawn by one seeded random draw (the
#: sampler before hash sampling became the default) and no inverse-propensity weights. The A/B page can still run it
#: against today's.
PREVIOUS_DEFAULT = RecommenderConfig(ranker="logistic", training_rows="candidates", objective="watch",
                                     exclude_features=FEATURES_SINCE_PREVIOUS,
                                     training=TrainingConfig(sampler="random",
                                                             weights=WeightConfig(propensity_clip=None)))


def logs_impressions(dataset: Dataset) -> bool:
    """True when the events log what was shown and not played, with its slot in the row (the sample's
    logging policy does; MovieLens ratings do not)."""
    if dataset.feedback != "implicit" or not dataset.has("events", "position"):
        return False
    return bool((dataset.events["watch_fraction"] == 0).any())


def make_generator(name: str, seed: int = 0, params: dict[str, Any] | None = None):
    """A candidate generator by source name (SOURCES), with its tuned defaults (or `params` in their place)."""
    import dataclasses

    cls = SOURCES.get(name)
    params = dict(params or {})
    if "seed" in {f.name for f in dataclasses.fields(cls)}:
        params = {"seed": seed, **params}
    return cls(**params)


def fit_generator(name: str, seed: int, params: dict[str, Any] | None, dataset: Dataset):
    """`make_generator(name, seed, params).fit(dataset)`, or the same fit made earlier in a `shared_fits()` scope."""
    from .fit_cache import active_cache

    def fit():
        return make_generator(name, seed, params).fit(dataset)

    cache = active_cache()
    return fit() if cache is None else cache.get_or_compute(cache.key("generator", dataset, name, seed, params or {}),
                                                            fit)


def tuned_source_params(config: RecommenderConfig, dataset: Dataset, progress: Callable[[str], None] | None = None
                        ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The parameters each source is fitted with: tuned on `dataset` when the config asks (see `tune`),
    then `config.source_params` on top; with the tuning log."""
    from .tuning import tune_sources

    params: dict[str, dict[str, Any]] = {}
    log: dict[str, Any] = {}
    if tunes(config, dataset):
        todo = [s for s in config.sources if s not in config.source_params]
        how = validation_kind(config, dataset)
        params, log = tune_sources(dataset, todo, lambda name, p: make_generator(name, config.seed, p), how=how,
                                   holdout_ratio=config.holdout_ratio, window_days=config.ranker_window_days,
                                   seed=config.seed, progress=progress)
    params.update({k: dict(v) for k, v in config.source_params.items()})
    return params, log


def tunes(config: RecommenderConfig, dataset: Dataset) -> bool:
    """Whether `config` tunes its sources (and learns its blend quotas) on `dataset` (see `tune`)."""
    return config.tune == "on" or (config.tune == "auto" and dataset.feedback == "explicit")


def validation_kind(config: RecommenderConfig, dataset: Dataset) -> str:
    """The validation split tuning uses: `config.validation`, or when "auto" the per-user random one for holdout
    rows and rating data, else temporal."""
    if config.validation != "auto":
        return config.validation
    return "holdout" if config.training_rows == "holdout" or dataset.feedback == "explicit" else "temporal"


def learned_quotas(config: RecommenderConfig, dataset: Dataset, params: dict[str, dict[str, Any]],
                   objective: str, n: int, blend=None, progress: Callable[[str], None] | None = None
                   ) -> tuple[dict[str, float] | None, dict[str, Any]]:
    """The blend's quotas: `config.quotas` when given, or when nothing is tuned (then None: the defaults);
    otherwise chosen on the tuning's validation split (`recsys.tuning.tune_quotas`) for `objective` over
    `n` candidates, with the search's log. `blend`, when given, is the sources already fitted on that
    split's visible part (the holdout rows' generators are); else they are fitted here."""
    from .candidates import BlendGenerator
    from .tuning import tune_quotas, validation_now, validation_split

    if config.quotas is not None or len(config.sources) < 2 or not tunes(config, dataset):
        return config.quotas, {}
    how = validation_kind(config, dataset)
    visible, truth = validation_split(dataset, how, config.holdout_ratio, config.ranker_window_days, config.seed)
    if len(truth) == 0:
        return None, {"skipped": "no hidden interactions to validate on"}
    if blend is None:
        gens = [fit_generator(s, config.seed, params.get(s), visible) for s in config.sources]
        blend = BlendGenerator(generators=tuple(gens), prefit=True).fit(visible)
    quotas, log = tune_quotas(blend, truth, validation_now(dataset, visible, how), dataset.users, n=n,
                              objective=objective, seed=config.seed, progress=progress)
    return quotas, dict(log, split=how)


def make_ranker(name: str, params: dict[str, Any], seed: int = 0):
    """A ranker by name (RANKERS)."""
    return _rankers().create(name, **{"seed": seed, **params})


@dataclass
class Inspection:
    """Everything behind one member's list: candidates by source, ranked list, final list, changes."""

    candidates: pd.DataFrame
    ranked: pd.DataFrame
    final: pd.DataFrame
    changes: pd.DataFrame
    features: FeatureTable


@dataclass
class Prepared:
    """The ranking stage's input for a chunk of members: their candidates and feature rows at a moment.

    Recommenders that share their candidate stage (`Recommender.with_ranker`) can rank the same
    `Prepared` chunks, so comparing rankers builds the rows once.
    """

    member_ids: np.ndarray
    candidates: Any  # CandidateBatch
    features: FeatureTable
    now: pd.Timestamp
    generators: Any


class Recommender:
    """Candidates -> ranking -> re-rank; `fit(dataset)`, `recommend(user_ids, k, context)`, save/load."""

    def __init__(self, config: RecommenderConfig | None = None) -> None:
        self.config = config or RecommenderConfig()

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset, progress: Progress | None = None,
            window_tables: WindowTables | None = None) -> "Recommender":
        """Fit every stage on `dataset` (see the module docstring for the time split). `window_tables` builds
        the ranker windows' impression rows with `training_table.window_tables`'s arguments (default: that function,
        in this process; `recsys.spark.SparkWindowTables` on Spark, every window in one pass)."""
        if not isinstance(dataset, Dataset):
            raise TypeError(f"fit needs a recsys Dataset, got {type(dataset).__name__}")
        if len(dataset.events) == 0:
            raise DataError("the dataset has no events to learn from", file=dataset.name, column="timestamp")
        say = progress or (lambda message, fraction: None)
        cfg = self.config
        refusal = cfg.window_rows_refusal(dataset) if window_tables is not None else None
        if refusal is not None:
            raise ValueError(f"window_tables builds ranker rows from logged impressions, which this fit does not "
                             f"use: {refusal}")
        timings: dict[str, float] = {}
        bounds = cfg.window_bounds(dataset)
        (first_cut, first_end), end = bounds[0], bounds[-1][1]
        rows_from = cfg.rows_for(dataset)
        if cfg.ranker is not None and rows_from != "holdout" and (
                dataset.start is None or first_cut <= dataset.start + (first_end - first_cut)):
            raise DataError(f"the data spans {(end - dataset.start).days} days; the ranker's {cfg.ranker_windows} "
                            f"window(s) of {cfg.ranker_window_days:g} days need more history before them",
                            file=dataset.name, column="timestamp", hint="lower ranker_window_days or ranker_windows")

        t = time.perf_counter()
        say("tuning the collaborative sources", 0.01)
        self.source_params_, self.tuning_ = tuned_source_params(cfg, dataset, lambda m: say(m, 0.01))
        self.tunes_ = tunes(cfg, dataset)
        self.quotas_ = cfg.quotas
        if cfg.ranker is None or rows_from != "holdout":  # holdout rows learn them from their own generators
            self._learn_quotas(dataset, say)
        timings["tuning"] = time.perf_counter() - t
        t = time.perf_counter()
        say("features: title attributes and synopsis embeddings", 0.02)
        self.builder_ = FeatureBuilder(seed=cfg.seed, exclude=cfg.exclude_features).fit(dataset)
        history = self.builder_.index(dataset)
        timings["features"] = time.perf_counter() - t

        self.ranker_ = None
        self.training_summary_: dict[str, Any] = {}
        if cfg.ranker is not None:
            table, self._full_lists = self._training_rows(dataset, history, bounds, say, timings,
                                                          rows_from, window_tables or build_window_tables)
            self.training_table_ = table
            self._fit_ranker(table, say, timings, self._full_lists)
            self.training_summary_.update({"first_window_start": str(first_cut), "windows": cfg.ranker_windows,
                                           "rows_from": rows_from})
        t = time.perf_counter()
        say("candidates (all data, for serving)", 0.7)
        self.generators_ = self._generators(dataset, say, 0.7, 0.97)
        timings["candidates"] = time.perf_counter() - t
        self._serve_on(dataset, history)
        self.fit_timings_ = timings
        self.fingerprint_ = dataset.fingerprint()
        say("done", 1.0)
        return self

    def _learn_quotas(self, dataset: Dataset, say: Progress, blend=None) -> None:
        """Set `quotas_` (and log them in `tuning_`) when tuning runs: recall of the candidates under a ranker,
        NDCG@10 of the blend's own order without one."""
        cfg = self.config
        objective = "recall" if cfg.ranker is not None else "ndcg"
        quotas, log = learned_quotas(cfg, dataset, self.source_params_, objective, cfg.n_candidates, blend,
                                     lambda m: say(m, 0.01))
        self.quotas_ = quotas
        if log:
            self.tuning_ = dict(self.tuning_, quotas=log)
        if blend is not None:
            blend.quotas = quotas

    def _training_rows(self, dataset: Dataset, history, bounds: list[tuple[pd.Timestamp, pd.Timestamp]],
                       say: Progress, timings: dict[str, float], rows_from: str, window_tables: WindowTables):
        """The ranker's training table (see `training_rows`) over the windows `bounds` (`window_bounds`), from
        generators fitted before each window, and where "auto" can choose the ranker (tuned data: here or in
        `with_ranker`) on candidate lists, a function giving the full lists, every negative kept, of given (member,
        moment) queries; else None."""
        from .splits import stratified_split

        cfg = self.config
        tables: list[TrainingTable] = []
        choosing = getattr(self, "tunes_", False) and rows_from != "impressions"
        every = replace(cfg.training, negatives_per_positive=None)
        latest = None  # (start, end, generators, seed) of the latest window with rows: where tune_ranker holds out
        full_rows = None
        timings["candidates_before_windows"] = 0.0
        timings["training_table"] = 0.0
        if rows_from == "holdout":
            t = time.perf_counter()
            visible, hidden = stratified_split(dataset, test_ratio=cfg.holdout_ratio, seed=cfg.seed)
            say("candidates without the hidden interactions", 0.1)
            early = self._generators(visible, say, 0.1, 0.4)
            timings["candidates_before_windows"] += time.perf_counter() - t
            t = time.perf_counter()
            # the tuning's validation split is this split (same ratio and seed): its generators serve both
            self._learn_quotas(dataset, say, early)
            timings["tuning"] = timings.get("tuning", 0.0) + time.perf_counter() - t
            t = time.perf_counter()
            tables.append(holdout_table(dataset, visible, hidden, early, self.builder_, cfg.n_candidates,
                                        cfg.training, cfg.seed))
            timings["training_table"] += time.perf_counter() - t
            if choosing:
                def full_rows(queries: pd.DataFrame) -> TrainingTable:
                    return holdout_table(dataset, visible, hidden, early, self.builder_, cfg.n_candidates, every,
                                         cfg.seed, members=pd.unique(queries["user_id"]))
        logged: list[TrainingTable] = []
        if rows_from == "impressions":  # every window's logged rows at once: a Spark engine builds them in one pass
            t = time.perf_counter()
            say(f"training rows of {cfg.ranker_windows} window(s) from the logged impressions", 0.05)
            slots = dataset.has("events", "position") and dataset.has("events", "session_id")
            logged = list(window_tables(dataset, bounds, cfg.training, self.builder_, history, slot_features=slots))
            if len(logged) != len(bounds):
                raise TypeError(f"window_tables gave {len(logged)} tables for {len(bounds)} windows: it takes every "
                                "window's bounds at once (training_table.window_tables) and gives a table per window")
            timings["training_table"] += time.perf_counter() - t
        for w, (cut, cut_end) in enumerate(bounds if rows_from != "holdout" else []):
            lo = 0.05 + 0.5 * w / cfg.ranker_windows
            t = time.perf_counter()
            say(f"window {w + 1}/{cfg.ranker_windows}: candidates as of {cut:%Y-%m-%d}", lo)
            early = self._generators(dataset.as_of(cut), say, lo, lo + 0.3 / cfg.ranker_windows)
            timings["candidates_before_windows"] += time.perf_counter() - t
            t = time.perf_counter()
            say(f"window {w + 1}/{cfg.ranker_windows}: training rows", lo + 0.4 / cfg.ranker_windows)
            if rows_from == "candidates":
                table = candidate_table(dataset, early, self.builder_, history, cut, cut_end, cfg.n_candidates,
                                        cfg.training, seed=cfg.seed + w)
            else:
                table, logged[w] = logged[w].in_row_order(), None  # each window's rows are freed once augmented
                table = with_candidate_negatives(table, dataset, early, self.builder_, history, cut,
                                                 cut_end, cfg.candidate_negatives, cfg.n_candidates, cfg.seed)
                table = TrainingTable(with_source_scores(table.features, early, users=dataset.users), table.label,
                                      table.weight, table.balance, table.label_counts, table.window)
            if table is not None and len(table):
                tables.append(table)
                if choosing and rows_from == "candidates":
                    latest = (cut, cut_end, early, cfg.seed + w)
            timings["training_table"] += time.perf_counter() - t
        if latest is not None:
            start, end, before_start, seed = latest

            def full_rows(queries: pd.DataFrame) -> TrainingTable | None:
                wanted = queries["timestamp"].to_numpy(dtype="datetime64[ns]") == start.to_datetime64()
                members = pd.unique(queries["user_id"].to_numpy()[wanted])
                return candidate_table(dataset, before_start, self.builder_, history, start, end,
                                       cfg.n_candidates, every, seed, members=members) if len(members) else None
        if not tables or sum(int((tb.label == 1).sum()) for tb in tables) == 0:
            raise DataError("no positive examples in the ranker's windows", file=dataset.name, column="label")
        before = sum(tb.balance.get("negatives_before", 0) for tb in tables)
        after = sum(tb.balance.get("negatives_after", 0) for tb in tables)
        self.negative_keep_rate_ = after / before if before else 1.0
        self.training_summary_ = {"balance": [tb.balance for tb in tables]}
        return stack_tables(tables), full_rows

    def _fit_ranker(self, table: TrainingTable, say: Progress, timings: dict[str, float],
                    full_rows: Callable[[pd.DataFrame], TrainingTable | None] | None = None) -> None:
        """Fit `config.ranker` on `table`; "auto" is first resolved (and `config` set to the chosen name), on the
        held-out members' full candidate lists where `full_rows` gives them."""
        from .tuning import tune_ranker

        if self.config.ranker == AUTO:
            name = AUTO_RANKERS[0]
            if getattr(self, "tunes_", False):
                t = time.perf_counter()
                name, log = tune_ranker(table, AUTO_RANKERS, lambda n: make_ranker(n, {}, self.config.seed),
                                        seed=self.config.seed, progress=lambda m: say(m, 0.55), full_rows=full_rows)
                self.tuning_ = dict(self.tuning_, ranker=log)
                timings["ranker_choice"] = time.perf_counter() - t
            self.config = replace(self.config, ranker=name)
        cfg = self.config
        t = time.perf_counter()
        say(f"ranker ({cfg.ranker}) on {len(table):,} rows", 0.6)
        self.ranker_ = make_ranker(cfg.ranker, cfg.ranker_params, cfg.seed).fit(table)
        timings["ranker"] = time.perf_counter() - t
        self.training_summary_.update({"rows": len(table), "positives": int((table.label == 1).sum()),
                                       "negative_keep_rate": self.negative_keep_rate_})

    def with_ranker(self, ranker: str | None, ranker_params: dict[str, Any] | None = None,
                    progress: Progress | None = None) -> "Recommender":
        """A new Recommender with another ranker fitted on this one's training rows; every other stage
        (sources, features, re-rank, data) is shared, not copied. How the evaluation compares rankers
        without refitting everything; `recommend(..., prepared=)` then shares the rows too."""
        self._check()
        if getattr(self, "training_table_", None) is None:
            raise ValueError("this Recommender kept no training rows (it was loaded, or has no ranker): fit one")
        say = progress or (lambda message, fraction: None)
        other = copy.copy(self)
        other.config = replace(self.config, ranker=ranker, ranker_params=dict(ranker_params or {}))
        other.tuning_ = {k: v for k, v in self.tuning_.items() if k != "ranker"}
        other.ranker_ = None
        other.training_summary_ = dict(self.training_summary_)
        timings: dict[str, float] = {}
        if ranker is not None:  # "auto" chooses on the same full lists as a fit of its own
            other._fit_ranker(self.training_table_, say, timings, getattr(self, "_full_lists", None))
        other.fit_timings_ = timings
        say("done", 1.0)
        return other

    def with_objective(self, objective: str) -> "Recommender":
        """The same fitted pipeline ordering its lists by another objective (`OBJECTIVES`): nothing is refitted
        and every fitted part is shared (how the inspector sets P(watch) order beside expected minutes)."""
        self._check()
        other = copy.copy(self)
        other.config = replace(self.config, objective=objective)
        return other

    def _generators(self, dataset: Dataset, say: Progress, lo: float, hi: float):
        from .candidates import BlendGenerator

        gens = []
        for k, name in enumerate(self.config.sources):
            say(f"candidate source {name}", lo + (hi - lo) * k / len(self.config.sources))
            gens.append(fit_generator(name, self.config.seed, self.source_params_.get(name), dataset))
        return BlendGenerator(generators=tuple(gens), quotas=getattr(self, "quotas_", self.config.quotas),
                              prefit=True).fit(dataset)

    def _serve_on(self, dataset: Dataset, history) -> None:
        """Set what serving reads: the data, its index, the re-ranker and the presentation tables."""
        self.reranker_ = ReRanker(self.config.rerank).fit(
            dataset, self.builder_.embeddings_[:-1] if self.builder_.embeddings_ is not None else None)
        self.reasons_ = Reasons().fit(dataset.items)
        self.history_index_ = history
        self._data = dataset
        self._observed: list[pd.DataFrame] = []
        self.end_ = dataset.end
        self.watch_minutes_ = watch_minutes(dataset.items, self.generators_.item_ids_)
        self.devices_ = (frozenset(dataset.events["device"].dropna().unique())
                         if "device" in dataset.events.columns else frozenset())
        items = dataset.items
        self.titles_ = np.append(items["title"].to_numpy(dtype=object), None)
        if not self.generators_.item_ids_.equals(self.builder_.item_ids_):
            raise ArtifactError("the candidate sources and the features were fitted on different catalogues",
                                file=dataset.name)

    @property
    def history_(self) -> Dataset:
        """Everything the model knows: the training data plus the events observed since."""
        self._check()
        if self._observed:
            data = self._data
            merged = pd.concat([data.events, *self._observed], ignore_index=True)
            merged = merged.sort_values("timestamp", kind="stable").reset_index(drop=True)
            self._data = data._with(data.users, data.items, merged, data.searches)
            self._observed = []
        return self._data

    # ------------------------------------------------------------ serving
    def _check(self) -> None:
        if not hasattr(self, "generators_"):
            raise NotFittedError("this Recommender is not fitted yet: call fit(dataset) or Recommender.load(dir)")

    def _now(self, context: dict[str, Any] | None):
        context = context or {}
        now = context.get("now")
        now = pd.Timestamp(now) if now is not None else self.end_ + pd.Timedelta(minutes=1)
        if now.tzinfo is not None:
            now = now.tz_convert("UTC").tz_localize(None)
        device = context.get("device")
        if device is not None and self.builder_.has_device_ and device not in self.devices_:
            raise ValueError(f"unknown device {device!r}; this data knows {sorted(self.devices_)}")
        return now, device

    def _members(self, user_ids) -> np.ndarray:
        from .candidates.base import as_id_index

        ids = np.asarray(pd.unique(as_id_index(user_ids).to_numpy()), dtype=object)
        return ids[ids != ""]

    def _member_table(self, member_ids: np.ndarray, users: pd.DataFrame | None) -> pd.DataFrame | None:
        """Attributes the caller gives for members the model does not know (the generators know the rest)."""
        if users is None:
            return None
        ids = users["user_id"].astype(str)
        wanted = IdIndex(member_ids)
        keep = (wanted.positions(ids.to_numpy(dtype=object)) >= 0) & \
            (self.history_index_.user_positions(ids.to_numpy(dtype=object)) < 0)
        table = users[keep]
        return table if len(table) else None

    def prepare(self, user_ids, context: dict[str, Any] | None = None, users: pd.DataFrame | None = None
                ) -> list[Prepared]:
        """The candidates and feature rows of these members at the context's moment, chunk by chunk."""
        self._check()
        now, device = self._now(context)
        members = self._members(user_ids)
        table = self._member_table(members, users)
        return self._chunked(members, lambda chunk: self._prepare(chunk, now, device, table))

    def _prepare(self, member_ids: np.ndarray, now: pd.Timestamp, device, table) -> Prepared:
        cands = self.generators_.candidates(member_ids, n=self.config.n_candidates, now=now, users=table)
        builder = self.builder_
        rows = Rows.for_lists(member_ids, self.history_index_.user_positions(member_ids), cands.member, cands.item,
                              builder.item_ids_, np.datetime64(now.to_datetime64(), "ns"),
                              device if builder.has_device_ else None, builder.origin_)
        features = builder.transform(rows, self.history_index_)
        if self.ranker_ is not None:  # the ranker reads every source's score and rank
            group = SourceScores(self.generators_.source_names)
            block = group.compute(cands.member, cands.item, cands.raw,
                                  [g.personal for g in self.generators_.generators])
            features = self._at_top_slot(features.with_features(block, group.features_))
        return Prepared(member_ids, cands, features, now, self.generators_)

    def _at_top_slot(self, features: FeatureTable) -> FeatureTable:
        """Rows to rank as if shown first in the row with nothing played above, for a ranker that learned
        slot effects from impressions (`recsys.features.slot`); others are unchanged."""
        if self.ranker_ is None or "shown_slot" not in self.ranker_.features_.get("dense", ()):
            return features
        slot = SlotFeatures()
        return features.with_features(slot.serving(len(features)), slot.features_)

    def _threads(self, n_members: int):
        """A few members' work is too small to share between threads (see `recsys.threads`)."""
        return single_threaded() if n_members < SMALL_CALL else nullcontext()

    def _order_key(self, p: np.ndarray, item: np.ndarray) -> np.ndarray:
        """What lists are ordered by (and the re-rank weighs): P(watch), or with the "minutes" objective
        P(watch) x the minutes a watch of the title gives (titles of unknown length: the median length)."""
        if self.config.objective != "minutes" or self.watch_minutes_ is None or self.ranker_ is None:
            return p  # without a ranker the blend's fused score is no probability to weigh
        return p * self.watch_minutes_[item]

    def _rank(self, part: Prepared, k: int, ages: dict | None, changes: bool):
        """Score and re-rank one prepared chunk: (picked candidate rows, ranks before the re-rank,
        changes, the scores, the score order)."""
        cands, features = part.candidates, part.features
        if self.ranker_ is not None:
            p = correct_probability(self.ranker_.predict_proba(features), self.negative_keep_rate_)
        else:
            p = np.asarray(cands.score, dtype=float)
        key = self._order_key(p, cands.item)
        order = _order_within(cands.member, key)
        history = self.history_index_
        ignored = self.reranker_.ignored(history, history.user_positions(part.member_ids), cands.member[order],
                                         cands.item[order], part.now)
        lists = RankedLists(part.member_ids, cands.member[order], cands.item[order], key[order],
                            self.reranker_.ages(part.member_ids, ages), ignored)
        rows, before, change_list = self.reranker_.rerank_lists(lists, k, changes=changes)
        return order[rows], before, change_list, p, order

    def recommend(self, user_ids, k: int = 10, context: dict[str, Any] | None = None,
                  users: pd.DataFrame | None = None, prepared: list[Prepared] | None = None) -> pd.DataFrame:
        """Top-k per member: user_id, rank, item_id, title, score (P(watch)), source, reason, sources,
        rank_before_rerank, expected_minutes (P(watch) x duration; NaN without durations or a ranker).

        `context` may hold `now` (a time; default just after the data ends) and `device`.
        `users` adds attributes (age, language, ...) for members the model has not seen.
        `prepared` (from `prepare`, of this model or one sharing its candidate stage) skips
        building the candidates and features again.
        """
        self._check()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if prepared is not None and any(part.generators is not self.generators_ for part in prepared):
            raise ValueError("these prepared rows come from another candidate stage (use with_ranker models)")
        ages = None if users is None or "age" not in users else dict(zip(users["user_id"].astype(str), users["age"]))

        def serve(part: Prepared) -> pd.DataFrame:
            rows, before, _, p, _ = self._rank(part, k, ages, changes=False)
            return self._present(part, rows, before, p)

        if prepared is not None:
            with self._threads(sum(len(part.member_ids) for part in prepared)):
                frames = [serve(part) for part in prepared]
        else:
            now, device = self._now(context)
            members = self._members(user_ids)
            table = self._member_table(members, users)
            frames = self._chunked(members, lambda chunk: serve(self._prepare(chunk, now, device, table)))
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in self._COLUMNS})
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def _chunked(self, members: np.ndarray, work: Callable[[np.ndarray], Any]) -> list[Any]:
        """`work` on chunks of members, in order; large batches use up to 4 cores, one thread pool thread each."""
        step = member_chunk(len(self.generators_.item_ids_))
        workers = min(os.cpu_count() or 1, 4)
        if len(members) < SMALL_CALL or workers < 2:
            with self._threads(len(members)):
                return [work(members[lo:lo + step]) for lo in range(0, max(len(members), 1), step)]
        step = min(step, max(SMALL_CALL, -(-len(members) // (2 * workers))))
        chunks = [members[lo:lo + step] for lo in range(0, len(members), step)]

        def run(chunk: np.ndarray):
            with single_threaded():  # the cores are shared out by chunk, not inside each product
                return work(chunk)

        # OpenBLAS (pthreads) has one process-wide pool that only one thread may limit: this one does,
        # before the workers start; each worker limits its own OpenMP (torch) pool
        with single_threaded(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recsys-batch") as pool:
            return list(pool.map(run, chunks))

    _COLUMNS = ["user_id", "rank", "item_id", "title", "score", "source", "reason", "sources", "rank_before_rerank",
                "expected_minutes"]

    def _present(self, part: Prepared, rows: np.ndarray, before: np.ndarray, p: np.ndarray) -> pd.DataFrame:
        if len(rows) == 0:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in self._COLUMNS})
        cands = part.candidates
        member, item = cands.member[rows], cands.item[rows]
        first = np.searchsorted(member, member, side="left")
        names = np.asarray(cands.names, dtype=object)
        source = names[cands.source[rows]]
        picked = replace(cands, bits=cands.bits[rows])
        return pd.DataFrame({
            "user_id": part.member_ids[member],
            "rank": (np.arange(len(rows)) - first + 1).astype(np.int64),
            "item_id": self.generators_.item_ids_.to_numpy(dtype=object)[item],
            "title": self.titles_[item],
            "score": p[rows],
            "source": source,
            "reason": self.reasons_.explain(part.features, rows, item, source),
            "sources": picked.source_labels(),
            "rank_before_rerank": before.astype(np.int64),
            "expected_minutes": p[rows] * self._length(item),
        })

    def _length(self, item: np.ndarray) -> np.ndarray:
        """Minutes a finished watch of each title gives (NaN where the data has no durations, or no ranker
        gives a P(watch) to multiply)."""
        if self.watch_minutes_ is None or self.ranker_ is None:
            return np.full(len(item), np.nan)
        return self.watch_minutes_[item]

    def inspect(self, user_id, k: int = 10, context: dict[str, Any] | None = None,
                users: pd.DataFrame | None = None) -> Inspection:
        """One member's candidates (with every source's score), ranked list, re-ranked top k and changes."""
        self._check()
        with single_threaded():
            part = self.prepare([user_id], context, users)[0]
            ages = None if users is None or "age" not in users else dict(zip(users["user_id"].astype(str),
                                                                             users["age"]))
            rows, before, change_list, p, order = self._rank(part, k, ages, changes=True)
        cands = part.candidates
        item_ids = self.generators_.item_ids_.to_numpy(dtype=object)
        frame = cands.frame(item_ids)
        ranked = frame.assign(score=p, candidate_score=cands.score, candidate_rank=cands.rank).drop(columns=["rank"])
        ranked = ranked.iloc[order].reset_index(drop=True)
        ranked = ranked.assign(rank=np.arange(1, len(ranked) + 1), title=self.titles_[cands.item[order]])
        changes = pd.DataFrame([(part.member_ids[cands.member[order[r]]], item_ids[cands.item[order[r]]], action,
                                 before_, to, why) for _, r, action, before_, to, why in change_list],
                               columns=["user_id", "item_id", "action", "from_rank", "to_rank", "reason"])
        changes["title"] = self.titles_[self.generators_.item_ids_.get_indexer(changes["item_id"])] if len(changes) \
            else pd.Series(dtype=object)
        return Inspection(candidates=frame, ranked=ranked, final=self._present(part, rows, before, p),
                          changes=changes, features=part.features)

    def features_for(self, rows: pd.DataFrame) -> FeatureTable:
        """The ranker's features of arbitrary (user_id, item_id, timestamp[, device]) rows: each row's
        history features see only events before its timestamp, its source scores are the sources' as fitted."""
        self._check()
        rows = rows.reset_index(drop=True)
        if self.builder_.has_device_ and "device" not in rows.columns:
            rows = rows.assign(device=None)
        return self._at_top_slot(with_source_scores(self.builder_.transform(rows, self.history_index_),
                                                    self.generators_, users=self._data.users))

    def predict_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """P(watch) for arbitrary (user_id, item_id, timestamp[, device]) rows, features point in time."""
        self._check()
        if self.ranker_ is None:
            raise ValueError("this Recommender has no ranker (ranker=None)")
        return correct_probability(self.ranker_.predict_proba(self.features_for(rows)), self.negative_keep_rate_)

    def explain(self, user_id, item_id, context: dict[str, Any] | None = None, top: int = 10) -> pd.DataFrame:
        """The top feature contributions to P(watch) of this title for this member now."""
        self._check()
        if self.ranker_ is None:
            raise ValueError("this Recommender has no ranker (ranker=None): nothing to explain")
        now, device = self._now(context)
        rows = pd.DataFrame({"user_id": [str(user_id)], "item_id": [str(item_id)], "timestamp": [now]})
        if self.builder_.has_device_:
            rows["device"] = device
        with single_threaded():
            return self.ranker_.explain(self.features_for(rows), 0, top=top)

    # ------------------------------------------------------ online feedback
    def fork(self) -> "Recommender":
        """A copy that can `observe` new events without changing this model.

        The fitted parameters (generators' factors, ranker, feature vocabularies) are shared and only
        read; what `observe` replaces (the history index, the generators' seen titles) is per copy.
        The online A/B simulator forks the app's shared model so a run never alters it.
        """
        self._check()
        twin = copy.copy(self)
        twin._observed = list(self._observed)
        twin.generators_ = copy.copy(self.generators_)
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
        from .labels import POSITIVE, LabelConfig, label_events

        self._check()
        if events is None or len(events) == 0:
            return self
        data = self._data
        new = coerce_table(events.reset_index(drop=True), EVENTS, "observed events")
        if (self.history_index_.user_positions(new["user_id"].to_numpy(dtype=object)) < 0).any():
            check_references(new, "user_id", pd.Index(data.users["user_id"]), "observed events", "users")
        if (self.generators_.item_lookup_.positions(new["item_id"].to_numpy(dtype=object)) < 0).any():
            check_references(new, "item_id", pd.Index(data.items["item_id"]), "observed events", "items")
        new = new[[c for c in data.events.columns if c in new.columns]]
        self.history_index_ = self.history_index_.extend(new)
        self._observed.append(new)
        self.end_ = max(self.end_, new["timestamp"].max())
        if "device" in new.columns:
            self.devices_ = self.devices_ | frozenset(new["device"].dropna().unique())
        finished = new[label_events(new, LabelConfig()).to_numpy() == POSITIVE]
        if len(finished):
            self.generators_.mark_seen(finished["user_id"].to_numpy(), finished["item_id"].to_numpy())
        return self

    # --------------------------------------------------------------- persist
    def save(self, path: str | Path) -> Path:
        """Write the model as one component (data copy, generators, ranker, manifest) atomically to `path`."""
        from .persistence import save_recommender

        self._check()
        return save_recommender(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """Read a saved Recommender; missing, corrupted or mismatched files raise ArtifactError naming the file."""
        from .persistence import load_recommender

        return load_recommender(cls, path)


def watch_minutes(items: pd.DataFrame, item_ids: pd.Index) -> np.ndarray | None:
    """Per title of `item_ids` (and a padding entry), the minutes a finished watch gives: its duration, the
    median duration where it is missing; None when the data has no durations (lists keep P(watch) order)."""
    if "duration_min" not in items.columns:
        return None
    length = pd.to_numeric(items["duration_min"], errors="coerce")
    length = length.set_axis(items["item_id"].astype(str).to_numpy()).reindex(pd.Index(item_ids).astype(str))
    valid = length[(length > 0) & np.isfinite(length)]
    if valid.empty:
        return None
    filled = length.where((length > 0) & np.isfinite(length), float(valid.median())).to_numpy(dtype=float)
    return np.append(filled, float(valid.median()))


def _order_within(member: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Row order that keeps members in place (rows come grouped by member) and sorts each member's rows
    by score, best first; ties keep their order."""
    if len(member) == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(member)
    start = np.concatenate([[0], np.cumsum(counts)])[:-1]
    col = np.arange(len(member)) - start[member]
    grid = np.full((len(counts), int(counts.max())), np.inf)  # padding sorts after every real row
    grid[member, col] = np.where(np.isnan(score), np.finfo(np.float64).max, -score)  # a NaN score comes last
    order = np.argsort(grid, axis=1, kind="stable")
    return (start[:, None] + order)[np.arange(grid.shape[1])[None, :] < counts[:, None]]
