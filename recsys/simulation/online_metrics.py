"""Online metrics of an experiment, per arm, with confidence intervals, lifts and a sample-ratio check.

Members are the randomisation unit, so every statistic is computed over members, not sessions:
each metric is a ratio of per-member sums, sum(y) / sum(x) (e.g. sessions with a play / sessions),
and its standard error comes from the linearised per-member values y_i - R x_i (the delta method;
for a per-member mean, x_i = 1, this is the usual standard error of the mean). Two arms are compared
with Welch's t on those values (Welch-Satterthwaite degrees of freedom): the difference, the
relative lift (treatment / control - 1, delta-method interval) and whether p < alpha. The
sample-ratio check is a chi-square goodness-of-fit test of the members seen per arm against the
planned shares; p < 0.001 flags a mismatch (the usual threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["METRICS", "per_member", "ratio_estimate", "compare_ratio", "paired_difference", "sample_ratio_check",
           "analyze", "ABReport", "daily_metrics"]

#: name -> (numerator column, denominator column, description)
METRICS: dict[str, tuple[str, str, str]] = {
    "engagement_rate": ("engaged", "sessions", "sessions with a play / sessions"),
    "videos_per_session": ("plays", "sessions", "titles played per session (autoplayed episodes included)"),
    "finished_per_session": ("finished", "sessions", "titles watched past the threshold (80%) per session"),
    "minutes_per_session": ("minutes", "sessions", "minutes watched per session"),
    "minutes_per_member": ("minutes", "members", "minutes watched per member in the arm, over the period"),
}
SRM_ALPHA = 0.001


def per_member(sessions: pd.DataFrame, assignment: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per member: arm, sessions, engaged sessions, plays, finished, minutes, and members (=1).

    With `assignment`, members of an arm who had no session are included with zeros (they count
    for per-member metrics; per-session ratios ignore them)."""
    agg = sessions.assign(engaged=sessions["engaged"].astype(np.int64)).groupby(["user_id", "arm"], sort=True).agg(
        sessions=("session_id", "size"), engaged=("engaged", "sum"), plays=("plays", "sum"),
        finished=("finished", "sum"), minutes=("minutes", "sum")).reset_index()
    if assignment is not None:
        agg = assignment[["user_id", "arm"]].merge(agg, on=["user_id", "arm"], how="left")
        for col in ("sessions", "engaged", "plays", "finished"):
            agg[col] = agg[col].fillna(0).astype(np.int64)
        agg["minutes"] = agg["minutes"].fillna(0.0)
    agg["members"] = 1
    return agg


