"""A Recommender saved as one component: its data copy, its candidate sources and its ranker.

`DIR/manifest.json` (format `recsys.recommender`) holds the configuration, the fingerprints of
the data copy and of the data it was trained on (they differ once it has observed events), the
training summary and a checksum of every file of the data copy (`data/`) and of
the sub-components' manifests (`candidates/`, `ranker/`), which checksum their own files. The
folder is written next to its target and renamed into place, so a reader never sees half a model.
Loading checks formats, versions, checksums and the fingerprint, and an `ArtifactError` names the
file that is missing or damaged. Nothing is ever unpickled.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .artifacts import MANIFEST, read_component, write_component
from .data.errors import DataError
from .errors import ArtifactError

__all__ = ["save_recommender", "load_recommender", "saved_member_ids", "FORMAT", "FORMAT_VERSION"]

FORMAT = "recsys.recommender"
FORMAT_VERSION = 2
DATA, CANDIDATES, RANKER = "data", "candidates", "ranker"


def save_recommender(model, path: str | os.PathLike) -> Path:
    """Write `model` to folder `path` (replacing what is there only once everything is written)."""
    from .data.loaders import save_dataset

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        history = model.history_
        written = [f"{DATA}/{p.name}" for p in save_dataset(history, tmp / DATA).values()]
        model.generators_.save(tmp / CANDIDATES)
        written.append(f"{CANDIDATES}/{MANIFEST}")
        if model.ranker_ is not None:
            model.ranker_.save(tmp / RANKER)
            written.append(f"{RANKER}/{MANIFEST}")
        write_component(tmp, FORMAT, FORMAT_VERSION, {}, {
            "config": model.config.to_json(),
            "data": {"name": history.name, "fingerprint": history.fingerprint(), "end": str(history.end),
                     "trained_on": model.fingerprint_},
            "training": model.training_summary_, "fit_seconds": model.fit_timings_,
            "metrics": getattr(model, "metrics_", {}), "source_params": model.source_params_,
            "tuning": model.tuning_, "negative_keep_rate": getattr(model, "negative_keep_rate_", 1.0),
        }, written=written)
        backup = None
        if path.exists():
            backup = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, backup)
        os.replace(tmp, path)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def saved_member_ids(path: str | os.PathLike) -> list[str]:
    """The members a saved Recommender knows, read from its checked data copy without loading the models (a batch
    driver needs only these; the executors load the rest)."""
    import io

    import pandas as pd

    component = read_component(path, FORMAT, FORMAT_VERSION).verify()
    name = f"{DATA}/users.parquet"
    if not component.has(name):
        raise ArtifactError("the model's data copy has no users table", file=str(component.folder / name))
    return pd.read_parquet(io.BytesIO(component.read(name)), columns=["user_id"])["user_id"].astype(str).tolist()


def load_recommender(cls, path: str | os.PathLike):
    """Read a folder written by `save_recommender` into a fitted `cls` (a Recommender)."""
    from .candidates import CandidateGenerator
    from .candidates.base import FORMAT as SOURCE_FORMAT, FORMAT_VERSION as SOURCE_VERSION
    from .data.loaders import read_parquet_folder
    from .features import FeatureBuilder
    from .pipeline import RecommenderConfig
    from .ranking import load_ranker
    from .ranking.base import FORMAT as RANKER_FORMAT, FORMAT_VERSION as RANKER_VERSION

    component = read_component(path, FORMAT, FORMAT_VERSION).verify()
    where = str(component.folder / MANIFEST)
    try:
        config = RecommenderConfig.from_json(component["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"the saved configuration is invalid ({err})", file=where) from err
    data_info: dict[str, Any] = component.get("data") or {}
    try:
        history = read_parquet_folder(component.folder / DATA, name=data_info.get("name"))
    except DataError as err:
        raise ArtifactError(f"the model's data copy is unreadable: {err}", file=str(component.folder / DATA)) from err
    if history.fingerprint() != data_info.get("fingerprint"):
        raise ArtifactError("the data copy does not match the manifest's fingerprint: files from different "
                            "trainings were mixed, or a file was changed", file=str(component.folder / DATA))
    model = cls(config)
    component.sub(CANDIDATES, SOURCE_FORMAT, SOURCE_VERSION)
    model.generators_ = CandidateGenerator.load(component.folder / CANDIDATES)
    model.ranker_ = None
    if config.ranker is not None:
        component.sub(RANKER, RANKER_FORMAT, RANKER_VERSION)
        model.ranker_ = load_ranker(component.folder / RANKER)
    model.builder_ = FeatureBuilder(seed=config.seed, exclude=config.exclude_features).fit(history)
    model.fingerprint_ = data_info.get("trained_on", data_info["fingerprint"])
    model.training_summary_ = component.get("training") or {}
    try:
        model.negative_keep_rate_ = float(component.get("negative_keep_rate", 1.0))
    except (TypeError, ValueError) as err:
        raise ArtifactError(f"the saved negative keep rate is not a number ({err})", file=where) from err
    model.fit_timings_ = component.get("fit_seconds") or {}
    model.metrics_ = component.get("metrics") or {}
    model.source_params_ = component.get("source_params") or {}
    model.tuning_ = component.get("tuning") or {}
    model._serve_on(history, model.builder_.index(history))
    return model
