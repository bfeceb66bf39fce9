"""The position-bias curve, estimated from the logs alone: how much less a title is looked at in slot
j than in the top slot, and how much a play above a slot lowers the chance of another play.

Model (position-based, with a cascade-like second play): a member looks at slot j with chance e_j
and plays what they look at with chance a(member, title, moment); after a first play, a later title
they would have played is played only with chance kappa. So

    E[play in slot j | a play above it: h] = e_j * a * kappa^h.

Two estimates, both relative to the top slot:

- `fixed_effects`: the conditional Poisson likelihood given each (member, title) pair's total plays
  (Hausman, Hall and Griliches 1984), which cancels the pair's attractiveness; the log of the
  logging policy's weight for the title (from the propensities) and h are covariates. It also gives
  kappa. Where the same pair's appeal varies with what moved it up the row, this leans steep (on
  the sample, 8-20% below the world's curve at lower slots; docs/off-policy.md).
- `harvest` (when propensities are logged): intervention harvesting. The logging policy puts every
  eligible title in slot j with a known chance m(title, j | session) (`propensity.slot_marginals`),
  so sum over sessions of play * kappa^-h / m estimates e_j times the same total appeal for every j;
  no model of appeal is needed, and it is unbiased, at the price of variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .logged import LoggedSessions, OffPolicyUnavailable
from .propensity import weights_from_propensities

__all__ = ["ExaminationCurve", "estimate_examination"]


@dataclass(frozen=True)
class ExaminationCurve:
    """e_j relative to the top slot (values[0] == 1), kappa, and how much of the log informed them."""

    values: np.ndarray
    kappa: float
    method: str  # "harvest" or "fixed_effects"
    pairs: int  # (member, title) pairs with a play and impressions in two or more slots (fixed effects)
    impressions: int
    fixed_effects: np.ndarray  # the fixed-effects curve, kept beside the harvested one

    def as_dict(self) -> dict:
        return {"values": [round(float(v), 6) for v in self.values], "kappa": round(self.kappa, 6),
                "method": self.method, "pairs": self.pairs, "impressions": self.impressions,
                "fixed_effects": [round(float(v), 6) for v in self.fixed_effects]}


def _fixed_effects(logged: LoggedSessions) -> tuple[np.ndarray, float, int, int]:
    K = logged.slots
    s, j = np.nonzero(logged.shown)
    y = logged.played[s, j].astype(float)
    h = logged.played_above[s, j].astype(float)
    use_weight = logged.has_propensities
    if use_weight:
        weights, _ = weights_from_propensities(logged.propensity)
        z = np.log(np.maximum(weights[s, j], 1e-12))
    else:
        z = np.zeros(len(s))
    users = np.unique(logged.user_id.astype(str), return_inverse=True)[1][s]
    pair = users.astype(np.int64) * (int(logged.items.max()) + 1) + logged.items[s, j]
    codes, groups = np.unique(pair, return_inverse=True)
    plays = np.bincount(groups, weights=y, minlength=len(codes))
    slots_seen = np.zeros((len(codes), K), dtype=bool)
    slots_seen[groups, j] = True
    informative = (plays > 0) & (slots_seen.sum(axis=1) >= 2)
    keep = informative[groups]
    if not keep.any():
        raise OffPolicyUnavailable("no (member, title) pair was played and shown in two different slots: the "
                                   "position-bias curve cannot be estimated from this log", column="position")
    g = np.unique(groups[keep], return_inverse=True)[1]
    j, y, h = j[keep], y[keep], h[keep]
    z = z[keep] - z[keep].mean()
    Y = np.bincount(g, weights=y)
    n_groups = len(Y)
    design = np.column_stack([np.eye(K)[j][:, 1:], z, h])  # slots 1.., log-weight, played above

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design @ theta
        top = np.full(n_groups, -np.inf)
        np.maximum.at(top, g, eta)
        mu = np.exp(eta - top[g])
        denom = np.bincount(g, weights=mu, minlength=n_groups)
        ll = float(y @ eta - Y @ (np.log(denom) + top))
        grad = design.T @ (y - Y[g] * mu / denom[g])
        return -ll, -grad

    theta0 = np.zeros(design.shape[1])
    bounds = [(None, None)] * (K - 1) + [(0.0, 0.0) if not use_weight else (None, None), (None, None)]
    fit = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
    values = np.exp(np.concatenate([[0.0], fit.x[:K - 1]]))
    return values, float(np.exp(fit.x[K])), int(n_groups), int(len(y))


def estimate_examination(logged: LoggedSessions, marginals: np.ndarray | None = None) -> ExaminationCurve:
    """The examination curve of `logged`: harvested when `marginals` (`slot_marginals` of its
    propensities) are given, from fixed effects otherwise (see the module docstring)."""
    fe, kappa, pairs, impressions = _fixed_effects(logged)
    if marginals is None:
        return ExaminationCurve(fe, kappa, "fixed_effects", pairs, impressions, fe)
    K = logged.slots
    shown = logged.shown
    own = marginals[:, np.arange(K), np.arange(K)]  # chance the title logged in slot j lands in slot j
    ok = shown & (own > 0)
    y = logged.played / np.where(logged.played_above, kappa, 1.0)
    totals = np.array([float(np.sum(y[ok[:, k], k] / own[ok[:, k], k])) for k in range(K)])
    if not totals[0] > 0:
        return ExaminationCurve(fe, kappa, "fixed_effects", pairs, impressions, fe)
    return ExaminationCurve(totals / totals[0], kappa, "harvest", pairs, impressions, fe)
