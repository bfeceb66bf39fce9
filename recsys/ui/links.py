"""Shareable views: a page keeps its state (data source, member, moment, device, models) in the URL's query
parameters, a link opened in a fresh browser restores it, and a "Copy link" popover gives that URL."""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlencode

import streamlit as st

from ..data import DataError
from .sources import data_root, describe_error, plain

__all__ = ["DATA", "Field", "restore", "publish", "copy_link"]

#: The query parameter holding the data source's browser-facing key (`recsys.ui.data_root.DataRoot.key`).
DATA = "data"
_SEEN = "_link_seen"

#: A query parameter: (session-state key of the widget it fills, parser from the URL's text to the widget's value;
#: the parser raises ValueError for text it cannot use).
Field = tuple[str, Callable[[str], Any]]


def restore(page: str, fields: dict[str, Field]) -> list[str]:
    """On the session's first run of `page` (a link opened in a browser), put the URL's values into the session
    before the widgets are drawn: `data` becomes the data source (only through the data root), each of `fields`
    its widget's value. Returns a message per value that could not be used.

    Only the first run: every rerun carries the browser's query string, which can lag the page's last update
    under load, and restoring it then would undo what the visitor just picked."""
    seen = st.session_state.setdefault(_SEEN, set())
    if page in seen:
        return []
    seen.add(page)
    params = st.query_params.to_dict()
    if not params:
        return []
    problems = []
    if DATA in params:
        try:
            spec = data_root().spec(params[DATA])
            from .cache import load_cached_dataset

            load_cached_dataset(spec)
        except DataError as err:
            problems.append(f"The link's data source cannot be used: {describe_error(err)}")
        else:
            if spec != st.session_state.get("data_spec", "sample"):
                st.session_state["data_spec"] = spec
                st.session_state["data_names"] = {}
    for name, (key, parse) in fields.items():
        if name not in params:
            continue
        try:
            st.session_state[key] = parse(params[name])
        except (ValueError, TypeError) as err:
            problems.append(f"The link's {name} {plain(repr(params[name]), 80)} cannot be used ({plain(err)}).")
    return problems


def publish(page: str, values: dict[str, Any]) -> str | None:
    """Write the page's current state (plus the data source) into the URL and return the link to it, or None
    when the data in use has no link (it lies outside the data root)."""
    try:
        key = data_root().key(st.session_state.get("data_spec", "sample"))
    except DataError:
        return None
    params = {DATA: key, **{k: str(v) for k, v in values.items() if v is not None}}
    if st.query_params.to_dict() != params:  # what the browser's URL says: sent again until it has it
        st.query_params.from_dict(params)
    st.session_state.setdefault(_SEEN, set()).add(page)
    base = st.context.url or ""
    return f"{base}?{urlencode(params)}"


def copy_link(url: str | None, what: str) -> None:
    """A "Copy link" popover with the URL of this view (its copy icon puts it on the clipboard)."""
    with st.popover("Copy link", icon=":material/link:"):
        if url is None:
            st.write("The data in use lies outside the data root, so this view has no link.")
            return
        st.caption(f"Opening this link on this server shows {what}.")
        st.code(url, language=None, wrap_lines=True)
