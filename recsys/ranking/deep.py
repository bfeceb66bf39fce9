"""Deep ranker (PyTorch): embeddings for ids and categoricals, averaged embedding bags for lists, an MLP.

The design note's network: sparse features (member and title ids, director, ...) get learned
embeddings; the variable-length lists (watch history, search terms, cast, tags) are averaged
into fixed-size vectors by `nn.EmbeddingBag(mode="mean")` fed with the `Ragged` values and
offsets; dense features are standardised; 2-3 ReLU hidden layers give the P(watch) logit.
Trained with weighted BCE and Adam, early-stopped on the latest rows. Explanations occlude one
feature at a time (training mean, unknown id or empty list) and report the change in P(watch).
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ..features import FeatureTable, Ragged
from ..features.ragged import ragged_ranges
from ..training_table import TrainingTable
from .base import RANKERS, ArtifactError, Ranker, json_bytes, npz_bytes, read_json, read_npz, time_holdout
from .encoding import TabularEncoder

__all__ = ["DeepRanker"]

PAD, UNKNOWN = 0, 1  # list-token ids: 0 pads (ignored by the mean), 1 is any token unseen in training
_PREDICT_BATCH = 8192
_IMPORTANCE_ROWS = 1000


def _torch():
    import torch

    return torch


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run with `n` intra-op threads, then restore the process setting."""
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _embedding_dim(levels: int, cap: int) -> int:
    """A common rule of thumb: grows like levels^0.56, at least 2, at most `cap`."""
    return int(max(2, min(cap, round(1.6 * levels ** 0.56))))


def _build_net(arch: dict[str, Any]):
    """The network for an architecture description (also what `load` rebuilds from deep.json)."""
    torch = _torch()
    nn = torch.nn

    class RankerNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList(nn.Embedding(n + 1, d) for n, d in zip(arch["cat_sizes"], arch["cat_dims"]))
            self.bags = nn.ModuleList(nn.EmbeddingBag(n + 2, d, mode="mean", padding_idx=PAD)
                                      for n, d in zip(arch["bag_sizes"], arch["bag_dims"]))
            width = arch["n_dense"] + sum(arch["cat_dims"]) + sum(arch["bag_dims"])
            layers: list[Any] = []
            for h in arch["hidden"]:
                layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(arch["dropout"])]
                width = h
            layers.append(nn.Linear(width, 1))
            self.mlp = nn.Sequential(*layers)

        def forward(self, dense, codes, bag_values, bag_offsets):
            parts = [dense]
            parts += [emb(codes[:, j]) for j, emb in enumerate(self.embeddings)]
            parts += [bag(v, o) for bag, v, o in zip(self.bags, bag_values, bag_offsets)]
            return self.mlp(torch.cat(parts, dim=1)).squeeze(1)

    return RankerNet()


