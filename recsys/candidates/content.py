"""Content-based candidates: title profiles from metadata and synopsis embeddings, user profiles from history.

A title's profile concatenates blocks, each L2-normalised and weighted: genres, tags, cast
and director, original language (one-hot) and the synopsis embedding (MiniLM, centred).
A member's profile is the weighted mean of the profiles of titles they watched (finished
titles by minutes watched, half-watched ones a little), shrunk towards a demographic prior
(the mean profile of members of the same age band and of the same language), so members
with little or no history still get a sensible profile. `recommend_for_profile` serves a
brand-new visitor from the genres, languages, titles or free text they pick, with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.dataset import Dataset
from .base import (
    SOURCES, CandidateGenerator, InteractionConfig, Interactions, UserBatch, blocked_matmul, list_cells, top_n,
)
from .popularity import decayed_popularity

__all__ = ["ContentGenerator", "AGE_BANDS", "age_band"]

AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("child", 0, 13), ("teen", 13, 18), ("adult", 18, 50), ("senior", 50, 200),
)
_BLOCKS = ("genre", "tag", "cast", "language", "text")


def age_band(ages: np.ndarray) -> np.ndarray:
    """Band index per age (see AGE_BANDS); -1 where unknown."""
    ages = np.asarray(ages, dtype=float)
    out = np.full(len(ages), -1)
    for k, (_, lo, hi) in enumerate(AGE_BANDS):
        out[(ages >= lo) & (ages < hi)] = k
    return out


def _normalise_rows(mat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms > 0, norms, 1.0)


def _multi_hot(cells: list[list[str]], vocab: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Rows x vocabulary 0/1 matrix, idf-weighted (rare values say more about a title)."""
    if vocab is None:
        vocab = sorted({v for row in cells for v in row})
    pos = {v: k for k, v in enumerate(vocab)}
    rows = [r for r, row in enumerate(cells) for v in row if v in pos]
    cols = [pos[v] for row in cells for v in row if v in pos]
    mat = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(cells), len(vocab))).toarray()
    mat = np.minimum(mat, 1.0)
    df = mat.sum(axis=0)
    idf = np.log((1 + len(cells)) / (1 + df)) + 1.0
    return mat * idf[None, :], vocab


