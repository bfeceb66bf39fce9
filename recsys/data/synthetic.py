"""The simulated streaming world: members, titles, a logging policy and a behaviour model with a
known ground truth, so every model can be compared with the best possible one.

`SyntheticWorld(WorldConfig(seed=...))` rebuilds the same members and titles (the hidden truth)
for a seed; `world.simulate()` replays the logging period into a `Dataset`; the ground-truth
API (`true_watch_probability`, `true_play_probability`, `respond`) answers what a member would
do if shown a title or a list, now. See docs/data.md ("The sample world").
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .dataset import Dataset
from .errors import DataError
from .phrasebank import (
    DISTRIBUTORS, FIRST_NAMES, GENRE_PHRASES, GENRE_QUERY_WORDS, GENRE_TAGS, GENRES, LANGUAGE_COUNTRIES,
    LANGUAGES, LAST_NAMES,
)
from .schema import MATURITY_MIN_AGE

__all__ = ["WorldConfig", "SyntheticWorld", "MemberState", "DEVICES", "EXAMINATION", "generate_sample",
           "write_world_manifest", "load_world"]

DEVICES: tuple[str, ...] = ("tv", "mobile", "tablet", "web")
RATINGS: tuple[str, ...] = ("G", "PG", "PG-13", "R", "NC-17")
N_LATENT = 8
DAY = np.timedelta64(1, "D")


def _examination(row_size: int) -> np.ndarray:
    """Position bias: the chance a member looks at slot k of a row (slot 0 first)."""
    return 0.95 * (np.arange(row_size) + 1.0) ** -0.55


EXAMINATION = _examination(10)

_MATURITY_BY_GENRE: dict[str, tuple[float, ...]] = {
    "Animation": (.6, .4, 0, 0, 0), "Family": (.5, .5, 0, 0, 0), "Horror": (0, 0, .3, .65, .05),
    "Thriller": (0, .05, .45, .5, 0), "Crime": (0, .05, .45, .5, 0), "Documentary": (.3, .4, .3, 0, 0),
    "Comedy": (.05, .25, .5, .2, 0), "Romance": (.05, .25, .5, .2, 0), "Action": (0, .2, .6, .2, 0),
    "Sci-Fi": (0, .2, .6, .2, 0), "Fantasy": (0, .25, .55, .2, 0), "Drama": (.05, .2, .45, .3, 0),
}
_GENRE_SHARE = np.array([.11, .13, .14, .07, .08, .07, .07, .06, .09, .07, .05, .06])
_COMPATIBLE: dict[str, tuple[str, ...]] = {
    "Action": ("Thriller", "Sci-Fi", "Crime", "Comedy", "Fantasy"), "Comedy": ("Romance", "Family", "Drama", "Action"),
    "Drama": ("Romance", "Crime", "Thriller", "Documentary"), "Horror": ("Thriller", "Fantasy", "Comedy"),
    "Romance": ("Comedy", "Drama", "Fantasy"), "Sci-Fi": ("Action", "Thriller", "Horror", "Drama"),
    "Documentary": ("Crime", "Drama", "Family"), "Animation": ("Family", "Comedy", "Fantasy"),
    "Thriller": ("Crime", "Horror", "Drama", "Action"), "Crime": ("Drama", "Thriller", "Comedy"),
    "Fantasy": ("Action", "Animation", "Family", "Romance"), "Family": ("Comedy", "Animation", "Fantasy"),
}
_HOLIDAY_TAGS = {"halloween": (10, 31), "christmas": (12, 25)}
_HOLIDAY_GENRES = {"halloween": ("Horror", "Family", "Comedy", "Animation"),
                   "christmas": ("Family", "Comedy", "Romance", "Animation", "Drama")}


@dataclass(frozen=True)
class WorldConfig:
    """Size and shape of the simulated service. Everything random follows from `seed`."""

    seed: int = 7
    n_users: int = 2000
    n_movies: int = 600
    n_shows: int = 45
    episodes_per_season: int = 6
    start: str = "2025-07-01"
    days: int = 184
    sessions_per_day: float = 0.12
    row_size: int = 10
    new_user_share: float = 0.25
    new_title_share: float = 0.12
    search_rate: float = 0.08

    def scaled(self, factor: float) -> "WorldConfig":
        """The same service with `factor` times the members (and so about as many more events)."""
        return replace(self, n_users=max(1, int(round(self.n_users * factor))))

    @property
    def start_time(self) -> pd.Timestamp:
        return pd.Timestamp(self.start)

    @property
    def end_time(self) -> pd.Timestamp:
        return self.start_time + pd.Timedelta(days=self.days)


@dataclass
class MemberState:
    """What a member has done so far that changes what they do next (finished titles, show progress)."""

    finished: np.ndarray  # bool per item
    next_episode: np.ndarray  # per show: item index of the next episode to watch, -1 when done


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _hour(when) -> np.ndarray:
    """Hour of day of datetime64 values."""
    when = np.asarray(when, dtype="datetime64[ns]")
    return (when.astype("datetime64[h]") - when.astype("datetime64[D]")).astype(np.int64)


def _names(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct fictional full names."""
    total = len(FIRST_NAMES) * len(LAST_NAMES)
    picks = rng.choice(total, size=n, replace=False)
    return [f"{FIRST_NAMES[p // len(LAST_NAMES)]} {LAST_NAMES[p % len(LAST_NAMES)]}" for p in picks]


