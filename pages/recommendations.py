"""Recommendations: why this title, for this member, now? Candidates, ranking, re-rank and reasons."""

import datetime

import numpy as np
import pandas as pd
import streamlit as st

from recsys.data import DataError
from recsys.ui import load_cached_dataset
from recsys.ui.compare import compare_lists, overlap_summary, variant_config, variants
from recsys.ui.links import copy_link, publish, restore
from recsys.ui.models import model_with_progress
from recsys.ui.oracle import beside_the_oracle
from recsys.ui.sources import describe_error, plain, spec_label
from recsys.ui.charts import contributions, member_genre_histogram, watch_timeline

st.title("Recommendation inspector")
NONE = "(nothing)"


def _hour(value: int) -> int:
    if not 0 <= value <= 23:
        raise ValueError("an hour is 0 to 23")
    return value


problems = restore("recommendations", {
    "member": ("inspector_user", str), "date": ("context_date", datetime.date.fromisoformat),
    "hour": ("context_hour", lambda text: _hour(int(text))), "device": ("context_device", str),
    "compare": ("compare_with", str)})
spec = st.session_state.get("data_spec", "sample")
try:
    dataset = load_cached_dataset(spec)
    model = model_with_progress(spec)
except DataError as err:
    st.error(f"Could not train the pipeline on {spec_label(spec)}.\n\n" + describe_error(err))
    st.stop()
if not len(dataset.users):
    st.info("This dataset has no members to inspect.")
    st.stop()

users = dataset.users["user_id"].tolist()
if st.session_state.get("inspector_user") not in set(users):  # first visit, a link's unknown member, new data
    asked = st.session_state.get("inspector_user")
    if asked is not None and st.session_state.get("_asked_user") != asked:
        problems.append(f"Member {plain(repr(asked), 80)} is not in {spec_label(spec)}; showing {users[0]} instead.")
        st.session_state["_asked_user"] = asked
    st.session_state["inspector_user"] = users[0]
for problem in problems:
    st.warning(problem)
c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
if c2.button("Random member", key="random_member"):
    draws = st.session_state["random_draws"] = st.session_state.get("random_draws", 0) + 1
    st.session_state["inspector_user"] = str(np.random.default_rng(draws).choice(users))  # seeded: replayable
user = c1.selectbox("Member", users, key="inspector_user")

end = dataset.end
st.session_state.setdefault("context_date", end.date())
st.session_state.setdefault("context_hour", 20)
d1, d2, d3 = st.columns(3)
day = d1.date_input("Date", key="context_date")
hour = d2.slider("Hour of day", 0, 23, key="context_hour")
devices = sorted(dataset.events["device"].dropna().unique()) if dataset.has("events", "device") else []
if st.session_state.get("context_device") not in devices:
    if st.session_state.get("context_device") is not None and devices:
        st.warning(f"Device {plain(repr(st.session_state['context_device']), 40)} is not in this data; "
                   f"one of {', '.join(devices)}.")
    st.session_state.pop("context_device", None)
    if devices:
        st.session_state["context_device"] = "tv" if "tv" in devices else devices[0]
device = d3.selectbox("Device", devices, key="context_device") if devices else None
now = pd.Timestamp(day) + pd.Timedelta(hours=hour)
context = {"now": now, "device": device}
choices = [NONE, *variants(model.config)]
if st.session_state.get("compare_with", NONE) not in choices:
    st.warning(f"The pipeline {plain(repr(st.session_state['compare_with']), 80)} is not offered beside this "
               "model; showing none.")
    st.session_state["compare_with"] = NONE
compare_with = st.session_state.get("compare_with", NONE)
link = publish("recommendations", {"member": user, "date": day.isoformat(), "hour": hour, "device": device,
                                   "compare": None if compare_with == NONE else compare_with})
with c3:
    copy_link(link, f"member {user} on {day:%d %b %Y} at {hour}:00" + (f" on {device}" if device else ""))

profile = dataset.users.set_index("user_id").loc[user]
history = dataset.plays()
history = history[(history["user_id"] == user) & (history["timestamp"] < now)]
st.subheader("Profile")
cols = st.columns(5)
for col, name in zip(cols, ("age", "gender", "language", "country")):
    if name in profile.index:
        col.metric(name.capitalize(), str(profile[name]))
cols[4].metric("Plays before now", f"{len(history):,}")
if len(history):
    left, right = st.columns(2)
    left.plotly_chart(member_genre_histogram(history, dataset.items), width="stretch")
    right.plotly_chart(watch_timeline(history.tail(40), dataset.items), width="stretch")
