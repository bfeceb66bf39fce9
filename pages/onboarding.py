"""Onboarding: a brand-new visitor picks what they like and gets recommendations at once."""

import streamlit as st

from recsys.data import DataError
from recsys.ui import load_cached_dataset, onboarding_model
from recsys.ui.sources import plain, spec_label

st.title("Welcome! What do you like to watch?")
st.caption("Cold start: no viewing history at all. Titles are matched on genres, languages, titles you "
           "love and a description, using their metadata and synopsis embeddings.")

spec = st.session_state.get("data_spec", "sample")
try:
    dataset = load_cached_dataset(spec)
    model = onboarding_model(spec)
except DataError as err:
    st.error(f"Could not prepare onboarding for {spec_label(spec)}.\n\n{plain(err, 600)}")
    st.stop()

items = dataset.items
genres = sorted({g for gs in items["genres"] for g in gs}) if "genres" in items.columns else []
languages = sorted(items["original_language"].dropna().unique()) if "original_language" in items.columns else []
if st.session_state.get("onboarding_spec") != spec:  # another data source: start over
    st.session_state["onboarding_spec"] = spec
    st.session_state["onboarding_watched"] = []
for key, options in (("onboarding_genres", genres), ("onboarding_languages", languages)):
    if key in st.session_state:
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
watched: list[str] = st.session_state.setdefault("onboarding_watched", [])

left, right = st.columns([2, 1])
picked = left.multiselect("Your top genres (pick up to 5)", genres, max_selections=5, key="onboarding_genres")
langs = right.multiselect("Languages you enjoy (optional)", languages, key="onboarding_languages")
text = st.text_input("Or describe what you are in the mood for (optional)",
                     placeholder="e.g. a cosy christmas romance in a small town", key="onboarding_text")
age = st.number_input("Your age (titles above your age rating are hidden)", min_value=5, max_value=110, value=30,
                      key="onboarding_age")

if not picked and not langs and not text.strip() and not watched:
    st.info("Pick a few genres to see recommendations.")
    st.stop()

try:
    recs = model.recommend_for_profile(genres=picked, languages=langs, liked_titles=watched,
                                       text=text.strip() or None, n=10 + len(watched), age=age)
except ValueError as err:
    st.error(str(err))
    st.stop()
recs = recs[~recs["item_id"].isin(watched)].head(10).reset_index(drop=True)

st.subheader("Recommended for you")
if watched:
    titles = items.set_index("item_id").loc[watched, "title"].tolist()
    st.caption(f"Adapted to what you watched: {', '.join(titles)}")
for row in recs.itertuples():
    c1, c2, c3 = st.columns([4, 5, 1])
    c1.markdown(f"**{row.rank}. {row.title}**  \n{', '.join(row.genres)}")
    c2.write(row.reason)
    if c3.button("Watch", key=f"watch_{row.item_id}"):
        watched.append(row.item_id)
        st.rerun()
if watched and st.button("Start over", key="onboarding_reset"):
    st.session_state["onboarding_watched"] = []
    st.rerun()
