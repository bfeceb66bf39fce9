"""Planning a split test: the smallest effect it can detect, and the members it needs (docs/simulation.md).

`analyze` computes each arm's metric over members (those with a session for the per-session ratios, every
assigned member for minutes per member) with the delta-method standard error se = sd / sqrt(n), sd the
standard deviation of the linearised per-member values (y_i - R x_i) over mean(x). Two arms are compared
with Welch's t on those values; the planner uses that test's normal approximation:

    MDE = (z[1 - alpha / 2] + z[power]) * sqrt(sd_c^2 / n + sd_t^2 / n),  n = members / arms * active share

(members split equally between all arms, as the simulator does by default). `run_pilot` measures sd, the
mean and the active share with a short seeded experiment of the same arms and days, through `analyze`, so
the planner's unit is the analysis's unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import norm

from .experiment import ExperimentConfig, run_experiment
from .online_metrics import METRICS, analyze

__all__ = ["DEFAULT_ALPHA", "DEFAULT_POWER", "PILOT_MEMBERS", "Pilot", "minimum_detectable_effect",
           "members_needed", "relative_effect", "absolute_effect", "run_pilot", "plan"]

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
#: Members of a pilot: enough for a standard deviation within about 10-20%, seconds for the cheap policies.
PILOT_MEMBERS = 300


def _check_probabilities(alpha: float, power: float) -> float:
    """z[1 - alpha / 2] + z[power], after checking both are probabilities and the sum is positive."""
    for name, value in (("alpha", alpha), ("power", power)):
        if not (isinstance(value, (int, float, np.floating)) and 0 < value < 1):
            raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
    if z <= 0:
        raise ValueError(f"power must exceed alpha / 2 for a two-sided test, got power={power}, alpha={alpha}")
    return z


def _check_spread(sd_control: float, sd_treatment: float | None, arms: int, active_share: float) -> float:
    """sd_c^2 + sd_t^2 (sd_t defaults to sd_c), after checking the spreads, the arms and the share."""
    sd_treatment = sd_control if sd_treatment is None else sd_treatment
    for name, value in (("sd_control", sd_control), ("sd_treatment", sd_treatment)):
        if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if isinstance(arms, bool) or not isinstance(arms, (int, np.integer)) or arms < 2:
        raise ValueError(f"arms must be an integer >= 2 (a control and at least one treatment), got {arms!r}")
    if not (isinstance(active_share, (int, float, np.floating)) and 0 < active_share <= 1):
        raise ValueError(f"active_share must be in (0, 1], got {active_share!r}")
    return float(sd_control) ** 2 + float(sd_treatment) ** 2


def minimum_detectable_effect(sd_control: float, members: float, arms: int = 2, *, sd_treatment: float | None = None,
                              active_share: float = 1.0, alpha: float = DEFAULT_ALPHA,
                              power: float = DEFAULT_POWER) -> float:
    """The smallest absolute difference between the control and one treatment that a two-sided test at
    `alpha` detects with probability `power`, with `members` split equally over `arms` and the metric
    computed over the `active_share` of each arm's members."""
    variance = _check_spread(sd_control, sd_treatment, arms, active_share)
    z = _check_probabilities(alpha, power)
    if not (isinstance(members, (int, float, np.integer, np.floating)) and math.isfinite(members)):
        raise ValueError(f"members must be a number, got {members!r}")
    per_arm = members / arms
    if per_arm < 2:
        raise ValueError(f"{members} members over {arms} arms is {per_arm:g} per arm; the test needs at least 2")
    counted = per_arm * active_share
    if counted < 2:
        raise ValueError(f"{per_arm:g} members per arm with an active share of {active_share:.1%} is {counted:.2f} "
                         "counted members per arm; the test needs at least 2")
    return z * math.sqrt(variance / counted)


def members_needed(effect: float, sd_control: float, arms: int = 2, *, sd_treatment: float | None = None,
                   active_share: float = 1.0, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER) -> int:
    """The fewest members in total, over all `arms`, for which `minimum_detectable_effect` is at most the
    absolute `effect`: the inverse of it, rounded up (and at least 2 counted members per arm)."""
    if not (isinstance(effect, (int, float, np.floating)) and math.isfinite(effect) and effect > 0):
        raise ValueError(f"effect must be a finite number > 0 (an absolute difference), got {effect!r}")
    variance = _check_spread(sd_control, sd_treatment, arms, active_share)
    z = _check_probabilities(alpha, power)
    counted = max(2.0, (z / effect) ** 2 * variance)
    return int(math.ceil(arms * counted / active_share))


def relative_effect(effect: float, control_mean: float) -> float:
    """An absolute difference as a fraction of the control's mean (0.02 is +2%)."""
    if not (math.isfinite(control_mean) and control_mean > 0):
        raise ValueError(f"a relative effect needs a control mean > 0, got {control_mean!r}")
    return effect / control_mean


