"""What an arm of the online experiment shows: policies that recommend for a batch of sessions and
observe what members then did, without re-training (unless asked).

Every policy here follows one small protocol (`OnlinePolicy`):

- `start(dataset, world)` prepares a fresh copy for one run (fitting, or forking a fitted model);
- `recommend(requests, k, now)` returns each member's list for a batch of sessions (`requests`:
  user_id, timestamp, device, session_id; `now` is the batch's moment, no later than any session);
- `observe(events)` feeds back the events of the batch (logged schema) so that later sessions see
  them: finished titles are not shown again, the Recommender's features and re-ranker read them;
- `retrain()` refits on everything seen so far (only when the experiment asks, `retrain_every_days`).

`make_policy(name)` builds one by name (the ONLINE_POLICIES registry: `popularity`, `random`,
`oracle`, `logging`), or from the folder of a model saved by `recsys train`; a fitted `Recommender` object is
accepted as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..data.errors import DataError
from ..data.schema import maturity_min_ages
from ..labels import POSITIVE, LabelConfig, label_events
from ..registry import Registry

__all__ = ["OnlinePolicy", "PopularityPolicy", "RandomPolicy", "OraclePolicy", "LoggingPolicy", "RecommenderPolicy",
           "make_policy",
           "ONLINE_POLICIES", "POLICY_NAMES", "append_events", "finished_pairs"]

#: Online policies by name (class attribute `policy`); `recommender` serves a fitted or saved Recommender.
ONLINE_POLICIES: Registry = Registry("online policy", key="policy")


class OnlinePolicy(Protocol):
    """One arm's policy during a simulated online experiment (see the module docstring)."""

    name: str

    def start(self, dataset: Dataset, world) -> "OnlinePolicy": ...

    def recommend(self, requests: pd.DataFrame, k: int, now: pd.Timestamp) -> dict[str, list[str]]: ...

    def observe(self, events: pd.DataFrame) -> None: ...

    def retrain(self) -> None: ...


def finished_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """(user_id, item_id) of events labeled positive (watched past 80%, or a high rating)."""
    if len(events) == 0:
        return pd.DataFrame({"user_id": pd.Series(dtype=object), "item_id": pd.Series(dtype=object)})
    keep = label_events(events, LabelConfig()).to_numpy() == POSITIVE
    return events.loc[keep, ["user_id", "item_id"]]


def append_events(dataset: Dataset, events: pd.DataFrame) -> Dataset:
    """`dataset` with `events` (already in its schema) added, still sorted by time; the original is unchanged."""
    if len(events) == 0:
        return dataset
    new = events[[c for c in dataset.events.columns if c in events.columns]]
    merged = pd.concat([dataset.events, new], ignore_index=True)
    merged = merged.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return dataset._with(dataset.users, dataset.items, merged, dataset.searches)


def _lists(frame: pd.DataFrame) -> dict[str, list[str]]:
    """{user: [item, ...]} in rank order from a (user_id, item_id, rank) frame."""
    if len(frame) == 0:
        return {}
    users = frame["user_id"].astype(str).to_numpy(dtype=object)
    codes, uniques = pd.factorize(users)
    order = np.lexsort((frame["rank"].to_numpy(), codes))
    items = frame["item_id"].to_numpy(dtype=object)[order]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(uniques)))])
    return {str(u): items[bounds[k]:bounds[k + 1]].tolist() for k, u in enumerate(uniques)}


class _SeenMatrix:
    """Dense members x titles flags of finished titles, fed by observe (for the matrix policies)."""

    def __init__(self, dataset: Dataset) -> None:
        self.users = pd.Index(dataset.users["user_id"].astype(str))
        self.items = pd.Index(dataset.items["item_id"].astype(str))
        self.flags = np.zeros((len(self.users), len(self.items)), dtype=bool)
        self.add(finished_pairs(dataset.events))

    def add(self, pairs: pd.DataFrame) -> None:
        if len(pairs) == 0:
            return
        u = self.users.get_indexer(pairs["user_id"].astype(str))
        i = self.items.get_indexer(pairs["item_id"].astype(str))
        ok = (u >= 0) & (i >= 0)
        self.flags[u[ok], i[ok]] = True


def _eligible(dataset: Dataset, seen: _SeenMatrix, user_ids: np.ndarray, now: pd.Timestamp) -> np.ndarray:
    """members x titles: on the platform at `now`, allowed at the member's age, not finished."""
    items = dataset.items
    ok = np.ones((len(user_ids), len(seen.items)), dtype=bool)
    if "added_at" in items.columns:
        added = pd.to_datetime(items["added_at"]).to_numpy()
        ok &= ~(added > np.datetime64(pd.Timestamp(now).to_datetime64()))[None, :]
    rows = seen.users.get_indexer(pd.Index(user_ids.astype(str)))
    if "maturity_rating" in items.columns and "age" in dataset.users.columns:
        min_age = maturity_min_ages(items["maturity_rating"])
        ages = pd.to_numeric(dataset.users["age"], errors="coerce").to_numpy(dtype=float)
        age = np.where(rows >= 0, ages[np.maximum(rows, 0)], np.nan)
        known = ~np.isnan(age)
        ok[known] &= age[known, None] >= min_age[None, :]
    known = rows >= 0
    ok[known] &= ~seen.flags[rows[known]]
    return ok