class SyntheticWorld:
    """The members, titles and behaviour of a simulated streaming service, rebuilt from a seed."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self.start = np.datetime64(self.config.start_time.to_datetime64(), "ns")
        self.end = np.datetime64(self.config.end_time.to_datetime64(), "ns")
        self.examination = _examination(self.config.row_size)
        root = np.random.SeedSequence(self.config.seed)
        cat_seq, member_seq = root.spawn(2)
        self._build_catalogue(np.random.default_rng(cat_seq))
        self._build_members(np.random.default_rng(member_seq))
        self._build_utilities()
        self._holiday_cache: dict[np.datetime64, np.ndarray] = {}

    # ================================================================ catalogue
    def _build_catalogue(self, rng: np.random.Generator) -> None:
        cfg = self.config
        n_genres = len(GENRES)
        lang_names = list(LANGUAGES)
        lang_p = np.array(list(LANGUAGES.values()))
        lang_p = lang_p / lang_p.sum()
        n_titles = cfg.n_movies + cfg.n_shows

        # people
        people = _names(rng, 400 + 120 + 60)
        actors, directors, composers = people[:400], people[400:520], people[520:]
        actor_genres = rng.integers(0, n_genres, size=(400, 2))
        actor_fame = rng.pareto(1.5, size=400) + 0.2
        director_genre = np.arange(120) % n_genres

        # titles (a show is one title; its episodes become items below)
        primary = rng.choice(n_genres, size=n_titles, p=_GENRE_SHARE / _GENRE_SHARE.sum())
        title_genres: list[list[int]] = []
        for g in primary:
            gs = [int(g)]
            if rng.random() < 0.6:
                gs.append(GENRES.index(rng.choice(_COMPATIBLE[GENRES[g]])))
            title_genres.append(gs)
        is_show = np.zeros(n_titles, dtype=bool)
        is_show[cfg.n_movies:] = True
        lang = rng.choice(len(lang_names), size=n_titles, p=lang_p)
        quality = rng.normal(0, 0.6, size=n_titles)
        log_pop = rng.normal(0, 1.1, size=n_titles)
        latent = rng.normal(0, 0.5, size=(n_titles, N_LATENT))

        start = self.start
        span = self.end - self.start
        new = rng.random(n_titles) < cfg.new_title_share
        added = np.empty(n_titles, dtype="datetime64[ns]")
        release = np.empty(n_titles, dtype="datetime64[ns]")
        for t in range(n_titles):
            if new[t]:
                added[t] = (start + (rng.uniform(0.02, 0.95) * span).astype("timedelta64[ns]")).astype(
                    "datetime64[s]")
                release[t] = added[t] - np.timedelta64(int(rng.uniform(0, 60) * 86400), "s")
            else:
                years_ago = min(rng.exponential(9.0), 50.0)
                release[t] = start - np.timedelta64(int((years_ago * 365 + 30) * 86400), "s")
                lag_days = rng.uniform(1, max(2.0, min(3 * 365.0, years_ago * 365 + 29)))
                added[t] = start - np.timedelta64(int(lag_days * 86400), "s")
                if added[t] < release[t]:
                    added[t] = release[t] + np.timedelta64(86400, "s")
        # holiday titles
        holiday = np.full(n_titles, "", dtype=object)
        for tag, genres in _HOLIDAY_GENRES.items():
            fits = np.flatnonzero([GENRES[primary[t]] in genres and not holiday[t] for t in range(n_titles)])
            chosen = rng.choice(fits, size=max(1, int(0.03 * n_titles)), replace=False)
            holiday[chosen] = tag
        maturity = np.array([
            RATINGS[rng.choice(5, p=np.array(_MATURITY_BY_GENRE[GENRES[primary[t]]]))] for t in range(n_titles)
        ], dtype=object)
        maturity[holiday == "christmas"] = np.where(
            np.isin(maturity[holiday == "christmas"], ["R", "NC-17"]), "PG-13", maturity[holiday == "christmas"])

        # cast, director, crew
        cast: list[list[int]] = []
        director = np.empty(n_titles, dtype=np.int64)
        for t in range(n_titles):
            w = actor_fame * (1.0 + 6.0 * np.isin(actor_genres, title_genres[t]).any(axis=1))
            cast.append(sorted(rng.choice(400, size=3, replace=False, p=w / w.sum()).tolist()))
            pool = np.flatnonzero(director_genre == primary[t])
            director[t] = rng.choice(pool)
        dist_w = 1.0 / np.arange(1, len(DISTRIBUTORS) + 1) ** 1.1
        distributor = rng.choice(len(DISTRIBUTORS), size=n_titles, p=dist_w / dist_w.sum())
        composer = rng.integers(0, len(composers), size=n_titles)

        # text
        titles, synopses, tags = [], [], []
        seen: set[str] = set()
        for t in range(n_titles):
            g1 = GENRES[title_genres[t][0]]
            g2 = GENRES[title_genres[t][-1]]
            ph1, ph2 = GENRE_PHRASES[g1], GENRE_PHRASES[g2]
            form = rng.integers(0, 4)
            w1 = str(rng.choice(ph1["words"]))
            w2 = str(rng.choice(ph2["words"]))
            name = (f"The {w1}", f"{w1} {w2}" if w1 != w2 else f"{w1} Rising", f"{w1} of the {w2}",
                    f"Last {w1}")[form]
            base, k = name, 2
            while name in seen:
                name = f"{base} {['II', 'III', 'IV', 'V', 'VI', 'VII', 'VIII', 'IX', 'X'][k - 2] if k < 11 else k}"
                k += 1
            seen.add(name)
            titles.append(name)
            hol = holiday[t]
            who, plot = str(rng.choice(ph1["who"])), str(rng.choice(ph1["plot"]))
            where, tone = str(rng.choice(ph2["where"])), str(rng.choice(ph2["tone"]))
            text = f"{who[0].upper()}{who[1:]} {plot} {where}."
            if g2 != g1:
                text += f" Along the way, {str(rng.choice(ph2['plot'])).replace('must ', 'they must ')}."
            if hol == "christmas":
                text += " Set during a snowy Christmas, full of festive holiday spirit."
            elif hol == "halloween":
                text += " It all happens on Halloween night, among costumes, pumpkins and trick-or-treaters."
            text += f" {tone}"
            synopses.append(text)
            tg = {str(rng.choice(GENRE_TAGS[g1])), str(rng.choice(GENRE_TAGS[g2]))}
            if hol:
                tg.add(hol)
            tags.append(sorted(tg))

        # expand shows into episodes
        rows = []
        item_title, item_season, item_episode = [], [], []
        for t in range(n_titles):
            lang_t = lang_names[lang[t]]
            country = str(rng.choice(LANGUAGE_COUNTRIES[lang_t]))
            genres = [GENRES[g] for g in title_genres[t]]
            common = dict(
                genres=genres, original_language=lang_t, country=country, maturity_rating=maturity[t],
                director=directors[director[t]], actors=[actors[a] for a in cast[t]],
                distributor=DISTRIBUTORS[distributor[t]], composer=composers[composer[t]], tags=tags[t],
            )
            rating = float(np.clip(np.round(6.2 + 1.3 * quality[t] + rng.normal(0, 0.4), 1), 1, 10))
            if not is_show[t]:
                runtime = float(np.clip(np.round(rng.normal(106, 17)), 75, 185))
                if GENRES[primary[t]] in ("Animation", "Family"):
                    runtime = float(np.clip(runtime - 15, 75, 185))
                revenue = (float(np.round(np.exp(16.5 + 0.9 * log_pop[t] + 0.4 * quality[t] + rng.normal(0, 0.7)), -3))
                           if rng.random() < 0.7 and not new[t] else np.nan)
                rows.append(dict(
                    item_id=f"m{t + 1:04d}", title=titles[t], kind="movie", show_id=None, season=pd.NA,
                    episode=pd.NA, synopsis=synopses[t], duration_min=runtime, release_date=release[t],
                    added_at=added[t], public_rating=rating, revenue=revenue, **common,
                ))
                item_title.append(t)
                item_season.append(0)
                item_episode.append(0)
                continue
            show_id = f"s{t - cfg.n_movies + 1:03d}"
            n_seasons = int(min(1 + rng.geometric(0.55) - 1, 4))
            ep_len = 24.0 if GENRES[primary[t]] in ("Comedy", "Animation", "Family") else 48.0
            season_added = added[t]
            for s in range(1, n_seasons + 1):
                if s > 1:
                    season_added = season_added + np.timedelta64(int(rng.uniform(200, 400) * 86400), "s")
                    if season_added >= self.end - np.timedelta64(3, "D"):
                        break
                for e in range(1, cfg.episodes_per_season + 1):
                    rows.append(dict(
                        item_id=f"{show_id}-s{s}e{e:02d}", title=f"{titles[t]} S{s}:E{e}", kind="episode",
                        show_id=show_id, season=s, episode=e,
                        synopsis=f"{synopses[t]} Season {s}, episode {e}.",
                        duration_min=float(np.clip(np.round(ep_len + rng.normal(0, 4)), 18, 70)),
                        release_date=max(release[t], season_added - np.timedelta64(30, "D")),
                        added_at=season_added, public_rating=rating, revenue=np.nan, **common,
                    ))
                    item_title.append(t)
                    item_season.append(s)
                    item_episode.append(e)
        items = pd.DataFrame(rows)
        items["release_date"] = pd.to_datetime(items["release_date"]).astype("datetime64[ns]")
        items["added_at"] = pd.to_datetime(items["added_at"]).astype("datetime64[ns]")
        items["release_year"] = items["release_date"].dt.year.astype("int64")
        items["season"] = items["season"].astype("Int64")
        items["episode"] = items["episode"].astype("Int64")
        items = items[[
            "item_id", "title", "kind", "show_id", "season", "episode", "genres", "synopsis", "duration_min",
            "release_date", "release_year", "added_at", "original_language", "country", "maturity_rating",
            "director", "actors", "distributor", "composer", "tags", "public_rating", "revenue",
        ]]
        self.items = items

        it = np.asarray(item_title)
        self._title_of_item = it
        self._is_movie = ~is_show[it]
        self._genre_mat = np.zeros((len(items), n_genres))
        for i, t in enumerate(it):
            self._genre_mat[i, title_genres[t]] = 1.0 / len(title_genres[t])
        self._genre_any = self._genre_mat > 0
        self._lang = lang[it]
        self._quality = quality[it] + np.where(self._is_movie, 0.0, rng.normal(0, 0.1, size=len(it)))
        self._log_pop = log_pop[it]
        self._latent = latent[it]
        self._added = items["added_at"].to_numpy()
        self._fresh = new[it]
        self._holiday = holiday[it]
        self._min_age = np.array([MATURITY_MIN_AGE[m] for m in maturity[it]])
        self._duration = items["duration_min"].to_numpy()
        self._director = director[it]
        self._cast = np.zeros((len(items), 400), dtype=bool)
        for i, t in enumerate(it):
            self._cast[i, cast[t]] = True
        self._actor_names = actors
        self._actor_fame = actor_fame
        self._actor_genres = actor_genres
        self._director_genre = director_genre
        self._n_directors = len(directors)
        # shows: ordered episode lists
        show_ids = items["show_id"].to_numpy()
        self.show_ids = sorted({s for s in show_ids if isinstance(s, str)})
        self._show_of_item = np.array([self.show_ids.index(s) if isinstance(s, str) else -1 for s in show_ids])
        self._show_episodes = [np.flatnonzero(self._show_of_item == k) for k in range(len(self.show_ids))]
        self._next_in_show = np.full(len(items), -1)
        self._first_episode = np.full(len(items), -1)
        for eps in self._show_episodes:
            self._first_episode[eps] = eps[0]
        for eps in self._show_episodes:
            self._next_in_show[eps[:-1]] = eps[1:]
        self._item_index = pd.Index(items["item_id"])

    # ================================================================== members
    def _build_members(self, rng: np.random.Generator) -> None:
        cfg = self.config
        n = cfg.n_users
        n_genres = len(GENRES)
        lang_names = list(LANGUAGES)
        lang_p = np.array(list(LANGUAGES.values()))
        lang_p = lang_p / lang_p.sum()

        group = rng.choice(3, size=n, p=[0.08, 0.10, 0.82])  # kids, teens, adults
        age = np.where(group == 0, rng.integers(8, 13, size=n),
                       np.where(group == 1, rng.integers(13, 18, size=n),
                                np.clip(np.round(18 + rng.gamma(3.0, 7.5, size=n)), 18, 80))).astype(np.int64)
        gender = rng.choice(np.array(["F", "M", "X"], dtype=object), size=n, p=[0.49, 0.49, 0.02])
        lang = rng.choice(len(lang_names), size=n, p=lang_p)
        country = np.array([rng.choice(LANGUAGE_COUNTRIES[lang_names[k]]) for k in lang], dtype=object)
        loved = np.full(n, -1)
        lovers = rng.random(n) < 0.12
        loved[lovers] = [rng.choice([k for k in range(1, len(lang_names)) if k != lang[u]]) for u in np.flatnonzero(lovers)]

        taste = rng.normal(0, 0.7, size=(n, n_genres)) - 0.6
        for u in range(n):
            favs = rng.choice(n_genres, size=3, replace=False, p=_GENRE_SHARE / _GENRE_SHARE.sum())
            taste[u, favs[:2]] += 1.8
            taste[u, favs[2]] += 0.9
        gi = {g: k for k, g in enumerate(GENRES)}
        kids, teens, seniors = age < 13, (age >= 13) & (age < 18), age >= 50
        for g, d in (("Animation", 2.2), ("Family", 2.2), ("Horror", -3.0), ("Thriller", -1.5), ("Crime", -1.5)):
            taste[kids, gi[g]] += d
        for g, d in (("Action", 0.5), ("Sci-Fi", 0.5), ("Horror", 0.5), ("Comedy", 0.4), ("Documentary", -0.6)):
            taste[teens, gi[g]] += d
        for g, d in (("Drama", 0.6), ("Documentary", 0.6), ("Horror", -0.6), ("Animation", -0.7)):
            taste[seniors, gi[g]] += d
        taste[gender == "F", gi["Romance"]] += 0.3
        taste[gender == "M", gi["Action"]] += 0.3

        fav_actors = np.zeros((n, 400), dtype=bool)
        for u in range(n):
            k = rng.choice(4, p=[0.3, 0.35, 0.25, 0.1])
            if k:
                top = np.argsort(-taste[u])[:3]
                w = self._actor_fame * (0.2 + np.isin(self._actor_genres, top).any(axis=1))
                fav_actors[u, rng.choice(400, size=k, replace=False, p=w / w.sum())] = True
        fav_director = np.where(
            rng.random(n) < 0.5,
            [rng.choice(np.flatnonzero(np.isin(self._director_genre, np.argsort(-taste[u])[:2]))) for u in range(n)],
            -1,
        )

        signup = np.empty(n, dtype="datetime64[ns]")
        joiners = rng.random(n) < cfg.new_user_share
        span = self.end - self.start
        signup[joiners] = self.start + (rng.uniform(0.0, 0.9, size=joiners.sum()) * span).astype("timedelta64[ns]")
        signup[~joiners] = self.start - (rng.uniform(1, 730, size=(~joiners).sum()) * 86400e9).astype("timedelta64[ns]")
        signup = signup.astype("datetime64[s]").astype("datetime64[ns]")

        self.users = pd.DataFrame({
            "user_id": [f"u{u + 1:05d}" for u in range(n)],
            "age": age,
            "gender": gender,
            "language": [lang_names[k] for k in lang],
            "country": country,
            "signup_time": pd.to_datetime(signup).astype("datetime64[ns]"),
        })
        self._user_index = pd.Index(self.users["user_id"])
        self._age = age
        self._ulang = lang
        self._loved = loved
        self._taste = taste
        self._fav_actors = fav_actors
        self._fav_director = fav_director
        self._ulatent = rng.normal(0, 0.5, size=(n, N_LATENT))
        self._ubias = rng.normal(0, 0.3, size=n)
        self._rate = np.clip(rng.lognormal(np.log(cfg.sessions_per_day), 0.7, size=n), 0.01, 1.5)
        self._peak_hour = rng.choice([20, 21, 22, 19, 13, 8, 23], size=n, p=[.25, .22, .15, .14, .1, .07, .07])
        self._device_p = rng.dirichlet([3.0, 2.0, 1.0, 1.0], size=n)
        self._binge = rng.beta(2.0, 2.0, size=n)
        self._signup = signup

    # ================================================================ utilities
    def _build_utilities(self) -> None:
        """The static part of how much each member likes each title (members x titles)."""
        genre = self._taste @ self._genre_mat.T
        actor = (self._fav_actors.astype(np.float32) @ self._cast.T.astype(np.float32)) * 1.0
        director = (self._fav_director[:, None] == self._director[None, :]) * 0.8
        ul, il, loved = self._ulang[:, None], self._lang[None, :], self._loved[:, None]
        language = np.where(ul == il, 0.0, np.where(il == 0, -0.3, -1.2))
        language = np.where(loved == il, 1.0, language)
        latent = self._ulatent @ self._latent.T
        self._genre_utility = genre
        self._match = (genre + actor + director + language + latent + self._ubias[:, None]).astype(np.float64)
        self._age_ok = self._age[:, None] >= self._min_age[None, :]
        # context effects per device and per hour of day (items along the last axis)
        gi = {g: k for k, g in enumerate(GENRES)}
        dev = np.zeros((len(DEVICES), len(self.items)))
        dev[DEVICES.index("tv")] = np.where(self._is_movie, 0.3, 0.0)
        dev[DEVICES.index("mobile")] = np.where(self._is_movie, -0.6, 0.3)
        dev[DEVICES.index("tablet")] = 0.4 * (self._genre_any[:, gi["Animation"]] | self._genre_any[:, gi["Family"]])
        self._device_effect = dev
        hour = np.zeros((24, len(self.items)))
        night = self._genre_any[:, gi["Horror"]] | self._genre_any[:, gi["Thriller"]]
        morning = self._genre_any[:, [gi["Animation"], gi["Family"], gi["Documentary"]]].any(axis=1)
        for h in list(range(22, 24)) + list(range(0, 4)):
            hour[h] = 0.5 * night
        for h in range(6, 12):
            hour[h] = 0.4 * morning
        self._hour_effect = hour

    def _holiday_effect(self, items: np.ndarray, when: np.ndarray) -> np.ndarray:
        """Seasonal pull of holiday titles: strong in the weeks before their day, negative off season."""
        items, when = np.broadcast_arrays(items, np.asarray(when, dtype="datetime64[ns]"))
        out = np.zeros(items.shape)
        tags = self._holiday[items]
        day = when.astype("datetime64[D]")
        for tag, (month, dom) in _HOLIDAY_TAGS.items():
            mask = tags == tag
            if not mask.any():
                continue
            target = (day[mask].astype("datetime64[Y]").astype("datetime64[M]") + (month - 1)).astype(
                "datetime64[D]") + (dom - 1)
            days_until = (target - day[mask]).astype(np.int64)
            out[mask] = np.where((days_until >= 0) & (days_until <= 45),
                                 1.8 * np.exp(-days_until / 14.0) + 0.4, -0.8)
        return out

    def _holiday_today(self, when: np.datetime64) -> np.ndarray:
        """Holiday effect of every title on the day of `when` (memoised: it only changes daily)."""
        day = np.datetime64(when, "D")
        cached = self._holiday_cache.get(day)
        if cached is None:
            everything = np.arange(len(self.items))
            cached = self._holiday_cache[day] = self._holiday_effect(everything, np.full(len(everything), day))
        return cached

    def _freshness(self, items: np.ndarray, when: np.ndarray) -> np.ndarray:
        age_days = (when - self._added[items]) / DAY
        return np.where(self._fresh[items] & (age_days >= 0), 1.0 * np.exp(-np.maximum(age_days, 0) / 21.0), 0.0)

    def _utilities(self, users: np.ndarray, items: np.ndarray, when: np.ndarray, device: np.ndarray,
                   hour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Click utility C and enjoyment utility E for broadcastable (user, item, context) arrays."""
        match = self._match[users, items]
        hol = self._holiday_effect(items, when)
        dev = self._device_effect[device, items]
        click = match + 0.5 * self._log_pop[items] + self._freshness(items, when) + hol + dev \
            + self._hour_effect[hour, items] - 2.2
        enjoy = match + 0.9 * self._quality[items] + 0.5 * hol + 0.5 * dev + 0.3
        return click, enjoy

    @staticmethod
    def _p_like(enjoy: np.ndarray) -> np.ndarray:
        return _sigmoid(1.5 * enjoy)

    # ========================================================== ground truth API
    def _indices(self, user_ids, item_ids) -> tuple[np.ndarray, np.ndarray]:
        u = self._user_index.get_indexer(pd.Index(np.atleast_1d(np.asarray(user_ids, dtype=object)).astype(str)))
        i = self._item_index.get_indexer(pd.Index(np.atleast_1d(np.asarray(item_ids, dtype=object)).astype(str)))
        if (u < 0).any():
            raise KeyError(f"unknown user id(s) in this world: {list(np.asarray(user_ids)[u < 0][:5])}")
        if (i < 0).any():
            raise KeyError(f"unknown item id(s) in this world: {list(np.asarray(item_ids)[i < 0][:5])}")
        return u, i

    def _context(self, when, device, n: int):
        when = np.broadcast_to(np.asarray(pd.to_datetime(np.atleast_1d(when)), dtype="datetime64[ns]"), (n,))
        dev_names = np.broadcast_to(np.asarray(np.atleast_1d(device), dtype=object), (n,))
        unknown = ~np.isin(dev_names, DEVICES)
        if unknown.any():
            raise ValueError(f"unknown device {dev_names[unknown][0]!r}; expected one of {DEVICES}")
        dev = np.array([DEVICES.index(d) for d in dev_names]) if n else np.zeros(0, dtype=int)
        return when, dev, _hour(when)

    def true_play_probability(self, user_ids, item_ids, when, device="tv", position: int = 0) -> np.ndarray:
        """P(member plays the title | shown in slot `position` at `when` on `device`), per (user, item) pair."""
        u, i = self._indices(user_ids, item_ids)
        u, i = np.broadcast_arrays(u, i)
        when, dev, hour = self._context(when, device, len(u))
        click, _ = self._utilities(u, i, when, dev, hour)
        available = self._added[i] <= when
        return self.examination[position] * _sigmoid(click) * self._age_ok[u, i] * available

    def true_watch_probability(self, user_ids, item_ids, when, device="tv", position: int = 0) -> np.ndarray:
        """P(member plays the title and watches more than 80% of it | shown in slot `position`, now).

        This is the quantity every ranker tries to estimate; the oracle ranks by it.
        """
        u, i = self._indices(user_ids, item_ids)
        u, i = np.broadcast_arrays(u, i)
        when, dev, hour = self._context(when, device, len(u))
        click, enjoy = self._utilities(u, i, when, dev, hour)
        available = self._added[i] <= when
        return (self.examination[position] * _sigmoid(click) * self._p_like(enjoy) * self._FINISH_IF_LIKED
                * self._age_ok[u, i] * available)

    def true_watch_matrix(self, user_ids, when, device: str = "tv") -> np.ndarray:
        """`true_watch_probability` of every title (columns, catalogue order) for each member (rows) at one
        moment: the oracle's scores, vectorised."""
        u, _ = self._indices(user_ids, [])
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
        when = np.datetime64(pd.Timestamp(when).to_datetime64(), "ns")
        items = np.arange(len(self.items))
        dev = np.full(len(items), DEVICES.index(device))
        hour = np.full(len(items), int(_hour(when)))
        hol, devx = self._holiday_today(when), self._device_effect[dev, items]
        context = self._freshness(items, np.full(len(items), when)) + hol + devx + self._hour_effect[hour, items]
        match = self._match[u]
        click = match + (0.5 * self._log_pop + context - 2.2)[None, :]
        enjoy = match + (0.9 * self._quality + 0.5 * hol + 0.5 * devx + 0.3)[None, :]
        available = self._added <= when
        return (self.examination[0] * _sigmoid(click) * self._p_like(enjoy) * self._FINISH_IF_LIKED
                * self._age_ok[u] * available[None, :])

    def oracle_scores(self, user_id: str, when, device: str = "tv") -> pd.Series:
        """True watch probability of every title for one member now, indexed by item id."""
        p = self.true_watch_probability(np.repeat(str(user_id), len(self.items)), self.items["item_id"], when, device)
        return pd.Series(p, index=self._item_index, name="p_watch")

    _FINISH_IF_LIKED = 0.88
    _ABANDON_IF_DISLIKED = 0.72

    def new_state(self) -> MemberState:
        """A member with no history: nothing finished, every show at its first episode."""
        return MemberState(
            finished=np.zeros(len(self.items), dtype=bool),
            next_episode=np.array([eps[0] for eps in self._show_episodes], dtype=np.int64),
        )

    def state_from_events(self, events: pd.DataFrame) -> MemberState:
        """Rebuild one member's state from their logged events (finished titles, show progress)."""
        state = self.new_state()
        if len(events):
            done = events.loc[events["watch_fraction"] > 0.8, "item_id"]
            idx = self._item_index.get_indexer(pd.Index(done.astype(str)))
            for i in np.sort(idx[idx >= 0]):
                self._mark_finished(state, i)
        return state

    def _mark_finished(self, state: MemberState, i: int) -> None:
        state.finished[i] = True
        s = self._show_of_item[i]
        if s >= 0 and state.next_episode[s] == i:
            state.next_episode[s] = self._next_in_show[i]

    def _watch_fraction(self, enjoy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sample watch fractions for plays: liked -> mostly >80%, disliked -> mostly <10%, some middle."""
        n = len(enjoy)
        liked = rng.random(n) < self._p_like(enjoy)
        finish = rng.random(n) < np.where(liked, self._FINISH_IF_LIKED, 0.0)
        abandon = ~liked & (rng.random(n) < self._ABANDON_IF_DISLIKED)
        frac = rng.uniform(0.1, 0.8, size=n)  # interrupted: the middle band
        frac = np.where(finish, 0.805 + 0.195 * rng.beta(5.0, 1.0, size=n), frac)
        frac = np.where(abandon, rng.uniform(0.01, 0.099, size=n), frac)
        return np.round(frac, 4)

    def respond(self, user_id: str, shown_item_ids: Iterable[str], when, device: str = "tv",
                seed: int | np.random.Generator = 0, state: MemberState | None = None,
                session_id: str | None = None) -> pd.DataFrame:
        """Sample what the member does when shown this list (slot 0 first) at `when` on `device`.

        Returns events in the logged schema: one row per shown title (watch_fraction 0 when not
        played) plus any episodes autoplayed after a finished one. `state` (updated in place)
        carries what the member already watched; without it the member starts fresh.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        u = int(self._user_index.get_indexer(pd.Index([str(user_id)]))[0])
        if u < 0:
            raise KeyError(f"unknown user id in this world: {user_id!r}")
        shown = list(shown_item_ids)
        idx = self._item_index.get_indexer(pd.Index([str(s) for s in shown]))
        if (idx < 0).any():
            raise KeyError(f"unknown item id(s) in this world: {[s for s, k in zip(shown, idx) if k < 0][:5]}")
        if len(idx) > len(self.examination):
            raise ValueError(f"at most {len(self.examination)} titles can be shown in one row, got {len(idx)}")
        state = state or self.new_state()
        when = np.datetime64(pd.Timestamp(when).to_datetime64(), "ns")
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
        cols = self._session(u, when, DEVICES.index(device), idx, None, state, rng,
                             session_id or f"{user_id}-sim")
        return self._events_frame([cols])

    # ================================================================ simulation
    def _session(self, u: int, when: np.datetime64, dev: int, shown: np.ndarray, propensity: np.ndarray | None,
                 state: MemberState, rng: np.random.Generator, session_id: str) -> dict[str, list]:
        """Play out one row shown to member `u`: scanning with position bias, plays, binge autoplay."""
        hour = int(_hour(when))
        k = len(shown)
        click, enjoy = self._utilities(np.full(k, u), shown, np.full(k, when), np.full(k, dev), np.full(k, hour))
        click = click - 3.0 * state.finished[shown]
        p = self.examination[:k] * _sigmoid(click) * self._age_ok[u, shown] * (self._added[shown] <= when)
        clicked = rng.random(k) < p
        keep_more = rng.random(k) < 0.3
        plays = []
        for pos in np.flatnonzero(clicked):
            if not plays or keep_more[pos]:
                plays.append(pos)
        frac = np.zeros(k)
        if plays:
            frac[plays] = self._watch_fraction(enjoy[plays], rng)
        out = {
            "user": [u] * k, "item": list(shown), "timestamp": [when] * k, "device": [dev] * k,
            "session": [session_id] * k, "fraction": list(frac), "position": list(range(k)),
            "propensity": list(propensity) if propensity is not None else [np.nan] * k, "source": ["row"] * k,
        }
        clock = when + np.timedelta64(30, "s")
        for pos in plays:
            i = shown[pos]
            out["timestamp"][pos] = clock
            clock = clock + np.timedelta64(int(frac[pos] * self._duration[i] * 60) + 60, "s")
            if frac[pos] > 0.8:
                self._mark_finished(state, i)
                clock = self._autoplay(u, i, clock, dev, state, rng, session_id, out)
        return out

    def _autoplay(self, u: int, i: int, clock, dev: int, state: MemberState, rng: np.random.Generator,
                  session_id: str, out: dict[str, list]):
        """After a finished episode, maybe keep watching the next ones (a binge)."""
        for _ in range(5):
            nxt = self._next_in_show[i]
            if nxt < 0 or self._added[nxt] > clock:
                break
            hour = int(_hour(clock))
            _, enjoy = self._utilities(np.array([u]), np.array([nxt]), np.array([clock]), np.array([dev]),
                                       np.array([hour]))
            if rng.random() >= self._binge[u] * _sigmoid(enjoy[0] + 1.0):
                break
            frac = float(self._watch_fraction(enjoy, rng)[0])
            for key, value in (("user", u), ("item", nxt), ("timestamp", clock), ("device", dev),
                               ("session", session_id), ("fraction", frac), ("position", -1),
                               ("propensity", np.nan), ("source", "autoplay")):
                out[key].append(value)
            clock = clock + np.timedelta64(int(frac * self._duration[nxt] * 60) + 30, "s")
            if frac <= 0.8:
                break
            self._mark_finished(state, nxt)
            i = nxt
        return clock

    def _policy_row(self, u: int, when: np.datetime64, state: MemberState, rng: np.random.Generator):
        """The logging policy: Plackett-Luce sample of a row over popularity, genre fit, freshness,
        season and shows in progress. Returns the row and each slot's propensity given the slots above."""
        eligible = (self._added <= when) & self._age_ok[u]
        next_ep = np.zeros(len(self.items), dtype=bool)
        nxt = state.next_episode[state.next_episode >= 0]
        next_ep[nxt] = True
        eligible &= (self._is_movie & ~state.finished) | next_ep
        cand = np.flatnonzero(eligible)
        k = min(self.config.row_size, len(cand))
        if k == 0:
            return cand, np.zeros(0)
        in_progress = 1.5 * (next_ep[cand] & (self._first_episode[cand] != cand))
        score = (self._log_pop[cand] + 0.7 * self._genre_utility[u, cand] + self._freshness(cand, when)
                 + self._holiday_today(when)[cand] + in_progress)
        noisy = -(score + rng.gumbel(size=len(cand)))
        top = np.argpartition(noisy, k - 1)[:k] if k < len(cand) else np.arange(len(cand))
        order = top[np.argsort(noisy[top], kind="stable")]
        weights = np.exp(score - score.max())
        remaining = weights.sum()
        props = np.empty(k)
        for j, c in enumerate(order):
            props[j] = weights[c] / remaining
            remaining -= weights[c]
        return cand[order], props

    def logging_row(self, user_id: str, when, state: MemberState, rng: np.random.Generator
                    ) -> tuple[list[str], np.ndarray]:
        """The row the logging policy would show this member now (its Plackett-Luce draw, as in the logs),
        with each slot's propensity given the slots above."""
        u = int(self._user_index.get_indexer(pd.Index([str(user_id)]))[0])
        if u < 0:
            raise KeyError(f"unknown user id in this world: {user_id!r}")
        shown, props = self._policy_row(u, np.datetime64(pd.Timestamp(when).to_datetime64(), "ns"), state, rng)
        return [str(x) for x in self.items["item_id"].to_numpy()[shown]], props

    def advance_states(self, states: dict[str, MemberState], events: pd.DataFrame) -> None:
        """Update members' states in place with the titles these events finished (watch fraction > 80%)."""
        done = events.loc[events["watch_fraction"] > 0.8, ["user_id", "item_id"]]
        items = self._item_index.get_indexer(pd.Index(done["item_id"].astype(str)))
        for user, i in zip(done["user_id"].astype(str), items):
            if i >= 0:
                state = states.get(user)
                if state is None:
                    state = states[user] = self.new_state()
                self._mark_finished(state, int(i))

    def _member_sessions(self, u: int, rng: np.random.Generator) -> np.ndarray:
        """Session start times for one member: Poisson arrivals at habitual hours, more at weekends."""
        first = max(self._signup[u], self.start)
        days = (self.end - first) / DAY
        if days <= 0:
            return np.zeros(0, dtype="datetime64[ns]")
        n = rng.poisson(self._rate[u] * days * 1.15)
        day = np.floor(rng.uniform(0, days, size=n))
        hour = (self._peak_hour[u] + rng.normal(0, 1.8, size=n)) % 24
        base = first.astype("datetime64[D]").astype("datetime64[ns]")
        t = base + (day * 86400e9 + hour * 3600e9).astype("timedelta64[ns]")
        dow = pd.DatetimeIndex(t).day_of_week.to_numpy()
        keep = rng.random(n) < np.where(dow >= 5, 1.0, np.where(dow == 4, 0.95, 0.8))
        t = t[keep & (t >= first) & (t < self.end)]
        return np.sort(t.astype("datetime64[s]").astype("datetime64[ns]"))

    def simulate(self, progress: Callable[[int, int], None] | None = None) -> Dataset:
        """Replay the logging period: every member's sessions, rows, plays, binges and searches."""
        cfg = self.config
        chunks: list[dict[str, list]] = []
        searches: list[tuple] = []
        lang_names = list(LANGUAGES)
        user_ids = self.users["user_id"].to_numpy()
        for u in range(cfg.n_users):
            rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1, u]))
            state = self.new_state()
            for s, when in enumerate(self._member_sessions(u, rng)):
                dev = int(rng.choice(len(DEVICES), p=self._device_p[u]))
                sid = f"{user_ids[u]}-{s:04d}"
                if rng.random() < cfg.search_rate:
                    # the row is shown once whatever the search led to is over
                    when = self._search(u, when, dev, state, rng, sid, chunks, searches, lang_names)
                shown, props = self._policy_row(u, when, state, rng)
                if len(shown):
                    chunks.append(self._session(u, when, dev, shown, props, state, rng, sid))
            if progress is not None:
                progress(u + 1, cfg.n_users)
        events = self._events_frame(chunks)
        search_frame = pd.DataFrame(searches, columns=["user_id", "timestamp", "query", "session_id"])
        search_frame["timestamp"] = pd.to_datetime(search_frame["timestamp"]).astype("datetime64[ns]")
        return Dataset.from_frames(self.users, self.items, events, search_frame, name="sample",
                                   files={"users": "sample users", "items": "sample items",
                                          "events": "sample events", "searches": "sample searches"})

    def _search(self, u, when, dev, state, rng, sid, chunks, searches, lang_names) -> np.datetime64:
        """A member types a query (a favourite actor, a loved language and genre, or a genre word) and
        plays the matching title they like best."""
        eligible = (self._added <= when) & self._age_ok[u] & ~(state.finished & self._is_movie)
        fav = np.flatnonzero(self._fav_actors[u])
        top_genre = int(np.argmax(self._taste[u] + rng.gumbel(size=len(GENRES)) * 0.5))
        roll = rng.random()
        if len(fav) and roll < 0.35:
            a = int(rng.choice(fav))
            query, match = self._actor_names[a], self._cast[:, a]
        elif self._loved[u] >= 0 and roll < 0.6:
            lang = self._loved[u]
            query = f"{lang_names[lang].lower()} {GENRE_QUERY_WORDS[GENRES[top_genre]][0]}"
            match = (self._lang == lang) & self._genre_any[:, top_genre]
        else:
            query = str(rng.choice(GENRE_QUERY_WORDS[GENRES[top_genre]]))
            match = self._genre_any[:, top_genre]
        searches.append((self._user_index[u], when, query, sid))
        # a search leads to the show's next episode, not a random one
        next_ep = np.zeros(len(self.items), dtype=bool)
        next_ep[state.next_episode[state.next_episode >= 0]] = True
        cand = np.flatnonzero(match & eligible & (self._is_movie | next_ep))
        if len(cand) == 0:
            return when + np.timedelta64(60, "s")
        hour = int(_hour(when))
        n = len(cand)
        _, enjoy = self._utilities(np.full(n, u), cand, np.full(n, when), np.full(n, dev), np.full(n, hour))
        i = int(cand[np.argmax(enjoy + rng.gumbel(size=n))])
        frac = float(self._watch_fraction(enjoy[[np.flatnonzero(cand == i)[0]]], rng)[0])
        at = when + np.timedelta64(20, "s")
        out = {"user": [u], "item": [i], "timestamp": [at], "device": [dev], "session": [sid],
               "fraction": [frac], "position": [-1], "propensity": [np.nan], "source": ["search"]}
        clock = at + np.timedelta64(int(frac * self._duration[i] * 60) + 60, "s")
        if frac > 0.8:
            self._mark_finished(state, i)
            clock = self._autoplay(u, i, clock, dev, state, rng, sid, out)
        chunks.append(out)
        return clock

    def _events_frame(self, chunks: list[dict[str, list]]) -> pd.DataFrame:
        def cat(key):
            return np.concatenate([np.asarray(c[key], dtype=object if key in ("session", "source") else None)
                                   for c in chunks]) if chunks else np.zeros(0)

        users, items = cat("user").astype(int), cat("item").astype(int)
        frac = cat("fraction").astype(float)
        pos = cat("position").astype(int)
        frame = pd.DataFrame({
            "user_id": self.users["user_id"].to_numpy()[users] if len(users) else np.zeros(0, dtype=object),
            "item_id": self.items["item_id"].to_numpy()[items] if len(items) else np.zeros(0, dtype=object),
            "timestamp": pd.to_datetime(cat("timestamp")).astype("datetime64[ns]") if len(users) else
            pd.Series(dtype="datetime64[ns]"),
            "device": np.asarray(DEVICES, dtype=object)[cat("device").astype(int)] if len(users) else
            np.zeros(0, dtype=object),
            "session_id": cat("session"),
            "watch_fraction": frac,
            "minutes_watched": np.round(frac * self._duration[items], 2) if len(items) else np.zeros(0),
            "position": pd.array(np.where(pos >= 0, pos, 0), dtype="Int64"),
            "propensity": cat("propensity").astype(float),
            "source": cat("source"),
        })
        if len(frame):
            frame.loc[pos < 0, "position"] = pd.NA
            frame["propensity"] = frame["propensity"].round(6)
        return frame.sort_values(["timestamp", "user_id", "position"], kind="stable").reset_index(drop=True)

    # ========================================================= online simulation
    def sessions_between(self, start, end, user_ids=None, seed: int = 0) -> pd.DataFrame:
        """Sessions members would start in [start, end), e.g. after the logged period ends.

        The same habits as the logging period (each member's rate, peak hour, weekend lift and device
        mix; nobody before signing up), drawn from a stream of its own per (seed, member), so a member's
        sessions do not depend on which other members are asked for. Returns user_id, timestamp, device
        and session_id (`{user}-o{n:04d}`), sorted by time then member.
        """
        start = np.datetime64(pd.Timestamp(start).to_datetime64(), "ns")
        end = np.datetime64(pd.Timestamp(end).to_datetime64(), "ns")
        if user_ids is None:
            index = np.arange(len(self.users))
        else:
            index = self._user_index.get_indexer(pd.Index(np.asarray(list(user_ids), dtype=object).astype(str)))
            if (index < 0).any():
                raise KeyError(f"unknown user id(s) in this world: {list(np.asarray(list(user_ids))[index < 0][:5])}")
        ids = self.users["user_id"].to_numpy()
        rows_u, rows_t, rows_d = [], [], []
        for u in index:
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2, int(u)]))
            first = max(self._signup[u], start)
            days = (end - first) / DAY
            if days <= 0:
                continue
            n = rng.poisson(self._rate[u] * days * 1.15)
            day = np.floor(rng.uniform(0, np.ceil(days), size=n))
            hour = (self._peak_hour[u] + rng.normal(0, 1.8, size=n)) % 24
            base = first.astype("datetime64[D]").astype("datetime64[ns]")
            t = base + (day * 86400e9 + hour * 3600e9).astype("timedelta64[ns]")
            dow = (t.astype("datetime64[D]").astype(np.int64) + 3) % 7  # Monday = 0, as in _member_sessions
            keep = rng.random(n) < np.where(dow >= 5, 1.0, np.where(dow == 4, 0.95, 0.8))
            dev = rng.choice(len(DEVICES), size=n, p=self._device_p[u])
            keep &= (t >= first) & (t < end)
            t = t[keep].astype("datetime64[s]").astype("datetime64[ns]")
            order = np.argsort(t, kind="stable")
            rows_u.append(np.full(len(t), u))
            rows_t.append(t[order])
            rows_d.append(dev[keep][order])
        if rows_u:
            u_all, t_all, d_all = np.concatenate(rows_u), np.concatenate(rows_t), np.concatenate(rows_d)
        else:
            u_all, t_all, d_all = np.zeros(0, int), np.zeros(0, "datetime64[ns]"), np.zeros(0, int)
        frame = pd.DataFrame({"user_id": ids[u_all].astype(object), "timestamp": pd.to_datetime(t_all),
                              "device": np.asarray(DEVICES, dtype=object)[d_all]})
        frame["session_id"] = frame["user_id"] + "-o" + frame.groupby("user_id").cumcount().map("{:04d}".format)
        frame = frame.astype({"user_id": object, "device": object, "session_id": object})
        return frame.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)

    def states_from_events(self, events: pd.DataFrame, user_ids=None) -> dict[str, MemberState]:
        """`state_from_events` for many members at once: {user_id: MemberState} (members of `user_ids`
        without events get a fresh state)."""
        done = events.loc[events["watch_fraction"] > 0.8, ["user_id", "item_id"]]
        items = self._item_index.get_indexer(pd.Index(done["item_id"].astype(str)))
        users = done["user_id"].astype(str).to_numpy()
        keep = items >= 0
        users, items = users[keep], items[keep]
        order = np.lexsort((items, users))
        users, items = users[order], items[order]
        wanted = pd.unique(users) if user_ids is None else [str(u) for u in user_ids]
        out = {str(u): self.new_state() for u in wanted}
        for u, i in zip(users, items):
            state = out.get(u)
            if state is not None:
                self._mark_finished(state, int(i))
        return out

    def respond_many(self, requests: Iterable[tuple], states: dict[str, MemberState]) -> pd.DataFrame:
        """`respond` for many sessions at once, as one events frame.

        `requests`: (user_id, shown_item_ids, when, device, rng, session_id) tuples; `states` maps
        member id to their MemberState (created when missing, updated in place). Sessions are played
        in the order given, so a member's later session sees what the earlier one finished.
        """
        chunks = []
        for user_id, shown, when, device, rng, session_id in requests:
            u = int(self._user_index.get_indexer(pd.Index([str(user_id)]))[0])
            if u < 0:
                raise KeyError(f"unknown user id in this world: {user_id!r}")
            idx = self._item_index.get_indexer(pd.Index([str(s) for s in shown]))
            if (idx < 0).any():
                raise KeyError(f"unknown item id(s) in this world: {[s for s, k in zip(shown, idx) if k < 0][:5]}")
            if len(idx) > len(self.examination):
                raise ValueError(f"at most {len(self.examination)} titles can be shown in one row, got {len(idx)}")
            if len(idx) == 0:
                continue
            state = states.get(str(user_id))
            if state is None:
                state = states[str(user_id)] = self.new_state()
            chunks.append(self._session(u, np.datetime64(pd.Timestamp(when).to_datetime64(), "ns"),
                                        DEVICES.index(device), idx, None, state, rng, str(session_id)))
        return self._events_frame(chunks)

    def describe(self) -> dict:
        """The configuration and a few facts of the world, saved next to the sample as world.json."""
        return {"config": asdict(self.config), "users": len(self.users), "items": len(self.items),
                "shows": len(self.show_ids), "devices": list(DEVICES)}


def generate_sample(config: WorldConfig | None = None,
                    progress: Callable[[int, int], None] | None = None) -> tuple[SyntheticWorld, Dataset]:
    """Build the world for `config` and simulate its logging period."""
    world = SyntheticWorld(config)
    return world, world.simulate(progress)


WORLD_MANIFEST = "world.json"


def write_world_manifest(world: SyntheticWorld, folder) -> Path:
    """Write `world.json` (the world's config) beside a generated dataset, atomically, so the
    ground truth (oracle, A/B simulator) can be rebuilt from the files alone."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / WORLD_MANIFEST
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(world.describe(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def load_world(folder) -> SyntheticWorld:
    """Rebuild the simulated world a dataset folder was generated from (reads its world.json)."""
    path = Path(folder) / WORLD_MANIFEST
    if not path.exists():
        raise DataError("no world.json here: this dataset was not generated by the simulated world",
                        file=str(path))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))["config"]
        return SyntheticWorld(WorldConfig(**config))
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"unreadable world manifest ({err})", file=str(path)) from err
