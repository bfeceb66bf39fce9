"""A model of the logging policy, for logs that do not record its propensities: Plackett-Luce over
what the log itself says about every title at each session's moment, fitted to the rows it showed.

The features are the usual drivers of a service's default row, each computed from events before
the session's day only: the title's plays over the last `recent_days` (log), its freshness
(e^(-days on the platform / 21)), the member's genre fit (their past plays' genre shares against the
title's genres) and whether it is the next episode of a show the member has started. Eligible titles
are those on the platform, allowed at the member's age and not finished (a show offers only its
next episode). The scores are fitted by maximum likelihood of the logged rows, slot by slot, and a
logged slot's propensity is its title's share of the weight not shown above it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ..data.dataset import Dataset
from ..data.schema import maturity_min_ages
from ..errors import NotFittedError
from .logged import LoggedSessions

__all__ = ["LoggingModel", "FEATURES"]

FEATURES: tuple[str, ...] = ("recent plays (log)", "freshness", "genre fit", "next episode of a started show")
DAY = np.timedelta64(1, "D")


class _Catalogue:
    """What the features need of the titles and the plays, in the log's dense title order."""

    def __init__(self, dataset: Dataset, item_ids: pd.Index, recent_days: float) -> None:
        items = dataset.items.set_index(dataset.items["item_id"].astype(str)).reindex(item_ids)
        self.n = len(item_ids)
        self.added = pd.to_datetime(items["added_at"]).to_numpy(dtype="datetime64[ns]") if "added_at" in items \
            else np.full(self.n, np.datetime64("1970-01-01"), dtype="datetime64[ns]")
        self.min_age = maturity_min_ages(items["maturity_rating"]) if "maturity_rating" in items else np.zeros(self.n)
        genres = items["genres"] if "genres" in items else pd.Series([[]] * self.n)
        names = sorted({g for gs in genres for g in (gs if isinstance(gs, (list, np.ndarray)) else [])})
        self.genres = np.zeros((self.n, max(1, len(names))))
        for i, gs in enumerate(genres):
            for g in (gs if isinstance(gs, (list, np.ndarray)) else []):
                self.genres[i, names.index(g)] = 1.0
        self.genres /= np.maximum(self.genres.sum(axis=1, keepdims=True), 1.0)
        show = items["show_id"].astype(object).where(items["show_id"].notna(), None) if "show_id" in items \
            else pd.Series([None] * self.n)
        order = items[["season", "episode"]].fillna(0).to_numpy() if {"season", "episode"} <= set(items) \
            else np.zeros((self.n, 2))
        self.episodes: dict[str, np.ndarray] = {}
        for s in pd.unique(show.dropna()):
            members = np.flatnonzero(show.to_numpy() == s)
            self.episodes[s] = members[np.lexsort((order[members, 1], order[members, 0]))]
        self.is_episode = show.notna().to_numpy()
        ev = dataset.events
        plays = ev[ev["watch_fraction"] > 0]
        self.play_item = item_ids.get_indexer(plays["item_id"].astype(str))
        self.play_user = plays["user_id"].astype(str).to_numpy()
        self.play_time = plays["timestamp"].to_numpy(dtype="datetime64[ns]")
        self.play_done = plays["watch_fraction"].to_numpy() > 0.8
        day0 = self.play_time.min().astype("datetime64[D]") if len(plays) else np.datetime64("1970-01-01", "D")
        self.day0 = day0
        day = (self.play_time.astype("datetime64[D]") - day0).astype(np.int64)
        ok = self.play_item >= 0
        days = int(day.max()) + 2 if len(day) else 2
        daily = np.zeros((days, self.n))
        np.add.at(daily, (day[ok], self.play_item[ok]), 1.0)
        self.cumulative = np.vstack([np.zeros((1, self.n)), np.cumsum(daily, axis=0)])  # plays before day d
        self.recent = int(round(recent_days))
        self.by_user: dict[str, np.ndarray] = {}
        order_u = np.lexsort((self.play_time, self.play_user))
        users, starts = np.unique(self.play_user[order_u], return_index=True)
        for u, lo, hi in zip(users, starts, np.append(starts[1:], len(order_u))):
            self.by_user[u] = order_u[lo:hi]
        self.ages = dataset.users.set_index(dataset.users["user_id"].astype(str))["age"] \
            if "age" in dataset.users.columns else pd.Series(dtype=float)

    def session(self, user: str, when: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
        """(N, F) features and (N,) eligibility of every title for this member at this moment."""
        day = int((np.datetime64(when, "D") - self.day0).astype(np.int64))
        d = int(np.clip(day, 0, len(self.cumulative) - 1))
        recent = self.cumulative[d] - self.cumulative[max(0, d - self.recent)]
        age_days = (np.datetime64(when, "ns") - self.added) / DAY
        fresh = np.where(age_days >= 0, np.exp(-np.maximum(age_days, 0) / 21.0), 0.0)
        mine = self.by_user.get(user, np.zeros(0, dtype=np.int64))
        mine = mine[self.play_time[mine] < np.datetime64(when, "D")]
        items = self.play_item[mine]
        ok = items >= 0
        taste = self.genres[items[ok]].sum(axis=0)
        taste = taste / taste.sum() if taste.sum() > 0 else np.full(self.genres.shape[1], 1.0 / self.genres.shape[1])
        fit = self.genres @ taste
        finished = np.zeros(self.n, dtype=bool)
        finished[items[ok & self.play_done[mine]]] = True
        played = np.zeros(self.n, dtype=bool)
        played[items[ok]] = True
        eligible = (age_days >= 0) & ~finished
        age = self.ages.get(user, np.nan)
        if pd.notna(age):
            eligible &= float(age) >= self.min_age
        started = np.zeros(self.n)
        eligible[self.is_episode] = False
        for eps in self.episodes.values():
            left = eps[~finished[eps]]
            if len(left):
                nxt = left[0]
                eligible[nxt] = age_days[nxt] >= 0 and (pd.isna(age) or float(age) >= self.min_age[nxt])
                started[nxt] = float(played[eps].any() and nxt != eps[0])
        return np.column_stack([np.log1p(recent), fresh, fit, started]), eligible


class LoggingModel:
    """Plackett-Luce scores of the logging policy from logged rows (see the module docstring).

    recent_days: the popularity window. max_sessions: sessions used to fit (a seeded sample of the
    log's). l2: ridge on the coefficients. seed: the sample.
    """

    def __init__(self, recent_days: float = 28.0, max_sessions: int = 2000, l2: float = 1e-3, seed: int = 0) -> None:
        self.recent_days = recent_days
        self.max_sessions = max_sessions
        self.l2 = l2
        self.seed = seed

    def _features(self, catalogue: _Catalogue, logged: LoggedSessions, rows: np.ndarray):
        xs, elig = [], []
        for s in rows:
            x, e = catalogue.session(str(logged.user_id[s]), logged.timestamp[s])
            shown = logged.items[s][logged.items[s] >= 0]
            e[shown] = True  # the policy showed it, so it was eligible whatever the approximation says
            xs.append(x)
            elig.append(e)
        return np.stack(xs), np.stack(elig)

    def fit(self, dataset: Dataset, logged: LoggedSessions) -> "LoggingModel":
        """Fit the scores to `logged`'s rows (their titles slot by slot), features from `dataset`'s events."""
        catalogue = _Catalogue(dataset, logged.item_ids, self.recent_days)
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), 61]))
        rows = np.arange(logged.n_sessions)
        if len(rows) > self.max_sessions:
            rows = np.sort(rng.choice(rows, self.max_sessions, replace=False))
        x, eligible = self._features(catalogue, logged, rows)
        self.mean_ = x[eligible].mean(axis=0)
        self.scale_ = x[eligible].std(axis=0) + 1e-9
        z = (x - self.mean_) / self.scale_
        items = logged.items[rows]

        def objective(beta: np.ndarray) -> tuple[float, np.ndarray]:
            score = z @ beta
            mask = eligible.copy()
            loss, grad = 0.0, self.l2 * beta * len(rows)
            for j in range(items.shape[1]):
                shown = items[:, j] >= 0
                if not shown.any():
                    break
                s = np.where(mask, score, -np.inf)
                top = s.max(axis=1, keepdims=True)
                w = np.exp(s - top)
                total = w.sum(axis=1, keepdims=True)
                p = w / total
                a = np.where(shown, items[:, j], 0)
                chosen = score[np.arange(len(rows)), a]
                loss -= float(np.sum((chosen - top[:, 0] - np.log(total[:, 0]))[shown]))
                grad -= (z[np.arange(len(rows)), a][shown] - np.einsum("sn,snf->sf", p, z)[shown]).sum(axis=0)
                mask[np.arange(len(rows))[shown], a[shown]] = False
            return loss + 0.5 * self.l2 * len(rows) * float(beta @ beta), grad

        fit = minimize(objective, np.zeros(z.shape[2]), jac=True, method="L-BFGS-B")
        self.coef_ = fit.x / self.scale_
        self.catalogue_ = catalogue
        return self

    def propensities(self, logged: LoggedSessions, chunk: int = 500) -> np.ndarray:
        """(S, K) each logged slot's modelled P(title in slot | the slots above); NaN for empty slots."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("this LoggingModel is not fitted yet; call fit() first")
        out = np.full(logged.items.shape, np.nan)
        for lo in range(0, logged.n_sessions, chunk):
            rows = np.arange(lo, min(lo + chunk, logged.n_sessions))
            x, eligible = self._features(self.catalogue_, logged, rows)
            weight = np.where(eligible, np.exp(x @ self.coef_ - (x @ self.coef_).max(axis=1, keepdims=True)), 0.0)
            remaining = weight.sum(axis=1)
            items = logged.items[rows]
            for j in range(items.shape[1]):
                shown = items[:, j] >= 0
                w = weight[np.arange(len(rows)), np.where(shown, items[:, j], 0)]
                out[rows[shown], j] = np.clip(w[shown] / np.maximum(remaining[shown], 1e-300), 0.0, 1.0)
                remaining = remaining - np.where(shown, w, 0.0)
        return out
