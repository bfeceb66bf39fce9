"""Estimated online value of policies from the logged impressions: engagement, videos and minutes per
session, as the simulated A/B test measures them, without running one.

The last `window_days` of the log are the evaluation window. Every policy is fitted (or started) on
the data before it and replayed over the window's sessions (`replay`); a reward model is fitted on
the window's logged impressions (`reward_model`); the examination curve and the logging policy's slot
marginals come from the logged propensities (`examination`, `propensity`); each estimator of
`estimators.ESTIMATORS` then gives every policy's value with a bootstrap interval over members.
Method and choices: docs/off-policy.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from .estimators import (ESTIMATOR_NAMES, ESTIMATORS, Estimate, RewardPredictions, SlateProblem, bootstrap_difference,
                         bootstrap_ratio, contributions)
from .estimators import estimate as run_estimator
from .examination import ExaminationCurve, estimate_examination
from .logged import METRICS, LoggedSessions, OffPolicyUnavailable
from .logging_model import FEATURES as LOGGING_FEATURES
from .logging_model import LoggingModel
from .propensity import slot_marginals
from .replay import replay_lists
from .reward_model import RewardModel

__all__ = ["OffPolicyConfig", "OffPolicyReport", "Difference", "evaluate_off_policy", "DEFAULT_ESTIMATOR",
           "start_policy"]

#: The estimator the app and the report lead with: chosen by agreement with a paired simulated A/B test
#: on two worlds with the 7-day window (docs/off-policy.md): median errors 7% and 10% against 19% and 9%
#: for `dr`, no pair the simulation separates put in the wrong order.
DEFAULT_ESTIMATOR = "ips"

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class OffPolicyConfig:
    """window_days: the evaluation window at the end of the log, as long as the simulated test (7 days): a
    longer one reaches back into another regime (the sample's logs earn 57-61 minutes a session from 18 to
    25 December, 48-51 after the holiday titles go off season). examination_days: the log used for the
    examination curve (a longer stretch: it is noisy). k: list length. bootstrap: resamples of members.
    slot_minutes: replay batching, as the A/B test's. seed: folds, bootstrap, policies."""

    window_days: float = 7.0
    examination_days: float = 56.0
    k: int = 10
    estimators: tuple[str, ...] = ESTIMATOR_NAMES
    bootstrap: int = 500
    slot_minutes: int = 60
    seed: int = 0

    def validate(self) -> None:
        if not self.window_days > 0 or not self.examination_days >= self.window_days:
            raise ValueError(f"window_days must be > 0 and examination_days >= window_days, got "
                             f"{self.window_days!r} and {self.examination_days!r}")
        if not 1 <= int(self.k) <= 10:
            raise ValueError(f"k must be from 1 to 10 (one row), got {self.k!r}")
        for name in self.estimators:
            ESTIMATORS.get(name)


@dataclass(frozen=True)
class Difference:
    """One policy's estimated value minus another's over the same logged sessions, with a paired
    bootstrap 95% interval over members. `separated`: the interval excludes 0, so the estimates tell
    the two apart; otherwise their order is within the estimator's noise."""

    first: str
    second: str
    metric: str
    estimator: str
    estimate: float
    low: float
    high: float

    @property
    def separated(self) -> bool:
        return bool(self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second, "metric": self.metric, "estimator": self.estimator,
                "estimate": self.estimate, "low": self.low, "high": self.high, "separated": self.separated}


