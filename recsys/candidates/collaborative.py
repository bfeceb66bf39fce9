"""Collaborative filtering: ALS and BPR (the `implicit` library), EASE and item-kNN.

All four learn from the users x items interaction matrix (`InteractionConfig`: finished
titles weighted by minutes watched, half-watched ones a little, ratings for explicit data).
The two item-to-item models (EASE, item-kNN) also explain a candidate: "Because you watched X".
Users with no interactions at fit time (and unknown users) get no rows: the blend's
popularity and content quotas cover them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..data.dataset import Dataset
from ..data.errors import DataError
from .base import SOURCES, CandidateGenerator, InteractionConfig, Interactions, UserBatch, as_id_index, blocked_matmul
from .popularity import decayed_popularity

__all__ = ["ALSGenerator", "BPRGenerator", "EASEGenerator", "ItemKNNGenerator", "ItemToItemMixin"]


def _check_positive(obj: object, *names: str, integer: bool = False, allow_zero: bool = False) -> None:
    for name in names:
        value = getattr(obj, name)
        ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise ValueError(f"{type(obj).__name__}.{name} must be a {'whole ' if integer else ''}number "
                             f"{'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _rows_or_empty(matrix: sp.csr_matrix, batch: UserBatch) -> tuple[np.ndarray, sp.csr_matrix]:
    """The batch rows that have interactions, and those rows of `matrix`."""
    rows = np.flatnonzero(batch.known)
    rows = rows[np.diff(matrix.indptr)[batch.index[rows]] > 0]
    return rows, matrix[batch.index[rows]]


class _FactorModel(CandidateGenerator):
    """Shared scoring for matrix factorisation: user_factors_ @ item_factors_.T for users with history.

    Titles nobody interacted with in training have untrained factors: they are not scored.
    """

    def _score(self, batch: UserBatch) -> np.ndarray:
        out = np.full((len(batch), len(self.item_ids_)), -np.inf)
        rows = np.flatnonzero(batch.known)
        rows = rows[self.has_history_[batch.index[rows]]]
        if len(rows):
            scores = blocked_matmul(self.user_factors_[batch.index[rows]], self.item_factors_t_)
            scores[:, ~self.item_trained_] = -np.inf
            out[rows] = scores
        return out

    def _prepare(self) -> None:
        super()._prepare()
        self.item_factors_t_ = np.ascontiguousarray(self.item_factors_.T, dtype=np.float64)  # blocked_matmul's type
        self.item_trained_ = np.diff(self.user_items_.tocsc().indptr) > 0

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_,
                "has_history": self.has_history_}

    def _set_state(self, arrays, component) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self.has_history_ = arrays["has_history"].astype(bool)


def _quiet_fit(make_model, matrix: sp.csr_matrix):
    """Build and fit an implicit model with BLAS pinned to one thread (implicit warns otherwise), no progress bar."""
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = make_model()
        model.fit(matrix, show_progress=False)
    return model


@SOURCES.register
@dataclass(eq=False)
class ALSGenerator(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky): confidence 1 + alpha * weight, `factors` dimensions.

    Defaults were chosen on the sample world's earliest CV fold (see docs/candidates.md).
    """

    factors: int = 16
    regularization: float = 10.0
    alpha: float = 1.0
    iterations: int = 15
    seed: int = 0
    threads: int = 1
    interactions: InteractionConfig = InteractionConfig()

    source = "als"

    def _validate(self) -> None:
        _check_positive(self, "factors", "iterations", "threads", integer=True)
        _check_positive(self, "alpha")
        _check_positive(self, "regularization", allow_zero=True)

    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        matrix = self.user_items_.astype(np.float32).tocsr()
        if matrix.nnz == 0:
            self.user_factors_ = np.zeros((matrix.shape[0], self.factors))
            self.item_factors_ = np.zeros((matrix.shape[1], self.factors))
        else:
            model = _quiet_fit(lambda: AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=self.iterations, num_threads=self.threads, random_state=self.seed,
            ), matrix)
            self.user_factors_ = np.asarray(model.user_factors, dtype=np.float64)
            self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)
        self.has_history_ = np.diff(matrix.indptr) > 0


