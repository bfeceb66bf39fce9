"""Evaluation protocols: which data a model may see, what it is asked, and what counts as a hit.

temporal (default): time-series CV. For each fold the model is fitted on everything before
`train_end` and asked, at `train_end`, for each member's top titles; a hit is a title the
member finished (watch fraction > 80%, or rated >= 4) in the test window, excluding titles
they had already finished before (no model may recommend those again).

stratified: the per-user random split of public MovieLens tables (e.g. 75/25): fitted on
the train part, asked for every member's top titles; every held-out interaction is
relevant, whatever its rating; previously seen titles are excluded from the lists.

timecut: the temporal protocol of public MovieLens tables: one cut in time with the latest share
of all interactions after it (`splits.time_cut`); fitted on everything before the cut and asked
at the cut; a hit is a title finished or rated >= the label threshold after it, for members and
titles with at least one interaction before the cut (cold ones are dropped, as the published
tables drop them), excluding titles finished before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..labels import POSITIVE, LabelConfig, label_events
from ..splits import TimeSeriesCV, stratified_split, time_cut

__all__ = ["EvalFold", "Policy", "temporal_folds", "stratified_folds", "time_cut_folds", "RandomPolicy",
           "GeneratorPolicy", "RecommenderPolicy", "SharedStages", "OraclePolicy", "LoggingPolicy", "segment_users"]


@dataclass
class EvalFold:
    """One train / test split: the training data, the moment of recommendation, and the hits."""

    index: int
    train: Dataset
    now: pd.Timestamp
    truth: pd.DataFrame  # user_id, item_id (relevant titles)
    test_events: pd.DataFrame  # the raw test events (labeled rows for AUC)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def users(self) -> list[str]:
        return sorted(pd.unique(self.truth["user_id"]))


def _finished(events: pd.DataFrame, labels: LabelConfig) -> pd.DataFrame:
    lab = label_events(events, labels).to_numpy()
    return events.loc[lab == POSITIVE, ["user_id", "item_id"]].drop_duplicates()


def _new_hits(train: Dataset, test: Dataset, labels: LabelConfig) -> pd.DataFrame:
    """The (user_id, item_id) pairs finished in `test` that were not already finished in `train`."""
    hits = _finished(test.events, labels)
    before = _finished(train.events, labels)
    hits = hits.merge(before, on=["user_id", "item_id"], how="left", indicator=True)
    return hits[hits["_merge"] == "left_only"][["user_id", "item_id"]].reset_index(drop=True)


def temporal_folds(dataset: Dataset, n_folds: int = 3, test_days: float = 14.0, gap_days: float = 0.0,
                   min_train_days: float = 60.0, labels: LabelConfig | None = None) -> list[EvalFold]:
    """Expanding-window folds over the last `n_folds * test_days` days (see module docstring)."""
    labels = labels or LabelConfig()
    cv = TimeSeriesCV(n_folds=n_folds, test_days=test_days, gap_days=gap_days, min_train_days=min_train_days)
    out = []
    for fold in cv.split(dataset):
        train, test = fold.train, fold.test
        hits = _new_hits(train, test, labels)
        out.append(EvalFold(fold.index, train, pd.Timestamp(fold.train_end), hits, test.events,
                            {"train_end": str(fold.train_end), "test_start": str(fold.test_start),
                             "test_end": str(fold.test_end), "test_users": int(hits["user_id"].nunique()),
                             "relevant": len(hits)}))
    return out


def stratified_folds(dataset: Dataset, test_ratio: float = 0.25, seed: int = 0) -> list[EvalFold]:
    """One per-user random split; every held-out interaction is relevant."""
    train, test = stratified_split(dataset, test_ratio=test_ratio, seed=seed)
    truth = test.plays()[["user_id", "item_id"]].drop_duplicates().reset_index(drop=True)
    now = dataset.end + pd.Timedelta(seconds=1)
    return [EvalFold(0, train, now, truth, test.events,
                     {"test_ratio": test_ratio, "seed": seed, "test_users": int(truth["user_id"].nunique()),
                      "relevant": len(truth)})]


def time_cut_folds(dataset: Dataset, test_ratio: float = 0.2, labels: LabelConfig | None = None) -> list[EvalFold]:
    """One time cut with the latest `test_ratio` of interactions after it; cold members and titles dropped."""
    labels = labels or LabelConfig()
    fold = time_cut(dataset, test_ratio=test_ratio)
    train, test = fold.train, fold.test
    hits = _new_hits(train, test, labels)
    seen = train.plays()
    warm_user = hits["user_id"].isin(pd.unique(seen["user_id"])).to_numpy()
    warm_item = hits["item_id"].isin(pd.unique(seen["item_id"])).to_numpy()
    kept = hits[warm_user & warm_item].reset_index(drop=True)
    return [EvalFold(0, train, pd.Timestamp(fold.train_end), kept, test.events,
                     {"cut": str(fold.train_end), "test_ratio": test_ratio,
                      "train_interactions": len(seen), "test_interactions": len(test.plays()),
                      "test_users": int(kept["user_id"].nunique()), "relevant": len(kept),
                      "dropped_cold_users": int(hits.loc[~warm_user, "user_id"].nunique()),
                      "dropped_cold_titles": int(hits.loc[warm_user & ~warm_item, "item_id"].nunique())})]


def segment_users(fold: EvalFold) -> pd.DataFrame:
    """Per test member: activity segment (cold / light / heavy by plays before now), device, language."""
    users = pd.Index(fold.users, name="user_id")
    plays = fold.train.plays().groupby("user_id").size()
    n = plays.reindex(users).fillna(0).to_numpy()
    out = pd.DataFrame({"activity": np.where(n == 0, "cold", np.where(n < 10, "light", "heavy"))}, index=users)
    ev = fold.test_events
    if "device" in ev.columns and ev["device"].notna().any():
        out["device"] = ev.groupby("user_id")["device"].agg(lambda s: s.mode().iat[0] if len(s.mode()) else None
                                                              ).reindex(users).to_numpy()
    if "language" in fold.train.users.columns:
        out["language"] = fold.train.users.set_index("user_id")["language"].reindex(users).to_numpy()
    return out.reset_index()


class Policy(Protocol):
    """Anything that can be fitted on a Dataset and asked for top-k lists at a moment."""

    def fit(self, train: Dataset) -> "Policy": ...

    def recommend(self, user_ids: list[str], k: int, now: pd.Timestamp, users: pd.DataFrame) -> pd.DataFrame: ...


class RandomPolicy:
    """Uniformly random available titles (seeded): the floor of every chart."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train: Dataset) -> "RandomPolicy":
        self.items_ = train.items
        self.seen_ = _finished(train.events, LabelConfig()) if len(train.events) else pd.DataFrame(
            columns=["user_id", "item_id"])
        return self

    def recommend(self, user_ids, k, now, users) -> pd.DataFrame:
        rng = np.random.default_rng(self.seed)
        items = self.items_
        if "added_at" in items.columns:
            items = items[~(items["added_at"] > now)]
        ids = items["item_id"].to_numpy()
        seen = self.seen_.groupby("user_id")["item_id"].apply(set).to_dict()
        rows = []
        for u in user_ids:
            pick = [i for i in rng.permutation(ids)[: k + len(seen.get(u, ()))] if i not in seen.get(u, set())][:k]
            rows += [(u, i, r + 1, 1.0 / (r + 1)) for r, i in enumerate(pick)]
        return pd.DataFrame(rows, columns=["user_id", "item_id", "rank", "score"])


