"""The app's trained pipelines: one per (data, configuration, code), shared by every session.

A model lives in a process-wide registry (`st.cache_resource`) and on disk under the app cache
folder (`RECSYS_APP_CACHE`, default `artifacts/app`), so a server restart or a test run loads it
instead of training again. Models are only read after fit: nothing per member or per session is
ever written into them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from ..data import DataError
from .cache import load_cached_dataset

Progress = Callable[[str, float], None]


def cache_dir() -> Path:
    """Where the app keeps trained models, held-out curves and uploaded files (ignored by git)."""
    return Path(os.environ.get("RECSYS_APP_CACHE", "artifacts/app"))


@st.cache_resource(show_spinner=False)
def _code_hash() -> str:
    """A hash of the code a trained model depends on (recsys/ minus the app, evaluation, simulation and
    command line): a change to it retrains instead of loading a model saved by older code."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("ui", "evaluation", "simulation", "cli.py"):
            continue
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


@st.cache_data(show_spinner=False)
def data_fingerprint(spec: str) -> str:
    return load_cached_dataset(spec).fingerprint()


def model_key(spec: str, config_json: dict[str, Any] | None = None) -> str:
    """The cache key of the default pipeline (or `config_json`) trained on `spec`'s data."""
    from ..pipeline import RecommenderConfig

    config = config_json or RecommenderConfig().to_json()
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    return f"{data_fingerprint(spec)}-{h.hexdigest()[:8]}-{_code_hash()}"


class _Registry:
    """Trained models by key; a lock per key so that two sessions never train the same model twice."""

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def lock(self, key: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(key, threading.Lock())


@st.cache_resource(show_spinner=False)
def _registry() -> _Registry:
    return _Registry()


def _model_dir(key: str) -> Path:
    return cache_dir() / "models" / key


def cached_model(spec: str, config=None):
    """The trained model for `spec` (default configuration, or the RecommenderConfig `config`) if one is in
    memory or on disk, else None (never trains)."""
    from ..pipeline import ArtifactError, Recommender

    key = model_key(spec, None if config is None else config.to_json())
    reg = _registry()
    if key in reg.models:
        return reg.models[key]
    folder = _model_dir(key)
    if not (folder / "manifest.json").is_file():
        return None
    with reg.lock(key):
        if key not in reg.models:
            try:
                reg.models[key] = Recommender.load(folder)
            except ArtifactError:
                return None  # stale or damaged: train again
        return reg.models[key]


def _configs_for(dataset):
    """The default configuration, then smaller ranker windows for short logs, then no ranker at all."""
    from ..pipeline import RecommenderConfig

    yield RecommenderConfig()
    if dataset.start is None or dataset.end is None:
        return
    days = (dataset.end - dataset.start).total_seconds() / 86400
    if days > 0:
        short = max(days / 4, 1 / 24)
        yield RecommenderConfig(ranker_windows=1, ranker_window_days=short)
        yield RecommenderConfig(ranker=None, ranker_windows=1, ranker_window_days=short)


def train_model(spec: str, progress: Progress | None = None, config=None):
    """Train the pipeline on `spec` (the default falling back to simpler set-ups on short logs, or exactly the
    RecommenderConfig `config`), save and share it. Raises DataError when no set-up can learn from the data."""
    from ..pipeline import Recommender

    key = model_key(spec, None if config is None else config.to_json())
    reg = _registry()
    with reg.lock(key):
        if key in reg.models:
            return reg.models[key]
        dataset = load_cached_dataset(spec)
        error: DataError | None = None
        model = None
        for tried in _configs_for(dataset) if config is None else [config]:
            try:
                model = Recommender(tried).fit(dataset, progress=progress)
                break
            except DataError as err:
                error = error or err
        if model is None:
            raise error or DataError("the pipeline could not be trained", file=dataset.name)
        try:
            model.save(_model_dir(key))
            prefix = key.rsplit("-", 1)[0] + "-"
            for old in _model_dir(key).parent.glob(prefix + "*"):  # the same data and set-up, older code
                if old.name != key and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass  # a read-only checkout still serves the model from memory
        reg.models[key] = model
        return model


def manifest_of(model) -> dict[str, Any]:
    """What `Recommender.save` writes to manifest.json, for the model in memory."""
    return {
        "config": model.config.to_json(),
        "data": {"name": model.history_.name, "fingerprint": model.fingerprint_, "end": str(model.history_.end)},
        "training": json.loads(json.dumps(getattr(model, "training_summary_", {}), default=str)),
        "fit_seconds": getattr(model, "fit_timings_", {}),
    }


def model_with_progress(spec: str, where=None, config=None):
    """The cached model for `spec` (default configuration, or `config`), or train it now with a progress bar in
    `where` (default: the page)."""
    slot = (where if where is not None else st).empty()  # always there: the page's layout never shifts
    model = cached_model(spec, config)
    if model is not None:
        return model
    bar = slot.progress(0.0, text="Training the pipeline on this data (once per server; about a minute)…")

    def say(message: str, fraction: float) -> None:
        bar.progress(min(1.0, max(0.0, float(fraction))), text=f"Training: {message}")

    model = train_model(spec, say, config)
    slot.empty()
    return model


# ------------------------------------------------------------------ held-out ranker curves
def _curves_file(spec: str, rankers: tuple[str, ...], test_days: float) -> Path:
    return cache_dir() / "curves" / f"{model_key(spec)}-{'+'.join(rankers)}-{test_days:g}d.json"


def cached_curves(spec: str, rankers: tuple[str, ...], test_days: float = 14.0) -> dict[str, Any] | None:
    """ROC/calibration/candidate-recall results for `spec` if computed before (memory or disk), else None."""
    if not rankers:
        return None
    key = _curves_file(spec, rankers, test_days)
    reg = _registry()
    if str(key) in reg.models:
        return reg.models[str(key)]
    if key.is_file():
        try:
            reg.models[str(key)] = json.loads(key.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return reg.models[str(key)]
    return None


def compute_curves(spec: str, rankers: tuple[str, ...], test_days: float = 14.0,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Fit on all but the last `test_days` and draw the held-out curves (`recsys.evaluation.curves`);
    shorter ranker windows (then fewer) on short logs. Saved beside the models; raises DataError."""
    from ..evaluation.curves import holdout_curves
    from ..pipeline import RecommenderConfig

    target = _curves_file(spec, rankers, test_days)
    reg = _registry()
    with reg.lock(str(target)):
        if str(target) in reg.models:
            return reg.models[str(target)]
        dataset = load_cached_dataset(spec)
        error: DataError | None = None
        result = None
        days = (dataset.end - dataset.start).total_seconds() / 86400 if dataset.start is not None else 0
        before = max(days - test_days, 0.0)
        configs = [RecommenderConfig()] + ([RecommenderConfig(ranker_windows=1, ranker_window_days=max(before / 3, 1 / 24))]
                                           if before > 0 else [])
        for config in configs:
            try:
                result = holdout_curves(dataset, rankers=rankers, test_days=test_days, config=config,
                                        progress=progress)
                break
            except DataError as err:
                error = error or err
        if result is None:
            raise error or DataError("the curves could not be computed", file=dataset.name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(result), encoding="utf-8")
            tmp.replace(target)
        except OSError:
            pass
        reg.models[str(target)] = result
        return result


def saved_manifest(spec: str) -> dict[str, Any] | None:
    """The manifest of the model for `spec` if one is trained (in memory, or saved: read without loading
    the model, so that Home stays quick), else None."""
    key = model_key(spec)
    model = _registry().models.get(key)
    if model is not None:
        return manifest_of(model)
    path = _model_dir(key) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None