def absolute_effect(relative: float, control_mean: float) -> float:
    """A fraction of the control's mean (0.02 is +2%) as an absolute difference."""
    if not (math.isfinite(control_mean) and control_mean > 0):
        raise ValueError(f"a relative effect needs a control mean > 0, got {control_mean!r}")
    return relative * control_mean


@dataclass(frozen=True)
class Pilot:
    """A short experiment's per-arm spread: for each arm and metric, the mean, the per-member standard
    deviation (se * sqrt(n) of `analyze`), the share of assigned members the metric is computed over,
    and those members' count n."""

    arms: list[str]  # control first
    members: int
    days: float
    seed: int
    table: pd.DataFrame  # arm, metric, mean, sd, active_share, n, assigned

    @property
    def control(self) -> str:
        return self.arms[0]

    def row(self, arm: str, metric: str) -> pd.Series:
        """The pilot's figures of one arm and metric."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
        hit = self.table[(self.table["arm"] == arm) & (self.table["metric"] == metric)]
        if hit.empty:
            raise ValueError(f"the pilot has no arm {arm!r}; its arms are {', '.join(self.arms)}")
        return hit.iloc[0]

    def active_share(self, metric: str) -> float:
        """The share of members the metric counts, over every arm (sessions do not depend on the arm)."""
        part = self.table[self.table["metric"] == metric]
        return float(part["n"].sum() / part["assigned"].sum())


def run_pilot(dataset, world, arms: dict[str, Any], days: float, members: int = PILOT_MEMBERS, seed: int = 0,
              slot_minutes: int = 60, progress: Callable[[str, float], None] | None = None) -> Pilot:
    """A short seeded experiment of `arms` (control first) over `days` with `members`, read by `analyze`:
    the per-arm figures the planner needs, in the analysis's own per-member unit."""
    if members / max(1, len(arms)) < 2:
        raise ValueError(f"a pilot of {members} members over {len(arms)} arms has fewer than 2 per arm")
    config = ExperimentConfig(users=int(members), days=float(days), seed=int(seed), slot_minutes=int(slot_minutes))
    result = run_experiment(dataset, world, arms, config, progress=progress)
    report = analyze(result)
    assigned = result.assignment["arm"].value_counts()
    table = report.arms.rename(columns={"estimate": "mean"})[["arm", "metric", "mean", "se", "n"]].copy()
    table["assigned"] = table["arm"].map(assigned).fillna(0).astype(np.int64)
    table["sd"] = table["se"] * np.sqrt(table["n"])
    table["active_share"] = table["n"] / table["assigned"].where(table["assigned"] > 0)
    return Pilot(arms=list(result.arms), members=int(members), days=float(days), seed=int(seed),
                 table=table[["arm", "metric", "mean", "sd", "active_share", "n", "assigned"]].reset_index(drop=True))


def plan(pilot: Pilot, metric: str, members: int, effect: float, alpha: float = DEFAULT_ALPHA,
         power: float = DEFAULT_POWER) -> pd.DataFrame:
    """For each treatment against the control, at `members` split over all the pilot's arms: the minimum
    detectable effect (absolute and relative to the control mean), and the members needed to detect the
    relative `effect` (0.02 is +2%), from the pilot's spreads."""
    if not (isinstance(effect, (int, float, np.floating)) and math.isfinite(effect) and effect > 0):
        raise ValueError("the effect to detect must be a fraction > 0 of the control mean (0.02 is +2%), "
                         f"got {effect!r}")
    control = pilot.row(pilot.control, metric)
    share = pilot.active_share(metric)
    if not (np.isfinite(control["sd"]) and share > 0):
        raise ValueError(f"the pilot has too few active members to measure the spread of {metric}; "
                         "run it over more days")
    rows = []
    for treatment in pilot.arms[1:]:
        other = pilot.row(treatment, metric)
        if not np.isfinite(other["sd"]):
            raise ValueError(f"the pilot has too few active members in {treatment!r} to measure the spread of "
                             f"{metric}; run it over more days")
        kw = dict(sd_treatment=float(other["sd"]), active_share=share, alpha=alpha, power=power)
        mde = minimum_detectable_effect(float(control["sd"]), members, len(pilot.arms), **kw)
        target = absolute_effect(effect, float(control["mean"]))
        needed = members_needed(target, float(control["sd"]), len(pilot.arms), **kw)
        rows.append({"treatment": treatment, "control_mean": float(control["mean"]), "sd_control": float(control["sd"]),
                     "sd_treatment": float(other["sd"]), "active_share": share, "mde": mde,
                     "mde_relative": relative_effect(mde, float(control["mean"])), "effect": target,
                     "effect_relative": effect, "members_needed": needed, "enough": bool(needed <= members)})
    return pd.DataFrame(rows)
