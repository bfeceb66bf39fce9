"""The Metrics page's fresh evaluation (which models, on which folds, written where), the reading of a
report's off-policy section, and the page's HTML download (pages only render).

Streamlit (through .cache and .models) is imported inside the functions that need it, so the HTML
report can reuse the pure helpers here without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..evaluation.report import ranker_choices

__all__ = ["QUICK_MODELS", "ranker_names", "evaluation_models", "run_evaluation", "estimated_online",
           "order_disagreements", "estimated_differences", "ReportDownload", "report_download", "ranker_choices"]

#: The quick set: the floor, the fallback, the best single source, the blend and the default pipeline (its ranker
#: chosen as `recsys train` chooses it: logistic regression on the sample).
QUICK_MODELS = ["random", "popularity", "ease", "blend", "pipeline"]


def ranker_names() -> list[str]:
    """Every registered ranker (the page's pickers offer these)."""
    from ..ranking import RANKERS

    return list(RANKERS.names())


def evaluation_models(spec: str, full: bool) -> list[str]:
    """The models a fresh evaluation compares: the quick set, or every default model; the oracle on a world."""
    from ..data.loaders import world_of
    from ..evaluation.models import default_models

    has_world = world_of(spec) is not None
    if full:
        return default_models(has_world)
    return QUICK_MODELS + (["oracle"] if has_world else [])


def run_evaluation(spec: str, full: bool, path: Path, progress: Callable[[str, float], None],
                   off_policy: bool = False) -> Path:
    """Evaluate on `spec`'s data (3 temporal folds when `full`, else 1) and write the report to `path`;
    `off_policy` adds each model's online value estimated from the logs (docs/off-policy.md)."""
    from ..data.loaders import world_of
    from ..evaluation.logged import OffPolicyUnavailable
    from ..evaluation.models import build_policies, online_specs
    from ..evaluation.off_policy import OffPolicyConfig, evaluate_off_policy
    from ..evaluation.protocol import temporal_folds
    from ..evaluation.report import attach_off_policy, evaluate, write_report
    from .cache import load_cached_dataset

    data = load_cached_dataset(spec)
    names = evaluation_models(spec, full)
    folds = temporal_folds(data, n_folds=3 if full else 1, test_days=14)
    share = 0.6 if off_policy else 1.0
    report = evaluate(data, build_policies(names, spec, "temporal", 0), folds, k=10,
                      max_k=50, protocol={"name": "temporal", "folds": len(folds), "test_days": 14},
                      progress=lambda message, fraction: progress(message, share * fraction))
    if off_policy:
        world = world_of(spec)
        try:
            estimates = evaluate_off_policy(data, online_specs(names, 0, world is not None), world=world,
                                            config=OffPolicyConfig(),
                                            progress=lambda message, fraction: progress(
                                                f"estimated online: {message}", share + (1 - share) * fraction))
        except OffPolicyUnavailable as err:
            estimates = str(err)
        report = attach_off_policy(report, estimates)
    return write_report(report, path)


def estimated_online(report: dict) -> tuple[dict[str, dict], str | None]:
    """Each model's off-policy estimates in a report ({model: {metric: estimate dict}}), and the reason
    when the report's off-policy section could not run (None when there is no section at all)."""
    section = report.get("off_policy")
    if not section:
        return {}, None
    if "unavailable" in section:
        return {}, section["unavailable"]
    return {name: m["off_policy"] for name, m in report["models"].items() if "off_policy" in m}, None


def order_disagreements(first: dict[str, float], second: dict[str, float]) -> list[tuple[str, str]]:
    """Pairs (a, b) that `first` ranks a above b and `second` ranks b above a (models in both only)."""
    names = sorted(set(first) & set(second), key=lambda n: -first[n])
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if first[a] > first[b] and second[b] > second[a]]


def estimated_differences(report: dict) -> list[dict]:
    """The off-policy section's pairwise differences between the report's models (minutes per session,
    paired over the same logged sessions), each oriented so the first is the one estimated ahead."""
    section = (report.get("off_policy") or {}).get("differences") or {}
    models = set(report.get("models", {}))
    rows = []
    for pair in section.get("pairs", []):
        if pair["first"] not in models or pair["second"] not in models:
            continue
        flip = pair["estimate"] < 0
        ahead, behind = (pair["second"], pair["first"]) if flip else (pair["first"], pair["second"])
        sign = -1.0 if flip else 1.0
        low, high = sorted((sign * pair["low"], sign * pair["high"]))
        rows.append({"ahead": ahead, "behind": behind, "by (minutes/session)": sign * pair["estimate"],
                     "low": low, "high": high, "told apart": bool(pair["separated"])})
    return sorted(rows, key=lambda r: -r["by (minutes/session)"])


@dataclass(frozen=True)
class ReportDownload:
    """What the Metrics page's download button offers: a file name, the builder of its bytes (run when the
    button is pressed), whether a model manifest is in it, and whether the A/B page's last outcome is (or why not)."""

    file_name: str
    data: Callable[[], bytes]
    with_manifest: bool
    with_ab: bool
    ab_note: str | None


def report_download(report: dict, spec: str, ab_outcome: dict[str, Any] | None) -> ReportDownload:
    """The Metrics page's HTML report: `report` (checked now: a DataError if its shape is wrong), the active
    model's manifest on `spec`, and the A/B page's last outcome when there is one that can be read."""
    from ..data.errors import DataError
    from .models import saved_manifest
    from .report_html import ABResults, check_evaluation, render_html

    check_evaluation(report)
    try:
        manifest = saved_manifest(spec)
    except DataError:  # the session's data cannot be read: the report still exports, without a model
        manifest = None
    ab, note = None, None
    if ab_outcome is not None and ab_outcome.get("spec", spec) != spec:
        note = "the A/B page's last result was run on other data, so it is left out"
    elif ab_outcome is not None:
        try:
            ab = ABResults.from_outcome(ab_outcome)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            note = f"the A/B page's last result cannot be read ({type(err).__name__}: {err})"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(report.get("dataset", {}).get("name", "evaluation"))).strip("-.")
    return ReportDownload(file_name=f"recsys-report-{name or 'evaluation'}.html",
                          data=lambda: render_html(report, manifest, ab).encode("utf-8"),
                          with_manifest=manifest is not None, with_ab=ab is not None, ab_note=note)
