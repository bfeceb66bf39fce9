"""Off-policy estimators: what a target policy's lists would earn per session (engagement, videos,
minutes), estimated from sessions the logging policy served.

Every estimator reads one `SlateProblem` (the logged sessions, the target's list for each of them,
the examination curve and kappa, the logging policy's slot marginals and a reward model's
predictions) and returns each session's contribution Y_s and weight c_s; the estimate is
sum(Y) / sum(c), with c = 1 except for the self-normalised form. The ESTIMATORS registry names them:

- `dm` (direct method): the reward model's expected value of the target's list.
- `ips` (inverse propensity, per slot, position-based; Li et al. 2018, item-position model): the
  reward of the title logged in slot j counts for the target's slot r that lists the same title,
  weighted by rho = e_r / sum_l m(title, l) e_l (its examination-weighted chance under logging). A
  play below another play counts 1 / kappa (it stands for the plays the thinning hid), and what a
  target slot is worth is its chance of no play above (engagement) or that plus kappa times the rest.
- `snips`: the same, self-normalised by c_s = sum rho e_j / sum_r e_r (expectation 1).
- `dr` (doubly robust): dm, plus ips of the reward model's residuals on the logged slots; for
  engagement, through the slope of 1 - prod(1 - c) in each slot (first order).
- `cascade_dr` (Kiyohara et al. 2022): slot by slot, the logged reward counts while the logged row
  agrees with the target's from the top (weight prod 1[a_l = target_l] / p_l, the logged
  conditional propensities), the reward model's value of the rest of the target's row otherwise.

Deterministic targets (every policy here returns one list) are handled without smoothing: the
per-slot estimators need only that logging could put each of the target's titles in some slot,
which the Plackett-Luce logging policy does for every eligible title; the cascade estimator needs
no overlap of whole lists, because where the logged row leaves the target's it falls back to the
reward model for the remaining slots.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..registry import Registry
from .logged import METRICS, LoggedSessions

__all__ = ["SlateProblem", "RewardPredictions", "Estimate", "ESTIMATORS", "ESTIMATOR_NAMES", "slot_expectations",
           "no_play_above", "estimate", "contributions", "bootstrap_ratio",
           "bootstrap_difference"]

#: Off-policy estimators by name (class attribute `estimator`).
ESTIMATORS: Registry = Registry("off-policy estimator", key="estimator")


@dataclass(frozen=True)
class RewardPredictions:
    """A reward model's predictions for one list per session, slot by slot (S, K): the chance of a
    play with no play above (`click`) and with one (`click_after`), and minutes and videos per play."""

    click: np.ndarray
    click_after: np.ndarray
    minutes: np.ndarray
    videos: np.ndarray


def no_play_above(click: np.ndarray) -> np.ndarray:
    """(S, K) the chance that no slot above was played, prod(1 - click above), from each slot's play chance."""
    click = np.clip(click, 0, 1)
    return np.cumprod(np.concatenate([np.ones((len(click), 1)), 1.0 - click[:, :-1]], axis=1), axis=1)


def slot_expectations(pred: RewardPredictions, metric: str) -> np.ndarray:
    """(S, K) expected per-slot reward of a list (the slots' sum is the session's value): a slot is
    reached with no play above with chance prod(1 - click above)."""
    click, after = np.clip(pred.click, 0, 1), np.clip(pred.click_after, 0, 1)
    clean = no_play_above(click)
    if metric == "engagement_rate":
        return click * clean
    play = click * clean + after * (1.0 - clean)
    if metric == "videos_per_session":
        return play * pred.videos
    if metric == "minutes_per_session":
        return play * pred.minutes
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


