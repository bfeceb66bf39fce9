"""Streamlit entry point: routes between the pages, nothing else."""

import streamlit as st

st.set_page_config(page_title="recsys", page_icon="🎬", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/features.py", title="Features", icon="📊"),
]
st.navigation(pages).run()