@dataclass
class OffPolicyReport:
    """Per policy, per estimator, per metric: an Estimate; plus what the estimates rest on."""

    window_start: pd.Timestamp
    window_end: pd.Timestamp
    sessions: int
    members: int
    propensities: str  # "logged", or "estimated" by a model of the logging policy (see `notes`)
    examination: ExaminationCurve
    logged: dict[str, Estimate]  # the logging policy's own outcome in the window (on-policy)
    policies: dict[str, dict[str, dict[str, Estimate]]]
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: per policy, estimator and metric, the per-session (Y, c) behind the estimate; `member_ids` per session
    contributions: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = field(default_factory=dict,
                                                                                            repr=False)
    member_ids: np.ndarray | None = field(default=None, repr=False)
    bootstrap: int = 500
    seed: int = 0

    @property
    def lead(self) -> str:
        """The estimator to show first: DEFAULT_ESTIMATOR when it was run, else the first that was."""
        ran = next(iter(self.policies.values()), {})
        return DEFAULT_ESTIMATOR if DEFAULT_ESTIMATOR in ran or not ran else next(iter(ran))

    def difference(self, first: str, second: str, metric: str = "minutes_per_session",
                   estimator: str | None = None) -> Difference:
        """`first`'s estimate minus `second`'s (`estimator`: the lead one by default), resampling the same
        members for both, so what the two policies' estimates share (the log's sessions) cancels."""
        estimator = estimator or self.lead
        for name in (first, second):
            if name not in self.contributions:
                raise KeyError(f"no policy {name!r} in this report; it has {sorted(self.contributions)}")
            if estimator not in self.contributions[name]:
                raise KeyError(f"estimator {estimator!r} was not run; the report has "
                               f"{sorted(self.contributions[name])}")
        a, b = self.contributions[first][estimator][metric], self.contributions[second][estimator][metric]
        point, low, high = bootstrap_difference(a, b, self.member_ids, rounds=self.bootstrap, seed=self.seed)
        return Difference(first, second, metric, estimator, point, low, high)

    def differences(self, metric: str = "minutes_per_session", estimator: str | None = None) -> list[Difference]:
        """Every pair of policies (in report order), each as its difference with a paired interval."""
        names = list(self.contributions)
        return [self.difference(a, b, metric, estimator) for i, a in enumerate(names) for b in names[i + 1:]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": {"start": str(self.window_start), "end": str(self.window_end), "sessions": self.sessions,
                       "members": self.members},
            "propensities": self.propensities, "examination": self.examination.as_dict(),
            "default_estimator": self.lead,
            "logged": {m: e.as_dict() for m, e in self.logged.items()},
            "policies": {p: {est: {m: e.as_dict() for m, e in per.items()} for est, per in by.items()}
                         for p, by in self.policies.items()},
            "differences": {"metric": "minutes_per_session", "estimator": self.lead,
                            "pairs": [d.as_dict() for d in self.differences()] if self.contributions else []},
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()}, "notes": self.notes,
        }


def _config_of(spec: Any):
    """The RecommenderConfig behind a spec that is a Recommender, its online policy or a saved folder; else None."""
    from ..pipeline import Recommender
    from ..simulation.policies import RecommenderPolicy

    if isinstance(spec, RecommenderPolicy):
        return spec.model.config
    if isinstance(spec, Recommender):
        return spec.config
    if isinstance(spec, (str, Path)) and Path(str(spec)).expanduser().is_dir():
        return Recommender.load(Path(str(spec)).expanduser()).config
    return None


class _Fitted:
    """Recommenders fitted on the data before the window, sharing candidates and training rows between
    configurations that differ only in the ranker (as the offline evaluation's SharedStages do)."""

    def __init__(self, before: Dataset) -> None:
        self.before = before
        self.models: dict[str, Any] = {}

    def model(self, config):
        from ..evaluation.protocol import SharedStages
        from ..pipeline import Recommender

        key = SharedStages.key(config)
        base = self.models.get(key)
        if base is not None and base.config == config:
            return base
        if base is not None and getattr(base, "training_table_", None) is not None:
            return base.with_ranker(config.ranker, config.ranker_params)
        model = Recommender(config).fit(self.before)
        if base is None or config.ranker is not None:  # keep the one with training rows to share
            self.models[key] = model
        return model