class _Inputs:
    """A table's model inputs as numpy arrays; `batch(rows)` slices them (ragged lists included)."""

    def __init__(self, dense: np.ndarray, codes: np.ndarray, bags: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.dense, self.codes, self.bags = dense, codes, bags

    def __len__(self) -> int:
        return len(self.dense)

    def batch(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
        if rows is None:  # the whole table: offsets straight from the Ragged lists
            return self.dense, self.codes, [v for v, _ in self.bags], [o[:-1] for _, o in self.bags]
        values, offsets = [], []
        for v, o in self.bags:
            flat, _ = ragged_ranges(o[rows], o[rows + 1])
            lengths = o[rows + 1] - o[rows]
            values.append(v[flat])
            offsets.append(np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64))
        return self.dense[rows], self.codes[rows], values, offsets


@RANKERS.register
class DeepRanker(Ranker):
    """Embeddings + embedding bags + MLP, trained with weighted BCE, Adam and early stopping.

    hidden: widths of the ReLU hidden layers (2-3 of them, as the design note advises).
    embedding_dim: width of id and list embeddings (smaller categoricals get fewer dimensions).
    dropout, learning_rate, weight_decay, batch_size: the usual.
    max_epochs / patience: stop when the validation log-loss has not improved for `patience` epochs
        (the best epoch's weights are kept).
    valid_fraction: without `valid`, the latest fraction of rows (by time) is the stopping fold.
    min_count: categorical levels and list tokens seen fewer times are "unknown".
    unknown_rate: share of categorical values replaced by "unknown" while training, so that new
        members, titles and levels get a trained embedding rather than an untrained one.
    exclude: features never used. Direct member and title id embeddings are off by default: on the
        sample's time split they cost ~0.005 AUC (docs/ranking.md); titles still enter through the
        watch-history bag. device: "auto" (CUDA when available), "cpu" or "cuda".
    n_threads: CPU threads while fitting and predicting. seed: torch and numpy seeds.
    """

    name = "deep"
    explanation_method = "occlusion: P(watch) minus P(watch) with the feature at its training mean / unknown / empty"
    required_files = ("encoder.json", "deep.json", "weights.safetensors", "importance.npz")

    def __init__(
        self,
        hidden: tuple[int, ...] = (128, 64),
        embedding_dim: int = 16,
        dropout: float = 0.1,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-6,
        batch_size: int = 1024,
        max_epochs: int = 20,
        patience: int = 2,
        valid_fraction: float = 0.1,
        min_count: int = 2,
        unknown_rate: float = 0.02,
        exclude: tuple[str, ...] = ("user_id", "item_id"),
        device: str = "auto",
        n_threads: int = 2,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.valid_fraction = valid_fraction
        self.min_count = min_count
        self.unknown_rate = unknown_rate
        self.exclude = exclude
        self.device = device
        self.n_threads = n_threads
        self.seed = seed

    # ---------------------------------------------------------------- inputs
    def _resolve_device(self) -> str:
        torch = _torch()
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device='cuda' but no CUDA device is available")
        return self.device

    def _fit_lists(self, features: FeatureTable) -> None:
        """Token vocabularies of the sparse lists, from training rows only (by text, not table ids)."""
        self.list_vocab_: dict[str, list[str]] = {}
        for name in features.feature_set.sparse:
            if name in self.exclude or name not in features.sparse:
                continue
            ragged = features.sparse[name]
            counts = np.bincount(ragged.values, minlength=len(ragged.vocab))
            counts[PAD] = 0
            keep = np.flatnonzero(counts >= self.min_count)
            keep = keep[np.lexsort((keep, -counts[keep]))]
            self.list_vocab_[name] = [str(ragged.vocab[k]) for k in keep]
        self._list_index = {n: pd.Index(v, dtype=object) for n, v in self.list_vocab_.items()}

    def _list_ids(self, name: str, ragged: Ragged) -> np.ndarray:
        """A table's list ids mapped to the model's ids (padding stays 0, unseen tokens become 1)."""
        lookup = self._list_index[name].get_indexer(pd.Index(list(ragged.vocab), dtype=object))
        lookup = np.where(lookup >= 0, lookup + 2, UNKNOWN)
        if len(lookup):
            lookup[PAD] = PAD
        values = np.asarray(ragged.values, dtype=np.int64)
        ok = (values >= 0) & (values < len(lookup))
        return np.where(ok, lookup[np.clip(values, 0, max(len(lookup) - 1, 0))], UNKNOWN)

    def _inputs(self, features: FeatureTable) -> _Inputs:
        dense = self.encoder_.dense_matrix(features).astype(np.float32)
        codes = self.encoder_.code_matrix(features)
        bags = [(self._list_ids(n, features.sparse[n]), np.asarray(features.sparse[n].offsets, dtype=np.int64))
                for n in self.list_vocab_]
        return _Inputs(dense, codes, bags)

    def _tensors(self, parts, device: str):
        torch = _torch()
        dense, codes, values, offsets = parts
        return (torch.from_numpy(np.ascontiguousarray(dense)).to(device),
                torch.from_numpy(np.ascontiguousarray(codes)).to(device),
                [torch.from_numpy(np.ascontiguousarray(v)).to(device) for v in values],
                [torch.from_numpy(np.ascontiguousarray(o)).to(device) for o in offsets])

    # ---------------------------------------------------------------- fit
    def _fit(self, table: TrainingTable, valid: TrainingTable | None) -> None:
        torch = _torch()
        hidden = tuple(int(h) for h in self.hidden)
        if not hidden or min(hidden) < 1 or self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("hidden widths, batch_size, max_epochs and patience must be positive")
        if not 0 <= self.unknown_rate < 1 or not 0 <= self.valid_fraction < 1:
            raise ValueError("unknown_rate and valid_fraction must lie in [0, 1)")
        device = self._resolve_device()
        with _threads(self.n_threads):
            torch.manual_seed(self.seed)
            rng = np.random.default_rng(self.seed)
            self.encoder_ = TabularEncoder(categorical="codes", min_count=self.min_count, log_skewed=True,
                                           exclude=tuple(self.exclude)).fit(table.features)
            self._fit_lists(table.features)
            coded = self.encoder_.categorical_features
            self.architecture_ = {
                "n_dense": len(self.encoder_.dense_) + len(self.encoder_.missing_),
                "cat_sizes": [self.encoder_.n_levels(c) for c in coded],
                "cat_dims": [_embedding_dim(self.encoder_.n_levels(c), self.embedding_dim) for c in coded],
                "bag_sizes": [len(v) for v in self.list_vocab_.values()],
                "bag_dims": [int(self.embedding_dim)] * len(self.list_vocab_),
                "hidden": list(hidden), "dropout": float(self.dropout),
            }
            if self.architecture_["n_dense"] + len(coded) + len(self.list_vocab_) == 0:
                raise ValueError("no usable features: every feature is excluded")
            net = _build_net(self.architecture_)
            with torch.no_grad():  # small initial embeddings; "unknown" starts at zero
                for emb in list(net.embeddings) + list(net.bags):
                    emb.weight.normal_(0.0, 0.05)
                    emb.weight[0].zero_()
            net.to(device)

            data = self._inputs(table.features)
            y = np.asarray(table.label, dtype=np.float32)
            w = np.asarray(table.weight, dtype=np.float32)
            if valid is not None and len(valid) > 0:
                train_rows = np.arange(len(y))
                v_data, v_y, v_w = self._inputs(valid.features), np.asarray(valid.label, np.float32), \
                    np.asarray(valid.weight, np.float32)
                v_rows = np.arange(len(v_y))
            else:
                try:
                    train_rows, v_rows = time_holdout(table.features.rows["timestamp"].to_numpy(),
                                                      self.valid_fraction) if self.valid_fraction > 0 else (None, None)
                except ValueError:
                    train_rows, v_rows = None, None
                if train_rows is None:  # no holdout possible: train the full budget on everything
                    train_rows, v_rows = np.arange(len(y)), None
                v_data, v_y, v_w = data, y, w

            opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
            loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
            best, best_state, bad, self.history_ = math.inf, None, 0, []
            self.best_epoch_ = self.max_epochs
            for epoch in range(self.max_epochs):
                net.train()
                order = rng.permutation(train_rows)
                total, weight_sum = 0.0, 0.0
                for lo in range(0, len(order), self.batch_size):
                    rows = order[lo:lo + self.batch_size]
                    dense, codes, values, offsets = data.batch(rows)
                    if self.unknown_rate > 0 and codes.shape[1]:
                        codes = np.where(rng.random(codes.shape) < self.unknown_rate, 0, codes)
                    xb = self._tensors((dense, codes, values, offsets), device)
                    yb = torch.from_numpy(y[rows]).to(device)
                    wb = torch.from_numpy(w[rows]).to(device)
                    denom = wb.sum().clamp_min(1e-12)
                    loss = loss_fn(net(*xb), yb, weight=wb, reduction="sum") / denom
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * float(denom)
                    weight_sum += float(denom)
                record = {"epoch": epoch + 1, "train_loss": total / max(weight_sum, 1e-12)}
                if v_rows is not None:
                    p = self._forward(net, v_data, v_rows, device)
                    eps = 1e-7
                    p = np.clip(p, eps, 1 - eps)
                    yv, wv = v_y[v_rows], v_w[v_rows]
                    val = float(-(wv * (yv * np.log(p) + (1 - yv) * np.log(1 - p))).sum() / max(wv.sum(), 1e-12))
                    record["valid_loss"] = val
                    if val < best - 1e-6:
                        best, bad, self.best_epoch_ = val, 0, epoch + 1
                        best_state = copy.deepcopy(net.state_dict())
                    else:
                        bad += 1
                self.history_.append(record)
                if v_rows is not None and bad >= self.patience:
                    break
            if best_state is not None:
                net.load_state_dict(best_state)
            net.eval()
            self.net_ = net
            self.device_ = device
            sample = v_rows if v_rows is not None else train_rows
            sample = np.sort(rng.choice(sample, size=min(len(sample), _IMPORTANCE_ROWS), replace=False))
            self.importance_ = self._occlusion_importance(v_data if v_rows is not None else data, sample)
        self._record_features(self.encoder_.dense_features, coded, list(self.list_vocab_))

    # ---------------------------------------------------------------- predict
    def _forward(self, net, data: _Inputs, rows: np.ndarray | None, device: str) -> np.ndarray:
        """P(watch) for `rows` of `data` (all rows when None), in batches, without gradients."""
        torch = _torch()
        whole = rows is None and len(data) <= _PREDICT_BATCH  # one pass, offsets straight from the lists
        rows = np.arange(len(data)) if rows is None else rows
        out = np.empty(len(rows), dtype=np.float64)
        was_training = net.training
        if was_training:  # a fitted net stays in eval mode, so concurrent predictions never toggle it
            net.eval()
        with torch.inference_mode():
            for lo in range(0, len(rows), _PREDICT_BATCH):
                chunk = rows[lo:lo + _PREDICT_BATCH]
                logits = net(*self._tensors(data.batch(None if whole else chunk), device))
                out[lo:lo + len(chunk)] = torch.sigmoid(logits.double()).cpu().numpy()
        if was_training:
            net.train()
        return out

    def _predict(self, features: FeatureTable) -> np.ndarray:
        from ..threads import limited

        # torch's thread count is process-wide: a thread that runs limited (a request, a batch worker)
        # keeps the limit instead of raising it for every thread
        with contextlib.nullcontext() if limited() else _threads(self.n_threads):
            return self._forward(self.net_, self._inputs(features), None, self.device_)

    # ---------------------------------------------------------------- explain
    def _feature_names(self) -> list[str]:
        return self.encoder_.dense_features + self.encoder_.categorical_features + list(self.list_vocab_)

    def _occlude(self, data: _Inputs, feature: str | None) -> _Inputs:
        """A copy of `data` with one feature replaced by its training mean, the unknown code or an empty list."""
        if feature is None:
            return data
        dense, codes, bags = data.dense, data.codes, data.bags
        enc = self.encoder_
        if feature in enc.dense_:
            cols = [enc.dense_.index(feature)]
            if feature in enc.missing_:
                cols.append(len(enc.dense_) + enc.missing_.index(feature))
            dense = dense.copy()
            dense[:, cols] = 0.0  # standardised training mean
        elif feature in enc.coded_:
            codes = codes.copy()
            codes[:, enc.coded_.index(feature)] = 0
        else:
            k = list(self.list_vocab_).index(feature)
            bags = list(bags)
            bags[k] = (np.zeros(0, dtype=np.int64), np.zeros(len(data) + 1, dtype=np.int64))
        return _Inputs(dense, codes, bags)

    def _occlusion_importance(self, data: _Inputs, rows: np.ndarray) -> np.ndarray:
        """Mean |P(watch) - P(watch with the feature occluded)| over `rows`, per feature."""
        sub = _Inputs(*_take(data, rows))
        base = self._forward(self.net_, sub, None, self.device_)
        return np.array([np.abs(base - self._forward(self.net_, self._occlude(sub, f), None, self.device_)).mean()
                         for f in self._feature_names()])

    def _explain(self, one: FeatureTable) -> tuple[pd.DataFrame, dict[str, Any]]:
        with _threads(self.n_threads):
            data = self._inputs(one)
            names = self._feature_names()
            stacked = _stack([data] + [self._occlude(data, f) for f in names] + [_blank(data, self)])
            p = self._forward(self.net_, stacked, None, self.device_)
        per_feature = {f: float(p[0] - p[k + 1]) for k, f in enumerate(names)}
        return self._explanation_frame(one, per_feature), {
            "prediction": float(p[0]), "baseline": float(p[-1]), "units": "probability"}

    def _importance(self) -> dict[str, float]:
        return dict(zip(self._feature_names(), self.importance_.tolist()))

    # ---------------------------------------------------------------- persistence
    def _files(self) -> dict[str, bytes]:
        from safetensors.torch import save

        state = {k: v.detach().to("cpu").contiguous() for k, v in self.net_.state_dict().items()}
        return {"encoder.json": json_bytes(self.encoder_.to_dict()),
                "deep.json": json_bytes({"architecture": self.architecture_, "list_vocab": self.list_vocab_,
                                         "history": self.history_, "best_epoch": self.best_epoch_}),
                "weights.safetensors": save(state),
                "importance.npz": npz_bytes(occlusion=self.importance_)}

    def _restore(self, files: dict[str, bytes]) -> None:
        from safetensors.torch import load

        self.encoder_ = TabularEncoder.from_dict(read_json(files["encoder.json"], "encoder.json"))
        meta = read_json(files["deep.json"], "deep.json")
        try:
            self.architecture_ = dict(meta["architecture"])
            self.list_vocab_ = {str(k): [str(t) for t in v] for k, v in meta["list_vocab"].items()}
            self.history_, self.best_epoch_ = list(meta["history"]), int(meta["best_epoch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"deep.json lacks or garbles {exc}", file="deep.json") from exc
        self._list_index = {n: pd.Index(v, dtype=object) for n, v in self.list_vocab_.items()}
        arch = self.architecture_
        if (arch.get("cat_sizes") != [self.encoder_.n_levels(c) for c in self.encoder_.categorical_features]
                or arch.get("bag_sizes") != [len(v) for v in self.list_vocab_.values()]
                or arch.get("n_dense") != len(self.encoder_.dense_) + len(self.encoder_.missing_)):
            raise ArtifactError("deep.json's architecture does not match encoder.json and its vocabularies",
                                file="deep.json")
        try:
            state = load(files["weights.safetensors"])
        except Exception as exc:
            raise ArtifactError(f"weights.safetensors is not a readable safetensors file ({exc})",
                                file="weights.safetensors") from exc
        net = _build_net(arch)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ArtifactError("weights.safetensors does not fit the architecture in deep.json: "
                                f"{str(exc).splitlines()[0]}", file="weights.safetensors") from exc
        self.device_ = self._resolve_device()
        net.to(self.device_)
        net.eval()
        self.net_ = net
        self.importance_ = read_npz(files["importance.npz"], ("occlusion",), "importance.npz")["occlusion"]
        if len(self.importance_) != len(self._feature_names()):
            raise ArtifactError("importance.npz does not match the model's features", file="importance.npz")


def _take(data: _Inputs, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The given rows of `data`, lists kept ragged (values, full offsets)."""
    bags = []
    for v, o in data.bags:
        flat, _ = ragged_ranges(o[rows], o[rows + 1])
        lengths = o[rows + 1] - o[rows]
        bags.append((v[flat], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)))
    return data.dense[rows], data.codes[rows], bags


def _stack(parts: list[_Inputs]) -> _Inputs:
    """Row-wise concatenation of inputs (offsets shifted)."""
    dense = np.vstack([p.dense for p in parts])
    codes = np.vstack([p.codes for p in parts])
    bags = []
    for k in range(len(parts[0].bags)):
        values = [p.bags[k][0] for p in parts]
        shift = np.cumsum([0] + [len(v) for v in values[:-1]])
        offsets = [parts[0].bags[k][1][:1]] + [p.bags[k][1][1:] + s for p, s in zip(parts, shift)]
        bags.append((np.concatenate(values).astype(np.int64), np.concatenate(offsets).astype(np.int64)))
    return _Inputs(dense, codes, bags)


def _blank(data: _Inputs, ranker: DeepRanker) -> _Inputs:
    """Every feature occluded at once: the baseline the explanation reports."""
    out = data
    for f in ranker._feature_names():
        out = ranker._occlude(out, f)
    return out
