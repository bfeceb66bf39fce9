"""A/B test: a simulated online experiment against the simulated world, configured and charted here."""

import pandas as pd
import streamlit as st

from recsys.data import DataError
from recsys.simulation import DEFAULT_ALPHA, DEFAULT_POWER, METRICS, PILOT_MEMBERS, POLICY_NAMES, plan
from recsys.ui.cache import load_cached_dataset, simulated_world
from recsys.ui.experiments import PIPELINE, PREVIOUS, pilot_key, run_ab_pilot, run_ab_test
from recsys.ui.links import copy_link, publish, restore
from recsys.ui.charts import (AB_METRIC_LABELS, ab_arm_metric, ab_daily, ab_lifts, estimate_vs_simulated_chart,
                              offline_vs_online_chart)
from recsys.ui.sources import plain, spec_label

st.title("A/B test (simulated)")
POLICIES = ["popularity", PIPELINE, PREVIOUS] + [p for p in POLICY_NAMES if p != "popularity"]  # the usual control first


def _arm(text: str) -> str:
    if text not in POLICIES:
        raise ValueError(f"not one of {', '.join(POLICIES)}")
    return text


def _whole(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"outside {low} to {high}")
        return value
    return parse


problems = restore("ab_test", {
    "control": ("ab_control", _arm), "treatments": ("ab_treatments", lambda t: [_arm(a) for a in t.split(",") if a]),
    "members": ("ab_users", _whole(20, 1_000_000)), "days": ("ab_days", _whole(1, 28)),
    "seed": ("ab_seed", _whole(0, 10_000))})
for problem in problems:
    st.warning(problem)
spec = st.session_state.get("data_spec", "sample")
DESCRIPTIONS = {"popularity": "the most-watched titles of recent weeks (the usual control)",
                PIPELINE: "the app's two-stage recommender (candidates, ranker, re-rank), trained once per server",
                PREVIOUS: "the same pipeline with its previous default configuration: the ranker trained on candidate "
                          "rows, lists ordered by P(watch), no exposure features (docs/online-quality.md); "
                          "run it as the control to see what the new default gains",
                "oracle": "the world's true best titles for the member now: the ceiling",
                "random": "random titles: the floor",
                "logging": "the rows the logs were made with (the world's Plackett-Luce logging policy)"}

st.write("Members of the simulated world are split at random between the arms. Over the days after the data "
         "ends they come back at their usual times and on their usual devices; each arm shows its row of titles, "
         "the world's behaviour model decides what they play and for how long, and what they watch feeds back "
         "into later sessions. Statistics are per member (the unit of randomisation).")

try:
    world = simulated_world(spec)
    dataset = load_cached_dataset(spec)
except (DataError, ValueError, OSError) as err:
    st.error(f"The data {spec_label(spec)} cannot be loaded: {plain(err)}")
    st.stop()
if world is None:
    st.info("A/B tests need the simulated world's behaviour model: pick the sample data (or a folder written "
            "by `recsys generate`) on the Home page.")
    st.stop()

n_members = len(world.users)
for key, default in (("ab_control", POLICIES[0]), ("ab_treatments", [PIPELINE]), ("ab_users", min(2000, n_members)),
                     ("ab_days", 7), ("ab_seed", 0)):
    st.session_state.setdefault(key, default)
st.session_state["ab_users"] = min(max(int(st.session_state["ab_users"]), 20), n_members)
left, right = st.columns(2)
control = left.selectbox("Control", POLICIES, key="ab_control",
                         format_func=lambda p: p, help="The arm the others are compared with.")
picked = right.multiselect("Treatment(s)", POLICIES, key="ab_treatments",
                           help="Each is compared with the control; members are split equally between all arms.")
treatments = [p for p in picked if p != control]
for name in [control, *treatments]:
    st.caption(f"**{name}**: {DESCRIPTIONS[name]}")
