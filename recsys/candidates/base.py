"""The candidate-generator contract: fit on a Dataset, return the top-n titles for a batch of users.

Every generator (popularity, collaborative, content, two-tower, blend) subclasses
`CandidateGenerator`: typed config in the constructor (a dataclass, no logic),
`fit(dataset) -> self`, fitted attributes ending in `_`, a vectorised `recommend` that
returns one frame shape, and `save`/`load` as plain files (npz, json, parquet; never pickle).
External ids stay at the surface; dense integer indices are used inside.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..artifacts import atomic_write
from ..data.dataset import Dataset
from ..data.errors import DataError
from ..data.schema import MATURITY_MIN_AGE
from ..data.validation import normalize_ids
from ..features.builder import NotFittedError
from ..labels import POSITIVE, LabelConfig, WeightConfig, duration_weights, label_events

__all__ = [
    "CandidateGenerator",
    "NotFittedError",
    "InteractionConfig",
    "Interactions",
    "UserBatch",
    "RecommendationArrays",
    "RECOMMENDATION_COLUMNS",
    "FORMAT_VERSION",
    "as_id_index",
    "list_cells",
    "empty_recommendations",
    "load_generator",
]

RECOMMENDATION_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "score", "rank", "source")
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
USERS_FILE = "users.parquet"
USER_ATTRIBUTES: tuple[str, ...] = ("age", "gender", "language", "country")
_LAST_SCORES = threading.local()  # per thread: each generator's last raw scores, for score_items to reuse


def _last_scores() -> dict[int, tuple]:
    memo = getattr(_LAST_SCORES, "by_generator", None)
    if memo is None:
        memo = _LAST_SCORES.by_generator = {}
    return memo

_CHUNK = 2048  # users scored at once: bounds memory at _CHUNK x n_items floats

G = TypeVar("G", bound="CandidateGenerator")


# ------------------------------------------------------------------ helpers
def as_id_index(ids: Any) -> pd.Index:
    """External ids as the text the Dataset stores (7, 7.0 and "7" all mean "7"); a scalar is one id."""
    if isinstance(ids, (str, bytes, int, float, np.integer, np.floating)):
        ids = [ids]
    array = np.asarray(list(ids) if not isinstance(ids, (np.ndarray, pd.Index, pd.Series)) else ids,
                       dtype=object).ravel()
    if all(type(v) is str and v and v == v.strip() for v in array):  # already normalised: the common case
        return pd.Index(array, dtype=object)
    return pd.Index(normalize_ids(pd.Series(array, dtype=object)).fillna(""), dtype=object)


def to_time(t: Any) -> pd.Timestamp:
    """A naive UTC Timestamp (the Dataset's convention) from anything pandas parses."""
    ts = pd.Timestamp(t)
    if ts is pd.NaT:
        raise ValueError(f"not a time: {t!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def empty_recommendations(extra: Iterable[str] = ()) -> pd.DataFrame:
    """A zero-row frame with the recommendation columns and dtypes."""
    frame = pd.DataFrame({
        "user_id": pd.Series(dtype=str), "item_id": pd.Series(dtype=str),
        "score": pd.Series(dtype=np.float64), "rank": pd.Series(dtype=np.int64), "source": pd.Series(dtype=str),
    })
    for name in extra:
        frame[name] = pd.Series(dtype=str)
    return frame


def _write_npz(target: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; it would need pickle")
    atomic_write(target, write)


def _write_json(target: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _write_parquet(target: Path, frame: pd.DataFrame) -> None:
    atomic_write(target, lambda tmp: frame.to_parquet(tmp, index=False))


def list_cells(series: pd.Series) -> list[list[str]]:
    """List-valued cells (genres, actors, tags) as lists of text; missing as []."""
    out = []
    for value in series.tolist():
        if isinstance(value, (list, tuple, np.ndarray)):
            out.append([str(v) for v in value if v is not None and str(v) != ""])
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            out.append([])
        else:
            out.append([p.strip() for p in str(value).split("|") if p.strip()])
    return out


# ------------------------------------------------------------ interactions
@dataclass(frozen=True)
class InteractionConfig:
    """How events become interaction weights for the collaborative and neural generators.

    Implicit data: a finished title (label positive, watch fraction > 0.8) weighs its duration
    weight (recsys.labels.duration_weights, when `duration`) or 1; a play in the ignored middle
    band weighs `partial_weight` (a click is still interest); abandoned plays and unplayed
    impressions weigh `negative_weight` (0: no evidence either way). Explicit data: a rating at
    or above the label threshold weighs 1, a lower one `low_rating_weight`. With
    `half_life_days`, older events fade: weight x 0.5 ** (age in days / half life); with
    `window_days`, events older than that weigh 0 (they still count as "seen").
    """

    partial_weight: float = 0.25
    negative_weight: float = 0.0
    low_rating_weight: float = 0.5
    duration: bool = True
    half_life_days: float | None = None
    window_days: float | None = None

    def validate(self) -> None:
        for name in ("partial_weight", "negative_weight", "low_rating_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"InteractionConfig.{name} must be a finite number >= 0, got {value!r}")
        for name in ("half_life_days", "window_days"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise ValueError(f"InteractionConfig.{name} must be > 0 or None, got {value!r}")


@dataclass(frozen=True)
class Interactions:
    """Weighted user-item events in dense indices (events with weight > 0 or that make a title "seen")."""

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray  # datetime64[ns]
    weight: np.ndarray
    seen: np.ndarray  # bool: the member finished the title (implicit) or rated it (explicit)
    n_users: int
    n_items: int

    @classmethod
    def from_dataset(cls, dataset: Dataset, config: InteractionConfig | None = None,
                     reference_time: pd.Timestamp | None = None) -> "Interactions":
        """Label every event (recsys.labels) and weigh it; events of unknown users or items are dropped."""
        config = config or InteractionConfig()
        ev = dataset.events
        n_users, n_items = len(dataset.user_ids), len(dataset.item_ids)
        if len(ev) == 0:
            z = np.zeros(0, dtype=np.int64)
            return cls(z, z, np.zeros(0, dtype="datetime64[ns]"), np.zeros(0), np.zeros(0, dtype=bool), n_users, n_items)
        labels = label_events(ev, LabelConfig()).to_numpy()
        positive = labels == POSITIVE
        if dataset.feedback == "implicit":
            wf = pd.to_numeric(ev["watch_fraction"], errors="coerce").to_numpy(dtype=float)
            weight = np.where(positive, 1.0, 0.0)
            if config.duration and positive.any():
                dw = duration_weights(ev.loc[positive], dataset.items, WeightConfig(reference_minutes=60.0),
                                      label_col="__none__").to_numpy()
                weight[positive] = dw
            middle = ~positive & (wf >= LabelConfig().negative_below)
            weight[middle] = config.partial_weight
            low = ~positive & ~middle & (wf > 0)
            weight[low] = config.negative_weight
        else:
            rated = pd.to_numeric(ev["rating"], errors="coerce").notna().to_numpy()
            weight = np.where(positive, 1.0, np.where(rated, config.low_rating_weight, 0.0))
        seen = positive if dataset.feedback == "implicit" else (
            pd.to_numeric(ev["rating"], errors="coerce").notna().to_numpy() if "rating" in ev.columns else positive)
        time = ev["timestamp"].to_numpy(dtype="datetime64[ns]")
        if (config.half_life_days is not None or config.window_days is not None) and len(ev):
            ref = np.datetime64(to_time(reference_time or dataset.end).to_datetime64(), "ns")
            age_days = (ref - time) / np.timedelta64(1, "D")
            if config.half_life_days is not None:
                weight = weight * np.power(0.5, np.maximum(age_days, 0.0) / config.half_life_days)
            if config.window_days is not None:
                weight = np.where(age_days > config.window_days, 0.0, weight)
        user = dataset.user_index(ev["user_id"].to_numpy())
        item = dataset.item_index(ev["item_id"].to_numpy())
        keep = (user >= 0) & (item >= 0) & ((weight > 0) | seen)
        return cls(user[keep].astype(np.int64), item[keep].astype(np.int64), time[keep], weight[keep].astype(float),
                   seen[keep], n_users, n_items)

    def matrix(self, binary: bool = False) -> sp.csr_matrix:
        """Users x items, summed weights (repeat plays add up), or 1 where any weight is positive."""
        values = (self.weight > 0).astype(np.float64) if binary else self.weight
        mat = sp.csr_matrix((values, (self.user, self.item)), shape=(self.n_users, self.n_items), dtype=np.float64)
        mat.sum_duplicates()
        mat.eliminate_zeros()
        if binary:
            mat.data[:] = 1.0
        return mat

    def seen_matrix(self) -> sp.csr_matrix:
        """Users x items, 1 where the member finished (implicit) or rated (explicit) the title."""
        mask = self.seen
        mat = sp.csr_matrix((np.ones(int(mask.sum())), (self.user[mask], self.item[mask])),
                            shape=(self.n_users, self.n_items))
        mat.sum_duplicates()
        mat.data[:] = 1.0
        return mat


# ------------------------------------------------------------------ batches
@dataclass(frozen=True)
class RecommendationArrays:
    """Recommendations as parallel arrays: user position, item index, score and rank (1 = best)."""

    user: np.ndarray
    item: np.ndarray
    score: np.ndarray
    rank: np.ndarray

    @classmethod
    def empty(cls) -> "RecommendationArrays":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, np.zeros(0), z)


@dataclass
class UserBatch:
    """A batch of users to score: external ids, dense indices (-1 when unknown at fit) and attributes."""

    ids: np.ndarray  # object array of external ids
    index: np.ndarray  # int64, -1 for users the model was not fitted on
    attributes: pd.DataFrame  # one row per user, aligned; columns USER_ATTRIBUTES where known

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def known(self) -> np.ndarray:
        return self.index >= 0


def load_generator(path: str | Path) -> "CandidateGenerator":
    """Load any saved generator (the manifest names its class)."""
    return CandidateGenerator.load(path)


# --------------------------------------------------------------- base class
@dataclass(eq=False)
class CandidateGenerator(abc.ABC):
    """Base of every candidate generator.

    Subclasses are dataclasses whose fields are the configuration; they implement
    `_fit(dataset)` (set fitted attributes), `_score(batch)` (a users x items score matrix,
    -inf where the generator has nothing to say) and `_state()`/`_set_state()` (the fitted
    arrays). The base class does the rest: input checks, id mapping, masking of seen,
    unavailable and age-inappropriate titles, top-n selection, the output frame and files.

    Attributes after `fit`: `user_ids_`, `item_ids_` (external ids by dense index),
    `seen_` (users x items CSR of finished or rated titles), `user_items_` (users x items CSR of
    summed interaction weights), `item_added_`, `item_min_age_`,
    `item_titles_`, `users_` (user attributes), `fitted_on_` (the data's fingerprint).
    """

    name: str | None = field(default=None, kw_only=True)

    source: ClassVar[str] = "base"
    #: What a user with no usable history gets: "fallback" (a non-personal list), "profile"
    #: (scored from attributes), or "empty" (no rows; the blend's popularity quota covers them).
    cold_start: ClassVar[Literal["fallback", "profile", "empty"]] = "empty"
    _registry: ClassVar[dict[str, type["CandidateGenerator"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        CandidateGenerator._registry[cls.__name__] = cls

    # ----------------------------------------------------------- identity
    @property
    def source_name(self) -> str:
        """The label this generator's rows carry in the `source` column (`name` or the class default)."""
        return self.name or self.source

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as plain JSON-able values (nested dataclasses as dicts)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def _from_config(cls: type[G], config: dict[str, Any]) -> G:
        kwargs = {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in config.items():
            if key not in fields:
                raise DataError(f"unknown config key {key!r} for {cls.__name__}", file=MANIFEST)
            default = fields[key].default
            if dataclasses.is_dataclass(default) and isinstance(value, dict):
                value = type(default)(**value)
            elif isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)

    # ----------------------------------------------------------------- fit
    def fit(self: G, dataset: Dataset) -> G:
        """Learn from `dataset` (use `Dataset.as_of(t)` to fit on what was known at t); returns self."""
        if not isinstance(dataset, Dataset):
            raise TypeError(f"fit expects a recsys Dataset, got {type(dataset).__name__}")
        if len(dataset.items) == 0:
            raise DataError("cannot fit a candidate generator on a dataset with no items", file=dataset.name,
                            column="item_id")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.isidentifier()):
            raise ValueError(f"name must be an identifier-like text (it becomes column names), got {self.name!r}")
        self._validate()
        _last_scores().pop(id(self), None)  # scores remembered from before this fit are stale
        config = getattr(self, "interactions", None) or InteractionConfig()
        config.validate()
        interactions = Interactions.from_dataset(dataset, config)
        self._fit_catalogue(dataset, interactions)
        self._fit(dataset, interactions)
        return self

    def _validate(self) -> None:
        """Check the configuration (called by fit; constructors hold no logic)."""

    @abc.abstractmethod
    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        """Set the generator's own fitted attributes (`interactions`: the weighted events)."""

    def _fit_catalogue(self, dataset: Dataset, interactions: Interactions) -> None:
        items, users = dataset.items, dataset.users
        self.user_ids_ = pd.Index(dataset.user_ids.astype(object), name="user_id")
        self.item_ids_ = pd.Index(dataset.item_ids.astype(object), name="item_id")
        if "added_at" in items.columns:
            self.item_added_ = pd.to_datetime(items["added_at"]).to_numpy(dtype="datetime64[ns]")
        else:
            self.item_added_ = np.full(len(items), np.datetime64("NaT"), dtype="datetime64[ns]")
        if "maturity_rating" in items.columns:
            ages = items["maturity_rating"].map(lambda r: MATURITY_MIN_AGE.get(str(r).strip().upper(), 0)
                                                if isinstance(r, str) else 0)
            self.item_min_age_ = ages.to_numpy(dtype=np.int64)
        else:
            self.item_min_age_ = np.zeros(len(items), dtype=np.int64)
        self.item_titles_ = (items["title"].astype(object).where(items["title"].notna(), items["item_id"])
                             .astype(str).to_numpy() if "title" in items.columns
                             else self.item_ids_.to_numpy().astype(str))
        keep = ["user_id"] + [c for c in USER_ATTRIBUTES if c in users.columns]
        self.users_ = users[keep].reset_index(drop=True).copy()
        self.users_["user_id"] = self.users_["user_id"].astype(object)
        self.feedback_ = dataset.feedback
        self.reference_time_ = dataset.end if dataset.end is not None else pd.NaT
        self.user_items_ = interactions.matrix()
        self.seen_ = interactions.seen_matrix()
        self.fitted_on_ = dataset.fingerprint()

    # ------------------------------------------------------------ checking
    def _check_fitted(self) -> None:
        if not hasattr(self, "item_ids_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(dataset) or {type(self).__name__}.load(path) first."
            )

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "item_ids_")

    # ----------------------------------------------------------- recommend
    def _batch(self, ids: pd.Index, users: pd.DataFrame | None) -> UserBatch:
        index = self.user_ids_.get_indexer(ids)
        cached = getattr(self, "_attribute_arrays", None)
        if cached is None or cached[0] is not self.users_:
            known = self.users_.set_index("user_id").reindex(self.user_ids_)
            arrays = {col: np.append(known[col].to_numpy(dtype=object) if col in known.columns
                                     else np.full(len(known), None, dtype=object), None) for col in USER_ATTRIBUTES}
            cached = (self.users_, arrays)
            self._attribute_arrays = cached
        attrs = {"user_id": ids.to_numpy(dtype=object)}
        for col in USER_ATTRIBUTES:
            attrs[col] = cached[1][col][index].copy()  # index -1 picks the trailing None
        if users is not None:
            if not isinstance(users, pd.DataFrame) or "user_id" not in users.columns:
                raise DataError("users must be a DataFrame with a user_id column", column="user_id")
            given = users.assign(user_id=as_id_index(users["user_id"]).to_numpy())
            given = given[given["user_id"].isin(ids)].drop_duplicates("user_id", keep="last")
            if len(given):
                rows = ids.get_indexer(given["user_id"])
                for col in USER_ATTRIBUTES:
                    if col in given.columns:
                        values = given[col].to_numpy(dtype=object)
                        present = pd.notna(values)
                        attrs[col][rows[present]] = values[present]
        return UserBatch(ids=ids.to_numpy(dtype=object), index=index.astype(np.int64),
                         attributes=pd.DataFrame(attrs))

    def _ages(self, batch: UserBatch) -> np.ndarray:
        return pd.to_numeric(batch.attributes["age"], errors="coerce").to_numpy(dtype=float)

    def _mask(self, scores: np.ndarray, batch: UserBatch, exclude_seen: bool, available: np.ndarray) -> None:
        """In place: -inf for unavailable, age-inappropriate and (optionally) already finished titles."""
        scores[:, ~available] = -np.inf
        ages = self._ages(batch)
        has_age = ~np.isnan(ages)
        if has_age.any() and self.item_min_age_.any():
            too_young = ages[has_age, None] < self.item_min_age_[None, :]
            rows = scores[has_age]
            rows[too_young] = -np.inf
            scores[has_age] = rows
        if exclude_seen and batch.known.any():
            rows = np.flatnonzero(batch.known)
            seen = self.seen_[batch.index[rows]].tocoo()
            scores[rows[seen.row], seen.col] = -np.inf

    def available_items(self, now: Any = None) -> np.ndarray:
        """Boolean mask over the catalogue: on the platform at `now` (every title when `now` is None)."""
        self._check_fitted()
        if now is None:
            return np.ones(len(self.item_ids_), dtype=bool)
        t = np.datetime64(to_time(now).to_datetime64(), "ns")
        added = self.item_added_
        return np.isnat(added) | (added <= t)

    def recommend(self, user_ids: Any, n: int = 100, exclude_seen: bool = True, now: Any = None,
                  users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Top-`n` candidates for each user: a frame [user_id, item_id, score, rank, source].

        Rows are ordered by user (first appearance in `user_ids`) then rank (1 = best). Only
        titles on the platform at `now` (all titles when None) and suitable for the user's age
        (when both ages and maturity ratings are known) are returned; `exclude_seen` drops
        titles the user finished (implicit) or rated (explicit). `users` (user_id plus age,
        gender, language, country) supplies attributes of users unknown at fit time, e.g.
        members who signed up since. A user the generator cannot score gets no rows (see the
        class's `cold_start`).
        """
        ids = self._user_list(user_ids)
        arrays = self.recommend_arrays(ids, n, exclude_seen, now, users)
        if len(arrays.user) == 0:
            return empty_recommendations()
        return pd.DataFrame({
            "user_id": ids.to_numpy(dtype=object)[arrays.user],
            "item_id": self.item_ids_.to_numpy()[arrays.item],
            "score": arrays.score,
            "rank": arrays.rank,
            "source": self.source_name,
        })

    def _user_list(self, user_ids: Any) -> pd.Index:
        """Distinct external ids in order of first appearance (blank ids dropped)."""
        self._check_fitted()
        ids = pd.Index(pd.unique(as_id_index(user_ids).to_numpy()), dtype=object)
        return ids[ids != ""]

    def recommend_arrays(self, ids: pd.Index, n: int = 100, exclude_seen: bool = True, now: Any = None,
                         users: pd.DataFrame | None = None) -> "RecommendationArrays":
        """`recommend` in dense indices: positions into `ids` and into `item_ids_` (for the blend)."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        available = self.available_items(now)
        parts = []
        for start in range(0, len(ids), _CHUNK):
            batch = self._batch(ids[start:start + _CHUNK], users)
            scores = np.asarray(self._score(batch), dtype=np.float64)
            if scores.shape != (len(batch), len(self.item_ids_)):
                raise RuntimeError(f"{type(self).__name__}._score returned shape {scores.shape}")
            if len(ids) <= _CHUNK:  # remembered (per thread) so score_items of the same request reuses it
                _last_scores()[id(self)] = (self, tuple(ids), users, scores.copy())
            scores = np.where(np.isnan(scores), -np.inf, scores)
            self._mask(scores, batch, exclude_seen, available)
            top, top_scores = top_n(scores, int(n))
            rows, cols = np.nonzero(np.isfinite(top_scores))
            parts.append(RecommendationArrays(rows + start, top[rows, cols], top_scores[rows, cols],
                                              (cols + 1).astype(np.int64)))
        if not parts:
            return RecommendationArrays.empty()
        return RecommendationArrays(*(np.concatenate([getattr(p, f) for p in parts])
                                      for f in ("user", "item", "score", "rank")))

    def score_items(self, user_ids: Any, users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Raw scores of every title for each user (users x items, external ids; -inf = no opinion).

        No masking: for inspection and for features of the ranking stage.
        """
        self._check_fitted()
        ids = pd.Index(pd.unique(as_id_index(user_ids).to_numpy()), dtype=object)
        last = _last_scores().get(id(self))
        if last is not None and last[0] is self and last[2] is users and last[1] == tuple(ids):
            scores = last[3]
        else:
            scores = np.asarray(self._score(self._batch(ids, users)), dtype=np.float64)
        return pd.DataFrame(scores, index=pd.Index(ids, name="user_id"), columns=self.item_ids_)

    @abc.abstractmethod
    def _score(self, batch: UserBatch) -> np.ndarray:
        """Scores (len(batch) x n_items); -inf (or NaN) where there is nothing to say."""

    def mark_seen(self, user_ids: Any, item_ids: Any) -> "CandidateGenerator":
        """Record that these (member, title) pairs were finished since fit, so `exclude_seen` drops them.

        Nothing learned changes (no re-training). `seen_` is replaced, not modified in place, so a
        `copy.copy` of a fitted generator can observe without touching the original. Pairs with a
        member or title this generator does not know are ignored.
        """
        self._check_fitted()
        u = self.user_ids_.get_indexer(as_id_index(user_ids))
        i = self.item_ids_.get_indexer(as_id_index(item_ids))
        ok = (u >= 0) & (i >= 0)
        if ok.any():
            extra = sp.csr_matrix((np.ones(int(ok.sum())), (u[ok], i[ok])), shape=self.seen_.shape)
            self.seen_ = ((self.seen_ + extra) > 0).astype(np.float64).tocsr()
        return self

    # ------------------------------------------------------------- persist
    def _state(self) -> dict[str, np.ndarray]:
        """The generator's own fitted arrays (numeric or fixed-width text only)."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray], path: Path) -> None:
        """Restore what `_state` (and `_save_extra`) wrote."""

    def _save_extra(self, path: Path) -> None:
        """Write files beyond arrays.npz (e.g. safetensors weights); atomically."""

    def _fitted_summary(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | Path) -> Path:
        """Write the fitted generator to folder `path`: manifest.json, arrays.npz, users.parquet (+ extras).

        Every file is written through a temp file and renamed; the manifest comes last, so a
        folder with a manifest is complete.
        """
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        seen, ui = self.seen_.tocsr(), self.user_items_.tocsr()
        arrays = {
            "item_ids": np.asarray(self.item_ids_.to_numpy(), dtype=str),
            "item_titles": np.asarray(self.item_titles_, dtype=str),
            "item_added": self.item_added_.astype("datetime64[ns]").view(np.int64),
            "item_min_age": self.item_min_age_.astype(np.int64),
            "seen_indptr": seen.indptr.astype(np.int64),
            "seen_indices": seen.indices.astype(np.int64),
            "ui_indptr": ui.indptr.astype(np.int64), "ui_indices": ui.indices.astype(np.int64),
            "ui_data": ui.data.astype(np.float64),
        }
        own = self._state()
        clash = set(own) & set(arrays)
        if clash:
            raise RuntimeError(f"state names clash with the base arrays: {sorted(clash)}")
        arrays.update(own)
        _write_npz(folder / ARRAYS, arrays)
        users = self.users_.copy()
        for col in users.columns:
            if col != "age":
                users[col] = users[col].astype("string")
        _write_parquet(folder / USERS_FILE, users)
        self._save_extra(folder)
        manifest = {
            "format": "recsys.candidates",
            "version": FORMAT_VERSION,
            "class": type(self).__name__,
            "source": self.source_name,
            "config": self.get_config(),
            "feedback": self.feedback_,
            "reference_time": None if pd.isna(self.reference_time_) else self.reference_time_.isoformat(),
            "data_fingerprint": self.fitted_on_,
            "n_users": int(len(self.user_ids_)),
            "n_items": int(len(self.item_ids_)),
            "fitted": self._fitted_summary(),
        }
        _write_json(folder / MANIFEST, manifest)
        return folder

    @classmethod
    def load(cls: type[G], path: str | Path) -> G:
        """Read a folder written by `save` (never unpickles anything)."""
        folder = Path(path)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise DataError("no saved candidate generator here (manifest.json missing)", file=str(folder))
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise DataError(f"unreadable manifest ({err})", file=str(manifest_path)) from err
        if manifest.get("format") != "recsys.candidates" or manifest.get("version") != FORMAT_VERSION:
            raise DataError(f"not a recsys.candidates v{FORMAT_VERSION} artifact", file=str(manifest_path))
        if manifest.get("class") == "TwoTowerGenerator":
            from . import two_tower  # noqa: F401  (registers the class; torch is imported only now)
        klass = CandidateGenerator._registry.get(manifest.get("class", ""))
        if klass is None:
            raise DataError(f"unknown generator class {manifest.get('class')!r}", file=str(manifest_path))
        if cls is not CandidateGenerator and not issubclass(klass, cls):
            raise DataError(f"this folder holds a {klass.__name__}, not a {cls.__name__}", file=str(manifest_path))
        obj = klass._from_config(manifest["config"])
        with np.load(folder / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        obj.item_ids_ = pd.Index(arrays["item_ids"].astype(object), name="item_id")
        obj.item_titles_ = arrays["item_titles"].astype(str)
        obj.item_added_ = arrays["item_added"].view("datetime64[ns]")
        obj.item_min_age_ = arrays["item_min_age"]
        users = pd.read_parquet(folder / USERS_FILE)
        for col in users.columns:
            if col != "age":
                users[col] = users[col].astype(object).where(users[col].notna(), None)
        obj.users_ = users
        obj.user_ids_ = pd.Index(users["user_id"].astype(object), name="user_id")
        n_users, n_items = len(obj.user_ids_), len(obj.item_ids_)
        indptr, indices = arrays["seen_indptr"], arrays["seen_indices"]
        obj.seen_ = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n_users, n_items))
        obj.user_items_ = sp.csr_matrix((arrays["ui_data"], arrays["ui_indices"], arrays["ui_indptr"]),
                                        shape=(n_users, n_items))
        obj.feedback_ = manifest["feedback"]
        ref = manifest.get("reference_time")
        obj.reference_time_ = pd.Timestamp(ref) if ref else pd.NaT
        obj.fitted_on_ = manifest.get("data_fingerprint")
        obj._set_state(arrays, folder)
        return obj


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices and scores of the `n` highest scores, best first.

    Ties are broken by the lower column index, so results are reproducible.
    """
    b, m = scores.shape
    k = min(n, m)
    if k == 0 or b == 0:
        return np.zeros((b, 0), dtype=np.int64), np.zeros((b, 0))
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, part, 1).min(axis=1)
        # Titles tied with the k-th score may be left out arbitrarily: re-sort those rows fully so
        # the lowest indices win (deterministic). Ties at -inf do not matter (they are dropped).
        tied_all = (scores == kth[:, None]).sum(axis=1)
        tied_in = (np.take_along_axis(scores, part, 1) == kth[:, None]).sum(axis=1)
        rows = np.flatnonzero(np.isfinite(kth) & (tied_all > tied_in))
        if len(rows):
            cols = np.broadcast_to(np.arange(m), (len(rows), m))
            part[rows] = np.lexsort((cols, -scores[rows]), axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(m), (b, m)).copy()
    vals = np.take_along_axis(scores, part, 1)
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, 1)
    return idx.astype(np.int64), np.take_along_axis(vals, order, 1)
