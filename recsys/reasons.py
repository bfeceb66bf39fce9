"""Why a title is in a member's list, in a few plain words, from the features behind its score.

The first rule that holds wins: a show in progress, a coming holiday, the member's genres, actors
they watched, a new arrival, and otherwise what the source that brought the title does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .features import FeatureTable
from .features.table import categorical_values

__all__ = ["Reasons", "REASON_FEATURES"]

#: The features the rules read (absent ones never fire).
REASON_FEATURES = ("user_show_plays", "is_holiday_title", "days_to_holiday", "upcoming_holiday", "user_genre_match",
                   "user_actor_match", "days_on_platform", "user_plays")


class Reasons:
    """Reason texts for rows of a FeatureTable; `fit` learns each title's genre phrase."""

    def fit(self, items: pd.DataFrame) -> "Reasons":
        genres = items["genres"] if "genres" in items.columns else pd.Series([[]] * len(items))
        self.genre_text_ = np.array([f"Matches what you watch: {', '.join(list(g)[:2])}" if len(g) else ""
                                     for g in genres] + [""], dtype=object)
        self.has_genres_ = self.genre_text_ != ""
        return self

    def explain(self, features: FeatureTable, rows: np.ndarray, item: np.ndarray, source: np.ndarray) -> np.ndarray:
        """A reason per picked row: `rows` index `features`, `item` the titles (catalogue index, -1 unknown),
        `source` the name of the source that brought each."""
        n = len(rows)
        picked = features.take(rows)

        def get(name: str):
            return picked.column(name) if name in picked else np.full(n, np.nan)

        def num(name: str) -> np.ndarray:
            return np.asarray(get(name), dtype=float)

        holiday = get("upcoming_holiday")
        holiday = categorical_values(holiday) if isinstance(holiday, pd.Categorical) else np.asarray(holiday, object)
        holiday_text = np.array([f"For the coming {str(h).replace('_', ' ')}" for h in holiday], dtype=object)
        known = item >= 0
        genre_ok = known & self.has_genres_[np.where(known, item, -1)]
        plays = num("user_plays")
        with np.errstate(invalid="ignore"):
            conditions = [
                num("user_show_plays") > 0,
                (num("is_holiday_title") > 0) & (num("days_to_holiday") <= 45),
                (num("user_genre_match") >= 0.3) & genre_ok,
                num("user_actor_match") > 0,
                num("days_on_platform") <= 21,
                source == "popularity",
                (source == "content") & (plays > 0),
                source == "content",
                plays == 0,
            ]
        choices = ["Next in a show you are watching", holiday_text, self.genre_text_[np.where(known, item, -1)],
                   "With actors from titles you watched", "New on the platform", "Popular on the platform right now",
                   "Similar to titles you watched", "Fits your profile", "Popular with members like you"]
        out = np.full(n, "Members with similar taste watched it", dtype=object)
        for cond, choice in zip(reversed(conditions), reversed(choices)):
            out = np.where(cond, choice, out)
        return out