c1, c2, c3, c4 = st.columns([3, 3, 3, 2], vertical_alignment="bottom")
users = c1.number_input("Members", min_value=20, max_value=n_members, step=100, key="ab_users")
days = c2.number_input("Days", min_value=1, max_value=28, step=1, key="ab_days")
seed = c3.number_input("Seed", min_value=0, max_value=10_000, step=1, key="ab_seed")
with c4:
    copy_link(publish("ab_test", {"control": control, "treatments": ",".join(treatments), "members": int(users),
                                  "days": int(days), "seed": int(seed)}),
              f"this experiment's set-up ({control} against {', '.join(treatments) or 'no treatment'}, "
              f"{int(users):,} members, {int(days)} days, seed {int(seed)}), ready to run")
with st.expander("More settings"):
    slot = st.select_slider("Serve sessions in batches of (minutes)", [15, 30, 60, 120, 240], value=60,
                            key="ab_slot")
    retrain = st.number_input("Re-train every (days; 0 = never)", min_value=0, max_value=28, value=0,
                              key="ab_retrain")
    offline = st.checkbox("Also compute each arm's offline NDCG@10 / mAP@10 and its online value estimated from "
                          "the logs (re-fits each policy on the data before the last 7 days; a few minutes more "
                          "with the trained pipeline)", value=False, key="ab_offline")
st.caption("2,000 members over 7 days take a few minutes with the trained pipeline; popularity, random and "
           "oracle alone take seconds.")


def guarded(what: str, start: str, work):
    """Run `work(progress)` under a progress bar; a message (never a traceback) when it fails, else its result."""
    bar = st.progress(0.0, text=start)
    try:
        return work(lambda message, fraction: bar.progress(min(1.0, fraction), text=message))
    except (DataError, ValueError, KeyError) as err:
        st.error(f"The {what} could not run: {plain(err)}")
    except Exception as err:  # the page never shows a traceback
        st.error(f"The {what} failed unexpectedly ({type(err).__name__}: {plain(err)}).")
    finally:
        bar.empty()
    return None


def run_pilot(key: tuple) -> None:
    """The planner's pilot of the chosen arms and days, kept in the session under `key`."""
    pilot = guarded("pilot", "starting the pilot", lambda say: run_ab_pilot(
        spec, [control, *treatments], float(days), int(seed), int(slot),
        lambda message, fraction: say(f"pilot: {message}", fraction)))
    if pilot is None:
        return
    st.session_state.setdefault("ab_pilots", {})[key] = pilot


def show_plan(pilot, metric: str, effect_percent: float) -> None:
    """The minimum detectable effect at the chosen members and the members a given effect needs, per treatment."""
    label = AB_METRIC_LABELS[metric]
    try:
        table = plan(pilot, metric, int(users), effect_percent / 100)
    except ValueError as err:
        st.warning(f"No plan for these settings: {err}")
        return
    share = float(table["active_share"].iloc[0])
    arms = len(pilot.arms)
    counted = "every assigned member counts" if metric == "minutes_per_member" else \
        f"{share:.0%} of members had a session in the pilot, so about {int(users) / arms * share:,.0f} per arm count"
    st.caption(f"Pilot: {pilot.members:,} members over {pilot.days:g} days (seed {pilot.seed}). At {int(users):,} "
               f"members, {int(users) / arms:,.0f} per arm over {arms} arms; for {label} {counted}.")
    shown = pd.DataFrame({
        "treatment": table["treatment"],
        f"control {label} (pilot)": table["control_mean"],
        f"detectable difference at {int(users):,} members": table["mde"],
        "detectable, % of control": 100 * table["mde_relative"],
        f"members needed for {effect_percent:g}%": table["members_needed"],
    })
    st.dataframe(shown, hide_index=True, width="stretch", key="ab_plan_table")
    for row in table.itertuples():
        if row.enough:
            st.success(f"{int(users):,} members are enough to detect a {effect_percent:g}% change in {label} "
                       f"for {row.treatment} (it needs {row.members_needed:,}).")
        else:
            st.warning(f"{int(users):,} members are too few to detect a {effect_percent:g}% change in {label} "
                       f"for {row.treatment}: that needs about {row.members_needed:,} members; at {int(users):,} "
                       f"only changes of {row.mde_relative:.1%} or more are likely to be found.")
    st.caption(f"The detectable difference (minimum detectable effect) is the smallest true difference from the "
               f"control that this run would find significant (two-sided, p < {DEFAULT_ALPHA:g}) "
               f"{DEFAULT_POWER:.0%} of the time; smaller true differences will mostly be missed. It shrinks as "
               "one over the square root of the members: four times as many members halve it.")
    st.caption("It comes from how much members vary in the pilot (the same per-member values the results' Welch "
               "test uses). A pilot of a few hundred members measures that spread to within about a third, so "
               "read the figures as a guide, not a guarantee.")


