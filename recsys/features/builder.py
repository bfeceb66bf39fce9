"""Point-in-time features for (member, title, moment) rows: user, context, media, user x media, sparse.

`FeatureBuilder(...).fit(dataset)` learns only static facts (vocabularies, title attributes,
synopsis embeddings); `transform(rows, history)` computes every feature of a row at time t
from `history` events strictly before t. Features a dataset cannot support are absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from ..data.dataset import Dataset
from ..data.errors import DataError
from ..data.schema import MATURITY_MIN_AGE
from ..holidays import HOLIDAYS
from ..labels import LabelConfig
from .context import CONTEXT_FEATURES, DEVICE_FEATURE, context_features
from .history import History, search_vocabulary, seconds_since
from .ragged import Ragged, ragged_ranges
from .spec import Feature, FeatureSet

__all__ = ["FeatureBuilder", "FeatureTable", "NotFittedError"]

DAY_SECONDS = 86_400


class NotFittedError(_SklearnNotFittedError):
    """Any recsys model, generator or builder used before `fit` (or `load`); also sklearn's NotFittedError,
    so one `except` catches it wherever the pipeline raises it."""


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_")


@dataclass
class FeatureTable:
    """Feature rows: `frame` holds dense and categorical columns, `sparse` the ragged id lists."""

    rows: pd.DataFrame  # user_id, item_id, timestamp (+ device)
    frame: pd.DataFrame
    sparse: dict[str, Ragged]
    feature_set: FeatureSet

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, index) -> "FeatureTable":
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return FeatureTable(
            rows=self.rows.iloc[index].reset_index(drop=True),
            frame=self.frame.iloc[index].reset_index(drop=True),
            sparse={k: v.take(index) for k, v in self.sparse.items()},
            feature_set=self.feature_set,
        )


class FeatureBuilder:
    """Builds the feature table for any rows of a dataset, point in time.

    history_length: the most recent plays per row that user x media features look at.
    sparse_history_length / search_history_length: list lengths for the deep ranker.
    popularity_days: windows of the "plays in the last n days" media features.
    genre_window_days: the "user-genre interactions over the last n days" window.
    embedding_dim: synopsis embeddings are reduced to this many PCA dimensions.
    use_embeddings: compute synopsis embeddings (sentence-transformers) when synopses exist.
    chunk_rows: rows computed at once (bounds memory on large tables).
    """

    def __init__(
        self,
        history_length: int = 100,
        sparse_history_length: int = 50,
        search_history_length: int = 20,
        popularity_days: tuple[int, ...] = (1, 7, 30),
        genre_window_days: int = 90,
        embedding_dim: int = 32,
        use_embeddings: bool = True,
        labels: LabelConfig | None = None,
        chunk_rows: int = 200_000,
        seed: int = 0,
    ) -> None:
        self.history_length = history_length
        self.sparse_history_length = sparse_history_length
        self.search_history_length = search_history_length
        self.popularity_days = popularity_days
        self.genre_window_days = genre_window_days
        self.embedding_dim = embedding_dim
        self.use_embeddings = use_embeddings
        self.labels = labels
        self.chunk_rows = chunk_rows
        self.seed = seed

    # ------------------------------------------------------------------- fit
    def fit(self, dataset: Dataset, item_embeddings: np.ndarray | None = None) -> "FeatureBuilder":
        """Learn the static facts of `dataset` (no event is read except to know what columns exist).

        `item_embeddings` (one row per title, in `dataset.items` order) overrides the synopsis
        encoder, e.g. for tests or precomputed vectors.
        """
        if not isinstance(dataset, Dataset):
            raise TypeError(f"fit needs a recsys Dataset, got {type(dataset).__name__}")
        items, users = dataset.items, dataset.users
        self.item_ids_ = pd.Index(items["item_id"])
        self.feedback_ = dataset.feedback
        self.origin_ = np.datetime64("1970-01-01T00:00:00", "ns")
        n = len(items)
        feats: list[Feature] = []

        # ---- user static
        self.user_static_ = users.set_index("user_id")
        user_cols = []
        if dataset.has("users", "age"):
            feats.append(Feature("age", "user", "dense", "Member's age in years."))
            user_cols.append("age")
        for col, desc in (("gender", "Member's gender."), ("language", "Member's main language."),
                          ("country", "Member's country."), ("occupation", "Member's occupation.")):
            if dataset.has("users", col):
                feats.append(Feature(col, "user", "categorical", desc))
                user_cols.append(col)
        self.user_columns_ = user_cols
        self.has_signup_ = dataset.has("users", "signup_time")
        if self.has_signup_:
            feats.append(Feature("days_since_signup", "user", "dense", "Days since the member joined."))
        feats += [
            Feature("user_plays", "user", "dense", "Titles the member played before now."),
            Feature("user_positive_share", "user", "dense", "Share of those plays that were positives."),
            Feature("days_since_last_play", "user", "dense", "Days since the member's last play (NaN if none)."),
        ]
        has_minutes = dataset.has("events", "minutes_watched") and dataset.has("events", "session_id")
        self.has_sessions_ = has_minutes
        if has_minutes:
            feats.append(Feature("avg_session_minutes", "user", "dense",
                                 "Average minutes watched per past session with a play."))

        # ---- title attributes (row n is padding for unknown titles)
        genres = items["genres"] if dataset.has("items", "genres") else pd.Series([[]] * n)
        counts = genres.explode().dropna().value_counts()
        self.genres_ = list(counts.index[:64])
        g_index = {g: k for k, g in enumerate(self.genres_)}
        gmat = np.zeros((n + 1, len(self.genres_)), dtype=np.float32)
        primary = np.full(n + 1, -1)
        for r, gs in enumerate(genres):
            ks = [g_index[g] for g in gs if g in g_index]
            if ks:
                gmat[r, ks] = 1.0
                primary[r] = ks[0]
        self.genre_matrix_ = gmat
        self.genre_mask_ = (gmat.astype(np.uint64) * (np.uint64(1) << np.arange(len(self.genres_), dtype=np.uint64))
                            ).sum(axis=1).astype(np.uint64) if len(self.genres_) else np.zeros(n + 1, dtype=np.uint64)
        self.primary_genre_ = primary
        if self.genres_:
            feats.append(Feature("last_genre", "user", "categorical", "Main genre of the member's last play."))
            for g in self.genres_:
                feats.append(Feature(f"user_genre_share_{_slug(g)}", "user", "dense",
                                     f"Share of the member's past plays that are {g}."))

        self.item_lang_ = _codes(items, "original_language", n)
        self.languages_ = list(pd.unique(items["original_language"].dropna())) if dataset.has(
            "items", "original_language") else []
        if 1 < len(self.languages_) <= 12:
            for lang in self.languages_:
                feats.append(Feature(f"user_language_share_{_slug(lang)}", "user", "dense",
                                     f"Share of the member's past plays in {lang}."))

        feats += list(CONTEXT_FEATURES)
        self.has_device_ = dataset.has("events", "device")
        if self.has_device_:
            feats.append(DEVICE_FEATURE)

        media = self._media_static(dataset)
        self.item_static_ = media
        for name, kind, desc in self._media_static_specs:
            feats.append(Feature(name, "media", kind, desc))
        self.release_ = _release_dates(items)
        if self.release_ is not None:
            feats.append(Feature("days_since_release", "media", "dense", "Days since the title's first release."))
        self.added_ = items["added_at"].to_numpy(dtype="datetime64[ns]") if dataset.has("items", "added_at") else None
        if self.added_ is not None:
            feats.append(Feature("days_on_platform", "media", "dense", "Days since the title arrived on the platform."))
        for d in self.popularity_days:
            feats.append(Feature(f"item_plays_{d}d", "media", "dense", f"Plays of the title in the last {d} day(s)."))
        feats.append(Feature("item_positive_rate_30d", "media", "dense",
                             "Share of the title's plays in the last 30 days that were positives."))

        # ---- cross attributes
        self.director_ = _codes(items, "director", n)
        self.show_ = _codes(items, "show_id", n)
        self.cast_ = _list_codes(items, "actors", n)
        self.min_age_ = np.array([MATURITY_MIN_AGE.get(str(m), np.nan) if isinstance(m, str) else np.nan
                                  for m in (items["maturity_rating"] if dataset.has("items", "maturity_rating")
                                            else [None] * n)] + [np.nan])
        cross = [("user_genre_match", "Share of the member's recent plays sharing a genre with the title.", True),
                 (f"user_genre_plays_{self.genre_window_days}d",
                  f"Member's plays sharing a genre with the title in the last {self.genre_window_days} days.", True)]
        cross = [c for c in cross if self.genres_]
        if self.cast_ is not None:
            cross.append(("user_actor_match", "Share of the member's recent plays sharing an actor with the title.", True))
        if dataset.has("items", "director"):
            cross.append(("user_director_match", "Share of the member's recent plays by the title's director.", True))
        if dataset.has("items", "original_language"):
            cross.append(("user_language_match", "Share of the member's recent plays in the title's language.", True))
        if dataset.has("items", "show_id"):
            cross.append(("user_show_plays", "Member's plays of other episodes of this show.", True))
        for name, desc, _ in cross:
            feats.append(Feature(name, "user_x_media", "dense", desc))
        if dataset.has("users", "language") and dataset.has("items", "original_language"):
            feats.append(Feature("language_match", "user_x_media", "dense",
                                 "1 when the title's language is the member's language."))
        if dataset.has("users", "age") and dataset.has("items", "maturity_rating"):
            feats.append(Feature("age_allowed", "user_x_media", "dense",
                                 "1 when the member is old enough for the title's maturity rating."))
        feats += [
            Feature("times_shown_before", "user_x_media", "dense",
                    "Times this title was shown to the member and not played."),
            Feature("played_before", "user_x_media", "dense", "1 when the member played this title before."),
        ]
        self.embeddings_ = None
        if item_embeddings is not None or (self.use_embeddings and dataset.has("items", "synopsis")):
            self.embeddings_ = self._reduce(item_embeddings if item_embeddings is not None
                                            else _synopsis_embeddings(items["synopsis"]), n)
            feats += [
                Feature("user_embedding_similarity", "user_x_media", "dense",
                        "Mean synopsis-embedding similarity of the title to the member's recent plays."),
                Feature("user_embedding_max_similarity", "user_x_media", "dense",
                        "Highest synopsis-embedding similarity of the title to one recent play."),
            ]

        # ---- sparse lists (deep ranker)
        feats += [
            Feature("user_id", "sparse", "categorical", "Member id (sparse id feature)."),
            Feature("item_id", "sparse", "categorical", "Title id (sparse id feature)."),
            Feature("history_items", "sparse", "sparse_list",
                    f"The member's last {self.sparse_history_length} played titles, most recent last."),
        ]
        self.has_searches_ = len(dataset.searches) > 0
        self.search_vocab_ = search_vocabulary(dataset.searches["query"]) if self.has_searches_ else ("<pad>",
                                                                                                      "<unknown>")
        if self.has_searches_:
            feats.append(Feature("search_terms", "sparse", "sparse_list",
                                 f"Words of the member's last {self.search_history_length} searches."))
        self.item_lists_: dict[str, Ragged] = {}
        for col, desc in (("actors", "The title's cast."), ("tags", "The title's tags.")):
            if dataset.has("items", col) and items[col].map(len).sum() > 0:
                self.item_lists_[f"item_{col}"] = _ragged_column(items[col])
                feats.append(Feature(f"item_{col}", "sparse", "sparse_list", desc))
        self.feature_set_ = FeatureSet(tuple(feats))
        return self

    _media_static_specs: list[tuple[str, str, str]]

    def _media_static(self, dataset: Dataset) -> pd.DataFrame:
        """Static title columns (one row per title plus a padding row), and their specs."""
        items = dataset.items
        n = len(items)
        out: dict[str, np.ndarray] = {}
        specs: list[tuple[str, str, str]] = []

        def add(name, values, kind, desc):
            out[name] = np.concatenate([np.asarray(values, dtype=object if kind == "categorical" else float),
                                        [None if kind == "categorical" else np.nan]])
            specs.append((name, kind, desc))

        if dataset.has("items", "kind"):
            add("kind", items["kind"], "categorical", "Movie or episode.")
        for g in self.genres_:
            add(f"item_genre_{_slug(g)}", self.genre_matrix_[:n, self.genres_.index(g)], "dense", f"1 when the title is {g}.")
        for col, kind, desc in (
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
        ):
            if dataset.has("items", col):
                values = items[col].astype(float) if kind == "dense" else items[col]
                add(col if col not in ("country",) else "item_country", values, kind, desc)
        if dataset.has("items", "revenue"):
            add("log_revenue", np.log1p(items["revenue"].astype(float)), "dense",
                "log(1 + box-office revenue); missing for titles without one.")
        if dataset.has("items", "distributor"):
            top = items["distributor"].value_counts().index[:10]
            add("distributor_top10", items["distributor"].isin(top).astype(float), "dense",
                "1 when the distributor is among the ten with most titles (dense form of a sparse feature).")
        if dataset.has("items", "tags"):
            holidays = {name for name, _, _ in HOLIDAYS} | {"christmas", "halloween"}
            add("is_holiday_title", items["tags"].map(lambda t: any(x in holidays for x in t)).astype(float), "dense",
                "1 when the title is tagged with a holiday (dense form of the tags).")
        self._media_static_specs = specs
        return pd.DataFrame(out)

    def _reduce(self, emb: np.ndarray, n: int) -> np.ndarray:
        """PCA-reduce and L2-normalise title embeddings; a zero padding row is appended."""
        emb = np.asarray(emb, dtype=np.float64)
        if emb.shape[0] != n:
            raise ValueError(f"item_embeddings has {emb.shape[0]} rows for {n} titles")
        k = min(self.embedding_dim, emb.shape[1], max(1, n - 1))
        centred = emb - emb.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        reduced = centred @ vt[:k].T
        reduced /= np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-9)
        return np.vstack([reduced, np.zeros((1, k))]).astype(np.float32)

    def _check(self) -> None:
        if not hasattr(self, "feature_set_"):
            raise NotFittedError("this FeatureBuilder is not fitted yet: call fit(dataset) first")

    @property
    def feature_set(self) -> FeatureSet:
        self._check()
        return self.feature_set_

    # -------------------------------------------------------------- transform
    def transform(self, rows: pd.DataFrame, history: Dataset) -> FeatureTable:
        """Features for each row (user_id, item_id, timestamp[, device]) from `history` events before it."""
        self._check()
        missing = [c for c in ("user_id", "item_id", "timestamp") if c not in rows.columns]
        if missing:
            raise DataError(f"rows need columns {missing}", column=missing[0])
        rows = rows.reset_index(drop=True)
        users = pd.Index(history.users["user_id"])  # members unknown to the history get -1: no past
        hist = self._history(history, users)
        if len(rows) <= self.chunk_rows:
            return self._transform(rows, hist, users)
        # bounded memory: the user x media pairs of a chunk, not of the whole table, live at once
        parts = [self._transform(rows.iloc[lo:lo + self.chunk_rows].reset_index(drop=True), hist, users)
                 for lo in range(0, len(rows), self.chunk_rows)]
        return FeatureTable(
            rows=pd.concat([p.rows for p in parts], ignore_index=True),
            frame=pd.concat([p.frame for p in parts], ignore_index=True),
            sparse={k: Ragged.concat([p.sparse[k] for p in parts]) for k in parts[0].sparse},
            feature_set=parts[0].feature_set,
        )

    def _history(self, history: Dataset, users: pd.Index) -> History:
        """The indexed history, rebuilt only when a different dataset is passed (serving reuses it)."""
        cached = getattr(self, "_history_cache", None)
        if cached is not None and cached[0] is history:
            return cached[1]
        hist = History.build(history, self.item_ids_, users, self.origin_, self.labels, self.search_vocab_)
        self._history_cache = (history, hist)
        return hist

    def _transform(self, rows: pd.DataFrame, hist: History, users: pd.Index) -> FeatureTable:
        n = len(rows)
        u = users.get_indexer(pd.Index(rows["user_id"].astype(str)))
        i = self.item_ids_.get_indexer(pd.Index(rows["item_id"].astype(str)))
        i = np.where(i < 0, len(self.item_ids_), i)
        times = rows["timestamp"].to_numpy(dtype="datetime64[ns]")
        sec = seconds_since(times, self.origin_)
        cols: dict[str, np.ndarray] = {}

        # ---- user
        static = self.user_static_.reindex(rows["user_id"].astype(str))
        for col in self.user_columns_:
            cols[col] = static[col].to_numpy(dtype=float if col == "age" else object)
        if self.has_signup_:
            cols["days_since_signup"] = (times - static["signup_time"].to_numpy(dtype="datetime64[ns]")) / np.timedelta64(1, "D")
        start, stop = hist.play_range(u, sec)
        n_hist = (stop - start).astype(float)
        cols["user_plays"] = n_hist
        pos_cum = hist.memo("positive", lambda: np.concatenate([[0], np.cumsum(hist.positive)]))
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["user_positive_share"] = np.where(n_hist > 0, (pos_cum[stop] - pos_cum[start]) / n_hist, 0.0)
        last = np.where(stop > start, stop - 1, 0)
        has_last = stop > start
        cols["days_since_last_play"] = np.where(has_last, (sec - (hist.sec[last] if len(hist.sec) else 0)) / DAY_SECONDS,
                                                np.nan)
        if self.has_sessions_ and hist.minutes is not None and hist.new_session is not None:
            m_cum = hist.memo("minutes", lambda: np.concatenate([[0.0], np.cumsum(hist.minutes)]))
            s_cum = hist.memo("sessions", lambda: np.concatenate([[0], np.cumsum(hist.new_session)]))
            sessions = s_cum[stop] - s_cum[start]
            with np.errstate(invalid="ignore", divide="ignore"):
                cols["avg_session_minutes"] = np.where(sessions > 0, (m_cum[stop] - m_cum[start]) / np.maximum(sessions, 1), 0.0)
        elif self.has_sessions_:
            cols["avg_session_minutes"] = np.zeros(n)
        if self.genres_:
            prim = self.primary_genre_[hist.item[last]] if len(hist.item) else np.full(n, -1)
            names = np.asarray(self.genres_ + [None], dtype=object)
            cols["last_genre"] = np.where(has_last & (prim >= 0), names[prim], None)
            g_cum = hist.memo("genres", lambda: np.vstack([np.zeros((1, len(self.genres_))),
                                                          np.cumsum(self.genre_matrix_[hist.item], axis=0)]))
            share = (g_cum[stop] - g_cum[start]) / np.maximum(n_hist, 1)[:, None]
            for k, g in enumerate(self.genres_):
                cols[f"user_genre_share_{_slug(g)}"] = share[:, k]
        if 1 < len(self.languages_) <= 12:
            lang_onehot = np.zeros((len(self.item_lang_), len(self.languages_)))
            known = self.item_lang_ >= 0
            lang_onehot[np.flatnonzero(known), self.item_lang_[known]] = 1.0
            l_cum = hist.memo("languages", lambda: np.vstack([np.zeros((1, len(self.languages_))),
                                                             np.cumsum(lang_onehot[hist.item], axis=0)]))
            share = (l_cum[stop] - l_cum[start]) / np.maximum(n_hist, 1)[:, None]
            for k, lang in enumerate(self.languages_):
                cols[f"user_language_share_{_slug(lang)}"] = share[:, k]

        # ---- context
        ctx = context_features(times, rows["device"] if self.has_device_ and "device" in rows.columns else None)
        for c in ctx.columns:
            cols[c] = ctx[c].to_numpy()
        if self.has_device_ and "device" not in cols:
            cols["device"] = np.full(n, None, dtype=object)

        # ---- media
        static_items = getattr(self, "_item_static_arrays", None)
        if static_items is None:
            static_items = self._item_static_arrays = {c: self.item_static_[c].to_numpy() for c in self.item_static_}
        for c, values in static_items.items():
            cols[c] = values[i]
        if self.release_ is not None:
            rel = np.concatenate([self.release_, [np.datetime64("NaT")]])
            cols["days_since_release"] = (times - rel[i]) / np.timedelta64(1, "D")
        if self.added_ is not None:
            add = np.concatenate([self.added_, [np.datetime64("NaT")]])
            cols["days_on_platform"] = (times - add[i]) / np.timedelta64(1, "D")
        for d in self.popularity_days:
            lo, hi = hist.item_window(i, sec, d * DAY_SECONDS)
            cols[f"item_plays_{d}d"] = (hi - lo).astype(float)
        lo, hi = hist.item_window(i, sec, 30 * DAY_SECONDS)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["item_positive_rate_30d"] = np.where(
                hi > lo, (hist.item_positive_cum[hi] - hist.item_positive_cum[lo]) / np.maximum(hi - lo, 1), np.nan)

        # ---- user x media over the last `history_length` plays
        h_start = np.maximum(start, stop - self.history_length)
        pos, row = ragged_ranges(h_start, stop)
        a, b = i[row], hist.item[pos] if len(pos) else np.zeros(0, dtype=np.int64)
        count = np.maximum(stop - h_start, 1).astype(float)
        fs = self.feature_set_

        def mean_of(flags: np.ndarray) -> np.ndarray:
            return np.bincount(row, weights=flags.astype(float), minlength=n) / count

        if "user_genre_match" in fs:
            overlap = (self.genre_mask_[a] & self.genre_mask_[b]) != 0
            cols["user_genre_match"] = mean_of(overlap)
            recent = (sec[row] - hist.sec[pos]) <= self.genre_window_days * DAY_SECONDS if len(pos) else overlap
            cols[f"user_genre_plays_{self.genre_window_days}d"] = np.bincount(
                row, weights=(overlap & recent).astype(float), minlength=n)
        if "user_actor_match" in fs:
            ca, cb = self.cast_[a], self.cast_[b]
            shared = ((ca[:, :, None] == cb[:, None, :]) & (ca[:, :, None] >= 0)).any(axis=(1, 2))
            cols["user_actor_match"] = mean_of(shared)
        if "user_director_match" in fs:
            cols["user_director_match"] = mean_of((self.director_[a] == self.director_[b]) & (self.director_[a] >= 0))
        if "user_language_match" in fs:
            cols["user_language_match"] = mean_of((self.item_lang_[a] == self.item_lang_[b]) & (self.item_lang_[a] >= 0))
        if "user_show_plays" in fs:
            cols["user_show_plays"] = np.bincount(
                row, weights=((self.show_[a] == self.show_[b]) & (self.show_[a] >= 0)).astype(float), minlength=n)
        if "language_match" in fs:
            user_lang = static["language"].to_numpy(dtype=object)
            item_lang = self.item_static_["original_language"].to_numpy()[i]
            cols["language_match"] = (user_lang == item_lang).astype(float)
        if "age_allowed" in fs:
            age = static["age"].to_numpy(dtype=float)
            need = self.min_age_[i]
            cols["age_allowed"] = np.where(np.isnan(age) | np.isnan(need), np.nan, (age >= need).astype(float))
        cols["times_shown_before"] = hist.pair_count("shown", u, i, sec).astype(float)
        cols["played_before"] = (hist.pair_count("played", u, i, sec) > 0).astype(float)
        if self.embeddings_ is not None:
            sims = np.zeros(len(pos), dtype=np.float32)
            for lo_, hi_ in _chunks(len(pos), 200_000):
                sims[lo_:hi_] = np.einsum("ij,ij->i", self.embeddings_[a[lo_:hi_]], self.embeddings_[b[lo_:hi_]])
            w = hist.weight[pos] if len(pos) else sims
            wsum = np.bincount(row, weights=w, minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                cols["user_embedding_similarity"] = np.where(
                    wsum > 0, np.bincount(row, weights=sims * w, minlength=n) / np.maximum(wsum, 1e-12), 0.0)
            best = np.full(n, -1.0)
            np.maximum.at(best, row, sims)
            cols["user_embedding_max_similarity"] = np.where(stop > h_start, best, 0.0)

        # ---- sparse
        cols["user_id"] = rows["user_id"].astype(str).to_numpy(dtype=object)
        cols["item_id"] = rows["item_id"].astype(str).to_numpy(dtype=object)
        sparse: dict[str, Ragged] = {}
        item_vocab = ("<pad>",) + tuple(self.item_ids_) + ("<unknown>",)
        s_start = np.maximum(start, stop - self.sparse_history_length)
        spos, srow = ragged_ranges(s_start, stop)
        sparse["history_items"] = Ragged.from_rows(hist.item[spos] + 1 if len(spos) else spos, srow, n, item_vocab)
        if "search_terms" in fs:
            values, srow = hist.search_terms(u, sec, self.search_history_length)
            sparse["search_terms"] = Ragged.from_rows(values, srow, n, hist.token_vocab)
        for name, lists in self.item_lists_.items():
            padded = Ragged(lists.values, np.concatenate([lists.offsets, [lists.offsets[-1]]]), lists.vocab)
            sparse[name] = padded.take(i)

        dense = set(fs.dense)
        frame = pd.DataFrame({name: np.asarray(cols[name], dtype=float) if name in dense else cols[name]
                              for name in fs.names(kind=("dense", "categorical"))})
        keep = ["user_id", "item_id", "timestamp"] + (["device"] if "device" in rows.columns else [])
        return FeatureTable(rows=rows[keep].copy(), frame=frame, sparse=sparse, feature_set=fs)


def _chunks(total: int, size: int):
    for lo in range(0, total, size):
        yield lo, min(lo + size, total)


def _codes(items: pd.DataFrame, column: str, n: int) -> np.ndarray:
    """Integer codes of a text column (-1 missing), with a -1 padding row."""
    if column not in items.columns:
        return np.full(n + 1, -1)
    codes, _ = pd.factorize(items[column])
    return np.concatenate([codes, [-1]])


def _list_codes(items: pd.DataFrame, column: str, n: int) -> np.ndarray | None:
    """A padded (titles + 1) x max_len matrix of codes of a list column (-1 pads), or None if empty."""
    if column not in items.columns or items[column].map(len).sum() == 0:
        return None
    flat = items[column].explode()
    codes, _ = pd.factorize(flat)
    width = max(1, int(items[column].map(len).max()))
    out = np.full((n + 1, width), -1, dtype=np.int64)
    lengths = items[column].map(len).to_numpy()
    row = np.repeat(np.arange(n), lengths)
    within = np.arange(len(row)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    valid = codes[flat.notna().to_numpy()] if len(codes) else codes
    out[row, within] = valid[: len(row)]
    return out


def _ragged_column(values: pd.Series) -> Ragged:
    """A list column as a Ragged with its own vocabulary (id 0 reserved for padding)."""
    flat = values.explode().dropna()
    vocab = ("<pad>",) + tuple(sorted(set(flat.astype(str))))
    lookup = {v: k for k, v in enumerate(vocab)}
    lengths = values.map(len).to_numpy()
    ids = np.array([lookup[str(v)] for v in flat], dtype=np.int64)
    return Ragged(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), vocab)


def _release_dates(items: pd.DataFrame) -> np.ndarray | None:
    if "release_date" in items.columns and items["release_date"].notna().any():
        return items["release_date"].to_numpy(dtype="datetime64[ns]")
    if "release_year" in items.columns and items["release_year"].notna().any():
        years = pd.to_numeric(items["release_year"], errors="coerce")
        return pd.to_datetime(years.astype("Int64").astype(str) + "-07-01", errors="coerce").to_numpy(
            dtype="datetime64[ns]")
    return None


def _synopsis_embeddings(synopses: pd.Series) -> np.ndarray:
    """Sentence embeddings of the synopses (cached on disk by the embeddings module)."""
    from ..embeddings import encode_texts

    return encode_texts(synopses.fillna("").astype(str).tolist())