def _top_k(scores: np.ndarray, user_ids: np.ndarray, items: pd.Index, k: int) -> dict[str, list[str]]:
    out = {}
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(scores, top, axis=1)
    names = items.to_numpy()
    for row, user in enumerate(user_ids):
        out[str(user)] = list(names[top[row][np.isfinite(values[row])]])
    return out


@ONLINE_POLICIES.register
class RandomPolicy:
    """Uniformly random titles the member may watch and has not finished: the floor."""

    policy = name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @classmethod
    def named(cls, world=None, seed: int = 0) -> "RandomPolicy":
        return cls(seed)

    def start(self, dataset: Dataset, world=None) -> "RandomPolicy":
        self.dataset_, self.seen_ = dataset, _SeenMatrix(dataset)
        self.rng_ = np.random.default_rng(np.random.SeedSequence([int(self.seed), 31]))
        return self

    def recommend(self, requests: pd.DataFrame, k: int, now) -> dict[str, list[str]]:
        users = requests["user_id"].to_numpy(dtype=object)
        scores = self.rng_.random((len(users), len(self.seen_.items)))
        scores[~_eligible(self.dataset_, self.seen_, users, now)] = -np.inf
        return _top_k(scores, users, self.seen_.items, k)

    def observe(self, events: pd.DataFrame) -> None:
        self.seen_.add(finished_pairs(events))

    def retrain(self) -> None:
        """Nothing to learn."""


@ONLINE_POLICIES.register
class OraclePolicy:
    """Ranks by the world's true P(play and finish) for the session's device and moment: the ceiling."""

    policy = name = "oracle"

    def __init__(self, world=None) -> None:
        self.world = world

    @classmethod
    def named(cls, world=None, seed: int = 0) -> "OraclePolicy":
        return cls(world)

    def start(self, dataset: Dataset, world=None) -> "OraclePolicy":
        self.world_ = self.world if self.world is not None else world
        if self.world_ is None:
            raise DataError("the oracle needs the simulated world's ground truth (use the sample or a folder "
                            "written by `recsys generate`)", file=dataset.name)
        self.dataset_, self.seen_ = dataset, _SeenMatrix(dataset)
        self.columns_ = self.seen_.items.get_indexer(pd.Index(self.world_.items["item_id"].astype(str)))
        return self

    def scores(self, users: np.ndarray, now, device: str) -> np.ndarray:
        """members x the dataset's titles (`seen_.items` order): the true P(watch) on `device` at `now`,
        -inf where the member may not or need not see the title (unavailable, too mature, finished)."""
        users = np.asarray(users, dtype=object)
        truth = self.world_.true_watch_matrix(users, now, str(device))
        scores = np.full((len(users), len(self.seen_.items)), -np.inf)
        has = self.columns_ >= 0
        scores[:, self.columns_[has]] = truth[:, has]
        scores[~_eligible(self.dataset_, self.seen_, users, now) | (scores <= 0)] = -np.inf
        return scores

    def recommend(self, requests: pd.DataFrame, k: int, now) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for device, part in requests.groupby("device", sort=True):
            users = part["user_id"].to_numpy(dtype=object)
            out.update(_top_k(self.scores(users, now, str(device)), users, self.seen_.items, k))
        return out

    def observe(self, events: pd.DataFrame) -> None:
        self.seen_.add(finished_pairs(events))

    def retrain(self) -> None:
        """The truth needs no learning."""


@ONLINE_POLICIES.register
class LoggingPolicy:
    """The world's logging policy, the way the logs were made: a Plackett-Luce draw over popularity,
    genre fit, freshness, season and shows in progress. Its online value is what the logs record."""

    policy = name = "logging"

    def __init__(self, world=None, seed: int = 0) -> None:
        self.world, self.seed = world, seed

    @classmethod
    def named(cls, world=None, seed: int = 0) -> "LoggingPolicy":
        return cls(world, seed)

    def start(self, dataset: Dataset, world=None) -> "LoggingPolicy":
        self.world_ = self.world if self.world is not None else world
        if self.world_ is None:
            raise DataError("the logging policy is the simulated world's own (use the sample or a folder written "
                            "by `recsys generate`)", file=dataset.name)
        self.states_ = self.world_.states_from_events(dataset.events)
        self.draws_: dict[str, int] = {}
        self.positions_ = pd.Index(self.world_.users["user_id"].astype(str))
        return self

    def recommend(self, requests: pd.DataFrame, k: int, now) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for user, when in zip(requests["user_id"].astype(str), requests["timestamp"]):
            state = self.states_.get(user)
            if state is None:
                state = self.states_[user] = self.world_.new_state()
            n = self.draws_.get(user, 0)
            self.draws_[user] = n + 1
            u = int(self.positions_.get_indexer([user])[0])
            rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), 51, max(u, 0), n]))
            out[user] = self.world_.logging_row(user, when, state, rng)[0][:k]
        return out

    def observe(self, events: pd.DataFrame) -> None:
        self.world_.advance_states(self.states_, events)

    def retrain(self) -> None:
        """The logging policy does not learn."""