st.subheader("Plan the experiment")
st.write("Before running: how small a difference can these members and days detect, and how many members would a "
         "given difference need? A short pilot of the same arms and days measures how much members vary.")
p1, p2 = st.columns(2)
plan_metric = p1.selectbox("Metric to plan for", list(METRICS), index=list(METRICS).index("minutes_per_session"),
                           format_func=lambda m: AB_METRIC_LABELS[m], key="ab_plan_metric")
effect_percent = p2.number_input("Effect to detect (% of the control's value)", min_value=0.1, max_value=100.0,
                                 value=2.0, step=0.5, key="ab_plan_effect")
plan_key = pilot_key(spec, [control, *treatments], float(days), int(seed), int(slot))
if st.button("Run a pilot", key="ab_pilot", help=f"{min(PILOT_MEMBERS, n_members)} members over the chosen days; "
             "seconds with popularity, random and oracle, longer with a trained pipeline"):
    if treatments:
        run_pilot(plan_key)
    else:
        st.warning("Pick at least one treatment other than the control.")
pilot = st.session_state.get("ab_pilots", {}).get(plan_key)
if pilot is not None:
    show_plan(pilot, plan_metric, float(effect_percent))
else:
    st.info("Press **Run a pilot** to see the smallest difference these settings can detect.")

st.subheader("Run the experiment")


def run() -> None:
    if not treatments:
        st.warning("Pick at least one treatment other than the control.")
        return
    outcome = guarded("experiment", "starting", lambda say: run_ab_test(
        spec, [control, *treatments], int(users), float(days), int(seed), int(slot),
        float(retrain) if retrain else None, offline, say))
    if outcome is None:
        return
    st.session_state["ab_outcome"] = outcome


if st.button("Run the experiment", type="primary", key="ab_run"):
    run()