class GeneratorPolicy:
    """One candidate source (or a blend of several) used directly as the recommender.

    Sources are tuned exactly as inside the pipeline (`RecommenderConfig.tune`, on the training
    data only), so "the best single source" is as strong alone as it is under the ranker.
    """

    def __init__(self, sources: tuple[str, ...], seed: int = 0, quotas: dict[str, float] | None = None,
                 training_rows: str = "candidates", tune: str = "auto", validation: str = "auto") -> None:
        self.sources, self.seed, self.quotas = sources, seed, quotas
        self.training_rows, self.tune, self.validation = training_rows, tune, validation

    def fit(self, train: Dataset) -> "GeneratorPolicy":
        from ..candidates import BlendGenerator
        from ..pipeline import RecommenderConfig, fit_generator, tuned_source_params

        config = RecommenderConfig(sources=tuple(self.sources), training_rows=self.training_rows, tune=self.tune,
                                   validation=self.validation, seed=self.seed)
        self.source_params_, self.tuning_ = tuned_source_params(config, train)
        gens = [fit_generator(s, self.seed, self.source_params_.get(s), train) for s in self.sources]
        self.model_ = gens[0] if len(gens) == 1 else BlendGenerator(generators=tuple(gens), quotas=self.quotas,
                                                                   prefit=True).fit(train)
        return self

    def recommend(self, user_ids, k, now, users) -> pd.DataFrame:
        return self.model_.recommend(user_ids, n=k, now=now, users=users)[["user_id", "item_id", "rank", "score"]]


