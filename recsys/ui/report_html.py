"""The evaluation report (with its off-policy estimates), the model manifest and an A/B test's results as
one self-contained HTML file: plotly.js inlined once, an inline stylesheet, nothing fetched from a network.

`recsys report` and the Metrics page's download button both render through `render_html`. It imports
no streamlit. Every string from the data is HTML-escaped; input of the wrong shape raises a DataError
naming the file.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from ..atomic import atomic_write_bytes
from ..data.errors import DataError
from .charts import (
    AB_METRIC_LABELS, ab_arm_metric, ab_daily, ab_lifts, estimate_vs_simulated_chart, metric_curves,
    offline_vs_online_chart, per_fold, per_segment,
)
from .evaluation import estimated_differences, estimated_online, order_disagreements

__all__ = ["ABResults", "read_evaluation", "check_evaluation", "read_manifest", "read_ab", "render_html",
           "write_html", "chart_count"]

CURVE_METRICS = ("ndcg", "recall", "precision", "map")
OFF_POLICY_METRICS = ("engagement_rate", "videos_per_session", "minutes_per_session")
# Inline scripts and styles only: a file opened from disk can reach nothing, even by accident.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:")
# The chart grid uses auto-fill, not auto-fit: a chart's column has its final width when its script draws
# it, before the charts after it are parsed (plotly does not redraw when its container narrows).
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2933;
       margin: 0 auto; max-width: 1280px; padding: 24px 32px 64px; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 2px solid #e4e7eb; }
h3 { margin-top: 28px; } .meta, .note { color: #52606d; font-size: .92rem; }
.warn { background: #fff4e5; border-left: 4px solid #f0a202; padding: 8px 12px; }
.bad { background: #fdecea; border-left: 4px solid #d64545; padding: 8px 12px; }
.ok { background: #e8f6ee; border-left: 4px solid #2f9e66; padding: 8px 12px; }
.table { overflow-x: auto; } table { border-collapse: collapse; margin: 8px 0 16px; font-size: .88rem; }
th, td { border: 1px solid #d9dee3; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f7fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85rem; word-break: break-all; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
.chart { border: 1px solid #e4e7eb; border-radius: 6px; padding: 4px; min-height: 440px; overflow: hidden; }
"""