@SOURCES.register
@dataclass(eq=False)
class ContentGenerator(CandidateGenerator):
    """Cosine match between member and title profiles (+ a small public-rating prior).

    Block weights (`genre_weight` ... `text_weight`) scale each block of the profile; a block
    whose columns the data lacks (MovieLens has no synopses or cast) is left out. `use_text`
    encodes synopses with all-MiniLM-L6-v2 (cached on disk under `cache_dir`). `prior_strength`
    is how many finished titles the demographic prior counts as. `rating_weight` adds
    rating_weight x the title's standardised public rating, and `popularity_weight` adds that
    many standard deviations of log recent popularity (time-decayed like PopularityGenerator):
    a member's next plays come from what is on the rows now, so a match is worth more when it
    is also in demand. `popularity_weight=0` gives pure content scores. Members unknown at fit time are
    scored from their attributes when `recommend(..., users=...)` supplies them, else from
    the overall prior.
    """

    genre_weight: float = 1.0
    tag_weight: float = 0.5
    cast_weight: float = 0.5
    language_weight: float = 1.0
    text_weight: float = 1.0
    use_text: bool = True
    prior_strength: float = 3.0
    rating_weight: float = 0.05
    popularity_weight: float = 1.0
    popularity_half_life_days: float = 7.0
    popularity_window_days: float = 28.0
    cache_dir: str | None = None
    interactions: InteractionConfig = InteractionConfig()

    source = "content"
    cold_start = "profile"

    def _validate(self) -> None:
        for name in ("genre_weight", "tag_weight", "cast_weight", "language_weight", "text_weight",
                     "prior_strength", "rating_weight", "popularity_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"ContentGenerator.{name} must be a finite number >= 0, got {value!r}")

    # --------------------------------------------------------- item profiles
    def _item_profiles(self, items: pd.DataFrame) -> tuple[np.ndarray, dict[str, slice], dict[str, list[str]]]:
        blocks, slices, vocabs, start = [], {}, {}, 0

        def add(name: str, mat: np.ndarray, weight: float, vocab: list[str] | None = None) -> None:
            nonlocal start
            if weight <= 0 or mat.shape[1] == 0 or not mat.any():
                return
            blocks.append(_normalise_rows(mat) * weight)
            slices[name] = slice(start, start + mat.shape[1])
            vocabs[name] = list(vocab or [])
            start += mat.shape[1]

        if "genres" in items.columns:
            mat, vocab = _multi_hot(list_cells(items["genres"]))
            add("genre", mat, self.genre_weight, vocab)
        if "tags" in items.columns:
            mat, vocab = _multi_hot(list_cells(items["tags"]))
            add("tag", mat, self.tag_weight, vocab)
        people = [[] for _ in range(len(items))]
        for col, prefix in (("actors", "actor:"), ("director", "director:")):
            if col in items.columns:
                cells = list_cells(items[col])
                people = [p + [prefix + v for v in c] for p, c in zip(people, cells)]
        mat, vocab = _multi_hot(people)
        add("cast", mat, self.cast_weight, vocab)
        if "original_language" in items.columns:
            mat, vocab = _multi_hot(list_cells(items["original_language"]))
            add("language", (mat > 0).astype(float), self.language_weight, vocab)
        if self.use_text and "synopsis" in items.columns and items["synopsis"].notna().any():
            from ..embeddings import get_encoder

            text = items["synopsis"].fillna("").astype(str).tolist()
            emb = get_encoder(self.cache_dir).encode(text).astype(np.float64)
            has = np.abs(emb).sum(axis=1) > 0
            self.text_mean_ = emb[has].mean(axis=0) if has.any() else np.zeros(emb.shape[1])
            emb = np.where(has[:, None], emb - self.text_mean_, 0.0)
            add("text", emb, self.text_weight)
        if not blocks:
            return np.zeros((len(items), 1)), {}, {}
        return np.hstack(blocks), slices, vocabs

    # ------------------------------------------------------------------- fit
    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        items = dataset.items
        self.text_mean_ = np.zeros(0)
        profiles, slices, vocabs = self._item_profiles(items)
        self.item_profiles_ = profiles
        self.block_slices_ = {k: (s.start, s.stop) for k, s in slices.items()}
        self.vocabularies_ = vocabs
        self.item_genres_ = list_cells(items["genres"]) if "genres" in items.columns else [[] for _ in range(len(items))]
        self.item_languages_ = (items["original_language"].astype(object).where(items["original_language"].notna(), "")
                                .astype(str).to_numpy() if "original_language" in items.columns
                                else np.full(len(items), "", dtype=object))
        if "public_rating" in items.columns:
            rating = pd.to_numeric(items["public_rating"], errors="coerce").to_numpy(dtype=float)
            known = np.isfinite(rating)
            mu = rating[known].mean() if known.any() else 0.0
            sd = rating[known].std() if known.any() else 1.0
            self.item_prior_ = np.where(known, (rating - mu) / (sd if sd > 0 else 1.0), 0.0) * self.rating_weight
        else:
            self.item_prior_ = np.zeros(len(items))
        if self.popularity_weight > 0:
            counts = decayed_popularity(interactions, self.reference_time_, self.popularity_window_days,
                                        self.popularity_half_life_days)
            logpop = np.log1p(counts)
            sd = logpop.std()
            if sd > 0:
                self.item_prior_ = self.item_prior_ + self.popularity_weight * (logpop - logpop.mean()) / sd
        # member profiles: weighted sums (not yet shrunk), and the demographic priors
        X = self.user_items_
        self.user_sums_ = np.asarray(X @ profiles)
        self.user_mass_ = np.asarray(X.sum(axis=1)).ravel()
        means = _normalise_rows(self.user_sums_ / np.maximum(self.user_mass_, 1e-12)[:, None])
        active = self.user_mass_ > 0
        self.global_prior_ = _normalise_rows(means[active].mean(axis=0, keepdims=True))[0] if active.any() \
            else np.zeros(profiles.shape[1])
        bands = age_band(pd.to_numeric(self.users_.get("age", pd.Series(np.nan, index=self.users_.index)),
                                       errors="coerce").to_numpy(dtype=float))
        self.band_priors_ = np.vstack([self._segment_mean(means, active & (bands == k)) for k in range(len(AGE_BANDS))])
        langs = (self.users_["language"].astype(object).where(self.users_["language"].notna(), "").astype(str).to_numpy()
                 if "language" in self.users_.columns else np.full(len(self.users_), "", dtype=object))
        self.languages_ = np.asarray(sorted({x for x in langs if x}), dtype=str)
        self.language_priors_ = np.vstack(
            [self._segment_mean(means, active & (langs == lang)) for lang in self.languages_]
        ) if len(self.languages_) else np.zeros((0, profiles.shape[1]))

    def _segment_mean(self, means: np.ndarray, mask: np.ndarray, min_users: int = 5) -> np.ndarray:
        if mask.sum() < min_users:
            return self.global_prior_.copy()
        return _normalise_rows(means[mask].mean(axis=0, keepdims=True))[0]

    # ----------------------------------------------------------------- score
    def _priors(self, batch: UserBatch) -> np.ndarray:
        """Demographic prior profile per member: mean of its age-band and language priors."""
        n = len(batch)
        band = age_band(batch.ages())
        band_part = np.where((band >= 0)[:, None], self.band_priors_[np.maximum(band, 0)], self.global_prior_[None, :])
        lookup = self.language_lookup_
        pos = np.array([lookup.get(v, -1) for v in batch.texts("language")], dtype=np.int64) if n else \
            np.zeros(0, dtype=np.int64)
        lang_part = np.where((pos >= 0)[:, None], self.language_priors_[np.maximum(pos, 0)] if len(self.languages_)
                             else 0.0, self.global_prior_[None, :])
        return _normalise_rows(band_part + lang_part)

    def user_profiles(self, batch: UserBatch) -> np.ndarray:
        """Shrunk profile per member: (sum of weighted history + k * prior) / (mass + k)."""
        prior = self._priors(batch)
        sums = np.zeros_like(prior)
        mass = np.zeros(len(batch))
        known = np.flatnonzero(batch.known)
        sums[known] = self.user_sums_[batch.index[known]]
        mass[known] = self.user_mass_[batch.index[known]]
        k = self.prior_strength
        return (sums + k * prior) / np.maximum(mass + k, 1e-12)[:, None]

    def _score(self, batch: UserBatch) -> np.ndarray:
        profiles = self.user_profiles(batch)
        scores = blocked_matmul(_normalise_rows(profiles), self.item_profiles_t_) + self.item_prior_[None, :]
        empty = ~np.any(profiles != 0, axis=1)
        scores[empty] = -np.inf
        return scores

    def _prepare(self) -> None:
        super()._prepare()
        self.item_profiles_t_ = np.ascontiguousarray(self.item_profiles_.T, dtype=np.float64)  # blocked_matmul's type
        self.language_lookup_ = {str(v): k for k, v in enumerate(self.languages_)}

    # ----------------------------------------------------------- onboarding
    def _find_titles(self, liked: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Indices of liked titles given by item id or (case-insensitive) title; and the ones not found."""
        idx, missing = [], []
        by_title = pd.Series(np.arange(len(self.item_titles_)), index=pd.Index([t.casefold() for t in self.item_titles_]))
        by_title = by_title[~by_title.index.duplicated()]
        for value in liked:
            key = str(value).strip()
            pos = self.item_ids_.get_indexer([key])[0]
            if pos < 0 and key.casefold() in by_title.index:
                pos = int(by_title[key.casefold()])
            if pos >= 0:
                idx.append(pos)
            else:
                missing.append(key)
        return np.asarray(idx, dtype=np.int64), missing

    def recommend_for_profile(self, genres: Sequence[str] = (), languages: Sequence[str] = (),
                              liked_titles: Sequence[str] = (), text: str | None = None, n: int = 10,
                              now=None, age: float | None = None, genre_boost: float = 10.0,
                              language_boost: float = 1.0, similarity_weight: float = 2.0) -> pd.DataFrame:
        """Recommendations for a brand-new visitor from what they pick at onboarding (no events needed).

        `genres` and `languages` are names as in the catalogue (case-insensitive); `liked_titles`
        are item ids or titles; `text` is free text matched against synopsis embeddings. Titles
        carrying a picked genre get `genre_boost` (large: picked genres come first while there
        are enough of them), titles in a picked language `language_boost`, on top of
        `similarity_weight` x cosine(profile, title) and the title prior (rating, popularity).
        Returns [item_id, title, score, rank, source, reason, genres].
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        dim = self.item_profiles_.shape[1]
        profile = np.zeros(dim)
        blocks = {k: slice(*v) for k, v in self.block_slices_.items()}
        genre_vocab = {g.casefold(): g for g in self.vocabularies_.get("genre", [])}
        picked = [genre_vocab[g.strip().casefold()] for g in genres if g and g.strip().casefold() in genre_vocab]
        unknown = [g for g in genres if g and g.strip().casefold() not in genre_vocab]
        if unknown:
            raise ValueError(f"unknown genre(s) {unknown}; the catalogue has {sorted(genre_vocab.values())}")
        lang_vocab = {v.casefold(): v for v in self.vocabularies_.get("language", [])}
        langs = [lang_vocab[v.strip().casefold()] for v in languages if v and v.strip().casefold() in lang_vocab]
        if picked and "genre" in blocks:
            vec = np.zeros(blocks["genre"].stop - blocks["genre"].start)
            vocab = self.vocabularies_["genre"]
            vec[[vocab.index(g) for g in picked]] = 1.0
            profile[blocks["genre"]] += vec / np.linalg.norm(vec) * self.genre_weight
        if langs and "language" in blocks:
            vec = np.zeros(blocks["language"].stop - blocks["language"].start)
            vocab = self.vocabularies_["language"]
            vec[[vocab.index(v) for v in langs]] = 1.0
            profile[blocks["language"]] += vec / np.linalg.norm(vec) * self.language_weight
        liked_idx, _ = self._find_titles(list(liked_titles))
        if len(liked_idx):
            profile += self.item_profiles_[liked_idx].mean(axis=0)
        query = None
        if text and text.strip() and "text" in blocks:
            from ..embeddings import get_encoder

            query = get_encoder(self.cache_dir).encode([text])[0].astype(np.float64)
            centred = query - (self.text_mean_ if len(self.text_mean_) else 0.0)
            profile[blocks["text"]] += _normalise_rows(centred[None, :])[0] * self.text_weight
        if not profile.any():
            profile = self.global_prior_.copy()
        scores = similarity_weight * (_normalise_rows(profile[None, :])[0] @ self.item_profiles_.T) + self.item_prior_
        picked_set = {g.casefold() for g in picked}
        has_genre = np.array([bool(picked_set & {g.casefold() for g in gs}) for gs in self.item_genres_], dtype=bool)
        scores = scores + genre_boost * has_genre + language_boost * np.isin(self.item_languages_, langs)
        scores = scores.astype(float)
        mask = self.available_items(now)
        if age is not None and not (isinstance(age, float) and math.isnan(age)):
            mask &= self.item_min_age_ <= float(age)
        if len(liked_idx):
            mask[liked_idx] = False
        scores[~mask] = -np.inf
        top, top_scores = top_n(scores[None, :], int(n))
        top, top_scores = top[0][np.isfinite(top_scores[0])], top_scores[0][np.isfinite(top_scores[0])]
        reasons = self._reasons(top, picked_set, langs, liked_idx, query)
        return pd.DataFrame({
            "item_id": self.item_ids_.to_numpy()[top],
            "title": self.item_titles_[top],
            "score": top_scores,
            "rank": np.arange(1, len(top) + 1, dtype=np.int64),
            "source": self.source_name,
            "reason": reasons,
            "genres": [list(self.item_genres_[i]) for i in top],
        })

    def _reasons(self, top: np.ndarray, picked: set[str], langs: list[str], liked_idx: np.ndarray,
                 query: np.ndarray | None) -> list[str]:
        """A plain-words reason per recommended title: which of the visitor's picks it matches."""
        liked_sim = text_sim = None
        if query is not None and "text" in self.block_slices_ and len(top):
            a, b = self.block_slices_["text"]
            text_sim = _normalise_rows(self.item_profiles_[top, a:b]) @ _normalise_rows(
                (query - (self.text_mean_ if len(self.text_mean_) else 0.0))[None, :]).T[:, 0]
        if len(liked_idx) and len(top):
            liked_sim = _normalise_rows(self.item_profiles_[top]) @ _normalise_rows(self.item_profiles_[liked_idx]).T
        out = []
        for row, i in enumerate(top):
            parts = []
            matched = [g for g in self.item_genres_[i] if g.casefold() in picked]
            if matched:
                parts.append("Matches your picked genres: " + ", ".join(matched))
            if langs and self.item_languages_[i] in langs:
                parts.append(f"in {self.item_languages_[i]}, a language you picked")
            if liked_sim is not None:
                j = int(np.argmax(liked_sim[row]))
                if liked_sim[row, j] > 0.3:
                    parts.append(f"similar to {self.item_titles_[liked_idx[j]]}, which you like")
            if text_sim is not None and text_sim[row] > 0.2:
                parts.append("close to what you described")
            if not parts:
                parts.append("Popular with members like you" if not picked else "Well rated and close to your picks")
            text = "; ".join(parts)
            out.append(text[0].upper() + text[1:])
        return out

    # ----------------------------------------------------------- persistence
    def _state(self) -> dict[str, np.ndarray]:
        genre_flat = np.asarray(["\x1f".join(g) for g in self.item_genres_], dtype=str)
        vocab_names = np.asarray(list(self.vocabularies_), dtype=str)
        state = {
            "item_profiles": self.item_profiles_, "item_prior": self.item_prior_, "text_mean": self.text_mean_,
            "user_sums": self.user_sums_, "user_mass": self.user_mass_, "global_prior": self.global_prior_,
            "band_priors": self.band_priors_, "languages": self.languages_, "language_priors": self.language_priors_,
            "item_genres": genre_flat, "item_languages": np.asarray(self.item_languages_, dtype=str),
            "block_names": np.asarray(list(self.block_slices_), dtype=str),
            "block_bounds": np.asarray(list(self.block_slices_.values()), dtype=np.int64).reshape(-1, 2),
            "vocab_names": vocab_names,
        }
        for name, vocab in self.vocabularies_.items():
            state[f"vocab_{name}"] = np.asarray(vocab, dtype=str)
        return state

    def _set_state(self, arrays, component) -> None:
        for key in ("item_profiles", "item_prior", "text_mean", "user_sums", "user_mass", "global_prior",
                    "band_priors", "language_priors"):
            setattr(self, f"{key}_", arrays[key])
        self.languages_ = arrays["languages"]
        self.item_genres_ = [g.split("\x1f") if g else [] for g in arrays["item_genres"].tolist()]
        self.item_languages_ = arrays["item_languages"].astype(str)
        self.block_slices_ = {str(k): (int(a), int(b)) for k, (a, b) in zip(arrays["block_names"], arrays["block_bounds"])}
        self.vocabularies_ = {str(k): arrays[f"vocab_{k}"].tolist() for k in arrays["vocab_names"]}
