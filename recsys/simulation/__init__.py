"""Online A/B simulation against the simulated world (docs/simulation.md).

`run_experiment(dataset, world, {"control": "popularity", "treatment": model}, ExperimentConfig(...))`
plays a future period of the world with members randomly assigned to arms (`run_paired`: every policy
over all of them); `analyze(result)` gives per-arm online metrics with confidence intervals, lifts
against the control and a sample-ratio check; `offline_vs_online` sets offline NDCG/mAP next to the
online results, and `off_policy_vs_online` the off-policy estimates (recsys.evaluation.off_policy), and
`pairwise_agreement` their differences against a paired experiment's. `run_pilot` and `plan` (power.py) give
the minimum detectable effect of a planned split test and the members it needs, from a short pilot's spread.
"""

from .experiment import ExperimentConfig, ExperimentResult, assign_arms, run_experiment, run_paired, session_outcomes
from .offline_online import (evaluation_policy, off_policy_vs_online, offline_metrics, offline_vs_online,
                             pairwise_agreement)
from .online_metrics import (
    METRICS, ABReport, analyze, compare_ratio, daily_metrics, paired_difference, per_member, ratio_estimate,
    sample_ratio_check,
)
from .power import (
    DEFAULT_ALPHA, DEFAULT_POWER, PILOT_MEMBERS, Pilot, absolute_effect, members_needed, minimum_detectable_effect,
    plan, relative_effect, run_pilot,
)
from .policies import (
    ONLINE_POLICIES, POLICY_NAMES, LoggingPolicy, OnlinePolicy, OraclePolicy, PopularityPolicy, RandomPolicy,
    RecommenderPolicy, append_events,
    finished_pairs, make_policy,
)

__all__ = [
    "ExperimentConfig", "ExperimentResult", "assign_arms", "run_experiment", "run_paired", "session_outcomes",
    "evaluation_policy", "off_policy_vs_online", "offline_metrics", "offline_vs_online", "pairwise_agreement",
    "METRICS", "ABReport", "analyze", "compare_ratio", "daily_metrics", "paired_difference", "per_member",
    "ratio_estimate",
    "sample_ratio_check",
    "DEFAULT_ALPHA", "DEFAULT_POWER", "PILOT_MEMBERS", "Pilot", "absolute_effect", "members_needed",
    "minimum_detectable_effect", "plan", "relative_effect", "run_pilot",
    "ONLINE_POLICIES", "POLICY_NAMES", "LoggingPolicy", "OnlinePolicy", "OraclePolicy", "PopularityPolicy",
    "RandomPolicy",
    "RecommenderPolicy",
    "append_events", "finished_pairs", "make_policy",
]