@dataclass(frozen=True)
class SlateProblem:
    """One target policy against one log: everything the estimators read. `kappa` is the chance that a
    title a member would play is still played after a play above it (`examination.ExaminationCurve`)."""

    logged: LoggedSessions
    target: np.ndarray  # (S, K) dense title indices of the target's list per session, -1 empty
    examination: np.ndarray  # (K,) relative examination curve
    marginals: np.ndarray | None  # (S, K, K) logging marginals of each logged slot's title
    logged_pred: RewardPredictions | None  # the reward model on the logged lists
    target_pred: RewardPredictions | None  # the reward model on the target's lists
    kappa: float = 1.0

    @cached_property
    def rho(self) -> np.ndarray:
        """(S, K logged, K target): for the title logged in slot j and listed by the target in slot r,
        e_r over the title's examination-weighted chance under logging, sum_l m(title, l) e_l; else 0."""
        if self.marginals is None:
            raise ValueError("the per-slot estimators need the logging policy's slot marginals (propensities)")
        logged, target, e = self.logged.items, self.target, self.examination
        match = (logged[:, :, None] == target[:, None, :]) & (logged[:, :, None] >= 0)
        exposure = self.marginals @ e[: self.marginals.shape[2]]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(match, e[None, None, : target.shape[1]] / exposure[:, :, None], 0.0)
        return np.where(np.isfinite(out), out, 0.0)

    def per_click(self, metric: str) -> np.ndarray:
        """(S, K) each logged slot's reward as if nothing above had been played: a later play is kept only
        with chance kappa, so it counts 1 / kappa (engagement counts the play itself, not just the first)."""
        base = self.logged.played.astype(float) if metric == "engagement_rate" else self.logged.rewards(metric)
        return base / np.where(self.logged.played_above, self.kappa, 1.0)

    def thinning(self, metric: str, survival: np.ndarray) -> np.ndarray:
        """(S, K target) what a would-be play in target slot r is worth given the chance `survival` of no
        play above it: the session's first play (engagement), or a play kept with chance kappa after one."""
        if metric == "engagement_rate":
            return survival
        return survival + self.kappa * (1.0 - survival)

    def model_survival(self) -> np.ndarray:
        """(S, K target) the reward model's chance of no play above each of the target's slots."""
        return no_play_above(self.target_pred.click)

    def ips_survival(self, rho: np.ndarray) -> np.ndarray:
        """(S, K target) the same from the log alone: the policy's mean per-slot play chance, by IPS."""
        clicks = np.einsum("sjr,sj->r", rho, self.per_click("engagement_rate")) / max(1, len(rho))
        surv = np.cumprod(np.concatenate([[1.0], 1.0 - np.clip(clicks[:-1], 0, 1)]))
        return np.broadcast_to(surv, (len(rho), len(surv)))


@dataclass(frozen=True)
class Estimate:
    """An estimated per-session value with a bootstrap 95% interval over members and the effective sample size."""

    estimate: float
    low: float
    high: float
    ess: float
    estimator: str
    sessions: int
    members: int

    def as_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "ess": round(self.ess, 1),
                "estimator": self.estimator, "sessions": self.sessions, "members": self.members}


