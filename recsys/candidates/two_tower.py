"""Two-tower neural retrieval (PyTorch): a user tower and an item tower meeting in one vector space.

Item tower: title features (genres, language, maturity, kind, tags, public rating, revenue,
time on the platform, recent popularity) plus the synopsis embedding (its top principal
components), through an MLP, plus a learned id embedding. User tower: member features (age
band, gender, language) plus the duration-weighted mean of learned history embeddings of
the titles they watched (leaving out the target title while training), through an MLP. Trained on (member, title) interactions with in-batch
negatives (sampled softmax with log-frequency correction), each example weighted by its
interaction weight (minutes watched). Item vectors are exported as a matrix; retrieval is
a plain matrix product. Seeded; `device="auto"` (the default) trains on CUDA when torch sees
a GPU, else on the CPU; `"cpu"` forces the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.dataset import Dataset
from ..data.errors import DataError
from ..errors import ArtifactError
from .base import BLOCK_ROWS, SOURCES, CandidateGenerator, InteractionConfig, Interactions, UserBatch, blocked_matmul, \
    list_cells
from .content import AGE_BANDS, age_band
from .popularity import decayed_popularity

__all__ = ["TwoTowerGenerator", "ItemTower", "UserTower"]

WEIGHTS_FILE = "two_tower.safetensors"
_CATEGORICAL_USER = ("gender", "language")


def _one_hot(values: np.ndarray, vocab: list[str]) -> np.ndarray:
    lookup = {v: k for k, v in enumerate(vocab)}
    pos = np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
    out = np.zeros((len(values), len(vocab) + 1), dtype=np.float32)
    out[np.arange(len(values)), np.where(pos >= 0, pos, len(vocab))] = 1.0  # last column: unknown
    return out


def _texts(series: pd.Series) -> np.ndarray:
    return series.astype(object).where(series.notna(), "").astype(str).to_numpy()


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros_like(x)
    mu, sd = x[finite].mean(), x[finite].std()
    return np.where(finite, (x - mu) / (sd if sd > 0 else 1.0), 0.0)


class ItemTower(nn.Module):
    """Title features -> MLP -> vector, plus a learned id embedding; L2-normalised."""

    def __init__(self, n_features: int, n_items: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.ids = nn.Embedding(n_items, dim)
        nn.init.normal_(self.ids.weight, std=0.01)

    def forward(self, features: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.mlp(features) + self.ids(items), dim=-1)


class UserTower(nn.Module):
    """[member features, weighted mean of history item embeddings] -> MLP -> vector; L2-normalised."""

    def __init__(self, n_features: int, n_items: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.history = nn.Embedding(n_items, dim)
        nn.init.normal_(self.history.weight, std=0.1)
        self.mlp = nn.Sequential(nn.Linear(n_features + dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.skip = nn.Linear(dim, dim, bias=False)

    def forward(self, features: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.mlp(torch.cat([features, history], dim=-1)) + self.skip(history), dim=-1)


@SOURCES.register
@dataclass(eq=False)
class TwoTowerGenerator(CandidateGenerator):
    """Two-tower retrieval. Scores are cosine(user vector, item vector) / temperature.

    Members with no history are scored from their features alone (and unknown members from
    the attributes given to `recommend(..., users=...)`), so the tower also serves cold starts.
    """

    dim: int = 64
    hidden: int = 128
    epochs: int = 4
    batch_size: int = 512
    learning_rate: float = 0.005
    weight_decay: float = 1e-4
    temperature: float = 0.2
    use_text: bool = True
    text_dims: int = 32
    max_tags: int = 64
    seed: int = 0
    threads: int = 1
    device: str = "auto"
    cache_dir: str | None = None
    interactions: InteractionConfig = InteractionConfig()

    source = "two_tower"
    cold_start = "profile"

    def _validate(self) -> None:
        for name in ("dim", "hidden", "epochs", "batch_size", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"TwoTowerGenerator.{name} must be an integer >= 1, got {value!r}")
        for name in ("learning_rate", "temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"TwoTowerGenerator.{name} must be a number > 0, got {value!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")

    def _torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise DataError("device='cuda' but torch sees no CUDA device", hint="use device='auto' or 'cpu'")
        return torch.device(self.device)

    # -------------------------------------------------------------- features
    def _item_features(self, dataset: Dataset, interactions: Interactions) -> np.ndarray:
        items = dataset.items
        n = len(items)
        blocks: list[np.ndarray] = []
        if "genres" in items.columns:
            cells = list_cells(items["genres"])
            vocab = sorted({g for row in cells for g in row})
            mat = np.zeros((n, len(vocab)), dtype=np.float32)
            pos = {g: k for k, g in enumerate(vocab)}
            for r, row in enumerate(cells):
                for g in row:
                    mat[r, pos[g]] = 1.0
            blocks.append(mat / np.maximum(mat.sum(axis=1, keepdims=True), 1.0))
        if "tags" in items.columns and self.max_tags > 0:
            cells = list_cells(items["tags"])
            counts = pd.Series([t for row in cells for t in row], dtype=object).value_counts()
            vocab = counts.index[: self.max_tags].tolist()
            pos = {g: k for k, g in enumerate(vocab)}
            mat = np.zeros((n, len(vocab)), dtype=np.float32)
            for r, row in enumerate(cells):
                for t in row:
                    if t in pos:
                        mat[r, pos[t]] = 1.0
            blocks.append(mat)
        for col in ("original_language", "maturity_rating", "kind"):
            if col in items.columns:
                values = _texts(items[col])
                blocks.append(_one_hot(values, sorted(set(values) - {""}))[:, :-1])
        numeric = []
        if "public_rating" in items.columns:
            numeric.append(_standardise(pd.to_numeric(items["public_rating"], errors="coerce").to_numpy(dtype=float)))
        if "revenue" in items.columns:
            rev = pd.to_numeric(items["revenue"], errors="coerce").to_numpy(dtype=float)
            numeric += [_standardise(np.log1p(rev)), np.isfinite(rev).astype(float)]
        if "added_at" in items.columns and not pd.isna(self.reference_time_):
            days = (self.reference_time_ - pd.to_datetime(items["added_at"])).dt.total_seconds().to_numpy() / 86400
            numeric += [_standardise(np.log1p(np.clip(days, 0, None))), (days < 30).astype(float)]
        pop = decayed_popularity(interactions, self.reference_time_, 28.0, 7.0)
        numeric.append(_standardise(np.log1p(pop)))
        blocks.append(np.column_stack(numeric).astype(np.float32))
        if self.use_text and "synopsis" in items.columns and items["synopsis"].notna().any():
            from ..embeddings import get_encoder

            emb = get_encoder(self.cache_dir).encode(_texts(items["synopsis"]).tolist()).astype(np.float64)
            emb = emb - emb.mean(axis=0)
            k = min(self.text_dims, *emb.shape)
            if k > 0:  # principal components keep the tower small (384 -> text_dims inputs)
                _, sing, vt = np.linalg.svd(emb, full_matrices=False)
                blocks.append((emb @ vt[:k].T / max(sing[0], 1e-12) * math.sqrt(len(emb))).astype(np.float32))
        return np.hstack(blocks).astype(np.float32)

    def _user_features(self, batch: UserBatch) -> np.ndarray:
        band = age_band(batch.ages())
        blocks = [np.eye(len(AGE_BANDS) + 1, dtype=np.float32)[np.where(band >= 0, band, len(AGE_BANDS))]]
        for col in _CATEGORICAL_USER:
            blocks.append(_one_hot(batch.texts(col), self.user_vocab_[col]))
        return np.hstack(blocks)

    # ------------------------------------------------------------------- fit
    def _fit(self, dataset: Dataset, interactions: Interactions) -> None:
        device = self._torch_device()
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            self._train(dataset, interactions, device)
        finally:
            torch.set_num_threads(previous_threads)

    def _train(self, dataset: Dataset, interactions: Interactions, device: torch.device) -> None:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        attrs = self.users_.reindex(columns=["user_id", *("age", "gender", "language", "country")])
        self.user_vocab_ = {col: sorted(set(_texts(attrs[col])) - {""}) for col in _CATEGORICAL_USER}
        item_x = torch.from_numpy(self._item_features(dataset, interactions)).to(device)
        members = UserBatch(ids=attrs["user_id"].to_numpy(dtype=object), index=np.arange(len(attrs)),
                            attributes={c: attrs[c].to_numpy(dtype=object) for c in ("age", "gender", "language",
                                                                                     "country")})
        user_x = torch.from_numpy(self._user_features(members)).to(device)
        X = self.user_items_.tocsr().astype(np.float32)
        n_users, n_items = X.shape
        self.item_tower_ = ItemTower(item_x.shape[1], n_items, self.hidden, self.dim).to(device)
        self.user_tower_ = UserTower(user_x.shape[1], n_items, self.dim, self.hidden).to(device)
        coo = X.tocoo()
        pair_user, pair_item, pair_w = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float32)
        mass = np.asarray(X.sum(axis=1)).ravel().astype(np.float32)
        if len(pair_user):
            freq = np.bincount(pair_item, minlength=n_items).astype(np.float64)
            log_q = torch.from_numpy(np.log(np.maximum(freq, 1.0) / freq.sum()).astype(np.float32)).to(device)
            params = list(self.item_tower_.parameters()) + list(self.user_tower_.parameters())
            opt = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.weight_decay)
            mass_t = torch.from_numpy(mass).to(device)
            w_norm = pair_w / pair_w.mean()
            for _ in range(self.epochs):
                order = rng.permutation(len(pair_user))
                for start in range(0, len(order), self.batch_size):
                    idx = order[start:start + self.batch_size]
                    if len(idx) < 2:
                        continue
                    u = torch.from_numpy(pair_user[idx]).to(device)
                    i = torch.from_numpy(pair_item[idx]).to(device)
                    w = torch.from_numpy(w_norm[idx]).to(device)
                    w_ui = torch.from_numpy(pair_w[idx]).to(device)
                    V = self.item_tower_(item_x[i], i)
                    E = self.user_tower_.history.weight
                    rows = torch.from_numpy(X[pair_user[idx]].toarray()).to(device)
                    hist_sum = rows @ E - w_ui[:, None] * E[i]  # leave the target title out
                    rest = (mass_t[u] - w_ui).clamp_min(0)[:, None]
                    history = torch.where(rest > 1e-6, hist_sum / rest.clamp_min(1e-6), torch.zeros_like(hist_sum))
                    U = self.user_tower_(user_x[u], history)
                    logits = (U @ V.T) / self.temperature - log_q[i][None, :]
                    same = i[:, None] == i[None, :]
                    eye = torch.eye(len(idx), dtype=torch.bool, device=device)
                    logits = logits.masked_fill(same & ~eye, float("-inf"))
                    target = torch.arange(len(idx), device=device)
                    loss = (nn.functional.cross_entropy(logits, target, reduction="none") * w).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        self._export(item_x, X, mass)

    @torch.no_grad()
    def _export(self, item_x: torch.Tensor, X, mass: np.ndarray) -> None:
        self.item_tower_.eval()
        self.user_tower_.eval()
        V = self.item_tower_(item_x, torch.arange(item_x.shape[0], device=item_x.device))
        self.item_vectors_ = V.detach().cpu().numpy().astype(np.float32)
        E = self.user_tower_.history.weight.detach().cpu().numpy()
        hist = np.asarray(X @ E) / np.maximum(mass, 1e-6)[:, None]
        self.user_history_ = np.where((mass > 0)[:, None], hist, 0.0).astype(np.float32)
        self.item_tower_.cpu()
        self.user_tower_.cpu()

    # ----------------------------------------------------------------- score
    @torch.no_grad()
    def user_vectors(self, batch: UserBatch) -> np.ndarray:
        """The user tower's output for a batch (history for known members, zeros for the rest).

        The tower runs on blocks of BLOCK_ROWS members, so a member's vector is the same bits
        whether asked for alone or in a batch.
        """
        feats = self._user_features(batch)
        history = np.zeros((len(batch), self.dim), dtype=np.float32)
        known = np.flatnonzero(batch.known)
        history[known] = self.user_history_[batch.index[known]]
        n = len(batch)
        size = -(-n // BLOCK_ROWS) * BLOCK_ROWS
        feats = np.vstack([feats, np.zeros((size - n, feats.shape[1]), dtype=np.float32)])
        history = np.vstack([history, np.zeros((size - n, self.dim), dtype=np.float32)])
        out = np.empty((size, self.dim), dtype=np.float32)
        for lo in range(0, size, BLOCK_ROWS):
            out[lo:lo + BLOCK_ROWS] = self.user_tower_(torch.from_numpy(feats[lo:lo + BLOCK_ROWS]),
                                                       torch.from_numpy(history[lo:lo + BLOCK_ROWS])).numpy()
        return out[:n]

    def _score(self, batch: UserBatch) -> np.ndarray:
        return blocked_matmul(self.user_vectors(batch), self.item_vectors_t_) / self.temperature

    def _prepare(self) -> None:
        super()._prepare()
        self.item_vectors_t_ = np.ascontiguousarray(self.item_vectors_.T, dtype=np.float64)  # widened once

    # ----------------------------------------------------------- persistence
    def _state(self) -> dict[str, np.ndarray]:
        state = {"item_vectors": self.item_vectors_, "user_history": self.user_history_}
        for col in _CATEGORICAL_USER:
            state[f"user_vocab_{col}"] = np.asarray(self.user_vocab_[col], dtype=str)
        state["tower_shapes"] = np.asarray([self.item_tower_.mlp[0].in_features, self.user_tower_.mlp[0].in_features
                                            - self.dim], dtype=np.int64)
        return state

    def _extra_files(self) -> dict[str, bytes]:
        from safetensors.torch import save

        tensors = {f"item.{k}": v.detach().cpu().contiguous() for k, v in self.item_tower_.state_dict().items()}
        tensors.update({f"user.{k}": v.detach().cpu().contiguous() for k, v in self.user_tower_.state_dict().items()})
        return {WEIGHTS_FILE: save(tensors)}

    def _set_state(self, arrays: dict[str, Any], component) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load

        self.item_vectors_ = arrays["item_vectors"]
        self.user_history_ = arrays["user_history"]
        self.user_vocab_ = {col: arrays[f"user_vocab_{col}"].tolist() for col in _CATEGORICAL_USER}
        n_item_features, n_user_features = (int(v) for v in arrays["tower_shapes"])
        self.item_tower_ = ItemTower(n_item_features, len(self.item_ids_), self.hidden, self.dim)
        self.user_tower_ = UserTower(n_user_features, len(self.item_ids_), self.dim, self.hidden)
        try:
            tensors = load(component.read(WEIGHTS_FILE))
            self.item_tower_.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("item.")})
            self.user_tower_.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("user.")})
        except (SafetensorError, RuntimeError) as err:
            raise ArtifactError(f"the tower weights do not fit the model ({err})",
                                file=str(component.folder / WEIGHTS_FILE)) from err
        self.item_tower_.eval()
        self.user_tower_.eval()
