"""User x media features: how a title relates to what the member played before the moment.

Most compare the title with the member's last `history_length` plays (shared genre, actor,
director, language, show; synopsis similarity); the rest count the member's past impressions
and plays of the title itself, and check language and age against the title.

Two exact ways to compute them, chosen by the shape of the batch (both give the same bits):
- per query: when many rows share a (member, moment), as a candidate list does, the member's
  recent plays are summarised once (counts per genre mask, director, language, show; per-title
  counts of impressions and plays) and every row reads its title's entry;
- per row: otherwise (logged impressions, one row per moment), each row's recent plays are
  paired with its title, as the definition reads.
Counts are integers, and the similarity sums run over the same plays in the same order in both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.dataset import Dataset
from ..ids import IdIndex
from .group import FeatureGroup
from .history import DAY_SECONDS, History
from .ragged import ragged_ranges
from .rows import Rows
from .spec import Feature
from .table import Block
from .titles import TitleTables

__all__ = ["UserMediaFeatures"]

ROWS_PER_QUERY = 16  # from this many rows per (member, moment) on, summarise each query once
SIMILARITY_MAX_TITLES = 20_000  # a title x title similarity table up to this size (1.6 GB of float32)
_CELLS = 4_000_000  # queries x titles cells summarised at once (bounds memory on large batches)


class UserMediaFeatures(FeatureGroup):
    """Share of recent plays sharing a genre / actor / director / language with the title, recent plays
    of the same genre, other episodes of the show played, language and age match, times shown
    and not played, played before, and the synopsis similarity to recent plays (mean and max)."""

    name = "user_x_media"

    def __init__(self, history_length: int = 100, genre_window_days: int = 90) -> None:
        self.history_length = history_length
        self.genre_window_days = genre_window_days

    def fit(self, dataset: Dataset, titles: TitleTables) -> "UserMediaFeatures":
        feats: list[Feature] = []
        w = self.genre_window_days
        self.has_genres_ = bool(titles.genres)
        if self.has_genres_:
            feats += [Feature("user_genre_match", "user_x_media", "dense",
                              "Share of the member's recent plays sharing a genre with the title."),
                      Feature(f"user_genre_plays_{w}d", "user_x_media", "dense",
                              f"Member's plays sharing a genre with the title in the last {w} days.")]
            self.masks_, self.mask_of_ = np.unique(titles.genre_mask, return_inverse=True)
            self.overlap_ = ((self.masks_[:, None] & self.masks_[None, :]) != 0).astype(np.float64)
        self.has_cast_ = titles.cast is not None
        if self.has_cast_:
            feats.append(Feature("user_actor_match", "user_x_media", "dense",
                                 "Share of the member's recent plays sharing an actor with the title."))
            shares = _shares_a_code(titles.cast)
            # a dense table while small (a BLAS product beats the sparse one), else sparse
            self.share_actor_ = shares.toarray().astype(np.float32) if shares.shape[0] <= 4096 else shares
        self.has_director_ = dataset.has("items", "director")
        if self.has_director_:
            feats.append(Feature("user_director_match", "user_x_media", "dense",
                                 "Share of the member's recent plays by the title's director."))
        self.has_language_ = dataset.has("items", "original_language")
        if self.has_language_:
            feats.append(Feature("user_language_match", "user_x_media", "dense",
                                 "Share of the member's recent plays in the title's language."))
        self.has_show_ = dataset.has("items", "show_id")
        if self.has_show_:
            feats.append(Feature("user_show_plays", "user_x_media", "dense",
                                 "Member's plays of other episodes of this show."))
        users = dataset.users
        self.user_ids_ = IdIndex(users["user_id"].astype(str))
        self.language_match_ = dataset.has("users", "language") and dataset.has("items", "original_language")
        if self.language_match_:
            feats.append(Feature("language_match", "user_x_media", "dense",
                                 "1 when the title's language is the member's language."))
            item_lang = np.append(dataset.items["original_language"].to_numpy(dtype=object), None)
            levels = pd.Index(pd.unique(item_lang[pd.notna(item_lang)]), dtype=object)
            self.item_language_ = np.append(levels.get_indexer(item_lang[:-1]), -1)
            self.item_language_none_ = np.array([v is None for v in item_lang])
            user_lang = np.append(users["language"].to_numpy(dtype=object), np.nan)  # unknown member: NaN
            self.user_language_ = levels.get_indexer(pd.Index(user_lang, dtype=object))
            self.user_language_none_ = np.array([v is None for v in user_lang])
        self.age_allowed_ = dataset.has("users", "age") and dataset.has("items", "maturity_rating")
        if self.age_allowed_:
            feats.append(Feature("age_allowed", "user_x_media", "dense",
                                 "1 when the member is old enough for the title's maturity rating."))
            self.user_age_ = np.append(users["age"].to_numpy(dtype=float), np.nan)
        feats += [Feature("times_shown_before", "user_x_media", "dense",
                          "Times this title was shown to the member and not played."),
                  Feature("played_before", "user_x_media", "dense", "1 when the member played this title before.")]
        self.has_embeddings_ = titles.embeddings is not None
        self.similarity_ = None
        if self.has_embeddings_:
            feats += [Feature("user_embedding_similarity", "user_x_media", "dense",
                              "Mean synopsis-embedding similarity of the title to the member's recent plays."),
                      Feature("user_embedding_max_similarity", "user_x_media", "dense",
                              "Highest synopsis-embedding similarity of the title to one recent play.")]
            if titles.n + 1 <= SIMILARITY_MAX_TITLES:
                self.similarity_ = titles.similarity()
        self.features_ = tuple(feats)
        return self

    # ------------------------------------------------------------- compute
    def compute(self, rows: Rows, history: History, titles: TitleTables) -> list[Block]:
        n = len(rows)
        start, stop = rows.play_range(history)
        h_start = np.maximum(start, stop - self.history_length)
        count = np.maximum(stop - h_start, 1).astype(float)  # per query
        cols: dict[str, np.ndarray] = {}
        q_static = self.user_ids_.positions(rows.q_user_ids)
        static = q_static[rows.query]
        item = rows.item
        if self.language_match_:
            u, i = self.user_language_[static], self.item_language_[item]
            cols["language_match"] = (((u >= 0) & (u == i))
                                      | (self.user_language_none_[static] & self.item_language_none_[item])
                                      ).astype(float)
        if self.age_allowed_:
            age, need = self.user_age_[static], titles.min_age[item]
            cols["age_allowed"] = np.where(np.isnan(age) | np.isnan(need), np.nan, (age >= need).astype(float))
        if n >= ROWS_PER_QUERY * max(rows.n_queries, 1):
            self._per_query(rows, history, titles, start, stop, h_start, count, cols)
        else:
            self._per_row(rows, history, titles, h_start, stop, count, cols)
        ordered = {name: np.asarray(cols[name], dtype=float) for name in self.names}
        return [Block("row", None, ordered, n)]

    def _per_row(self, rows: Rows, history: History, titles: TitleTables, h_start, stop, count, cols) -> None:
        n = len(rows)
        q = rows.query
        sec = rows.sec
        pos, row = ragged_ranges(h_start[q], stop[q])
        a = rows.item[row]
        b = history.item[pos] if len(pos) else np.zeros(0, dtype=np.int64)
        per_row_count = count[q]

        def mean_of(flags: np.ndarray) -> np.ndarray:
            return np.bincount(row, weights=flags.astype(float), minlength=n) / per_row_count

        if self.has_genres_:
            overlap = (titles.genre_mask[a] & titles.genre_mask[b]) != 0
            cols["user_genre_match"] = mean_of(overlap)
            recent = (sec[row] - history.sec[pos]) <= self.genre_window_days * DAY_SECONDS if len(pos) else overlap
            cols[f"user_genre_plays_{self.genre_window_days}d"] = np.bincount(
                row, weights=(overlap & recent).astype(float), minlength=n)
        if self.has_cast_:
            ca, cb = titles.cast[a], titles.cast[b]
            shared = ((ca[:, :, None] == cb[:, None, :]) & (ca[:, :, None] >= 0)).any(axis=(1, 2))
            cols["user_actor_match"] = mean_of(shared)
        if self.has_director_:
            director = titles.director
            cols["user_director_match"] = mean_of((director[a] == director[b]) & (director[a] >= 0))
        if self.has_language_:
            language = titles.language
            cols["user_language_match"] = mean_of((language[a] == language[b]) & (language[a] >= 0))
        if self.has_show_:
            cols["user_show_plays"] = np.bincount(
                row, weights=((titles.show[a] == titles.show[b]) & (titles.show[a] >= 0)).astype(float), minlength=n)
        user = rows.user
        cols["times_shown_before"] = history.pair_count("shown", user, rows.item, sec).astype(float)
        cols["played_before"] = (history.pair_count("played", user, rows.item, sec) > 0).astype(float)
        if self.has_embeddings_:
            if self.similarity_ is not None:
                sims = self.similarity_[a, b]
            else:
                emb = titles.embeddings
                sims = np.zeros(len(pos), dtype=np.float32)
                for lo in range(0, len(pos), 200_000):
                    sims[lo:lo + 200_000] = np.einsum("ij,ij->i", emb[a[lo:lo + 200_000]], emb[b[lo:lo + 200_000]])
            w = history.weight[pos] if len(pos) else sims
            wsum = np.bincount(row, weights=w, minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                cols["user_embedding_similarity"] = np.where(
                    wsum > 0, np.bincount(row, weights=sims * w, minlength=n) / np.maximum(wsum, 1e-12), 0.0)
            best = np.full(n, -1.0)
            np.maximum.at(best, row, sims)
            cols["user_embedding_max_similarity"] = np.where(stop[q] > h_start[q], best, 0.0)

    def _per_query(self, rows: Rows, history: History, titles: TitleTables, start, stop, h_start, count,
                   cols) -> None:
        n, n_q, width = len(rows), rows.n_queries, titles.n + 1
        query, item = rows.query, rows.item
        q_sec = rows.q_sec
        pos, qrow = ragged_ranges(h_start, stop)  # every query's recent plays, oldest first
        recent = history.item[pos] if len(pos) else np.zeros(0, dtype=np.int64)
        share = count[query]

        def per_code(codes: np.ndarray, flags: np.ndarray | None = None) -> np.ndarray:
            """Recent plays per (query, code) read at each row's own code (0 where the code is missing)."""
            size = int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 1
            c = codes[recent]
            keep = c >= 0 if flags is None else (c >= 0) & flags
            table = np.bincount(qrow[keep] * size + c[keep], minlength=n_q * size).astype(float)
            mine = codes[item]
            return np.where(mine >= 0, table[query * size + np.maximum(mine, 0)], 0.0)

        if self.has_genres_:
            masks = self.mask_of_[recent]
            m = len(self.masks_)
            within = (q_sec[qrow] - history.sec[pos]) <= self.genre_window_days * DAY_SECONDS
            hist_all = np.bincount(qrow * m + masks, minlength=n_q * m).astype(float).reshape(n_q, m)
            hist_win = np.bincount(qrow[within] * m + masks[within], minlength=n_q * m).astype(float).reshape(n_q, m)
            mine = self.mask_of_[item]
            cols["user_genre_match"] = (hist_all @ self.overlap_)[query, mine] / share
            cols[f"user_genre_plays_{self.genre_window_days}d"] = (hist_win @ self.overlap_)[query, mine]
        if self.has_director_:
            cols["user_director_match"] = per_code(titles.director) / share
        if self.has_language_:
            cols["user_language_match"] = per_code(titles.language) / share
        if self.has_show_:
            cols["user_show_plays"] = per_code(titles.show)
        actor = np.zeros(n) if self.has_cast_ else None
        shown_count = np.zeros(n)
        played = np.zeros(n)
        s_start, s_stop = history.shown_range(rows.q_user, q_sec)
        step = max(1, _CELLS // width)
        for lo in range(0, n_q, step):
            hi = min(lo + step, n_q)
            mine = (query >= lo) & (query < hi)
            rq, ri = query[mine] - lo, item[mine]
            if actor is not None:
                sel = (qrow >= lo) & (qrow < hi)
                counts = np.bincount((qrow[sel] - lo) * width + recent[sel], minlength=(hi - lo) * width)
                # exact either way: the products and sums are small integers
                shared = counts.reshape(hi - lo, width).astype(np.float32) @ self.share_actor_
                actor[mine] = shared[rq, ri]
            sp_pos, sp_q = ragged_ranges(s_start[lo:hi], s_stop[lo:hi])
            cells = np.bincount(sp_q * width + history.shown_item[sp_pos], minlength=(hi - lo) * width)
            shown_count[mine] = cells[rq * width + ri]
            pl_pos, pl_q = ragged_ranges(start[lo:hi], stop[lo:hi])
            cells = np.bincount(pl_q * width + history.item[pl_pos], minlength=(hi - lo) * width)
            played[mine] = cells[rq * width + ri] > 0
        if actor is not None:
            cols["user_actor_match"] = actor / share
        cols["times_shown_before"] = shown_count
        cols["played_before"] = played.astype(float)
        if self.has_embeddings_:
            self._similarities(rows, history, titles, pos, qrow, recent, h_start, stop, cols)

    def _similarities(self, rows: Rows, history: History, titles: TitleTables, pos, qrow, recent, h_start, stop,
                      cols) -> None:
        """Weighted mean and max synopsis similarity of each row's title to its query's recent plays."""
        n = len(rows)
        w_all = history.weight[pos] if len(pos) else np.zeros(0)
        wsum = np.bincount(qrow, weights=w_all, minlength=rows.n_queries)
        mean, best = np.zeros(n), np.full(n, -1.0)
        order = np.argsort(rows.query, kind="stable")
        bounds = np.searchsorted(rows.query[order], np.arange(rows.n_queries + 1))
        hist_bounds = np.concatenate([[0], np.cumsum(stop - h_start)])
        sim, emb = self.similarity_, titles.embeddings
        for q in np.flatnonzero(stop > h_start):
            these = order[bounds[q]:bounds[q + 1]]
            if len(these) == 0:
                continue
            played = recent[hist_bounds[q]:hist_bounds[q + 1]]
            if sim is not None:
                block = sim[np.ix_(played, rows.item[these])]
            else:
                a = np.repeat(rows.item[these][None, :], len(played), axis=0).ravel()
                b = np.repeat(played, len(these))
                block = np.einsum("ij,ij->i", emb[a], emb[b]).reshape(len(played), len(these))
            w = w_all[hist_bounds[q]:hist_bounds[q + 1]]
            if wsum[q] > 0:
                mean[these] = (block.astype(np.float64) * w[:, None]).sum(axis=0) / max(wsum[q], 1e-12)
            best[these] = np.maximum(block.max(axis=0), -1.0)
        has = (stop > h_start)[rows.query]
        cols["user_embedding_similarity"] = mean
        cols["user_embedding_max_similarity"] = np.where(has, best, 0.0)


def _shares_a_code(codes: np.ndarray) -> sp.csr_matrix:
    """Titles x titles, 1 where two titles share a code >= 0 (an actor), as a sparse matrix."""
    rows, slots = np.nonzero(codes >= 0)
    values = codes[rows, slots]
    titles_by_code = sp.csr_matrix((np.ones(len(rows)), (rows, values)), shape=(len(codes), int(values.max()) + 1
                                                                            if len(values) else 1))
    titles_by_code.data[:] = 1.0
    both = (titles_by_code @ titles_by_code.T).tocsr()
    both.data[:] = 1.0
    return both