@ONLINE_POLICIES.register
class PopularityPolicy:
    """The popularity candidate generator as the whole recommender (recent, time-decayed plays)."""

    policy = name = "popularity"

    @classmethod
    def named(cls, world=None, seed: int = 0) -> "PopularityPolicy":
        return cls()

    def start(self, dataset: Dataset, world=None) -> "PopularityPolicy":
        from ..candidates import PopularityGenerator

        self.history_, self.pending_ = dataset, []
        self.model_ = PopularityGenerator().fit(dataset)
        return self

    def recommend(self, requests: pd.DataFrame, k: int, now) -> dict[str, list[str]]:
        users = pd.unique(requests["user_id"].to_numpy(dtype=object))
        return _lists(self.model_.recommend(list(users), n=k, now=now))

    def observe(self, events: pd.DataFrame) -> None:
        self.pending_.append(events)  # joined to the history only when re-training needs it
        done = finished_pairs(events)
        if len(done):
            self.model_.mark_seen(done["user_id"].to_numpy(), done["item_id"].to_numpy())

    def retrain(self) -> None:
        from ..candidates import PopularityGenerator

        if self.pending_:
            self.history_ = append_events(self.history_, pd.concat(self.pending_, ignore_index=True))
            self.pending_ = []
        self.model_ = PopularityGenerator().fit(self.history_)


@ONLINE_POLICIES.register
class RecommenderPolicy:
    """A fitted two-stage `Recommender` (the app's, or one loaded from a saved folder).

    `start` forks it, so the original is never changed. Events are buffered and handed to
    `Recommender.observe` just before the next request that comes after them, so the model's
    history always ends before the moment it is asked about (features stay point in time).
    """

    policy = "recommender"

    def __init__(self, model, name: str = "recommender") -> None:
        self.model, self.name = model, name

    def start(self, dataset: Dataset, world=None) -> "RecommenderPolicy":
        self.model_ = self.model.fork()
        self.pending_: list[pd.DataFrame] = []
        self.users_ = dataset.users
        return self

    def _flush(self, now) -> None:
        if not self.pending_:
            return
        pending = pd.concat(self.pending_, ignore_index=True)
        now = np.datetime64(pd.Timestamp(now).to_datetime64(), "ns")
        ready = pending["timestamp"].to_numpy() < now
        if ready.any():
            self.model_.observe(pending[ready])
        self.pending_ = [pending[~ready]] if (~ready).any() else []

    def recommend(self, requests: pd.DataFrame, k: int, now) -> dict[str, list[str]]:
        self._flush(now)
        out: dict[str, list[str]] = {}
        device_known = getattr(self.model_.builder_, "has_device_", False)
        groups = requests.groupby("device", sort=True) if device_known else [(None, requests)]
        for device, part in groups:
            users = list(pd.unique(part["user_id"].to_numpy(dtype=object)))
            frame = self.model_.recommend(users, k=k, context={"now": now, "device": device})
            out.update(_lists(frame))
        return out

    def observe(self, events: pd.DataFrame) -> None:
        if len(events):
            self.pending_.append(events)

    def retrain(self) -> None:
        from ..pipeline import Recommender

        self._flush(pd.Timestamp.max)
        self.model_ = Recommender(self.model_.config).fit(self.model_.history_)


def make_policy(spec: Any, world=None, seed: int = 0) -> OnlinePolicy:
    """A policy from a name (`popularity`, `random`, `oracle`), a saved model's folder, or a fitted
    Recommender. Raises ValueError for an unknown name and ArtifactError for a bad folder."""
    from ..pipeline import Recommender

    if isinstance(spec, Recommender):
        return RecommenderPolicy(spec)
    if not isinstance(spec, (str, Path)):
        if all(hasattr(spec, m) for m in ("start", "recommend", "observe")):
            return spec
        raise TypeError(f"a policy is a name, a model folder or a Recommender, got {type(spec).__name__}")
    text = str(spec).strip()
    if text in POLICY_NAMES:
        return ONLINE_POLICIES.get(text).named(world=world, seed=seed)
    path = Path(text).expanduser()
    if path.is_dir():
        return RecommenderPolicy(Recommender.load(path), name=path.name or text)
    raise ValueError(f"unknown policy {text!r}: use {', '.join(POLICY_NAMES)}, or the folder of a model saved by "
                     "`recsys train --out DIR`")


#: The policies an arm can name directly (the rest of the registry needs a model).
POLICY_NAMES: tuple[str, ...] = tuple(n for n in ONLINE_POLICIES.names() if n != RecommenderPolicy.policy)
