"""Home: the dataset in numbers and the data-source choice."""

import pandas as pd
import streamlit as st

from recsys.data import DataError
from recsys.ui import dataset_summary, load_cached_dataset
from recsys.ui.charts import activity_over_time, genre_counts, label_balance

st.title("recsys: what should each member watch next?")
st.caption("A two-stage recommender for a streaming service: candidate generation, ranking, "
           "and a re-rank of the top 10. This page shows the data the models learn from.")

spec = st.session_state.setdefault("data_spec", "sample")
with st.expander("Data source", expanded=False):
    st.write("Use the shipped sample world, or point at a MovieLens folder or a folder of "
             "CSV/Parquet files in the documented schema.")
    new_spec = st.text_input("Dataset", value=spec, key="data_spec_input",
                             help="sample | movielens:PATH | csv:PATH | parquet:PATH")
    if st.button("Load", key="load_data") and new_spec.strip() != spec:
        try:
            load_cached_dataset(new_spec.strip())
        except DataError as err:
            st.error(f"Could not load that dataset.\n\n{err}")
        else:
            st.session_state["data_spec"] = spec = new_spec.strip()

try:
    dataset = load_cached_dataset(spec)
    summary = dataset_summary(spec)
except DataError as err:
    st.error(f"Could not load the dataset {spec!r}.\n\n{err}")
    st.stop()

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
