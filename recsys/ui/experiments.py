"""The A/B page's experiment: arms by name, the planner's pilot, the simulated run, its analysis (pages only
render)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .cache import load_cached_dataset, previous_default_recommender, simulated_world, trained_recommender

__all__ = ["PIPELINE", "PREVIOUS", "pilot_key", "run_ab_pilot", "run_ab_test"]

if TYPE_CHECKING:
    from ..simulation import Pilot

#: The arm that serves the app's trained pipeline; the other arms are online policies by name.
PIPELINE = "trained pipeline"
#: The arm that serves the pipeline's previous default configuration, trained on the same data.
PREVIOUS = "previous default pipeline"


def _policies(spec: str, arms: list[str], progress: Callable[[str, float], None]) -> dict[str, Any]:
    """Each arm's policy: the app's trained pipelines for their names, the online policies by name."""
    policies: dict[str, Any] = {}
    for name in arms:
        if name == PIPELINE:
            progress("loading the trained pipeline (trains it the first time, about a minute)", 0.0)
            policies[name] = trained_recommender(spec)
        elif name == PREVIOUS:
            progress("training the previous default pipeline (the first time, about a minute)", 0.0)
            policies[name] = previous_default_recommender(spec)
        else:
            policies[name] = name
    return policies


def pilot_key(spec: str, arms: list[str], days: float, seed: int, slot_minutes: int) -> tuple:
    """What a pilot depends on (not the planned members, metric or effect): the page keeps one pilot per key."""
    return (spec, tuple(arms), float(days), int(seed), int(slot_minutes))


def run_ab_pilot(spec: str, arms: list[str], days: float, seed: int, slot_minutes: int,
                 progress: Callable[[str, float], None]) -> Pilot:
    """The planner's pilot (`recsys.simulation.run_pilot`): the arms over the chosen days with PILOT_MEMBERS
    members (or all the world's, if fewer), for the per-member spread of every metric."""
    from ..simulation import PILOT_MEMBERS, run_pilot

    dataset, world = load_cached_dataset(spec), simulated_world(spec)
    policies = _policies(spec, arms, progress)
    return run_pilot(dataset, world, policies, days=float(days), members=min(PILOT_MEMBERS, len(world.users)),
                     seed=int(seed), slot_minutes=int(slot_minutes), progress=progress)


def run_ab_test(spec: str, arms: list[str], users: int, days: float, seed: int, slot_minutes: int,
                retrain_every_days: float | None, offline: bool, progress: Callable[[str, float], None]
                ) -> dict[str, Any]:
    """Run the experiment with `arms` (control first) on `spec`'s world and return what the page shows."""
    from ..simulation import (
        ExperimentConfig, analyze, evaluation_policy, offline_metrics, offline_vs_online, run_experiment,
    )

    dataset, world = load_cached_dataset(spec), simulated_world(spec)
    policies = _policies(spec, arms, progress)
    config = ExperimentConfig(users=int(users), days=float(days), seed=int(seed), slot_minutes=int(slot_minutes),
                              retrain_every_days=retrain_every_days)
    result = run_experiment(dataset, world, policies, config, progress=progress)
    report = analyze(result)
    comparison = None
    if offline:
        factories = {name: evaluation_policy(arm, world, int(seed)) for name, arm in policies.items()}
        off = offline_metrics(dataset, factories, k=10, seed=int(seed),
                              progress=lambda message, fraction: progress(f"offline: {message}", fraction))
        comparison = offline_vs_online(off, report, k=10)
    return {"spec": spec, "summary": result.summary(), "table": report.table(), "comparisons": report.comparisons,
            "daily": report.daily, "srm": report.srm, "control": report.control, "alpha": report.alpha,
            "offline": comparison,
            "off_policy": _estimated(dataset, world, policies, report, int(seed), int(slot_minutes), progress)
            if offline else None}


def _estimated(dataset, world, policies: dict[str, Any], report, seed: int, slot_minutes: int,
               progress: Callable[[str, float], None]) -> dict[str, Any]:
    """Each arm's online value estimated from the logs (docs/off-policy.md) beside its simulated value."""
    from ..evaluation.logged import OffPolicyUnavailable
    from ..evaluation.off_policy import OffPolicyConfig, evaluate_off_policy
    from ..simulation import off_policy_vs_online

    try:
        estimates = evaluate_off_policy(dataset, policies, world=world,
                                        config=OffPolicyConfig(seed=seed, slot_minutes=slot_minutes),
                                        progress=lambda message, fraction: progress(f"estimated: {message}", fraction))
    except OffPolicyUnavailable as err:
        return {"unavailable": str(err)}
    table, agreement = off_policy_vs_online(estimates, report)
    return {"estimator": estimates.lead, "table": table, "agreement": agreement,
            "window": (str(estimates.window_start)[:16], str(estimates.window_end)[:16])}
