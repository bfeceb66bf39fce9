"""Metrics: the offline evaluation report as a dashboard, and a button to run a fresh one."""

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from recsys.data import DataError
from recsys.ui import load_report
from recsys.ui.evaluation import (estimated_differences, estimated_online, order_disagreements, ranker_choices,
                                  ranker_names, report_download, run_evaluation)
from recsys.ui.charts import metric_curves, per_fold, per_segment
from recsys.ui.curve_charts import calibration_chart, candidate_recall_chart, roc_chart
from recsys.ui.links import copy_link, publish, restore
from recsys.ui.models import cached_curves, compute_curves
from recsys.ui.sources import describe_error, plain, spec_label

st.title("Offline evaluation")
CURVE_METRICS = ["ndcg", "recall", "precision", "map"]


def _one_of(options: list[str]):
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"not one of {', '.join(options)}")
        return text
    return parse


names = ranker_names()
for problem in restore("metrics", {"metric": ("curve_metric", _one_of(CURVE_METRICS)),
                                   "rankers": ("curve_rankers", lambda t: [_one_of(names)(r) for r in t.split(",") if r])}):
    st.warning(problem)
st.session_state.setdefault("curve_metric", CURVE_METRICS[0])
st.session_state.setdefault("curve_rankers", [r for r in ("logistic", "boosting") if r in names])
spec = st.session_state.get("data_spec", "sample")
copy_link(publish("metrics", {"metric": st.session_state["curve_metric"],
                              "rankers": ",".join(r for r in names if r in st.session_state["curve_rankers"])}),
          "this evaluation dashboard on the same data, with the same metric and rankers")
path = Path(st.session_state.get("report_path", "artifacts/report.json"))
if "report_path" not in st.session_state and not path.exists():
    # no report.json: offer the other reports `recsys evaluate` wrote to artifacts/, this data's first
    found = sorted(Path("artifacts").glob("report*.json"), key=lambda p: (spec.split(":")[0] not in p.name, p.name))
    if found:
        path = st.selectbox("Report", found, format_func=lambda p: p.name, key="report_file")

with st.expander("Run a fresh evaluation", expanded=not path.exists()):
    st.write("Fits every model on each fold's past and scores its top-k lists on the fold's future "
             "(time-series CV). The quick set takes about a minute; every model over 3 folds a few minutes.")
    full = st.toggle("Every model, 3 folds", value=False, key="eval_full")
    estimate = st.toggle("Also estimate each model's online engagement and minutes per session from the logs "
                         "(off-policy; about two more minutes)", value=False, key="eval_off_policy")
    if st.button("Run evaluation", key="run_eval"):
        bar = st.progress(0.0, text="starting")
        try:
            written = run_evaluation(spec, full, path, lambda message, fraction: bar.progress(
                min(1.0, fraction), text=message), off_policy=estimate)
            st.success(f"Report written to {written}")
        except (DataError, ValueError) as err:
            st.error(f"The evaluation could not run on {spec_label(spec)}.\n\n{plain(err, 600)}")


def show_report() -> None:
    """The report's comparison table, paired tests, metric@k curves, folds and segments."""
    if not path.exists():
        st.info("No evaluation report yet: run one above, or `recsys evaluate --out artifacts/report.json`.")
        return
    try:
        report = load_report(str(path), os.path.getmtime(path))
        if not isinstance(report["models"], dict):
            raise ValueError("no models in the report")
    except (OSError, ValueError, KeyError, TypeError) as err:
        st.error(f"The report at {path} cannot be read ({err}). Run a fresh evaluation.")
        return
    show_comparison(report)
    offer_download(report)


