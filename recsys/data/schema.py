"""The documented table schema (docs/data.md): column names, kinds and which are required."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Column", "TableSchema", "USERS", "ITEMS", "EVENTS", "SEARCHES", "SCHEMAS", "MATURITY_MIN_AGE",
           "maturity_min_ages"]

Kind = Literal["id", "str", "int", "float", "datetime", "list", "category"]


@dataclass(frozen=True)
class Column:
    """One column: its name, kind, whether a file must have it, and what it means."""

    name: str
    kind: Kind
    required: bool = False
    description: str = ""
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class TableSchema:
    """A table's known columns; columns not listed are kept as they are."""

    name: str
    key: str | None
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


# Minimum viewer age for each maturity rating (US-style ladder; MovieLens data has none).
MATURITY_MIN_AGE: dict[str, int] = {"G": 0, "PG": 7, "PG-13": 13, "R": 17, "NC-17": 18}


def maturity_min_ages(ratings, unknown: float = 0.0) -> np.ndarray:
    """The minimum age of each maturity rating (case and spaces ignored); `unknown` for missing or other ratings."""
    return np.array([MATURITY_MIN_AGE.get(r.strip().upper(), unknown) if isinstance(r, str) else unknown
                     for r in ratings], dtype=float)

USERS = TableSchema(
    "users",
    key="user_id",
    columns=(
        Column("user_id", "id", True, "External member id (kept as text)."),
        Column("age", "int", False, "Age in years.", 0, 120),
        Column("gender", "category", False, "Self-declared gender."),
        Column("language", "category", False, "Main language of the member."),
        Column("country", "category", False, "Country of the account."),
        Column("signup_time", "datetime", False, "When the member joined (UTC)."),
        Column("occupation", "category", False, "Occupation (MovieLens)."),
    ),
)

ITEMS = TableSchema(
    "items",
    key="item_id",
    columns=(
        Column("item_id", "id", True, "External title id (kept as text)."),
        Column("title", "str", True, "Display title."),
        Column("kind", "category", False, "movie or episode."),
        Column("show_id", "id", False, "Show an episode belongs to."),
        Column("season", "int", False, "Season number of an episode.", 0, None),
        Column("episode", "int", False, "Episode number within its season.", 0, None),
        Column("genres", "list", False, "Genres (list; '|'-separated in CSV)."),
        Column("synopsis", "str", False, "Short description used for text embeddings."),
        Column("duration_min", "float", False, "Running time in minutes.", 0, None),
        Column("release_date", "datetime", False, "First release (UTC)."),
        Column("release_year", "int", False, "Year of first release.", 1800, 2200),
        Column("added_at", "datetime", False, "When the title arrived on the platform (UTC)."),
        Column("original_language", "category", False, "Original language."),
        Column("country", "category", False, "Country of origin."),
        Column("maturity_rating", "category", False, "G, PG, PG-13, R or NC-17."),
        Column("director", "str", False, "Director."),
        Column("actors", "list", False, "Main cast (list; '|'-separated in CSV)."),
        Column("distributor", "str", False, "Distributor."),
        Column("composer", "str", False, "Music composer."),
        Column("tags", "list", False, "Free tags such as 'christmas' (list; '|'-separated in CSV)."),
        Column("public_rating", "float", False, "Public rating on a 1-10 scale.", 0, 10),
        Column("revenue", "float", False, "Box-office revenue before the platform, USD.", 0, None),
    ),
)

EVENTS = TableSchema(
    "events",
    key=None,
    columns=(
        Column("user_id", "id", True, "Member who saw or played the title."),
        Column("item_id", "id", True, "Title shown or played."),
        Column("timestamp", "datetime", True, "When it happened (UTC)."),
        Column("watch_fraction", "float", False,
               "Share of the title watched, 0..1; 0 means shown but not played.", 0, 1),
        Column("minutes_watched", "float", False, "Minutes watched.", 0, None),
        Column("rating", "float", False, "Explicit rating where the source has one (MovieLens)."),
        Column("device", "category", False, "tv, mobile, tablet or web."),
        Column("session_id", "id", False, "Viewing session."),
        Column("position", "int", False, "0-based slot in the row where it was shown.", 0, None),
        Column("propensity", "float", False,
               "Probability the logging policy put this title in this slot, given the slots above.", 0, 1),
        Column("source", "category", False, "row, search or autoplay."),
    ),
)

SEARCHES = TableSchema(
    "searches",
    key=None,
    columns=(
        Column("user_id", "id", True, "Member who searched."),
        Column("timestamp", "datetime", True, "When (UTC)."),
        Column("query", "str", True, "The query text."),
        Column("session_id", "id", False, "Viewing session."),
    ),
)

SCHEMAS: dict[str, TableSchema] = {s.name: s for s in (USERS, ITEMS, EVENTS, SEARCHES)}