def show(outcome: dict) -> None:
    summary, table, comparisons = outcome["summary"], outcome["table"], outcome["comparisons"]
    st.subheader("Results")
    st.caption(f"{summary['users']:,} members, {summary['sessions']:,} sessions from {summary['start'][:16]} to "
               f"{summary['end'][:16]}; simulated in {summary['seconds']} s. Intervals are 95%, over members.")
    srm = outcome["srm"]
    if srm["mismatch"]:
        st.error(f"Sample ratio mismatch: active members per arm {srm['observed']} against expected "
                 f"{ {k: round(v) for k, v in srm['expected'].items()} } (chi-square p = {srm['p_value']:.2g}). "
                 "The split is broken; do not trust these results.")
    else:
        st.success(f"Sample ratio check passed: active members per arm {srm['observed']} "
                   f"(chi-square p = {srm['p_value']:.2f}).")
    shown = table[["arm", "members", "active members", "sessions"]].copy()
    for metric in METRICS:
        shown[AB_METRIC_LABELS[metric]] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in
                                           zip(table[metric], table[f"{metric} low"], table[f"{metric} high"])]
    st.dataframe(shown, hide_index=True, use_container_width=True)

    verdicts = comparisons.assign(
        metric=comparisons["metric"].map(AB_METRIC_LABELS),
        lift=[f"{v:+.1%} [{lo:+.1%}, {hi:+.1%}]" for v, lo, hi in
              zip(comparisons["lift"], comparisons["lift_low"], comparisons["lift_high"])],
        verdict=comparisons["significant"].map({True: "significant", False: "not significant"}))
    st.markdown(f"**Against the control ({outcome['control']})**, Welch t over members, alpha = {outcome['alpha']}")
    st.dataframe(verdicts[["treatment", "metric", "control_value", "treatment_value", "lift", "p_value", "verdict"]],
                 hide_index=True, use_container_width=True)
    st.plotly_chart(ab_lifts(comparisons), use_container_width=True)

    metric = st.selectbox("Metric", list(METRICS), format_func=lambda m: AB_METRIC_LABELS[m], key="ab_metric")
    left, right = st.columns(2)
    left.plotly_chart(ab_arm_metric(table, metric), use_container_width=True)
    daily_metric = metric if metric in outcome["daily"].columns else "engagement_rate"
    right.plotly_chart(ab_daily(outcome["daily"], daily_metric), use_container_width=True)

    st.subheader("Offline versus online")
    if outcome["offline"] is None:
        st.info("Tick 'Also compute each arm's offline NDCG@10 / mAP@10' under More settings and run again to see "
                "whether the offline ranking of these policies predicts the online one.")
        return
    comparison, agreement = outcome["offline"]
    st.dataframe(comparison, hide_index=True, use_container_width=True)
    if agreement.get("kendall_tau") is not None:
        st.write(f"Kendall's tau between offline {agreement['offline_metric']} and online engagement rate: "
                 f"**{agreement['kendall_tau']:.2f}**; "
                 f"the same order: **{'yes' if agreement['same_order'] else 'no'}**; "
                 f"best offline **{agreement['best_offline']}**, best online **{agreement['best_online']}**.")
    st.plotly_chart(offline_vs_online_chart(comparison, agreement["offline_metric"], "engagement_rate"),
                    use_container_width=True)
    show_estimated(outcome.get("off_policy"))


def show_estimated(section) -> None:
    """Each arm's off-policy estimates beside its simulated value, how well they agree, and the chart."""
    st.subheader("Estimated from the logs versus simulated")
    if section is None:
        return
    if "unavailable" in section:
        st.info(f"No estimates from the logs for this data: {section['unavailable']}")
        return
    estimator, table = section["estimator"], section["table"]
    st.caption(f"Off-policy estimates ({estimator}; docs/off-policy.md) from the logged sessions between "
               f"{section['window'][0]} and {section['window'][1]}, each policy re-fitted before them; 95% intervals.")
    mine = table[table["estimator"] == estimator]
    wide = mine.pivot(index="policy", columns="metric", values="estimate").reset_index()
    for metric in METRICS:
        if metric in wide.columns:
            sim = mine[mine["metric"] == metric].set_index("policy")["simulated"]
            wide[f"{AB_METRIC_LABELS[metric]} simulated"] = wide["policy"].map(sim)
    st.dataframe(wide, hide_index=True, use_container_width=True)
    agreement = section["agreement"][estimator]
    lines = [f"{AB_METRIC_LABELS[m]}: Kendall's tau **{a['kendall_tau']:.2f}**, median relative error "
             f"**{a['median_relative_error']:.0%}**, intervals covering {a['covered']} of {a['arms']}"
             for m, a in agreement.items() if a["kendall_tau"] is not None]
    if lines:
        st.markdown("  \n".join(lines))
    metric = st.selectbox("Estimated metric", [m for m in agreement], format_func=lambda m: AB_METRIC_LABELS[m],
                          index=list(agreement).index("minutes_per_session"), key="ab_estimated_metric")
    st.plotly_chart(estimate_vs_simulated_chart(table, metric, estimator), use_container_width=True)


outcome = st.session_state.get("ab_outcome")
if outcome is not None:
    show(outcome)
else:
    st.info("Configure the arms and press **Run the experiment**.")