def offer_download(report: dict) -> None:
    """The report as one self-contained HTML file, with the active model's manifest and the A/B page's last result."""
    try:
        download = report_download(report, spec, st.session_state.get("ab_outcome"))
    except DataError as err:
        st.info(f"This report cannot be exported as HTML: {err}")
        return
    st.download_button("Download the report (HTML)", download.data, file_name=download.file_name, mime="text/html",
                       key="report_download", on_click="ignore")
    held, missing = ["this evaluation"], []
    if download.with_manifest:
        held.append("the active model's manifest")
    else:
        missing.append("no model is trained on this data yet (Home trains it)")
    if download.with_ab:
        held.append("the A/B page's last result")
    else:
        missing.append(download.ab_note or "run an experiment on the A/B test page to include its results")
    st.caption(f"One file that opens offline, with {', '.join(held)}" + "".join(f"; {m}" for m in missing) + ".")


def show_comparison(report: dict) -> None:
    models = report["models"]

    k = report["k"]
    protocol = report.get("protocol", {})
    st.caption(f"{report['dataset']['name']}: protocol {protocol.get('name')}, {len(report['folds'])} fold(s), "
               f"k = {k}; means over (fold, member) pairs with 95% bootstrap intervals.")
    rows = []
    for name, m in models.items():
        met = m["metrics"]
        rows.append({"model": name, f"NDCG@{k}": met["ndcg"]["estimate"],
                     "NDCG low": met["ndcg"]["low"], "NDCG high": met["ndcg"]["high"],
                     f"mAP@{k}": met["map"]["estimate"], f"mAR@{k}": met["mar"]["estimate"], "F1": met["f1"]["estimate"],
                     f"recall@{k}": met["recall"]["estimate"], "coverage": m["coverage"],
                     "AUC": None if m.get("auc") is None else m["auc"]["global"],
                     "fit s": sum(m["fit_seconds"]) / max(1, len(m["fit_seconds"]))})
    table = pd.DataFrame(rows).sort_values(f"NDCG@{k}", ascending=False)
    online, unavailable = estimated_online(report)
    for label, metric in (("est. minutes/session", "minutes_per_session"), ("est. engagement", "engagement_rate")):
        if online:
            table[label] = [online.get(n, {}).get(metric, {}).get("estimate") for n in table["model"]]
            table[f"{label} low"] = [online.get(n, {}).get(metric, {}).get("low") for n in table["model"]]
            table[f"{label} high"] = [online.get(n, {}).get(metric, {}).get("high") for n in table["model"]]
    st.subheader("Model comparison")
    st.dataframe(table, hide_index=True, width="stretch")
    for line in ranker_choices(report):
        st.caption(line)
    if online:
        estimator = report["off_policy"].get("default_estimator")
        window = report["off_policy"].get("window", {})
        st.caption(f"Estimated online: {estimator} estimator on the logged sessions from "
                   f"{window.get('start', '')[:16]} to {window.get('end', '')[:16]}, 95% intervals over members "
                   "(docs/off-policy.md).")
        ndcg = {n: models[n]["metrics"]["ndcg"]["estimate"] for n in online if n in models}
        minutes = {n: v["minutes_per_session"]["estimate"] for n, v in online.items()}
        swapped = order_disagreements(ndcg, minutes)
        differences = estimated_differences(report)
        level = {frozenset((d["ahead"], d["behind"])) for d in differences if not d["told apart"]}
        sure = [(a, b) for a, b in swapped if frozenset((a, b)) not in level]
        close = [(a, b) for a, b in swapped if frozenset((a, b)) in level]
        if sure:
            st.warning("NDCG and the estimated minutes per session order these models differently (pick by the "
                       "online estimate; NDCG on logged hits rewards imitating the logging policy): "
                       + "; ".join(f"{a} above {b} by NDCG, below by minutes" for a, b in sure[:6])
                       + ("; ..." if len(sure) > 6 else ""))
        if close:
            st.info("NDCG orders these pairs the other way from the estimated minutes, but the estimates cannot "
                    "tell them apart (the paired interval of their difference includes 0): "
                    + "; ".join(f"{a} and {b}" for a, b in close[:6]) + ("; ..." if len(close) > 6 else ""))
        if differences:
            with st.expander("Estimated differences between models (paired over the same logged sessions)"):
                st.caption("Each pair's estimated minutes per session, first minus second, with a 95% interval from "
                           "resampling the same members for both: the log's sessions are shared, so this is surer "
                           "than comparing the two intervals above. 'told apart': the interval excludes 0.")
                st.dataframe(pd.DataFrame(differences), hide_index=True, width="stretch")
    elif unavailable:
        st.info(f"No online estimates for this data: {unavailable}")
    comparisons = pd.DataFrame(report.get("comparisons", []))
    if len(comparisons):
        st.write(f"Best by NDCG@{k}: **{report['best']}**. Is it really better? Paired bootstrap on the same members:")
        st.dataframe(comparisons, hide_index=True, width="stretch")

    metric = st.selectbox("Metric", CURVE_METRICS, key="curve_metric")
    st.plotly_chart(metric_curves(report, metric), width="stretch")
    left, right = st.columns(2)
    fold_metric = {"map": "map"}.get(metric, metric)
    left.plotly_chart(per_fold(report, fold_metric), width="stretch")
    segments = sorted({s for m in models.values() for s in m.get("segments", {})})
    if segments:
        segment = right.selectbox("Segment", segments, key="segment")
        right.plotly_chart(per_segment(report, segment, "ndcg" if metric == "precision" else metric), width="stretch")