class _Estimator(ABC):
    """One estimator: per-session contributions and weights, and the weights its effective sample size counts."""

    estimator = ""
    label = ""

    @abstractmethod
    def contributions(self, problem: SlateProblem, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(S,) each session's contribution Y and weight c: the estimate is sum(Y) / sum(c)."""

    def weights(self, problem: SlateProblem) -> np.ndarray:
        """(S,) the importance weights behind the estimate, each of expectation 1 (ones: no weighting)."""
        return np.ones(problem.logged.n_sessions)


@ESTIMATORS.register
class DirectMethod(_Estimator):
    """The reward model's value of the target's lists."""

    estimator = "dm"
    label = "direct method"

    def contributions(self, problem, metric):
        y = slot_expectations(problem.target_pred, metric).sum(axis=1)
        return y, np.ones(len(y))


def _per_slot_value(problem: SlateProblem, rho: np.ndarray, metric: str, residual: np.ndarray,
                    survival: np.ndarray) -> np.ndarray:
    """sum over logged slots j and target slots r of rho[j, r] * residual[j] * thinning[r], per session."""
    return np.einsum("sjr,sj,sr->s", rho, residual, problem.thinning(metric, survival))


@ESTIMATORS.register
class InversePropensity(_Estimator):
    """Per-slot inverse-propensity scoring under the position-based model (no reward model)."""

    estimator = "ips"
    label = "inverse propensity (per slot)"

    def contributions(self, problem, metric):
        rho = problem.rho
        y = _per_slot_value(problem, rho, metric, problem.per_click(metric), problem.ips_survival(rho))
        return y, np.ones(len(y))

    def weights(self, problem: SlateProblem) -> np.ndarray:
        """c_s = sum_{j, r} rho e_j / sum_r e_r over the target's filled slots: expectation 1 under logging."""
        rho, e = problem.rho, problem.examination
        listed = problem.target >= 0
        total = (listed * e[None, : listed.shape[1]]).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.einsum("sjr,j->s", rho, e[: rho.shape[1]]) / total
        return np.where(total > 0, c, 0.0)


@ESTIMATORS.register
class SelfNormalisedIPS(InversePropensity):
    """IPS divided by the mean of its session weights (each of expectation 1)."""

    estimator = "snips"
    label = "self-normalised inverse propensity"

    def contributions(self, problem, metric):
        y, _ = super().contributions(problem, metric)
        return y, self.weights(problem)


@ESTIMATORS.register
class DoublyRobust(_Estimator):
    """Direct method plus per-slot IPS of the reward model's residuals on the logged slots."""

    estimator = "dr"
    label = "doubly robust"
    weights = InversePropensity.weights

    def contributions(self, problem, metric):
        rho = problem.rho
        if metric == "engagement_rate":
            return self._engagement(problem, rho)
        base = slot_expectations(problem.target_pred, metric).sum(axis=1)
        y = base + _per_slot_value(problem, rho, metric, self._residual(problem, metric), problem.model_survival())
        return y, np.ones(len(y))

    @staticmethod
    def _residual(problem: SlateProblem, metric: str) -> np.ndarray:
        """(S, K) each logged slot's per-click reward minus the reward model's expectation of it."""
        pred = problem.logged_pred
        value = 1.0 if metric == "engagement_rate" else (pred.videos if metric == "videos_per_session"
                                                          else pred.minutes)
        return np.where(problem.logged.shown, problem.per_click(metric) - np.clip(pred.click, 0, 1) * value, 0.0)

    def _engagement(self, problem: SlateProblem, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Engagement, 1 - prod_r (1 - c_r), is not a sum over slots: the model's value plus each target
        slot's transported residual times the slope of engagement in that slot's play chance,
        prod_{l != r} (1 - c_l) (the first-order, influence-function form of doubly robust), so each
        session keeps its own term and the bootstrap sees all of the variance."""
        click = np.clip(problem.target_pred.click, 0, 1)
        miss = 1.0 - click
        base = 1.0 - np.prod(miss, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            others = np.prod(miss, axis=1, keepdims=True) / miss
        if (miss <= 0).any():  # a sure play: the slope is the product of the other slots, computed directly
            for r in np.flatnonzero((miss <= 0).any(axis=0)):
                others[:, r] = np.prod(np.delete(miss, r, axis=1), axis=1)
        correction = np.einsum("sjr,sj->sr", rho, self._residual(problem, "engagement_rate"))
        y = base + (others * correction).sum(axis=1)
        return y, np.ones(len(y))


@ESTIMATORS.register
class CascadeDoublyRobust(_Estimator):
    """Cascade doubly robust: logged rewards while the logged row agrees with the target's from the top."""

    estimator = "cascade_dr"
    label = "cascade doubly robust"

    def weights(self, problem: SlateProblem) -> np.ndarray:
        """The first slot's weight, 1[logged = target] / p: the cascade's own importance weight."""
        logged = problem.logged
        agree = (logged.items[:, 0] == problem.target[:, 0]) & logged.shown[:, 0]
        return np.where(agree, 1.0 / np.where(agree, logged.propensity[:, 0], 1.0), 0.0)

    def contributions(self, problem, metric):
        logged = problem.logged
        if not logged.has_propensities:
            raise ValueError("cascade doubly robust needs the logged conditional propensities")
        agree = (logged.items == problem.target) & logged.shown
        p = np.where(agree, logged.propensity, 1.0)
        w = np.cumprod(np.where(agree, 1.0 / p, 0.0), axis=1)  # w_{1:j}
        w_before = np.concatenate([np.ones((len(w), 1)), w[:, :-1]], axis=1)  # w_{1:j-1}
        slot = slot_expectations(problem.target_pred, metric)
        to_go = np.cumsum(slot[:, ::-1], axis=1)[:, ::-1]  # the target's expected reward from slot j on
        reward = logged.rewards(metric)
        y = (w * (reward - to_go) + w_before * to_go).sum(axis=1)
        return y, np.ones(len(y))


ESTIMATOR_NAMES: tuple[str, ...] = ESTIMATORS.names()


def _member_totals(members: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per member (sorted external ids), the sum of each per-session array."""
    codes, group = np.unique(members.astype(str), return_inverse=True)
    return tuple(np.bincount(group, weights=v, minlength=len(codes)) for v in values)


def _member_resamples(n_members: int, rounds: int, seed: int) -> np.ndarray:
    """(rounds, n_members) multinomial counts: the bootstrap's resamples of members. The same seed gives
    the same resamples, so intervals of two policies over one log are paired."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 41]))
    return rng.multinomial(n_members, np.full(n_members, 1.0 / n_members), size=rounds).astype(float)


def _percentiles(point: float, draws: np.ndarray, level: float) -> tuple[float, float, float]:
    draws = draws[np.isfinite(draws)]
    if len(draws) == 0:
        return point, float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    return point, float(np.quantile(draws, alpha)), float(np.quantile(draws, 1.0 - alpha))


def bootstrap_ratio(y: np.ndarray, c: np.ndarray, members: np.ndarray, rounds: int = 500, seed: int = 0,
                    level: float = 0.95) -> tuple[float, float, float]:
    """sum(y) / sum(c) and its percentile interval, resampling members (their sessions stay together)."""
    ys, cs = _member_totals(members, y, c)
    point = float(ys.sum() / cs.sum()) if cs.sum() > 0 else float("nan")
    counts = _member_resamples(len(ys), rounds, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = (counts @ ys) / (counts @ cs)
    return _percentiles(point, draws, level)


def bootstrap_difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], members: np.ndarray,
                         rounds: int = 500, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """sum(y_a) / sum(c_a) - sum(y_b) / sum(c_b) over the same sessions, with a percentile interval from
    resampling members once for both: the two estimates share the log, so their difference is much
    surer than two separate intervals suggest."""
    ya, ca, yb, cb = _member_totals(members, a[0], a[1], b[0], b[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        point = float(ya.sum() / ca.sum() - yb.sum() / cb.sum())
        counts = _member_resamples(len(ya), rounds, seed)
        draws = (counts @ ya) / (counts @ ca) - (counts @ yb) / (counts @ cb)
    return _percentiles(point, draws, level)


def contributions(problem: SlateProblem, estimator: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(S,) one estimator's per-session contributions Y and weights c for one metric: the estimate is
    sum(Y) / sum(c)."""
    return ESTIMATORS.get(estimator)().contributions(problem, metric)


def estimate(problem: SlateProblem, estimator: str, metric: str, rounds: int = 500, seed: int = 0,
             parts: tuple[np.ndarray, np.ndarray] | None = None) -> Estimate:
    """One estimator's estimate of one metric for the problem's target policy (`parts`: its
    contributions, when already computed)."""
    est = ESTIMATORS.get(estimator)()
    y, c = parts if parts is not None else est.contributions(problem, metric)
    weights = est.weights(problem)
    total = float(weights.sum())
    ess = total ** 2 / float((weights ** 2).sum()) if total > 0 else 0.0
    point, low, high = bootstrap_ratio(y, c, problem.logged.user_id, rounds=rounds, seed=seed)
    if metric == "engagement_rate":  # a share of sessions: an estimate past 1 (first-order DR, SNIPS) says 1
        point, low, high = (float(np.clip(v, 0.0, 1.0)) for v in (point, low, high))
    return Estimate(point, low, high, ess, estimator, problem.logged.n_sessions,
                    int(len(np.unique(problem.logged.user_id.astype(str)))))