class SharedStages:
    """What pipelines that differ only in their ranker share within one evaluation: the fitted candidate
    stage and features per training set (fit once, each ranker on the same rows), and the last batch of
    prepared candidate rows (built once, ranked by each)."""

    def __init__(self) -> None:
        self._fitted: list[tuple[Any, str, Any]] = []  # (training data, configuration without ranker, model)
        self._prepared: tuple[Any, tuple, Any, Any, list] | None = None

    @staticmethod
    def key(config) -> str:
        """What configurations that differ only in the ranker have in common."""
        return repr(sorted(dict(config.to_json(), ranker=None, ranker_params={}).items()))

    def model(self, config, train: Dataset):
        """A Recommender with `config` fitted on `train`, sharing an earlier one's stages where it can."""
        from ..pipeline import Recommender

        key = self.key(config)
        for data, k, model in self._fitted:
            if data is train and k == key:
                return model.with_ranker(config.ranker, config.ranker_params)
        model = Recommender(config).fit(train)
        if config.ranker is not None:
            self._fitted = [(d, k, m) for d, k, m in self._fitted if d is train] + [(train, key, model)]
        return model

    def prepared(self, model, user_ids, now, users):
        """The candidate rows of these members at `now` for `model`'s candidate stage (the last batch is kept)."""
        key = tuple(user_ids)
        held = self._prepared
        if held is not None and held[0] is model.generators_ and held[1] == key and held[2] == now \
                and held[3] is users:
            return held[4]
        rows = model.prepare(user_ids, {"now": now}, users)
        self._prepared = (model.generators_, key, now, users, rows)
        return rows


class RecommenderPolicy:
    """The full two-stage pipeline with a given configuration.

    Policies given the same `shared` stages reuse each other's candidates and training rows on the
    same training data when their configurations differ only in the ranker.
    """

    def __init__(self, config, shared: SharedStages | None = None) -> None:
        self.config = config
        self.shared = shared

    def fit(self, train: Dataset) -> "RecommenderPolicy":
        from ..pipeline import Recommender

        self.model_ = self.shared.model(self.config, train) if self.shared is not None else \
            Recommender(self.config).fit(train)
        return self

    def recommend(self, user_ids, k, now, users) -> pd.DataFrame:
        prepared = self.shared.prepared(self.model_, user_ids, now, users) if self.shared is not None else None
        return self.model_.recommend(user_ids, k=k, context={"now": now}, users=users, prepared=prepared)[
            ["user_id", "item_id", "rank", "score"]]

    def score_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """P(watch) of logged (user, item, time) rows, for AUC."""
        return self.model_.predict_rows(rows)

    def ranker_choice(self) -> dict[str, Any]:
        """The ranker this fold's pipeline serves, with the validation scores it was chosen by (`ranker="auto"`
        where tuning runs) or none (a named ranker, or no tuning)."""
        return {"ranker": self.model_.config.ranker, **({"chosen_by": self.model_.tuning_["ranker"]}
                                                        if "ranker" in self.model_.tuning_ else {})}


class OraclePolicy:
    """Ranks by the simulated world's true P(play and finish): the ceiling of every chart."""

    def __init__(self, world, device: str = "tv") -> None:
        self.world, self.device = world, device

    def fit(self, train: Dataset) -> "OraclePolicy":
        self.seen_ = _finished(train.events, LabelConfig())
        return self

    def recommend(self, user_ids, k, now, users) -> pd.DataFrame:
        items = self.world.items["item_id"].to_numpy()
        user_ids = [u for u in user_ids if u in self.world.users["user_id"].to_numpy()]
        p = self.world.true_watch_matrix(user_ids, now, self.device)
        item_pos = pd.Index(items).get_indexer(self.seen_["item_id"])
        user_pos = pd.Index(user_ids).get_indexer(self.seen_["user_id"])
        ok = (item_pos >= 0) & (user_pos >= 0)
        p[user_pos[ok], item_pos[ok]] = -1.0  # already finished: not recommendable
        top = np.argsort(-p, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(p, top, axis=1)
        r, c = np.nonzero(scores > 0)
        return pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object)[r], "item_id": items[top[r, c]],
                             "rank": c + 1, "score": scores[r, c]})

    def score_rows(self, rows: pd.DataFrame) -> np.ndarray:
        device = rows["device"].to_numpy() if "device" in rows.columns else self.device
        return self.world.true_watch_probability(rows["user_id"], rows["item_id"], rows["timestamp"].to_numpy(), device)


class LoggingPolicy:
    """The simulated world's logging policy (a Plackett-Luce draw per member at `now`): how the logs were made."""

    def __init__(self, world, seed: int = 0) -> None:
        self.world, self.seed = world, seed

    def fit(self, train: Dataset) -> "LoggingPolicy":
        self.states_ = self.world.states_from_events(train.events)
        return self

    def recommend(self, user_ids, k, now, users) -> pd.DataFrame:
        rows = []
        known = set(self.world.users["user_id"].astype(str))
        for n, user in enumerate(str(u) for u in user_ids):
            if user not in known:
                continue
            state = self.states_.setdefault(user, self.world.new_state())
            rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), 52, n]))
            titles, props = self.world.logging_row(user, now, state, rng)
            rows += [(user, t, r + 1, float(p)) for r, (t, p) in enumerate(zip(titles[:k], props[:k]))]
        return pd.DataFrame(rows, columns=["user_id", "item_id", "rank", "score"])


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t
