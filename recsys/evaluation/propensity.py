"""What the logging policy's propensities imply: each shown title's Plackett-Luce weight and its
chance of landing in every slot (the marginals a per-slot estimator divides by).

A logged propensity is P(title in slot j | the titles in slots above), the Plackett-Luce choice
w / (W - weights above). From one row's propensities the shown titles' weights follow exactly, as
shares of the total W, and so does the share R of all titles not shown. How R splits among the
unshown titles is not in the log: it is treated as a continuum of small weights, whose count of
titles ahead of any time is Poisson (their exponential race, below). The marginal of a shown title
at rank r is then

    P(rank r) = integral_0^inf w e^(-w t) P(exactly r others finish before t) dt,

with each other shown title finishing by t with probability 1 - e^(-w' t) and the unshown mass
contributing Poisson(R t) more. The integral runs on a fixed grid (trapezoid rule).
"""

from __future__ import annotations

import numpy as np

__all__ = ["weights_from_propensities", "race_marginals", "slot_marginals"]


def weights_from_propensities(propensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, K) conditional propensities (NaN for empty slots, which must come last) -> each shown title's
    weight as a share of the row's total weight, and (S,) the unshown titles' share R."""
    p = np.nan_to_num(np.asarray(propensity, dtype=float), nan=0.0)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("propensities must lie in [0, 1]")
    weights = np.zeros_like(p)
    remaining = np.ones(p.shape[0])
    for j in range(p.shape[1]):
        weights[:, j] = p[:, j] * remaining
        remaining = remaining - weights[:, j]
    return weights, np.clip(remaining, 0.0, 1.0)


def _grid(points: int) -> np.ndarray:
    """Times for the race of total rate 1: dense where the first ranks are decided, sparse far out."""
    near = np.linspace(0.0, 40.0, points - points // 5)
    far = np.geomspace(40.0, 4000.0, points // 5 + 1)[1:]
    return np.concatenate([near, far])


def _one_more(pmf: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The pmf (..., ranks) of a count after one more title that is finished with probability q (..., 1)."""
    out = pmf * (1.0 - q)
    out[..., 1:] += pmf[..., :-1] * q
    return out


def race_marginals(weights: np.ndarray, tail: np.ndarray | None = None, ranks: int = 10, points: int = 100,
                   chunk: int = 512) -> np.ndarray:
    """(S, M, ranks): P(title m is drawn at rank r) for Plackett-Luce rows over the weights (S, M) (zero for
    absent titles), plus a continuum of unshown weight `tail` (S,) (see the module docstring).
    With `tail` None or zero and every title's weight given, this is exact up to the integration grid.

    The count of others finished before title m is the unshown titles' Poisson count plus the titles before m
    (a running product from the left) and after m (from the right), so each title costs one convolution, not
    a pass over all the others."""
    weights = np.asarray(weights, dtype=float)
    S, M = weights.shape
    tail = np.zeros(S) if tail is None else np.asarray(tail, dtype=float)
    total = weights.sum(axis=1) + tail
    scale = np.where(total > 0, total, 1.0)
    weights, tail = weights / scale[:, None], tail / scale  # the grid assumes a race of total rate 1
    present = weights > 0
    t = _grid(points)
    dt = np.diff(t)
    trapezoid = np.concatenate([[dt[0] / 2], (dt[:-1] + dt[1:]) / 2, [dt[-1] / 2]])
    counts = np.arange(ranks)
    log_fact = np.cumsum(np.log(np.maximum(counts, 1)))
    fold = (np.add.outer(counts, counts)[..., None] == counts).reshape(ranks * ranks, ranks).astype(float)
    out = np.zeros((S, M, ranks))
    for lo in range(0, S, chunk):
        w, R = weights[lo:lo + chunk], tail[lo:lo + chunk]
        n = len(w)
        live = np.flatnonzero(present[lo:lo + chunk].any(axis=0))
        if len(live) == 0:
            continue
        rate = R[:, None] * t[None, :]  # the unshown titles' Poisson(R t) count, 0..ranks-1: (n, G, ranks)
        log_rate = np.log(np.maximum(rate, 1e-300))[..., None]
        pois = np.exp(counts[None, None, :] * log_rate - rate[..., None] - log_fact[None, None, :])
        pois[..., 0] = np.exp(-rate)
        done = 1.0 - np.exp(-w[:, :, None] * t[None, None, :])  # (n, M, G): title finished by t
        before = [pois]  # before[j]: the unshown count plus live titles left of live[j]
        for i in live[:-1]:
            before.append(_one_more(before[-1], done[:, i, :, None]))
        after = np.zeros((n, len(t), ranks))  # the live titles right of live[j], built from the right
        after[..., 0] = 1.0
        for j in range(len(live) - 1, -1, -1):
            i = live[j]
            density = w[:, i, None] * np.exp(-w[:, i, None] * t[None, :]) * trapezoid[None, :]  # (n, G)
            # P(a before, b after, i finishes in dt), summed over t; then folded by a + b = rank
            joint = np.matmul((before[j] * density[..., None]).transpose(0, 2, 1), after)  # (n, ranks, ranks)
            out[lo:lo + chunk, i, :] = joint.reshape(n, ranks * ranks) @ fold
            after = _one_more(after, done[:, i, :, None])
    out[~present] = 0.0
    return out


def slot_marginals(propensity: np.ndarray, ranks: int | None = None, points: int = 100,
                   chunk: int = 512) -> np.ndarray:
    """(S, K, ranks): P(the title logged in slot i of session s would be drawn at rank r) under the
    logging policy, from the row's propensities (see the module docstring)."""
    weights, tail = weights_from_propensities(propensity)
    return race_marginals(weights, tail, ranks=weights.shape[1] if ranks is None else int(ranks), points=points,
                          chunk=chunk)