def ratio_estimate(y, x, level: float = 0.95) -> dict[str, float]:
    """sum(y) / sum(x) over members with x > 0, with its delta-method standard error and interval."""
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    keep = x > 0
    y, x = y[keep], x[keep]
    n = len(x)
    if n == 0:
        return {"estimate": float("nan"), "se": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    r = y.sum() / x.sum()
    resid = y - r * x
    se = float(np.sqrt(n / (n - 1) * np.sum(resid ** 2)) / x.sum()) if n > 1 else float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    return {"estimate": float(r), "se": se, "low": float(r - z * se), "high": float(r + z * se), "n": int(n)}


def paired_difference(sessions: pd.DataFrame, first: str, second: str, metric: str = "minutes_per_session",
                      level: float = 0.95) -> dict[str, float]:
    """`first` minus `second` in a paired experiment (`run_paired`: both arms over the same members and
    sessions), as the ratio of the per-member differences to the shared denominator, with its
    delta-method interval: the member-to-member spread the two arms share cancels."""
    num, den, _ = METRICS[metric]
    members = per_member(sessions[sessions["arm"].isin([first, second])])
    wide = members.pivot(index="user_id", columns="arm")
    if first not in wide[den].columns or second not in wide[den].columns or wide[den].isna().any().any() \
            or not (wide[den][first] == wide[den][second]).all():
        raise ValueError(f"arms {first!r} and {second!r} are not paired: they must have the same members with the "
                         "same sessions (recsys.simulation.run_paired)")
    return ratio_estimate(wide[num][first] - wide[num][second], wide[den][first], level)


def compare_ratio(control: dict[str, float], treatment: dict[str, float], alpha: float = 0.05) -> dict[str, float]:
    """Treatment minus control (Welch t on the linearised per-member values) and relative lift."""
    c, t = control["estimate"], treatment["estimate"]
    se_c, se_t = control["se"], treatment["se"]
    n_c, n_t = control["n"], treatment["n"]
    diff = t - c
    var = se_c ** 2 + se_t ** 2
    out = {"control": c, "treatment": t, "diff": diff, "diff_low": float("nan"), "diff_high": float("nan"),
           "lift": float("nan"), "lift_low": float("nan"), "lift_high": float("nan"), "p_value": float("nan"),
           "significant": False, "df": float("nan")}
    if not (np.isfinite(var) and n_c > 1 and n_t > 1):
        return out
    if var == 0:
        out.update(diff_low=diff, diff_high=diff, p_value=1.0 if diff == 0 else 0.0, significant=diff != 0)
    else:
        df = var ** 2 / (se_c ** 4 / (n_c - 1) + se_t ** 4 / (n_t - 1))
        q = stats.t.ppf(1 - alpha / 2, df)
        p = float(2 * stats.t.sf(abs(diff) / np.sqrt(var), df))
        out.update(diff_low=diff - q * np.sqrt(var), diff_high=diff + q * np.sqrt(var), p_value=p,
                   significant=bool(p < alpha), df=float(df))
    if c > 0:
        lift = t / c - 1
        se_lift = (t / c) * np.sqrt((se_t / t) ** 2 + (se_c / c) ** 2) if t > 0 else se_t / c
        q = stats.t.ppf(1 - alpha / 2, out["df"]) if np.isfinite(out["df"]) else stats.norm.ppf(1 - alpha / 2)
        out.update(lift=lift, lift_low=lift - q * se_lift, lift_high=lift + q * se_lift)
    return {k: (float(v) if k != "significant" else bool(v)) for k, v in out.items()}


def sample_ratio_check(counts: dict[str, int], shares: dict[str, float] | None = None,
                       alpha: float = SRM_ALPHA) -> dict[str, Any]:
    """Chi-square goodness of fit of members per arm against the planned shares (equal by default)."""
    names = list(counts)
    observed = np.array([counts[n] for n in names], dtype=float)
    planned = np.array([1.0 if shares is None else shares[n] for n in names], dtype=float)
    expected = observed.sum() * planned / planned.sum()
    if observed.sum() == 0 or len(names) < 2:
        return {"observed": counts, "expected": dict(zip(names, expected.tolist())), "chi2": 0.0, "p_value": 1.0,
                "mismatch": False, "alpha": alpha}
    chi2, p = stats.chisquare(observed, expected)
    return {"observed": {n: int(v) for n, v in zip(names, observed)},
            "expected": {n: float(v) for n, v in zip(names, expected)}, "chi2": float(chi2), "p_value": float(p),
            "mismatch": bool(p < alpha), "alpha": alpha}


def daily_metrics(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per day and arm: sessions, engagement rate, videos and minutes per session."""
    if len(sessions) == 0:
        return pd.DataFrame(columns=["day", "arm", "sessions", "engagement_rate", "videos_per_session",
                                     "minutes_per_session"])
    g = sessions.groupby(["day", "arm"], sort=True)
    return g.agg(sessions=("session_id", "size"), engagement_rate=("engaged", "mean"),
                 videos_per_session=("plays", "mean"), minutes_per_session=("minutes", "mean")).reset_index()


@dataclass
class ABReport:
    """The analysis: per-arm table, comparisons with the control, sample-ratio check, daily view."""

    arms: pd.DataFrame  # arm, metric, estimate, se, low, high, n
    comparisons: pd.DataFrame  # treatment, metric, control, treatment_value, diff, lift, lift_low, ..., significant
    srm: dict[str, Any]
    daily: pd.DataFrame
    members: pd.DataFrame  # the per-member table the statistics were computed from
    control: str
    alpha: float

    def table(self) -> pd.DataFrame:
        """Wide per-arm table: members, sessions and each metric with its interval."""
        rows = []
        for arm, part in self.arms.groupby("arm", sort=False):
            m = self.members[self.members["arm"] == arm]
            row = {"arm": arm, "members": int(len(m)), "active members": int((m["sessions"] > 0).sum()),
                   "sessions": int(m["sessions"].sum())}
            for r in part.itertuples():
                row[r.metric] = r.estimate
                row[f"{r.metric} low"] = r.low
                row[f"{r.metric} high"] = r.high
            rows.append(row)
        return pd.DataFrame(rows)

    def to_json(self) -> dict[str, Any]:
        return {"control": self.control, "alpha": self.alpha, "metrics": {k: v[2] for k, v in METRICS.items()},
                "arms": self.table().to_dict("records"), "comparisons": self.comparisons.to_dict("records"),
                "srm": self.srm, "daily": self.daily.to_dict("records")}


def analyze(result, alpha: float = 0.05, level: float = 0.95, sessions: pd.DataFrame | None = None) -> ABReport:
    """Statistics of an ExperimentResult (`sessions` overrides its sessions, e.g. to test the SRM check)."""
    sessions = result.sessions if sessions is None else sessions
    members = per_member(sessions, result.assignment)
    rows = []
    estimates: dict[tuple[str, str], dict[str, float]] = {}
    for arm in result.arms:
        m = members[members["arm"] == arm]
        for metric, (num, den, _) in METRICS.items():
            est = ratio_estimate(m[num], m[den], level)
            estimates[(arm, metric)] = est
            rows.append({"arm": arm, "metric": metric, **est})
    comparisons = []
    for arm in result.arms[1:]:
        for metric in METRICS:
            cmp = compare_ratio(estimates[(result.control, metric)], estimates[(arm, metric)], alpha)
            comparisons.append({"treatment": arm, "metric": metric, "control_value": cmp.pop("control"),
                                "treatment_value": cmp.pop("treatment"), **cmp})
    active = members[members["sessions"] > 0]
    counts = {arm: int((active["arm"] == arm).sum()) for arm in result.arms}
    srm = sample_ratio_check(counts, dict(zip(result.arms, result.shares)))
    assigned = {arm: int((result.assignment["arm"] == arm).sum()) for arm in result.arms}
    srm["assigned"] = assigned
    srm["assigned_p_value"] = sample_ratio_check(assigned, dict(zip(result.arms, result.shares)))["p_value"]
    return ABReport(arms=pd.DataFrame(rows), comparisons=pd.DataFrame(comparisons), srm=srm,
                    daily=daily_metrics(sessions), members=members, control=result.control, alpha=alpha)
