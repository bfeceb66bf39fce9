"""User features: the member's attributes and a summary of their plays before the moment (once per query)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from ..ids import IdIndex
from .group import FeatureGroup
from .history import DAY_SECONDS, History
from .rows import Rows
from .spec import Feature
from .table import Block
from .titles import TitleTables, slug

__all__ = ["UserFeatures", "MAX_LANGUAGE_SHARES"]

MAX_LANGUAGE_SHARES = 12  # per-language shares only when the catalogue has 2..12 languages
_ATTRIBUTES = (("gender", "Member's gender."), ("language", "Member's main language."),
               ("country", "Member's country."), ("occupation", "Member's occupation."))


class UserFeatures(FeatureGroup):
    """Age, gender, language, country, occupation, tenure, plays, positives, recency, session length,
    last genre and the genre and language mix of everything the member played before now."""

    name = "user"

    def fit(self, dataset: Dataset, titles: TitleTables) -> "UserFeatures":
        users = dataset.users
        self.user_ids_ = IdIndex(users["user_id"].astype(str))
        feats: list[Feature] = []
        self.age_ = None
        if dataset.has("users", "age"):
            feats.append(Feature("age", "user", "dense", "Member's age in years."))
            self.age_ = np.append(users["age"].to_numpy(dtype=float), np.nan)
        self.attributes_: dict[str, tuple[pd.CategoricalDtype, np.ndarray]] = {}
        for col, desc in _ATTRIBUTES:
            if dataset.has("users", col):
                feats.append(Feature(col, "user", "categorical", desc))
                values = users[col].to_numpy(dtype=object)
                codes, levels = pd.factorize(values, use_na_sentinel=True)
                self.attributes_[col] = (pd.CategoricalDtype(levels), np.append(codes, -1).astype(np.int64))
        self.signup_ = None
        if dataset.has("users", "signup_time"):
            feats.append(Feature("days_since_signup", "user", "dense",
                                 "Days since the member joined (missing before they join)."))
            self.signup_ = np.append(users["signup_time"].to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT"))
        feats += [
            Feature("user_plays", "user", "dense", "Titles the member played before now."),
            Feature("user_positive_share", "user", "dense", "Share of those plays that were positives."),
            Feature("days_since_last_play", "user", "dense", "Days since the member's last play (NaN if none)."),
        ]
        self.has_sessions_ = dataset.has("events", "minutes_watched") and dataset.has("events", "session_id")
        if self.has_sessions_:
            feats.append(Feature("avg_session_minutes", "user", "dense",
                                 "Average minutes watched per past session with a play."))
        self.genres_ = list(titles.genres)
        self.genre_dtype_ = pd.CategoricalDtype(self.genres_)
        if self.genres_:
            feats.append(Feature("last_genre", "user", "categorical", "Main genre of the member's last play."))
            feats += [Feature(f"user_genre_share_{slug(g)}", "user", "dense",
                              f"Share of the member's past plays that are {g}.") for g in self.genres_]
        self.languages_ = list(titles.languages) if 1 < len(titles.languages) <= MAX_LANGUAGE_SHARES else []
        feats += [Feature(f"user_language_share_{slug(lang)}", "user", "dense",
                          f"Share of the member's past plays in {lang}.") for lang in self.languages_]
        self.features_ = tuple(feats)
        return self

    def compute(self, rows: Rows, history: History, titles: TitleTables) -> list[Block]:
        q = rows.n_queries
        sec = rows.q_sec
        static = self.user_ids_.positions(rows.q_user_ids)  # -1 reads the padding entry
        cols: dict[str, object] = {}
        if self.age_ is not None:
            cols["age"] = self.age_[static]
        for col, (dtype, codes) in self.attributes_.items():
            cols[col] = pd.Categorical.from_codes(codes[static], dtype=dtype, validate=False)
        if self.signup_ is not None:
            days = (rows.q_time - self.signup_[static]) / np.timedelta64(1, "D")
            cols["days_since_signup"] = np.where(days < 0, np.nan, days)  # not yet a member: unknown, not -n
        start, stop = rows.play_range(history)
        n_hist = (stop - start).astype(float)
        cols["user_plays"] = n_hist
        pos_cum = history.cached("positive_cum", lambda: np.concatenate([[0], np.cumsum(history.positive)]))
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["user_positive_share"] = np.where(n_hist > 0, (pos_cum[stop] - pos_cum[start]) / n_hist, 0.0)
        last = np.where(stop > start, stop - 1, 0)
        has_last = stop > start
        cols["days_since_last_play"] = np.where(
            has_last, (sec - (history.sec[last] if len(history.sec) else 0)) / DAY_SECONDS, np.nan)
        if self.has_sessions_:
            if history.minutes is not None and history.new_session is not None:
                # minutes summed within each member (restarting at the member's first play), so the
                # value depends on that member's plays alone, to the last bit
                m_run = history.cached("minutes_within", lambda: pd.Series(history.minutes).groupby(
                    history.user).cumsum().to_numpy())
                s_cum = history.cached("sessions_cum", lambda: np.concatenate([[0], np.cumsum(history.new_session)]))
                sessions = s_cum[stop] - s_cum[start]
                minutes = np.where(stop > start, m_run[np.maximum(stop - 1, 0)] if len(m_run) else 0.0, 0.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    cols["avg_session_minutes"] = np.where(sessions > 0, minutes / np.maximum(sessions, 1), 0.0)
            else:
                cols["avg_session_minutes"] = np.zeros(q)
        if self.genres_:
            prim = titles.primary_genre[history.item[last]] if len(history.item) else np.full(q, -1)
            code = np.where(has_last & (prim >= 0), prim, -1)
            cols["last_genre"] = pd.Categorical.from_codes(code, dtype=self.genre_dtype_, validate=False)
            g_cum = history.cached("genre_cum", lambda: np.vstack([
                np.zeros((1, len(self.genres_))), np.cumsum(titles.genre_matrix[history.item], axis=0)]))
            share = (g_cum[stop] - g_cum[start]) / np.maximum(n_hist, 1)[:, None]
            for k, g in enumerate(self.genres_):
                cols[f"user_genre_share_{slug(g)}"] = share[:, k]
        if self.languages_:
            def language_cum() -> np.ndarray:
                onehot = np.zeros((len(titles.language), len(self.languages_)))
                known = titles.language >= 0
                onehot[np.flatnonzero(known), titles.language[known]] = 1.0
                return np.vstack([np.zeros((1, len(self.languages_))), np.cumsum(onehot[history.item], axis=0)])
            l_cum = history.cached("language_cum", language_cum)
            share = (l_cum[stop] - l_cum[start]) / np.maximum(n_hist, 1)[:, None]
            for k, lang in enumerate(self.languages_):
                cols[f"user_language_share_{slug(lang)}"] = share[:, k]
        return [Block("user", rows.query, cols, q)]