# ------------------------------------------------------------------ reading the inputs
def _read_json(path: str | Path, what: str) -> Any:
    """The parsed JSON file at `path`, or a DataError naming it (missing, unreadable, not JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"no such {what} file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"the {what} cannot be read ({err})", file=str(path)) from None
    try:
        return json.loads(text)
    except ValueError as err:
        raise DataError(f"the {what} is not JSON ({err})", file=str(path)) from None


def _need(ok: bool, problem: str, source: str) -> None:
    if not ok:
        raise DataError(problem, file=source)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_evaluation(report: Any, source: str = "the evaluation report") -> dict[str, Any]:
    """`report` if it has the shape `recsys evaluate` writes (what the HTML reads of it), else a DataError."""
    hint = "expected the JSON that `recsys evaluate --out R.json` writes"
    _need(isinstance(report, dict), f"not an evaluation report: the JSON is a {type(report).__name__}; {hint}",
          source)
    models = report.get("models")
    _need(isinstance(models, dict) and len(models) > 0, f"not an evaluation report: no 'models'; {hint}", source)
    _need(_is_number(report.get("k")), "the report has no list length 'k'", source)
    _need(isinstance(report.get("dataset", {}), dict), "the report's 'dataset' is not an object", source)
    for name, model in models.items():
        _need(isinstance(model, dict) and isinstance(model.get("metrics"), dict),
              f"model {name!r} has no 'metrics'", source)
        for metric, value in model["metrics"].items():
            _need(isinstance(value, dict) and _is_number(value.get("estimate")),
                  f"model {name!r}: metric {metric!r} has no numeric 'estimate'", source)
        _need("ndcg" in model["metrics"], f"model {name!r} has no 'ndcg'", source)
        curves = model.get("curves", {})
        _need(isinstance(curves, dict) and all(isinstance(v, list) and all(_is_number(x) for x in v)
                                               for v in curves.values()),
              f"model {name!r}: 'curves' is not metric -> list of numbers", source)
        folds = model.get("per_fold", [])
        _need(isinstance(folds, list) and all(isinstance(f, dict) and "fold" in f for f in folds),
              f"model {name!r}: 'per_fold' is not a list of folds", source)
        segments = model.get("segments", {})
        _need(isinstance(segments, dict) and all(isinstance(v, dict) and all(
            isinstance(s, dict) and _is_number(s.get("users")) for s in v.values()) for v in segments.values()),
              f"model {name!r}: 'segments' is not segment -> value -> statistics", source)
    _need(isinstance(report.get("comparisons", []), list) and all(
        isinstance(c, dict) and {"a", "b", "metric", "diff", "low", "high", "p_value"} <= set(c)
        for c in report.get("comparisons", [])), "the report's 'comparisons' are not paired tests", source)
    off = report.get("off_policy")
    _need(off is None or isinstance(off, dict), "the report's 'off_policy' is not an object", source)
    if off and "unavailable" not in off:
        for name, model in models.items():
            est = model.get("off_policy", {})
            _need(isinstance(est, dict) and all(isinstance(v, dict) and _is_number(v.get("estimate"))
                                                for v in est.values()),
                  f"model {name!r}: 'off_policy' is not metric -> estimate", source)
    return report


def read_evaluation(path: str | Path) -> dict[str, Any]:
    """The evaluation report JSON at `path` (written by `recsys evaluate`), checked."""
    return check_evaluation(_read_json(path, "evaluation report"), str(path))


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """`folder/manifest.json` of a model saved by `recsys train`."""
    path = Path(folder) / "manifest.json"
    manifest = _read_json(path, "model manifest")
    _need(isinstance(manifest, dict) and isinstance(manifest.get("config"), dict),
          "not a model manifest (no 'config'); expected a folder written by `recsys train`", str(path))
    return manifest


@dataclass(frozen=True)
class ABResults:
    """An A/B test's results as the report shows them, from `recsys simulate --json` or the A/B page."""

    control: str
    alpha: float
    summary: dict[str, Any]
    arms: pd.DataFrame  # ABReport.table(): arm, members, active members, sessions, each metric, low, high
    comparisons: pd.DataFrame  # treatment, metric, control_value, treatment_value, lift, lift_low, ..., p_value
    srm: dict[str, Any]
    daily: pd.DataFrame  # day, arm, sessions, engagement_rate, ...
    offline: tuple[pd.DataFrame, dict[str, Any]] | None = None
    off_policy: dict[str, Any] | None = None  # {"estimator", "table"} or {"unavailable"}

    @classmethod
    def from_json(cls, payload: Any, source: str = "the A/B results") -> "ABResults":
        """What `recsys simulate --json` prints (checked; a DataError names `source` otherwise)."""
        hint = "expected the JSON that `recsys simulate ... --json` prints"
        _need(isinstance(payload, dict), f"not A/B results: the JSON is a {type(payload).__name__}; {hint}", source)
        for key in ("arms", "comparisons", "daily"):
            _need(isinstance(payload.get(key), list) and all(isinstance(r, dict) for r in payload[key]),
                  f"not A/B results: no list of records {key!r}; {hint}", source)
        _need(len(payload["arms"]) > 0 and all("arm" in r for r in payload["arms"]), "no arms in the results", source)
        _need(all({"treatment", "metric", "lift", "lift_low", "lift_high", "p_value", "significant"} <= set(r)
                  for r in payload["comparisons"]), "the 'comparisons' lack lifts or p-values", source)
        _need(all({"day", "arm", "sessions"} <= set(r) for r in payload["daily"]),
              "the 'daily' records lack day, arm or sessions", source)
        srm = payload.get("srm")
        _need(isinstance(srm, dict) and {"observed", "expected", "p_value", "mismatch"} <= set(srm),
              "no sample-ratio check 'srm'", source)
        _need(isinstance(payload.get("control"), str), "no 'control' arm", source)
        offline = None
        if isinstance(payload.get("offline_vs_online"), dict):
            section = payload["offline_vs_online"]
            offline = (pd.DataFrame(section.get("table") or []), section.get("agreement") or {})
        off_policy = payload.get("off_policy")
        if isinstance(off_policy, dict) and "unavailable" not in off_policy:
            off_policy = {"estimator": off_policy.get("estimator"),
                          "table": pd.DataFrame(off_policy.get("table") or [])}
        summary = {k: payload[k] for k in ("users", "sessions", "start", "end", "seconds", "config") if k in payload}
        return cls(control=payload["control"], alpha=float(payload.get("alpha", 0.05)), summary=summary,
                   arms=pd.DataFrame(payload["arms"]), comparisons=pd.DataFrame(payload["comparisons"]), srm=srm,
                   daily=pd.DataFrame(payload["daily"]), offline=offline,
                   off_policy=off_policy if isinstance(off_policy, dict) else None)

    @classmethod
    def from_outcome(cls, outcome: Mapping[str, Any]) -> "ABResults":
        """The A/B page's last outcome (`st.session_state["ab_outcome"]`, from `recsys.ui.experiments`)."""
        off_policy = outcome.get("off_policy")
        if isinstance(off_policy, dict) and "unavailable" not in off_policy:
            off_policy = {"estimator": off_policy.get("estimator"), "table": pd.DataFrame(off_policy.get("table"))}
        offline = outcome.get("offline")
        return cls(control=outcome["control"], alpha=float(outcome["alpha"]), summary=dict(outcome["summary"]),
                   arms=pd.DataFrame(outcome["table"]), comparisons=pd.DataFrame(outcome["comparisons"]),
                   srm=dict(outcome["srm"]), daily=pd.DataFrame(outcome["daily"]),
                   offline=None if offline is None else (pd.DataFrame(offline[0]), dict(offline[1])),
                   off_policy=off_policy)


