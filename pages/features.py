"""Features: what the ranker learns from, and how the training data is labeled and balanced."""

import pandas as pd
import streamlit as st

from recsys.data import DataError
from recsys.labels import LabelConfig
from recsys.ui import load_cached_dataset, training_table
from recsys.ui.charts import class_balance, feature_distribution, watch_fraction_histogram, weight_histogram
from recsys.ui.sources import plain, spec_label

st.title("Features and training data")
spec = st.session_state.get("data_spec", "sample")
try:
    dataset = load_cached_dataset(spec)
    table = training_table(spec)
except DataError as err:
    st.error(f"Could not build the training data for {spec_label(spec)}.\n\n{plain(err, 600)}")
    st.stop()

labels = LabelConfig()
st.subheader("From watch fraction to labels")
if dataset.feedback == "implicit":
    wf = dataset.events["watch_fraction"]
    played = wf[wf > 0]
    c = st.columns(4)
    c[0].metric("Positives (>80%)", f"{int((played > labels.positive_above).sum()):,}")
    c[1].metric("Ignored (10-80%)", f"{int(played.between(labels.negative_below, labels.positive_above).sum()):,}")
    c[2].metric("Negatives (<10%)", f"{int((played < labels.negative_below).sum()):,}")
    c[3].metric("Shown, not played", f"{int((wf == 0).sum()):,}")
    st.plotly_chart(watch_fraction_histogram(wf, labels.negative_below, labels.positive_above),
                    width="stretch")
    st.caption("A play watched past 80% is a confident like, one abandoned before 10% a confident dislike; "
               "the middle is too noisy to call and is left out. A title shown and not played is a negative too.")
else:
    st.info(f"{dataset.name} has explicit ratings: a rating of {labels.rating_threshold:g} or more is a positive, "
            "lower ones negatives. Ratings are missing not at random (people rate what they chose to watch).")

st.subheader("Balancing and weighting")
b = table.balance
balance = pd.DataFrame({"stage": ["before", "after"],
                        "positive": [b["positives"], b["positives"]],
                        "negative": [b["negatives_before"], b["negatives_after"]]})
left, right = st.columns(2)
left.plotly_chart(class_balance(balance), width="stretch")
right.plotly_chart(weight_histogram(table.weight, table.label), width="stretch")
st.caption(f"Negatives are downsampled (seeded) to about {b.get('ratio', 4):g} per positive, per member. "
           "Positives weigh more the longer they were watched: 80% of a two-hour film counts more than "
           "80% of a 22-minute episode, because the goal is watch time. Where the log records the logging "
           "policy's propensity, every impression also weighs the median propensity over its own (clipped to "
           "1/20 to 20): a title the service rarely showed stands for the many like it that it never showed, "
           "so the ranker does not learn the service's own picks as the member's taste.")

st.subheader("Feature distributions")
described = table.features.feature_set.describe()
group = st.segmented_control("Group", ["user", "context", "media", "user_x_media", "sparse"], default="user",
                             key="feature_group")
shown = described[described["group"] == (group or "user")]
st.dataframe(shown, hide_index=True, width="stretch")
plottable = shown[shown["kind"] != "sparse_list"]["name"].tolist()
plottable = [n for n in plottable if n not in ("user_id", "item_id")]
if plottable:
    name = st.selectbox("Feature", plottable, key="feature_name")
    kind = described.set_index("name").loc[name, "kind"]
    st.caption(described.set_index("name").loc[name, "description"])
    st.plotly_chart(feature_distribution(table.frame[name], pd.Series(table.label), name, kind),
                    width="stretch")
else:
    lengths = {n: table.features.sparse[n].lengths for n in shown["name"] if n in table.features.sparse}
    for n, ls in lengths.items():
        st.write(f"`{n}`: {ls.mean():.1f} ids per row on average (max {ls.max()})")
    if lengths:
        example = {n: table.features.sparse[n].lists(3) for n in lengths}
        st.write("First rows:", example)
