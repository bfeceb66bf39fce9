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
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..artifacts import Component, npz_bytes, read_component, read_npz, write_component
from ..data.dataset import Dataset
from ..data.errors import DataError
from ..data.schema import maturity_min_ages
from ..data.validation import normalize_ids
from ..errors import ArtifactError, NotFittedError
from ..features.ragged import ragged_ranges
from ..ids import IdIndex
from ..labels import POSITIVE, LabelConfig, WeightConfig, duration_weights, label_events
from ..registry import Registry

__all__ = [
    "SOURCES",
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
    "blocked_matmul",
]

RECOMMENDATION_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "score", "rank", "source")
FORMAT = "recsys.candidates"
FORMAT_VERSION = 2
ARRAYS = "arrays.npz"
USERS_FILE = "users.parquet"
USER_ATTRIBUTES: tuple[str, ...] = ("age", "gender", "language", "country")
BLOCK_ROWS = 32  # dense products run in blocks of this many members (see blocked_matmul)
_CHUNK = 2048  # users scored at once: bounds memory at _CHUNK x n_items floats
_CELLS = 4_000_000  # ... and at about this many members x titles cells on large catalogues


def member_chunk(n_items: int) -> int:
    """How many members to score at once for a catalogue of `n_items` titles."""
    return max(1, min(_CHUNK, _CELLS // max(n_items, 1)))


def _load_sources() -> None:
    from . import collaborative, content, popularity, two_tower  # noqa: F401  (each registers its classes)


#: Candidate sources by name (the class attribute `source`): config, command line, app and contract tests read it.
SOURCES: Registry = Registry("candidate source", key="source", loader=_load_sources)


def blocked_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b computed in blocks of BLOCK_ROWS rows (the last one zero-padded), in float64.

    BLAS rounds a row of a product differently depending on how many rows it is multiplied
    with; with one fixed block shape every member's scores are the same bits whether scored
    alone or in a batch of thousands. Single precision is widened first: OpenBLAS's AVX-512
    float32 kernels also round a row by its position within the block (up to 4e-6 on a 32 x 32
    by 32 x 1,000 product, 0 in float64), which moved two-tower scores between a member served
    alone and in a Spark partition.
    """
    a, b = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    n = len(a)
    out = np.empty((n, b.shape[1]), dtype=np.result_type(a, b))
    if n == 0:
        return out
    full = n - n % BLOCK_ROWS
    for lo in range(0, full, BLOCK_ROWS):
        np.matmul(a[lo:lo + BLOCK_ROWS], b, out=out[lo:lo + BLOCK_ROWS])
    if full < n:
        pad = np.zeros((BLOCK_ROWS, a.shape[1]), dtype=a.dtype)
        pad[: n - full] = a[full:]
        out[full:] = (pad @ b)[: n - full]
    return out

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
    """A batch of users to score: external ids, dense indices (-1 when unknown at fit) and attributes.

    `attributes` maps each of USER_ATTRIBUTES to an object array aligned with `ids` (None where
    unknown).
    """

    ids: np.ndarray  # object array of external ids
    index: np.ndarray  # int64, -1 for users the model was not fitted on
    attributes: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def known(self) -> np.ndarray:
        return self.index >= 0

    def ages(self) -> np.ndarray:
        """Ages as floats (NaN where unknown)."""
        return numeric(self.attributes["age"])

    def texts(self, column: str) -> np.ndarray:
        """A text attribute as str, "" where unknown."""
        return np.array(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                         for v in self.attributes[column]], dtype=object)


def numeric(values: np.ndarray) -> np.ndarray:
    """Object values as floats, NaN for anything that is not a number."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)


@dataclass(frozen=True)
class SourceResult:
    """One source's answer for a batch: its top-n (dense indices) and the raw scores they came from."""

    arrays: "RecommendationArrays"
    raw: np.ndarray  # members x titles, unmasked (-inf / NaN: no opinion)


def load_generator(path: str | Path) -> "CandidateGenerator":
    """Load any saved generator (the manifest names its class)."""
    return CandidateGenerator.load(path)


# --------------------------------------------------------------- base class
@dataclass(eq=False)
class CandidateGenerator(abc.ABC):
    """Base of every candidate generator.

    Subclasses are dataclasses whose fields are the configuration; they implement
    `_fit(dataset)` (set fitted attributes), `_score(batch)` (a users x items score matrix,
    -inf where the generator has nothing to say; the same bits for a member alone or in a batch)
    and `_state()`/`_set_state()` (the fitted arrays). The base class does the rest: input
    checks, id mapping, masking of seen, unavailable and age-inappropriate titles, top-n
    selection, the output frame and files.

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
    #: Whether scores differ between members (popularity's do not: one ranking serves everyone).
    personal: ClassVar[bool] = True
    _classes: ClassVar[dict[str, type["CandidateGenerator"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        CandidateGenerator._classes[cls.__name__] = cls  # the manifest names the class (blend included)

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
    def _from_config(cls: type[G], config: dict[str, Any], where: str) -> G:
        kwargs = {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in config.items():
            if key not in fields:
                raise ArtifactError(f"unknown config key {key!r} for {cls.__name__}", file=where)
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
        config = getattr(self, "interactions", None) or InteractionConfig()
        config.validate()
        interactions = Interactions.from_dataset(dataset, config)
        self._fit_catalogue(dataset, interactions)
        self._fit(dataset, interactions)
        self._prepare()
        return self

    def _validate(self) -> None:
        """Check the configuration (called by fit; constructors hold no logic)."""

    @abc.abstractmethod
    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        """Set the generator's own fitted attributes (`interactions`: the weighted events)."""

    def _prepare(self) -> None:
        """Derive serving look-ups from the fitted state (after fit and after load)."""
        self.user_lookup_ = IdIndex(self.user_ids_)
        self.item_lookup_ = IdIndex(self.item_ids_)
        known = self.users_.set_index("user_id").reindex(self.user_ids_)
        self.user_attributes_ = {col: np.append(known[col].to_numpy(dtype=object) if col in known.columns
                                                else np.full(len(known), None, dtype=object), None)
                                 for col in USER_ATTRIBUTES}
        for col, values in self.user_attributes_.items():
            values[pd.isna(values)] = None

    def _fit_catalogue(self, dataset: Dataset, interactions: Interactions) -> None:
        items, users = dataset.items, dataset.users
        self.user_ids_ = pd.Index(dataset.user_ids.astype(object), name="user_id")
        self.item_ids_ = pd.Index(dataset.item_ids.astype(object), name="item_id")
        if "added_at" in items.columns:
            self.item_added_ = pd.to_datetime(items["added_at"]).to_numpy(dtype="datetime64[ns]")
        else:
            self.item_added_ = np.full(len(items), np.datetime64("NaT"), dtype="datetime64[ns]")
        if "maturity_rating" in items.columns:
            self.item_min_age_ = maturity_min_ages(items["maturity_rating"]).astype(np.int64)
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
    def batch(self, ids: Any, users: pd.DataFrame | None = None) -> UserBatch:
        """The members `ids` (external) with their dense indices and attributes; `users` (user_id plus
        age, gender, language, country) supplies or overrides attributes, e.g. of members who
        signed up since fit."""
        ids = np.asarray(ids, dtype=object)
        index = self.user_lookup_.positions(ids)
        attrs = {col: self.user_attributes_[col][index] for col in USER_ATTRIBUTES}  # -1 picks the trailing None
        if users is not None:
            if not isinstance(users, pd.DataFrame) or "user_id" not in users.columns:
                raise DataError("users must be a DataFrame with a user_id column", column="user_id")
            wanted = IdIndex(ids)
            supplied = users.assign(user_id=as_id_index(users["user_id"]).to_numpy())
            supplied = supplied.drop_duplicates("user_id", keep="last")
            rows = wanted.positions(supplied["user_id"].to_numpy())
            supplied, rows = supplied[rows >= 0], rows[rows >= 0]
            for col in USER_ATTRIBUTES:
                if len(rows) and col in supplied.columns:
                    values = supplied[col].to_numpy(dtype=object)
                    present = pd.notna(values)
                    attrs[col][rows[present]] = values[present]
        return UserBatch(ids=ids, index=index, attributes=attrs)

    def _mask(self, scores: np.ndarray, batch: UserBatch, exclude_seen: bool, available: np.ndarray) -> None:
        """In place: -inf for unavailable, age-inappropriate and (optionally) already finished titles."""
        scores[:, ~available] = -np.inf
        ages = batch.ages()
        has_age = ~np.isnan(ages)
        if has_age.any() and self.item_min_age_.any():
            rows = np.flatnonzero(has_age)
            too_young = ages[rows, None] < self.item_min_age_[None, :]
            r, c = np.nonzero(too_young)
            scores[rows[r], c] = -np.inf
        if exclude_seen and batch.known.any():
            rows = np.flatnonzero(batch.known)
            seen = self.seen_
            pos, row = ragged_ranges(seen.indptr[batch.index[rows]], seen.indptr[batch.index[rows] + 1])
            scores[rows[row], seen.indices[pos]] = -np.inf
            added = getattr(self, "seen_added_", None)
            if added is not None and len(added):  # finished since fit (mark_seen): (member, title) codes, sorted
                n = len(self.item_ids_)
                member = batch.index[rows].astype(np.int64)
                lo = np.searchsorted(added, member * n, side="left")
                hi = np.searchsorted(added, (member + 1) * n, side="left")
                pos, row = ragged_ranges(lo, hi)
                scores[rows[row], added[pos] % n] = -np.inf

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

    def recommend_arrays(self, ids: Any, n: int = 100, exclude_seen: bool = True, now: Any = None,
                         users: pd.DataFrame | None = None) -> "RecommendationArrays":
        """`recommend` in dense indices: positions into `ids` and into `item_ids_` (for the blend)."""
        step = member_chunk(len(self.item_ids_))
        parts = [self.select(self.batch(np.asarray(ids, dtype=object)[lo:lo + step], users), n, exclude_seen,
                             self.available_items(now)).arrays for lo in range(0, len(ids), step)]
        for k, lo in enumerate(range(0, len(ids), step)):
            parts[k] = RecommendationArrays(parts[k].user + lo, parts[k].item, parts[k].score, parts[k].rank)
        if not parts:
            return RecommendationArrays.empty()
        return RecommendationArrays(*(np.concatenate([getattr(p, f) for p in parts])
                                      for f in ("user", "item", "score", "rank")))

    def select(self, batch: UserBatch, n: int, exclude_seen: bool, available: np.ndarray) -> SourceResult:
        """This source's top-`n` for one batch, with the raw scores (for the ranker's source features)."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        raw = np.asarray(self._score(batch), dtype=np.float64)
        if raw.shape != (len(batch), len(self.item_ids_)):
            raise RuntimeError(f"{type(self).__name__}._score returned shape {raw.shape}")
        scores = np.where(np.isnan(raw), -np.inf, raw)
        self._mask(scores, batch, exclude_seen, available)
        if not self.personal and len(scores):  # one ranking for everyone: order the titles once
            order = np.argsort(-np.where(np.isnan(raw[0]), -np.inf, raw[0]), kind="stable")
            rows, items, values = top_n_shared(scores, order, int(n))
            first = np.searchsorted(rows, rows, side="left")
            return SourceResult(RecommendationArrays(rows, items, values,
                                                     (np.arange(len(rows)) - first + 1).astype(np.int64)), raw)
        top, top_scores = top_n(scores, int(n))
        rows, cols = np.nonzero(np.isfinite(top_scores))
        return SourceResult(RecommendationArrays(rows, top[rows, cols], top_scores[rows, cols],
                                                 (cols + 1).astype(np.int64)), raw)

    def score_items(self, user_ids: Any, users: pd.DataFrame | None = None) -> pd.DataFrame:
        """Raw scores of every title for each user (users x items, external ids; -inf = no opinion).

        No masking: for inspection and for features of the ranking stage.
        """
        self._check_fitted()
        ids = pd.Index(pd.unique(as_id_index(user_ids).to_numpy()), dtype=object)
        scores = np.asarray(self._score(self.batch(ids.to_numpy(dtype=object), users)), dtype=np.float64)
        return pd.DataFrame(scores, index=pd.Index(ids, name="user_id"), columns=self.item_ids_)

    @abc.abstractmethod
    def _score(self, batch: UserBatch) -> np.ndarray:
        """Scores (len(batch) x n_items); -inf (or NaN) where there is nothing to say."""

    def mark_seen(self, user_ids: Any, item_ids: Any) -> "CandidateGenerator":
        """Record that these (member, title) pairs were finished since fit, so `exclude_seen` drops them.

        Nothing learned changes (no re-training). The pairs go to `seen_added_` (sorted member x title
        codes), which is replaced, not modified in place, so a `copy.copy` of a fitted generator can
        observe without touching the original. Pairs with a member or title this generator does not
        know are ignored.
        """
        self._check_fitted()
        u = self.user_lookup_.positions(as_id_index(user_ids).to_numpy())
        i = self.item_lookup_.positions(as_id_index(item_ids).to_numpy())
        ok = (u >= 0) & (i >= 0)
        if ok.any():
            codes = u[ok] * len(self.item_ids_) + i[ok]
            old = getattr(self, "seen_added_", None)
            self.seen_added_ = np.union1d(old, codes) if old is not None else np.unique(codes)
        return self

    def seen_matrix(self) -> sp.csr_matrix:
        """Users x items, 1 where the member finished (or rated) the title: at fit, or since (mark_seen)."""
        self._check_fitted()
        added = getattr(self, "seen_added_", None)
        if added is None or len(added) == 0:
            return self.seen_
        n = len(self.item_ids_)
        extra = sp.csr_matrix((np.ones(len(added)), (added // n, added % n)), shape=self.seen_.shape)
        return ((self.seen_ + extra) > 0).astype(np.float64).tocsr()

    # ------------------------------------------------------------- persist
    def _state(self) -> dict[str, np.ndarray]:
        """The generator's own fitted arrays (numeric or fixed-width text only)."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray], component: Component) -> None:
        """Restore what `_state` (and `_extra_files`) wrote."""

    def _extra_files(self) -> dict[str, bytes]:
        """Files beyond arrays.npz and users.parquet (e.g. safetensors weights)."""
        return {}

    def _save_parts(self, folder: Path) -> list[str]:
        """Write sub-components (the blend's sources) into `folder`; returns their files for the manifest."""
        return []

    def _fitted_summary(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | Path) -> Path:
        """Write the fitted generator to folder `path` as one component: arrays.npz, users.parquet (+ extras),
        and a manifest with every file's checksum (written last: a folder with a manifest is complete)."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        seen, ui = self.seen_matrix().tocsr(), self.user_items_.tocsr()
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
        users = self.users_.copy()
        for col in users.columns:
            if col != "age":
                users[col] = users[col].astype("string")
        buf = io.BytesIO()
        users.to_parquet(buf, index=False)
        files = {ARRAYS: npz_bytes(**arrays), USERS_FILE: buf.getvalue(), **self._extra_files()}
        parts = self._save_parts(folder)
        write_component(folder, FORMAT, FORMAT_VERSION, files, {
            "class": type(self).__name__,
            "source": self.source_name,
            "config": self.get_config(),
            "feedback": self.feedback_,
            "reference_time": None if pd.isna(self.reference_time_) else self.reference_time_.isoformat(),
            "data_fingerprint": self.fitted_on_,
            "n_users": int(len(self.user_ids_)),
            "n_items": int(len(self.item_ids_)),
            "fitted": self._fitted_summary(),
        }, written=parts)
        return folder

    @classmethod
    def load(cls: type[G], path: str | Path) -> G:
        """Read a folder written by `save` (checksums verified; never unpickles anything)."""
        component = read_component(path, FORMAT, FORMAT_VERSION)
        where = str(component.folder / "manifest.json")
        if component.get("class") == "TwoTowerGenerator":
            from . import two_tower  # noqa: F401  (defines the class; torch is imported only now)
        klass = CandidateGenerator._classes.get(component.get("class", ""))
        if klass is None:
            raise ArtifactError(f"unknown generator class {component.get('class')!r}", file=where)
        if cls is not CandidateGenerator and not issubclass(klass, cls):
            raise ArtifactError(f"this folder holds a {klass.__name__}, not a {cls.__name__}", file=where)
        arrays = read_npz(component.read(ARRAYS), (), str(component.folder / ARRAYS))
        try:
            obj = klass._from_config(component["config"], where)
            obj.item_ids_ = pd.Index(arrays["item_ids"].astype(object), name="item_id")
            obj.item_titles_ = arrays["item_titles"].astype(str)
            obj.item_added_ = arrays["item_added"].view("datetime64[ns]")
            obj.item_min_age_ = arrays["item_min_age"]
            users = pd.read_parquet(io.BytesIO(component.read(USERS_FILE)))
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
            obj.feedback_ = component["feedback"]
            ref = component.get("reference_time")
            obj.reference_time_ = pd.Timestamp(ref) if ref else pd.NaT
            obj.fitted_on_ = component.get("data_fingerprint")
            obj._set_state(arrays, component)
            obj._prepare()
        except ArtifactError:
            raise
        except (KeyError, ValueError, TypeError, OSError, RuntimeError) as err:
            raise ArtifactError(f"could not restore the {klass.__name__} ({type(err).__name__}: {err})",
                                file=where) from err
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
    part = np.sort(part, axis=1)  # index order: a stable sort by score then breaks ties by the lower index
    vals = np.take_along_axis(scores, part, 1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, 1).astype(np.int64), np.take_along_axis(vals, order, 1)


def top_n_shared(scores: np.ndarray, order: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`top_n` for rows that rank titles in one shared `order` (best first) and differ only by masked (-inf)
    titles: each row's first `n` finite titles in that order. Returns (row, column, score) of the kept cells."""
    ranked = scores[:, order]
    finite = np.isfinite(ranked)
    place = np.cumsum(finite, axis=1)
    rows, cols = np.nonzero(finite & (place <= n))
    return rows, order[cols], ranked[rows, cols]
