"""Home: the dataset in numbers, the data-source choice, and the active model (trained here on demand)."""

import pandas as pd
import streamlit as st

from recsys.data import DataError
from recsys.ui import dataset_summary, load_cached_dataset
from recsys.ui.charts import activity_over_time, genre_counts, label_balance
from recsys.ui.models import manifest_of, model_with_progress, saved_manifest
from recsys.ui.data_root import ROOT_ENV
from recsys.ui.links import publish, restore
from recsys.ui.sources import MAX_UPLOAD_ROWS, data_root, describe_error, save_uploads, spec_label

st.title("recsys: what should each member watch next?")
st.caption("A two-stage recommender for a streaming service: candidate generation, ranking, "
           "and a re-rank of the top 10. This page shows the data the models learn from and the model in use.")

for problem in restore("home", {}):
    st.warning(problem)
spec = st.session_state.setdefault("data_spec", "sample")
root = data_root()


def use(key: str, names: dict[str, str] | None = None) -> None:
    """Validate the data source `key` (a folder must lie under the data root) by loading it; on success it
    becomes the data of every page in this session."""
    try:
        new_spec = root.spec(key)
        load_cached_dataset(new_spec)
    except DataError as err:
        st.error("Could not load that data.\n\n" + describe_error(err, names))
        return
    st.session_state["data_spec"] = new_spec
    st.session_state["data_names"] = names or {}
    st.rerun()  # redraw from the top: the data-source label and every number follow the new data


def folders_caption() -> None:
    there = root.folders()
    st.caption(f"The app reads folders under the data root **{root.label}** only (`{ROOT_ENV}` sets it; the "
               "command line reads any path). " + (f"There: {', '.join(f'`{f}`' for f in there)}." if there
                                                    else "It has no folders yet."))


with st.expander(f"Data source: {spec_label(spec)}", expanded=spec != "sample"):
    kind = st.radio("Where the data comes from", ["Sample", "MovieLens folder", "Upload files", "Data spec"],
                    horizontal=True, key="source_kind",
                    help="Every page (onboarding, inspector, features, metrics) uses the data chosen here.")
    if kind == "Sample":
        st.write("The shipped sample: a simulated streaming service with a known ground truth.")
        if st.button("Use the sample", key="use_sample", disabled=spec == "sample"):
            use("sample")
    elif kind == "MovieLens folder":
        path = st.text_input(f"Folder under {root.label}", key="movielens_path", placeholder="ml-100k",
                             help="ml-100k (u.data, u.item, u.user), ml-1m (*.dat) or ml-latest(-small) (*.csv)")
        folders_caption()
        if st.button("Load MovieLens", key="load_movielens"):
            if path.strip():
                use(f"movielens:{path.strip()}")
            else:
                st.error("Type the path of a MovieLens folder first.")
    elif kind == "Upload files":
        st.write("Upload **items** and **events** files (and optionally **users** and **searches**), all CSV or "
                 "all Parquet, named after their table (`events.csv`, `items.parquet`, …); the columns are those "
                 f"of docs/data.md. At most {MAX_UPLOAD_ROWS:,} rows per file.")
        uploads = st.file_uploader("Files", type=["csv", "gz", "parquet"], accept_multiple_files=True,
                                   key="uploads")
        if st.button("Load uploaded files", key="load_uploads"):
            try:
                new_spec, names = save_uploads([(f.name, f.getvalue()) for f in uploads or []], root.uploads)
            except DataError as err:
                st.error("Could not use those files.\n\n" + describe_error(err))
            else:
                use(root.key(new_spec), names)
    else:
        try:
            current = root.key(spec)
        except DataError:
            current = ""
        typed = st.text_input("Dataset", value=current, key="data_spec_input",
                              help=f"sample | movielens:FOLDER | csv:FOLDER | parquet:FOLDER, FOLDER under {root.label}")
        folders_caption()
        if st.button("Load", key="load_data") and typed.strip() != current:
            use(typed.strip())

try:
    dataset = load_cached_dataset(spec)
    summary = dataset_summary(spec)
except DataError as err:
    st.error(f"Could not load the dataset {spec_label(spec)}.\n\n"
             + describe_error(err, st.session_state.get("data_names")))
    if st.button("Back to the sample", key="reset_sample"):
        st.session_state["data_spec"] = "sample"
        st.rerun()
    st.stop()

publish("home", {})  # the address bar names the data in use
st.subheader(f"Dataset: {summary['name']}")
cols = st.columns(5)
cols[0].metric("Members", f"{summary['users']:,}")
cols[1].metric("Titles", f"{summary['items']:,}")
cols[2].metric("Events", f"{summary['events']:,}")
cols[3].metric("Plays", f"{summary['plays']:,}")
cols[4].metric("Days", f"{summary['days']}")
span = " to ".join(pd.Timestamp(summary[k]).strftime("%d %b %Y") for k in ("start", "end")) if summary["start"] else "no events"
st.caption(f"From {span}; {summary['feedback']} feedback; "
           f"{summary['density']:.3%} of member × title pairs played.")

left, right = st.columns(2)
left.plotly_chart(activity_over_time(dataset.events, summary["feedback"]), width="stretch")
if summary.get("genres"):
    right.plotly_chart(genre_counts(summary["genres"]), width="stretch")
if summary.get("label_balance"):
    st.plotly_chart(label_balance(summary["label_balance"]), width="stretch")
    st.caption("Plays watched past 80% become positives and under 10% negatives; the middle band is "
               "ignored as too noisy to call either way. Titles shown but not played are negatives too.")
report = summary.get("report") or {}
if report.get("dropped") or report.get("notes"):
    with st.expander("What the loader did"):
        for reason, count in (report.get("dropped") or {}).items():
            st.write(f"Dropped {count:,} rows: {reason}")
        for note in report.get("notes") or []:
            st.write(note)

st.subheader("Model")
manifest = saved_manifest(spec)
if manifest is None:
    st.info("No model is trained on this data yet. Train it here (about a minute on the sample, once per "
            "server: it is saved and shared by every session), or open the Recommendations page, which trains "
            "it on first use.")
    if st.button("Train the pipeline", key="train_model", type="primary"):
        try:
            manifest = manifest_of(model_with_progress(spec))
        except DataError as err:
            st.error("The pipeline cannot learn from this data.\n\n" + describe_error(err))
if manifest is not None:
    config = manifest["config"]
    training = manifest.get("training") or {}
    seconds = manifest.get("fit_seconds") or {}
    c = st.columns(4)
    c[0].metric("Ranker", config["ranker"] or "none (blend order)")
    c[1].metric("Candidate sources", len(config["sources"]))
    c[2].metric("Training rows", f"{training.get('rows', 0):,}")
    c[3].metric("Fit seconds", f"{sum(seconds.values()):.0f}" if seconds else "-")
    st.success(f"Active model: {config['ranker'] or 'no'} ranker over {', '.join(config['sources'])} candidates, "
               f"trained on {manifest['data']['name']} (data fingerprint {manifest['data']['fingerprint']}, "
               f"up to {manifest['data']['end'][:16]}).")
    with st.expander("Manifest"):
        st.json(manifest, expanded=1)