@SOURCES.register
@dataclass(eq=False)
class BPRGenerator(_FactorModel):
    """Bayesian Personalised Ranking (pairwise loss, SGD) on the titles each user interacted with.

    BPR samples positives uniformly from the non-zero cells, so interaction weights only
    decide which cells exist. Deterministic for a seed with `threads=1`.

    `implicit` draws the negatives from the non-zero cells too, i.e. in proportion to each
    title's number of members (benfred/implicit#255): the factors, bias included, learn a
    member's taste relative to popularity, and ranked alone they bury what is in demand. So
    the fit adds `popularity_weight` x log(1 + recent popularity) to each title's bias (the
    last column of `item_factors_`; the members' last column is 1): the logQ correction, with
    popularity counted as PopularityGenerator counts it (events of the last
    `popularity_window_days`, halved every `popularity_half_life_days`) because viewing
    follows what is in demand now. `popularity_weight=0` gives the raw factors.
    """

    factors: int = 64
    learning_rate: float = 0.05
    regularization: float = 0.05
    iterations: int = 300
    popularity_weight: float = 1.0
    popularity_window_days: float | None = 28.0
    popularity_half_life_days: float | None = 7.0
    seed: int = 0
    threads: int = 1
    interactions: InteractionConfig = InteractionConfig()

    source = "bpr"

    def _validate(self) -> None:
        _check_positive(self, "factors", "iterations", "threads", integer=True)
        _check_positive(self, "learning_rate")
        _check_positive(self, "regularization", "popularity_weight", allow_zero=True)
        for name in ("popularity_window_days", "popularity_half_life_days"):
            if getattr(self, name) is not None:
                _check_positive(self, name)

    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        matrix = self.user_items_.astype(np.float32).tocsr()
        if matrix.nnz == 0:
            self.user_factors_ = np.zeros((matrix.shape[0], self.factors + 1))
            self.item_factors_ = np.zeros((matrix.shape[1], self.factors + 1))
        else:
            model = _quiet_fit(lambda: BayesianPersonalizedRanking(
                factors=self.factors, learning_rate=self.learning_rate, regularization=self.regularization,
                iterations=self.iterations, num_threads=self.threads, random_state=self.seed,
            ), matrix)
            self.user_factors_ = np.asarray(model.user_factors, dtype=np.float64)
            self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)
            if self.popularity_weight > 0:
                popularity = decayed_popularity(Interactions.from_dataset(dataset, InteractionConfig(duration=False)),
                                                self.reference_time_, self.popularity_window_days,
                                                self.popularity_half_life_days)
                self.item_factors_[:, -1] += self.popularity_weight * np.log1p(popularity)
        self.has_history_ = np.diff(matrix.indptr) > 0


class ItemToItemMixin:
    """Scores as history @ similarity, and "Because you watched X" explanations of any (user, item)."""

    def _history(self) -> sp.csr_matrix:
        return self.history_matrix_

    def _similarity_columns(self, items: np.ndarray) -> sp.csr_matrix:
        """similarity[:, items].T as sparse rows (one per requested item)."""
        raise NotImplementedError

    def explain(self, user_ids, item_ids) -> pd.DataFrame:
        """For each (user, item) pair: the watched title that contributes most to the item's score.

        Returns [user_id, item_id, because_item_id, because_title, contribution, reason]; pairs
        with no contributing title (unknown user, no history, no similar title) get a missing
        `because_item_id` and an empty reason.
        """
        self._check_fitted()
        users = as_id_index(user_ids)
        items = as_id_index(item_ids)
        if len(users) != len(items):
            raise ValueError(f"explain needs as many user ids as item ids, got {len(users)} and {len(items)}")
        uidx = self.user_ids_.get_indexer(users)
        iidx = self.item_ids_.get_indexer(items)
        ok = (uidx >= 0) & (iidx >= 0)
        because = np.full(len(users), -1)
        contribution = np.zeros(len(users))
        if ok.any():
            hist = self._history()[uidx[ok]]
            sims = self._similarity_columns(iidx[ok])
            prod = hist.multiply(sims).tocsr()
            prod.eliminate_zeros()
            has = np.diff(prod.indptr) > 0
            best = np.full(prod.shape[0], -1)
            value = np.zeros(prod.shape[0])
            if has.any():
                arg = np.asarray(prod.argmax(axis=1)).ravel()
                top = np.asarray(prod.max(axis=1).todense()).ravel()
                positive = has & (top > 0)
                best[positive] = arg[positive]
                value[positive] = top[positive]
            because[ok] = best
            contribution[ok] = np.where(best >= 0, value, 0.0)
        found = because >= 0
        titles = np.where(found, self.item_titles_[np.maximum(because, 0)], "")
        return pd.DataFrame({
            "user_id": users.to_numpy(),
            "item_id": items.to_numpy(),
            "because_item_id": pd.Series(np.where(found, self.item_ids_.to_numpy()[np.maximum(because, 0)], None),
                                         dtype=object),
            "because_title": pd.Series(np.where(found, titles, None), dtype=object),
            "contribution": contribution,
            "reason": np.where(found, np.char.add("Because you watched ", titles.astype(str)), ""),
        })