show_report()

st.divider()
st.subheader("Rankers as classifiers: ROC and calibration on a held-out window")
st.write("The pipeline is fitted on all but the last 14 days; every active member's candidates at that moment "
         "are scored by each ranker and labeled by what the member then did (finished: 1; shown, abandoned or "
         "never played: 0). ROC asks whether P(watch) separates the two; calibration whether a predicted 0.3 "
         "comes true 30% of the time. Candidate recall asks how many of the finished titles each source found.")
chosen = st.multiselect("Rankers", names, key="curve_rankers")
rankers = tuple(r for r in names if r in chosen)
try:
    curves = cached_curves(spec, rankers)
except DataError as err:
    st.error(f"Could not read the data {spec_label(spec)}.\n\n" + describe_error(err))
    st.stop()
if not rankers:
    st.info("Pick at least one ranker.")
elif curves is None:
    st.info("Not computed for this data yet (a minute or two on the sample; saved for every later visit).")
    if st.button("Compute curves", key="run_curves"):
        bar = st.progress(0.0, text="starting")
        try:
            curves = compute_curves(spec, rankers, progress=lambda message, fraction: bar.progress(
                min(1.0, max(0.0, fraction)), text=message))
        except (DataError, ValueError) as err:
            st.error(f"The curves could not be computed on {spec_label(spec)}.\n\n"
                     + (describe_error(err) if isinstance(err, DataError) else str(err)))
        bar.empty()
if curves is not None:
    st.caption(f"{curves['dataset']}: held-out window from {curves['cut'][:16]} ({curves['test_days']:g} days), "
               f"{curves['members']:,} members, {curves['rows']:,} candidate rows, {curves['positives']:,} finished.")
    left, right = st.columns(2)
    left.plotly_chart(roc_chart(curves), width="stretch")
    right.plotly_chart(calibration_chart(curves), width="stretch")
    st.dataframe(pd.DataFrame([{"ranker": name, "AUC": r["roc"]["auc"], "Brier": r["calibration"]["brier"],
                                "ECE": r["calibration"]["ece"], "mean P(watch)": r["calibration"]["mean_predicted"],
                                "share finished": r["calibration"]["base_rate"]}
                               for name, r in curves["rankers"].items()]), hide_index=True, width="stretch")
    st.plotly_chart(candidate_recall_chart(curves), width="stretch")
    share = curves["candidate_recall"].get("blend_share") or {}
    if share:
        st.caption("Of the finished titles the blend found, credited to the source that put each one in the blend: "
                   + ", ".join(f"{k} {v:,}" for k, v in share.items()) + ".")
