"""Media features: the title's attributes (once per title) and its recent popularity (once per title and moment)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..holidays import HOLIDAYS, days_until
from .group import FeatureGroup
from .history import DAY_SECONDS, History
from .rows import Rows
from .spec import Feature
from .table import Block
from .titles import TitleTables, slug

__all__ = ["MediaFeatures"]

#: A holiday title's season: the six weeks up to its holiday (Christmas films in December, not in January).
HOLIDAY_SEASON_DAYS = 42

_ATTRIBUTES = (
    ("duration_min", "dense", "Running time in minutes."),
    ("public_rating", "dense", "Public rating (1-10)."),
    ("release_year", "dense", "Year of first release."),
    ("season", "dense", "Season number of an episode."),
    ("country", "categorical", "Country of origin."),
    ("original_language", "categorical", "Original language."),
    ("maturity_rating", "categorical", "Maturity rating."),
    ("director", "categorical", "Director (sparse id)."),
    ("distributor", "categorical", "Distributor (sparse id)."),
    ("composer", "categorical", "Music composer (sparse id)."),
)


class MediaFeatures(FeatureGroup):
    """Kind, genres, running time, ratings, year, season, country, language, maturity, director,
    distributor, composer, revenue, holiday tag; days since release and on the platform; plays in
    the last 1 / 7 / 30 days and the 30-day positive rate."""

    name = "media"
    reads = "title"

    def __init__(self, popularity_days: tuple[int, ...] = (1, 7, 30)) -> None:
        self.popularity_days = popularity_days

    def fit(self, dataset: Dataset, titles: TitleTables) -> "MediaFeatures":
        items = dataset.items
        n = len(items)
        cols: dict[str, object] = {}
        feats: list[Feature] = []

        def add(name: str, values, kind: str, desc: str) -> None:
            if kind == "categorical":
                codes, levels = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
                cols[name] = pd.Categorical.from_codes(np.append(codes, -1), dtype=pd.CategoricalDtype(levels))
            else:
                cols[name] = np.append(np.asarray(values, dtype=float), np.nan)
            feats.append(Feature(name, "media", kind, desc))

        if dataset.has("items", "kind"):
            add("kind", items["kind"], "categorical", "Movie or episode.")
        for k, g in enumerate(titles.genres):
            add(f"item_genre_{slug(g)}", titles.genre_matrix[:n, k], "dense", f"1 when the title is {g}.")
        for col, kind, desc in _ATTRIBUTES:
            if dataset.has("items", col):
                add("item_country" if col == "country" else col, items[col], kind, desc)
        if dataset.has("items", "revenue"):
            add("log_revenue", np.log1p(items["revenue"].astype(float)), "dense",
                "log(1 + box-office revenue); missing for titles without one.")
        if dataset.has("items", "distributor"):
            top = items["distributor"].value_counts().index[:10]
            add("distributor_top10", items["distributor"].isin(top).astype(float), "dense",
                "1 when the distributor is among the ten with most titles (dense form of a sparse feature).")
        self.holiday_ = None
        if dataset.has("items", "tags"):
            holidays = {name for name, _, _ in HOLIDAYS} | {"christmas", "halloween"}
            add("is_holiday_title", items["tags"].map(lambda t: any(x in holidays for x in t)).astype(float), "dense",
                "1 when the title is tagged with a holiday (dense form of the tags).")
            known = [name for name, _, _ in HOLIDAYS]
            tag = items["tags"].map(lambda t: next((x for x in t if x in known), None)).to_numpy(dtype=object)
            if any(t is not None for t in tag):
                self.holiday_ = np.append(tag, None)
                feats.append(Feature("days_to_title_holiday", "media", "dense",
                                     "Days until the title's own holiday (its tag: Christmas, Halloween, ...); "
                                     "missing for other titles."))
                feats.append(Feature("title_holiday_season", "media", "dense",
                                     f"1 in the {HOLIDAY_SEASON_DAYS} days up to the title's own holiday, 0 "
                                     "otherwise (also for untagged titles)."))
        self.static_ = cols
        self.release_ = _release_dates(items)
        if self.release_ is not None:
            feats.append(Feature("days_since_release", "media", "dense", "Days since the title's first release."))
        self.added_ = (np.append(items["added_at"].to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT"))
                       if dataset.has("items", "added_at") else None)
        if self.added_ is not None:
            feats.append(Feature("days_on_platform", "media", "dense", "Days since the title arrived on the platform."))
        for d in self.popularity_days:
            feats.append(Feature(f"item_plays_{d}d", "media", "dense", f"Plays of the title in the last {d} day(s)."))
        feats.append(Feature("item_positive_rate_30d", "media", "dense",
                             "Share of the title's plays in the last 30 days that were positives."))
        self.features_ = tuple(feats)
        return self

    def compute(self, rows: Rows, history: History, titles: TitleTables) -> list[Block]:
        item, moment = rows.im_item, rows.im_moment
        times = rows.m_time[moment]
        sec = rows.m_sec[moment]
        cols: dict[str, object] = {}
        if self.release_ is not None:
            cols["days_since_release"] = (times - self.release_[item]) / np.timedelta64(1, "D")
        if self.added_ is not None:
            cols["days_on_platform"] = (times - self.added_[item]) / np.timedelta64(1, "D")
        for d in self.popularity_days:
            lo, hi = history.item_window(item, sec, d * DAY_SECONDS)
            cols[f"item_plays_{d}d"] = (hi - lo).astype(float)
        if self.holiday_ is not None:
            days = np.full(len(item), np.nan)
            tags = self.holiday_[item]
            for name in {t for t in tags if t is not None}:
                at = np.flatnonzero(tags == name)
                days[at] = days_until(name, times[at])
            cols["days_to_title_holiday"] = days
            cols["title_holiday_season"] = (days <= HOLIDAY_SEASON_DAYS).astype(float)  # NaN compares False
        lo, hi = history.item_window(item, sec, 30 * DAY_SECONDS)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["item_positive_rate_30d"] = np.where(
                hi > lo, (history.item_positive_cum[hi] - history.item_positive_cum[lo]) / np.maximum(hi - lo, 1),
                np.nan)
        return [Block("title", rows.item, self.static_, titles.n + 1),
                Block("title_moment", rows.item_moment, cols, len(item))]


def _release_dates(items: pd.DataFrame) -> np.ndarray | None:
    """First release per title (from release_date, else mid-year of release_year), with a NaT padding row."""
    if "release_date" in items.columns and items["release_date"].notna().any():
        dates = items["release_date"].to_numpy(dtype="datetime64[ns]")
    elif "release_year" in items.columns and items["release_year"].notna().any():
        years = pd.to_numeric(items["release_year"], errors="coerce")
        dates = pd.to_datetime(years.astype("Int64").astype(str) + "-07-01", errors="coerce").to_numpy(
            dtype="datetime64[ns]")
    else:
        return None
    return np.append(dates, np.datetime64("NaT"))