def read_ab(path: str | Path) -> ABResults:
    """The A/B results at `path`: the JSON that `recsys simulate --json` prints, saved to a file."""
    return ABResults.from_json(_read_json(path, "A/B results"), str(path))


# ------------------------------------------------------------------ HTML pieces
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """A cell's text: counts with separators, floats to 4 decimals (1 when large), '–' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4f}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def _interval(estimate: Any, low: Any, high: Any, pct: bool = False) -> str:
    if not all(_is_number(v) for v in (estimate, low, high)):
        return _fmt(estimate)
    if pct:
        return f"{estimate:+.1%} [{low:+.1%}, {high:+.1%}]"
    return f"{_fmt(float(estimate))} [{_fmt(float(low))}, {_fmt(float(high))}]"


def _table(rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None, align: bool = True) -> str:
    """An escaped HTML table of `rows` (numbers right-aligned when `align`)."""
    rows = list(rows)
    if not rows:
        return ""
    columns = columns or list(dict.fromkeys(c for r in rows for c in r))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            num = align and _is_number(v)
            cells.append(f'<td class="num">{_e(_fmt(v))}</td>' if num else f"<td>{_e(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of `frame` with plain Python values (numpy scalars and NaN made printable)."""
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _key_values(mapping: Mapping[str, Any]) -> str:
    return _table([{"field": k, "value": v} for k, v in mapping.items()], ["field", "value"], align=False)