@SOURCES.register
@dataclass(eq=False)
class EASEGenerator(ItemToItemMixin, CandidateGenerator):
    """EASE (Steck 2019): closed-form item-item weights B = I - P / diag(P), P = (X'X + lambda I)^-1, diag(B) = 0.

    Scores are X_u B. `binary` (the default: best on the sample world's tuning fold, and the
    usual choice on MovieLens) uses 0/1 interactions (every cell with weight > 0); otherwise
    the weights follow `interactions`. Memory is n_items^2, so catalogues beyond
    `max_items` are refused (use item-kNN there).
    """

    l2: float = 500.0
    binary: bool = True
    max_items: int = 20000
    interactions: InteractionConfig = InteractionConfig()

    source = "ease"

    def _validate(self) -> None:
        _check_positive(self, "l2")
        _check_positive(self, "max_items", integer=True)

    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        n_items = len(self.item_ids_)
        if n_items > self.max_items:
            raise DataError(f"EASE needs an n_items^2 matrix; {n_items} titles exceed max_items={self.max_items}",
                            file=dataset.name, column="item_id", hint="use ItemKNNGenerator for large catalogues")
        X = interactions.matrix(binary=self.binary)
        self.history_matrix_ = X.tocsr()
        gram = np.asarray((X.T @ X).todense(), dtype=np.float64)
        gram[np.diag_indices(n_items)] += self.l2
        P = np.linalg.inv(gram)
        B = -P / np.diag(P)[None, :]
        B[np.diag_indices(n_items)] = 0.0
        self.item_weights_ = B
        self.has_history_ = np.diff(self.history_matrix_.indptr) > 0

    def _score(self, batch: UserBatch) -> np.ndarray:
        out = np.full((len(batch), len(self.item_ids_)), -np.inf)
        rows, hist = _rows_or_empty(self.history_matrix_, batch)
        if len(rows):
            out[rows] = np.asarray(hist @ self.item_weights_)
        return out

    def _similarity_columns(self, items: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix(self.item_weights_[:, items].T)

    def _state(self) -> dict[str, np.ndarray]:
        h = self.history_matrix_
        return {"item_weights": self.item_weights_, "h_indptr": h.indptr, "h_indices": h.indices, "h_data": h.data}

    def _set_state(self, arrays, component) -> None:
        self.item_weights_ = arrays["item_weights"]
        shape = (len(self.user_ids_), len(self.item_ids_))
        self.history_matrix_ = sp.csr_matrix((arrays["h_data"], arrays["h_indices"], arrays["h_indptr"]), shape=shape)
        self.has_history_ = np.diff(self.history_matrix_.indptr) > 0


@SOURCES.register
@dataclass(eq=False)
class ItemKNNGenerator(ItemToItemMixin, CandidateGenerator):
    """Item-kNN: cosine similarity between titles' audiences (shrunk by `shrink`), `neighbours` kept per title.

    Scores are X_u S; titles with no similar watched title are not returned (no evidence).
    """

    neighbours: int = 100
    shrink: float = 50.0
    binary: bool = False
    interactions: InteractionConfig = InteractionConfig()

    source = "itemknn"

    def _validate(self) -> None:
        _check_positive(self, "neighbours", integer=True)
        _check_positive(self, "shrink", allow_zero=True)

    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        X = interactions.matrix(binary=self.binary).tocsc()
        self.history_matrix_ = X.tocsr()
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())
        co = (X.T @ X).tocsr().astype(np.float64)
        co.setdiag(0.0)
        co.eliminate_zeros()
        coo = co.tocoo()
        denom = norms[coo.row] * norms[coo.col] + self.shrink
        sim = sp.csr_matrix((coo.data / np.where(denom > 0, denom, 1.0), (coo.row, coo.col)), shape=co.shape)
        self.similarity_ = self._prune(sim, self.neighbours)
        self.has_history_ = np.diff(self.history_matrix_.indptr) > 0

    @staticmethod
    def _prune(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
        """Keep, in each column j (the scored title), the k most similar source titles."""
        coo = sim.tocoo()
        order = np.lexsort((coo.row, -coo.data, coo.col))
        col = coo.col[order]
        starts = np.searchsorted(col, col, side="left")
        keep = order[(np.arange(len(order)) - starts) < k]
        return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=sim.shape)

    def _score(self, batch: UserBatch) -> np.ndarray:
        out = np.full((len(batch), len(self.item_ids_)), -np.inf)
        rows, hist = _rows_or_empty(self.history_matrix_, batch)
        if len(rows):
            scores = np.asarray((hist @ self.similarity_).todense())
            out[rows] = np.where(scores > 0, scores, -np.inf)
        return out

    def _similarity_columns(self, items: np.ndarray) -> sp.csr_matrix:
        return self.similarity_.tocsc()[:, items].T.tocsr()

    def _state(self) -> dict[str, np.ndarray]:
        h, s = self.history_matrix_, self.similarity_
        return {"h_indptr": h.indptr, "h_indices": h.indices, "h_data": h.data,
                "s_indptr": s.indptr, "s_indices": s.indices, "s_data": s.data}

    def _set_state(self, arrays, component) -> None:
        shape = (len(self.user_ids_), len(self.item_ids_))
        n = len(self.item_ids_)
        self.history_matrix_ = sp.csr_matrix((arrays["h_data"], arrays["h_indices"], arrays["h_indptr"]), shape=shape)
        self.similarity_ = sp.csr_matrix((arrays["s_data"], arrays["s_indices"], arrays["s_indptr"]), shape=(n, n))
        self.has_history_ = np.diff(self.history_matrix_.indptr) > 0