else:
    st.info("No viewing history before this moment: the list comes from popularity and the member's profile.")

try:
    result = model.inspect(user, k=10, context=context)
except ValueError as err:
    st.error(str(err))
    st.stop()

st.subheader("Top 10 after re-ranking")
if model.ranker_ is not None and model.config.objective == "minutes" and result.final["expected_minutes"].notna().any():
    st.caption("Ordered by expected minutes: p(watch) x the title's length, the minutes a watch gives "
               "(docs/online-quality.md); the re-rank then applies its rules.")
final = result.final[["rank", "title", "score", "expected_minutes", "source", "reason", "rank_before_rerank"]].rename(
    columns={"score": "p(watch)", "expected_minutes": "expected minutes", "rank_before_rerank": "rank before re-rank"})
if final["expected minutes"].isna().all():
    final = final.drop(columns="expected minutes")
st.dataframe(final, hide_index=True, width="stretch",
             column_config={"p(watch)": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")})
if len(result.changes):
    with st.expander(f"What the re-rank changed ({len(result.changes)})"):
        st.dataframe(result.changes[["title", "action", "from_rank", "to_rank", "reason"]], hide_index=True,
                     width="stretch")

st.subheader("Side by side")
other_name = st.selectbox(
    "Compare with", choices, key="compare_with",
    help="A second pipeline for the same member and moment: another list order (instant), the previous default "
         "or another ranker (trained once per server the first time, a minute or two on the sample).")
if other_name != NONE:
    change = variant_config(model.config, other_name)
    try:
        other = model.with_objective(change) if isinstance(change, str) else model_with_progress(spec, config=change)
        theirs = other.inspect(user, k=10, context=context)
    except (DataError, ValueError) as err:
        st.error(f"The {other_name} cannot run on {spec_label(spec)}.\n\n"
                 + (describe_error(err) if isinstance(err, DataError) else str(err)))
    else:
        names = ("active", other_name)
        summary = overlap_summary(result.final, theirs.final)
        st.caption(f"**{summary['shared']} of {summary['size']}** titles are in both lists, {summary['same_rank']} "
                   f"at the same rank" + (f"; the shared ones move {summary['mean_shift']:.1f} places on average."
                                          if summary["shared"] else "."))
        left, right = st.columns(2)
        for col, name, res in ((left, "active pipeline", result), (right, other_name, theirs)):
            col.markdown(f"**{name}**")
            col.dataframe(res.final[["rank", "title", "score"]].rename(columns={"score": "p(watch)"}),
                          hide_index=True, width="stretch")
        st.dataframe(compare_lists(result.final, theirs.final, names), hide_index=True, width="stretch")

beside = beside_the_oracle(spec, model, user, now, device) if model.ranker_ is not None else None
if beside is not None:
    table, totals = beside
    with st.expander("Beside the oracle (the simulated world's true P(watch))"):
        share = totals["ours"] / totals["oracle"] if totals["oracle"] > 0 else float("nan")
        st.caption(f"The oracle ranks every title by the world's true chance that this member plays and finishes "
                   f"it now. Expected finished titles in this row, each slot weighed by how often members look "
                   f"at it: ours {totals['ours']:.2f}, the oracle's {totals['oracle']:.2f} ({share:.0%}). "
                   "docs/online-quality.md says where the difference comes from.")
        st.dataframe(table, hide_index=True, width="stretch", column_config={
            c: st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")
            for c in ("ours: true P(watch)", "oracle: true P(watch)")})

with st.expander("Ranked candidates (every candidate with its p(watch))"):
    st.dataframe(result.ranked[["rank", "title", "score", "source", "sources", "candidate_rank"]].rename(
        columns={"score": "p(watch)"}), hide_index=True, width="stretch")
with st.expander("Candidates by source"):
    score_cols = [c for c in result.candidates.columns if c.startswith("score_")]
    st.dataframe(result.candidates.assign(title=result.candidates["item_id"].map(
        dataset.items.set_index("item_id")["title"]))[["title", "source", "sources", *score_cols]],
        hide_index=True, width="stretch")

st.subheader("Why this title?")
choice = st.selectbox("Title", result.final["title"].tolist(), key="explain_title")
if model.ranker_ is None:
    st.info("This model serves the candidate blend's order without a ranker (the data is too short to train "
            "one), so there are no feature contributions to show.")
elif choice:
    item = result.final.loc[result.final["title"] == choice, "item_id"].iat[0]
    st.plotly_chart(contributions(model.explain(user, item, context=context, top=10)), width="stretch")