class _Charts:
    """The figures of one document: each drawn into its own div, plotly.js loaded once in the head."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *figures: go.Figure) -> str:
        parts = []
        for fig in figures:
            self.count += 1
            parts.append('<div class="chart">' + fig.to_html(
                full_html=False, include_plotlyjs=False, div_id=f"chart-{self.count}", default_height="430px",
                config={"displaylogo": False, "responsive": True}) + "</div>")
        return f'<div class="charts">{"".join(parts)}</div>' if parts else ""


def _interval_chart(entries: Mapping[str, Mapping[str, float]], title: str, axis: str) -> go.Figure:
    """One bar per model with its 95% interval (`entries`: model -> {estimate, low, high}); the model
    comparison and the estimated online value."""
    names = list(entries)
    est = [entries[n]["estimate"] for n in names]
    low = [entries[n].get("low", e) for n, e in zip(names, est)]
    high = [entries[n].get("high", e) for n, e in zip(names, est)]
    fig = go.Figure(go.Bar(x=names, y=est, error_y=dict(type="data", symmetric=False,
                                                        array=[h - e for h, e in zip(high, est)],
                                                        arrayminus=[e - lo for e, lo in zip(est, low)])))
    fig.update_layout(title=title, yaxis_title=axis, margin=dict(t=40, b=10))
    return fig


# ------------------------------------------------------------------ sections
def _header(report: dict[str, Any], title: str, generated: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        code = f"recsys {version('recsys')}"
    except PackageNotFoundError:
        code = "recsys (not installed)"
    ds = report.get("dataset", {})
    counts = ", ".join(f"{_fmt(ds[k])} {k}" for k in ("users", "items", "events") if _is_number(ds.get(k)))
    return (f"<h1>{_e(title)}</h1>"
            f'<p class="meta">Generated {_e(generated)} by {_e(code)}; '
            f'evaluation run {_e(report.get("created", "–"))}'
            f"{_e(', in %s s' % report['seconds']) if 'seconds' in report else ''}.</p>"
            f"<p>Dataset <strong>{_e(ds.get('name', '–'))}</strong> ({_e(ds.get('feedback', '–'))} feedback"
            f"{_e(', ' + counts) if counts else ''}), fingerprint <code>{_e(ds.get('fingerprint', '–'))}</code>.</p>")


def _checksummed(files: Any) -> str:
    if not isinstance(files, dict):
        return ""
    return f", {len(files)} file{'' if len(files) == 1 else 's'} checksummed"


def _manifest_section(manifest: dict[str, Any] | None, report: dict[str, Any]) -> str:
    out = ["<h2>Model</h2>"]
    if manifest is None:
        out.append('<p class="note">No model manifest was given (`recsys report --artifacts DIR` reads '
                   "DIR/manifest.json; the app adds its active model's).</p>")
        return "".join(out)
    data = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    if "format" in manifest:
        out.append(f'<p class="meta">Saved as {_e(manifest["format"])} version {_e(manifest.get("version", "–"))}'
                   f"{_e(_checksummed(manifest.get('files')))}.</p>")
    evaluated = report.get("dataset", {}).get("fingerprint")
    trained = {data.get("fingerprint"), data.get("trained_on")} - {None}
    if evaluated and trained and evaluated not in trained:
        out.append(f'<p class="warn">The model was trained on data with fingerprint '
                   f"<code>{_e(', '.join(sorted(map(str, trained))))}</code>, not the evaluated data "
                   f"(<code>{_e(evaluated)}</code>).</p>")
    titles = {"config": "Configuration", "data": "Training data", "training": "Training summary",
              "fit_seconds": "Fit seconds per stage", "metrics": "Training metrics", "tuning": "Tuning",
              "source_params": "Candidate source parameters"}
    for key, value in manifest.items():
        if isinstance(value, dict) and key != "files" and value:
            out.append(f"<h3>{_e(titles.get(key, key))}</h3>{_key_values(value)}")
    scalars = {k: v for k, v in manifest.items() if not isinstance(v, dict) and k not in ("format", "version")}
    if scalars:
        out.append(f"<h3>Other fields</h3>{_key_values(scalars)}")
    return "".join(out)


def _evaluation_section(report: dict[str, Any], charts: _Charts) -> str:
    models, k = report["models"], int(report["k"])
    protocol = report.get("protocol") or {}
    out = ["<h2>Offline evaluation</h2>",
           f'<p class="meta">Protocol {_e(protocol.get("name", "–"))} '
           f"({_e(', '.join(f'{a} {b}' for a, b in protocol.items() if a != 'name'))}), "
           f"{_e(len(report.get('folds', [])))} fold(s), k = {k}; means over (fold, member) pairs with 95% bootstrap "
           "intervals.</p>"]
    if report.get("folds"):
        out.append(_table(report["folds"]))
    order = sorted(models, key=lambda n: -models[n]["metrics"]["ndcg"]["estimate"])
    rows = []
    for name in order:
        m, met = models[name], models[name]["metrics"]
        row: dict[str, Any] = {"model": name}
        for key, label in (("ndcg", f"NDCG@{k}"), ("map", f"mAP@{k}"), ("mar", f"mAR@{k}"), ("recall", f"recall@{k}"),
                           ("precision", f"precision@{k}")):
            if key in met:
                row[label] = _interval(met[key]["estimate"], met[key].get("low"), met[key].get("high"))
        row["F1"] = met.get("f1", {}).get("estimate")
        row["coverage"] = m.get("coverage")
        auc = m.get("auc")
        row["AUC"] = auc.get("global") if isinstance(auc, dict) else None
        fits = m.get("fit_seconds") or []
        row["fit s"] = sum(fits) / len(fits) if fits else None
        rows.append(row)
    out.append("<h3>Model comparison</h3>" + _table(rows))
    out.append(charts(*(_interval_chart({n: models[n]["metrics"][key] for n in order},
                                        f"{label}@{k} per model (95% interval)", f"{label}@{k}")
                        for key, label in (("ndcg", "NDCG"), ("recall", "recall"))
                        if all(key in models[n]["metrics"] for n in order))))
    comparisons = report.get("comparisons") or []
    if comparisons:
        out.append(f"<h3>Paired tests</h3><p>Best by NDCG@{k}: <strong>{_e(report.get('best', order[0]))}</strong>. "
                   "Each model against it, paired bootstrap over the same (fold, member) pairs:</p>")
        out.append(_table([{"a": c["a"], "b": c["b"], "metric": c["metric"],
                            "difference": _interval(c["diff"], c["low"], c["high"]), "p-value": c["p_value"],
                            "significant": c.get("significant")} for c in comparisons]))
    curves = [m for m in CURVE_METRICS if all(m in models[n].get("curves", {}) for n in models)]
    if curves:
        out.append("<h3>Metric@k curves</h3>" + charts(*(metric_curves(report, m) for m in curves)))
    figures = []
    if all(models[n].get("per_fold") and all("ndcg" in f for f in models[n]["per_fold"]) for n in models):
        figures.append(per_fold(report, "ndcg"))
    segments = sorted({s for m in models.values() for s in m.get("segments", {})})
    figures += [per_segment(report, s, "ndcg") for s in segments]
    if figures:
        out.append("<h3>Per fold and per segment</h3>" + charts(*figures))
    ratings = report.get("ratings")
    if isinstance(ratings, dict) and ratings:
        out.append("<h3>Rating prediction</h3>" + _table(
            [{"predictor": n, "RMSE": _interval(r.get("rmse"), *(r.get("rmse_ci") or (None, None))),
              "MAE": r.get("mae"), "test ratings": r.get("ratings")} for n, r in ratings.items()]))
    return "".join(out)


def _off_policy_section(report: dict[str, Any], charts: _Charts) -> str:
    online, unavailable = estimated_online(report)
    if not online and not unavailable:
        return ""
    out = ["<h2>Estimated online impact (off-policy)</h2>"]
    if unavailable:
        return out[0] + f'<p class="note">No online estimates for this data: {_e(unavailable)}</p>'
    section, models, k = report["off_policy"], report["models"], int(report["k"])
    window = section.get("window") or {}
    logged = (section.get("logged") or {}).get("minutes_per_session") or {}
    out.append(f'<p class="meta">Estimator {_e(section.get("default_estimator", "–"))} on the logged sessions from '
               f"{_e(str(window.get('start', '–'))[:16])} to {_e(str(window.get('end', '–'))[:16])} "
               f"({_e(_fmt(window.get('sessions')))} sessions, {_e(_fmt(window.get('members')))} members; "
               f"propensities {_e(section.get('propensities', '–'))}); 95% intervals over members. The logs' own "
               f"minutes per session: {_e(_fmt(logged.get('estimate')))}.</p>")
    names = sorted(online, key=lambda n: -online[n].get("minutes_per_session", {}).get("estimate", 0.0))
    rows = []
    for name in names:
        row: dict[str, Any] = {"model": name, f"NDCG@{k}": models[name]["metrics"]["ndcg"]["estimate"]}
        for metric in OFF_POLICY_METRICS:
            e = online[name].get(metric)
            if e:
                row[f"est. {AB_METRIC_LABELS.get(metric, metric)}"] = _interval(e["estimate"], e.get("low"),
                                                                                 e.get("high"))
        row["ESS"] = online[name].get("minutes_per_session", {}).get("ess")
        rows.append(row)
    out.append(_table(rows))
    ndcg = {n: models[n]["metrics"]["ndcg"]["estimate"] for n in names}
    minutes = {n: online[n]["minutes_per_session"]["estimate"] for n in names if "minutes_per_session" in online[n]}
    differences = estimated_differences(report)
    level = {frozenset((d["ahead"], d["behind"])) for d in differences if not d["told apart"]}
    sure = [(a, b) for a, b in order_disagreements(ndcg, minutes) if frozenset((a, b)) not in level]
    if sure:
        out.append('<p class="warn">NDCG and the estimated minutes per session order these models differently: '
                   + _e("; ".join(f"{a} above {b} by NDCG, below by minutes" for a, b in sure)) + ".</p>")
    figures = []
    for metric in ("minutes_per_session", "engagement_rate"):
        have = {n: online[n][metric] for n in names if metric in online[n]}
        if have:
            label = AB_METRIC_LABELS.get(metric, metric)
            figures.append(_interval_chart(have, f"Estimated {label} (95% interval)", f"estimated {label}"))
    scatter = pd.DataFrame({"policy": list(minutes), f"NDCG@{k}": [ndcg[n] for n in minutes],
                            "minutes_per_session": list(minutes.values())})
    if len(scatter):
        fig = offline_vs_online_chart(scatter, f"NDCG@{k}", "minutes_per_session")
        fig.update_layout(title=f"NDCG@{k} vs estimated minutes per session")
        figures.append(fig)
    out.append(charts(*figures))
    if differences:
        out.append("<h3>Estimated differences between models</h3><p>Minutes per session, first minus second, paired "
                   "over the same logged sessions; 'told apart' when the 95% interval excludes 0.</p>"
                   + _table(differences))
    for note in section.get("notes") or []:
        out.append(f'<p class="note">{_e(note)}</p>')
    return "".join(out)


def _ab_section(ab: ABResults, charts: _Charts) -> str:
    s, srm = ab.summary, ab.srm
    out = ["<h2>A/B test (simulated)</h2>",
           f'<p class="meta">{_e(_fmt(s.get("users")))} members, {_e(_fmt(s.get("sessions")))} sessions from '
           f"{_e(str(s.get('start', '–'))[:16])} to {_e(str(s.get('end', '–'))[:16])}"
           f"{_e(', simulated in %s s' % s['seconds']) if 'seconds' in s else ''}; control "
           f"<strong>{_e(ab.control)}</strong>; intervals are 95%, over members.</p>"]
    expected = {a: round(float(v), 1) for a, v in srm["expected"].items()}
    verdict = (f"Sample ratio mismatch: active members per arm {srm['observed']} against expected {expected} "
               f"(chi-square p = {srm['p_value']:.2g}). The split is broken; do not trust these results."
               if srm["mismatch"] else
               f"Sample ratio check passed: active members per arm {srm['observed']} against expected {expected} "
               f"(chi-square p = {srm['p_value']:.2f}).")
    out.append(f'<p class="{"bad" if srm["mismatch"] else "ok"}">{_e(verdict)}</p>')
    metrics = [m for m in AB_METRIC_LABELS if m in ab.arms.columns]
    rows = []
    for r in _records(ab.arms):
        row = {c: r.get(c) for c in ("arm", "members", "active members", "sessions") if c in r}
        for m in metrics:
            row[AB_METRIC_LABELS[m]] = _interval(r[m], r.get(f"{m} low"), r.get(f"{m} high"))
        rows.append(row)
    out.append("<h3>Per arm</h3>" + _table(rows))
    if len(ab.comparisons):
        out.append(f"<h3>Lifts over the control</h3><p>Welch t over members, alpha = {_e(ab.alpha)}.</p>" + _table(
            [{"treatment": r["treatment"], "metric": AB_METRIC_LABELS.get(r["metric"], r["metric"]),
              "control": r.get("control_value"), "treatment value": r.get("treatment_value"),
              "lift": _interval(r["lift"], r["lift_low"], r["lift_high"], pct=True), "p-value": r["p_value"],
              "verdict": "significant" if r["significant"] else "not significant"}
             for r in _records(ab.comparisons)]))
    figures = [ab_lifts(ab.comparisons)] if len(ab.comparisons) else []
    figures += [ab_arm_metric(ab.arms, m) for m in ("engagement_rate", "minutes_per_session") if m in metrics
                and f"{m} low" in ab.arms.columns]
    figures += [ab_daily(ab.daily, m) for m in ("engagement_rate", "minutes_per_session")
                if len(ab.daily) and m in ab.daily.columns]
    out.append(charts(*figures))
    if ab.offline is not None and len(ab.offline[0]):
        table, agreement = ab.offline
        out.append("<h3>Offline versus online</h3>" + _table(_records(table)))
        if agreement.get("kendall_tau") is not None:
            out.append(f"<p>Kendall's tau between offline {_e(agreement.get('offline_metric'))} and online "
                       f"{_e(agreement.get('online_metric', 'engagement_rate'))}: "
                       f"{_e(_fmt(agreement['kendall_tau']))}; "
                       f"the same order: {_e(_fmt(agreement.get('same_order')))}.</p>")
        offline_metric = agreement.get("offline_metric")
        if offline_metric in table.columns and "engagement_rate" in table.columns:
            out.append(charts(offline_vs_online_chart(table, offline_metric, "engagement_rate")))
    if ab.off_policy is not None:
        out.append("<h3>Estimated from the logs versus simulated</h3>")
        if "unavailable" in ab.off_policy:
            out.append('<p class="note">No estimates from the logs for this data: '
                       f'{_e(ab.off_policy["unavailable"])}</p>')
        else:
            table, estimator = ab.off_policy["table"], ab.off_policy.get("estimator")
            mine = table[table["estimator"] == estimator] if "estimator" in table.columns else table.iloc[0:0]
            out.append(_table(_records(mine[[c for c in ("policy", "metric", "simulated", "estimate", "low", "high",
                                                         "relative_error", "covered") if c in mine.columns]])))
            if len(mine):
                out.append(charts(*(estimate_vs_simulated_chart(table, m, estimator)
                                    for m in ("minutes_per_session", "engagement_rate")
                                    if (mine["metric"] == m).any())))
    return "".join(out)


# ------------------------------------------------------------------ the document
def render_html(report: dict[str, Any], manifest: dict[str, Any] | None = None, ab: ABResults | None = None, *,
                title: str | None = None, generated: str | None = None) -> str:
    """The whole report as one HTML document (`report`: a checked evaluation report)."""
    generated = generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = title or f"recsys report: {report.get('dataset', {}).get('name', 'evaluation')}"
    charts = _Charts()
    body = (_header(report, title, generated) + _manifest_section(manifest, report)
            + _evaluation_section(report, charts) + _off_policy_section(report, charts)
            + (_ab_section(ab, charts) if ab is not None else
               '<h2>A/B test (simulated)</h2><p class="note">No A/B results were included.</p>'))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style>"
            f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
            f"<body>{body}</body></html>\n")


def chart_count(document: str) -> int:
    """How many plotly charts a rendered document holds (each is a div of class plotly-graph-div)."""
    return document.count('class="plotly-graph-div"')


def write_html(document: str, path: str | Path) -> Path:
    """Write the document to `path` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, document.encode("utf-8"))
    return path