def start_policy(spec: Any, before: Dataset, world, seed: int, fitted: _Fitted | None = None):
    """An online policy (recsys.simulation.policies) started on `before`: a Recommender or a saved
    model's folder is re-fitted there with its own configuration (never fitted on the window)."""
    from ..simulation.policies import RecommenderPolicy, make_policy

    config = _config_of(spec)
    if config is not None:
        fitted = fitted or _Fitted(before)
        return RecommenderPolicy(fitted.model(config)).start(before, world)
    return make_policy(spec, world=world, seed=seed).start(before, world)


def _rows(logged: LoggedSessions, items: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """(user_id, item_id, timestamp, device) rows of every filled slot of an (S, K) list grid, and their
    flat positions in it."""
    flat = np.flatnonzero(items.reshape(-1) >= 0)
    s = flat // items.shape[1]
    rows = pd.DataFrame({"user_id": logged.user_id[s], "item_id": logged.item_ids.to_numpy()[items.reshape(-1)[flat]],
                         "timestamp": pd.to_datetime(logged.timestamp[s]), "device": logged.device[s]})
    return rows, flat


def evaluate_off_policy(dataset: Dataset, policies: dict[str, Any], world=None, config: OffPolicyConfig | None = None,
                        progress: Progress | None = None, features=None) -> OffPolicyReport:
    """Estimate each policy's online value from `dataset`'s logged impressions (see the module docstring).

    `policies` maps a name to a policy spec (a name such as `popularity`, a model folder, a Recommender
    or an OnlinePolicy). `features` is an optional fitted Recommender on the data before the window
    whose features the reward model uses (one is fitted otherwise). Where the log has no propensities,
    a model of the logging policy estimates them and the report says so (`propensities`, `notes`).
    Raises OffPolicyUnavailable, with the reason, where the log has no slots or sessions.
    """
    from ..pipeline import Recommender, RecommenderConfig

    config = config or OffPolicyConfig()
    config.validate()
    say = progress or (lambda message, fraction: None)
    timings: dict[str, float] = {}
    notes: list[str] = []
    t = time.perf_counter()
    end = dataset.end + pd.Timedelta(seconds=1)
    start = (end - pd.Timedelta(days=float(config.window_days))).ceil("h")
    item_ids = dataset.items["item_id"].astype(str).to_numpy()
    events = dataset.events
    recent = events[events["timestamp"] >= end - pd.Timedelta(days=float(config.examination_days))]
    history = LoggedSessions.from_events(recent, item_ids, file=dataset.name)
    in_window = history.timestamp >= np.datetime64(start.to_datetime64(), "ns")
    if not in_window.any():
        raise OffPolicyUnavailable(f"no logged rows in the last {config.window_days:g} days", file=dataset.name)
    propensities = "logged"
    if not history.has_propensities:
        say("modelling the logging policy (the log has no propensities)", 0.01)
        t_model = time.perf_counter()
        logging_model = LoggingModel(seed=config.seed).fit(dataset, history)
        history = replace(history, propensity=logging_model.propensities(history))
        propensities = "estimated"
        notes.append("the log has no propensities: they were estimated with a Plackett-Luce model of the logging "
                     "policy fitted to its rows (" + ", ".join(f"{n} {c:+.3g}" for n, c in
                                                         zip(LOGGING_FEATURES, logging_model.coef_)) + ")")
        timings["logging_model"] = time.perf_counter() - t_model
    logged = history.take(np.flatnonzero(in_window))
    window_events = events[events["timestamp"] >= start]
    before = dataset.between(None, start)  # whole catalogue and membership: titles added later are masked by time
    timings["log"] = time.perf_counter() - t

    say("the logging policy's slot marginals", 0.02)
    t = time.perf_counter()
    marginals_all = slot_marginals(history.propensity)
    curve = estimate_examination(history, marginals_all)
    marginals = marginals_all[in_window]
    timings["marginals_and_examination"] = time.perf_counter() - t
    notes.append(f"examination curve by {curve.method} over the last {config.examination_days:g} days "
                 f"({history.n_sessions:,} sessions); kappa {curve.kappa:.3f}")

    say("replaying the policies over the logged sessions", 0.1)
    targets: dict[str, np.ndarray] = {}
    fitted = _Fitted(before)
    for n, (name, spec) in enumerate(policies.items()):
        t = time.perf_counter()
        policy = start_policy(spec, before, world, config.seed, fitted)
        lo, span = 0.1 + 0.6 * n / len(policies), 0.6 / len(policies)
        lists = replay_lists(policy, logged, window_events, k=config.k, slot_minutes=config.slot_minutes,
                             progress=lambda f, lo=lo, span=span, name=name: say(f"replaying {name}", lo + span * f))
        targets[name] = np.pad(lists, ((0, 0), (0, max(0, logged.slots - lists.shape[1]))), constant_values=-1)
        empty = int((lists < 0).all(axis=1).sum())
        if empty:
            notes.append(f"{name} showed nothing in {empty:,} of {logged.n_sessions:,} logged sessions (counted as "
                         "sessions without plays)")
        timings[f"replay {name}"] = time.perf_counter() - t

    say("the reward model", 0.72)
    t = time.perf_counter()
    if features is None:  # the default pipeline's stages when it was replayed, else a ranker-less fit
        default = RecommenderConfig(seed=config.seed)
        features = next((m for m in fitted.models.values() if m.config.sources == default.sources), None) or \
            Recommender(RecommenderConfig(ranker=None, seed=config.seed)).fit(before)
    features = features.fork().observe(window_events)  # history features stay point in time per row
    rows, flat = _rows(logged, logged.items)
    logged_features = features.features_for(rows)
    K = logged.slots
    slot, above = flat % K, logged.played_above.reshape(-1)[flat]
    model = RewardModel(seed=config.seed).fit(
        logged_features, rows["user_id"].to_numpy(), slot, above, logged.played.reshape(-1)[flat],
        logged.minutes.reshape(-1)[flat], logged.videos.reshape(-1)[flat])
    logged_pred = model.predict(logged_features, rows["user_id"].to_numpy(), slot, logged.items.shape, flat)
    target_pred: dict[str, RewardPredictions] = {}
    for name, items in targets.items():
        trows, tflat = _rows(logged, items)
        target_pred[name] = model.predict(features.features_for(trows), trows["user_id"].to_numpy(), tflat % K,
                                          items.shape, tflat)
    timings["reward_model"] = time.perf_counter() - t

    say("estimating", 0.9)
    t = time.perf_counter()
    out: dict[str, dict[str, dict[str, Estimate]]] = {}
    parts: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}
    for name, items in targets.items():
        problem = SlateProblem(logged, items, curve.values, marginals, logged_pred, target_pred[name], curve.kappa)
        parts[name] = {est: {metric: contributions(problem, est, metric) for metric in METRICS}
                       for est in config.estimators}
        out[name] = {est: {metric: run_estimator(problem, est, metric, rounds=config.bootstrap, seed=config.seed,
                                                 parts=parts[name][est][metric])
                           for metric in METRICS} for est in config.estimators}
    on_policy = {}
    for metric in METRICS:
        y = logged.session_values(metric)
        point, low, high = bootstrap_ratio(y, np.ones(len(y)), logged.user_id, config.bootstrap, config.seed)
        on_policy[metric] = Estimate(point, low, high, float(len(y)), "on_policy", logged.n_sessions,
                                     int(len(np.unique(logged.user_id.astype(str)))))
    timings["estimators"] = time.perf_counter() - t
    say("done", 1.0)
    return OffPolicyReport(window_start=start, window_end=end, sessions=logged.n_sessions,
                           members=int(len(np.unique(logged.user_id.astype(str)))), propensities=propensities,
                           examination=curve, logged=on_policy, policies=out, seconds=timings, notes=notes,
                           contributions=parts, member_ids=logged.user_id, bootstrap=config.bootstrap, seed=config.seed)
