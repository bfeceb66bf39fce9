"""Streamlit entry point: routes between the pages, nothing else."""

import streamlit as st

st.set_page_config(page_title="recsys", page_icon=":material/movie:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/onboarding.py", title="Onboarding", icon=":material/waving_hand:"),
    st.Page("pages/recommendations.py", title="Recommendations", icon=":material/recommend:"),
    st.Page("pages/features.py", title="Features", icon=":material/bar_chart:"),
    st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:"),
    st.Page("pages/ab_test.py", title="A/B test", icon=":material/science:"),
]
st.navigation(pages).run()
