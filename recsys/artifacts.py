"""Saved model components, in one manifest dialect: format, version and a checksum for every file.

A component is a folder holding its files and `manifest.json`:
`{"format": "recsys.<kind>", "version": N, "files": {path: {"sha256": ..., "bytes": ...}}, ...}`
plus the component's own fields. Files are written atomically first and the manifest last, so a
folder with a manifest is complete. A component may hold other components in sub-folders (a
Recommender holds its generators and its ranker); their manifests are files of the parent, so
parts of different saves cannot be mixed unnoticed. Loading checks the format, the version and
every file's checksum, and an `ArtifactError` names the file that is missing or damaged. Nothing
is ever unpickled: a folder may come from a user.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import numpy as np

from .atomic import atomic_write_bytes
from .errors import ArtifactError

__all__ = ["MANIFEST", "Component", "write_component", "read_component", "npz_bytes", "read_npz", "json_bytes",
           "read_json", "sha256", "jsonable"]

MANIFEST = "manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_bytes(obj: Any) -> bytes:
    """Strict JSON (no NaN or Infinity), indented and key-sorted, as UTF-8 bytes."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def jsonable(value: Any) -> Any:
    """Plain JSON values from numpy scalars, tuples, timestamps and other simple objects."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """Arrays as an uncompressed .npz file in memory (no object dtypes: loadable without pickle)."""
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise TypeError(f"array {name!r} has dtype object: npz must stay pickle-free")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def read_npz(data: bytes, required: Iterable[str], what: str) -> dict[str, np.ndarray]:
    """An .npz from bytes with pickling disabled, checked for the arrays it must hold."""
    if not data.startswith(b"PK"):
        raise ArtifactError("not an .npz archive", file=what)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile / ValueError / OSError: all mean "not a valid npz"
        raise ArtifactError(f"not a readable .npz file ({exc})", file=what) from exc
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ArtifactError(f"lacks arrays {missing}", file=what)
    return arrays


def read_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"not valid JSON ({exc})", file=what) from exc


def _relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ArtifactError(f"file name {name!r} leaves the component's folder", file=name)
    return path


def write_component(folder: str | Path, format: str, version: int, files: dict[str, bytes],
                    fields: dict[str, Any] | None = None, written: Iterable[str] = ()) -> Path:
    """Write `files` (relative path -> bytes) into `folder`, then a manifest listing every file's checksum.

    `written` names files already in the folder (sub-components' manifests and files written by
    other code, such as a dataset copy) that the manifest must cover too.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    for name, data in files.items():
        target = folder / _relative(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
        entries[name] = {"sha256": sha256(data), "bytes": len(data)}
    for name in written:
        data = (folder / _relative(name)).read_bytes()
        entries[name] = {"sha256": sha256(data), "bytes": len(data)}
    reserved = {"format", "version", "files"} & set(fields or {})
    if reserved:
        raise ValueError(f"component fields may not be named {sorted(reserved)}")
    manifest = {"format": format, "version": int(version), "files": dict(sorted(entries.items())),
                **jsonable(fields or {})}
    atomic_write_bytes(folder / MANIFEST, json_bytes(manifest))
    return folder


@dataclass
class Component:
    """A component folder whose manifest was checked; `read(name)` returns a listed file's verified bytes."""

    folder: Path
    manifest: dict[str, Any]
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def format(self) -> str:
        return self.manifest["format"]

    def get(self, key: str, default: Any = None) -> Any:
        return self.manifest.get(key, default)

    def __getitem__(self, key: str) -> Any:
        try:
            return self.manifest[key]
        except KeyError:
            raise ArtifactError(f"the manifest lacks {key!r}", file=str(self.folder / MANIFEST)) from None

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    def read(self, name: str) -> bytes:
        if name not in self._cache:
            entry = self.manifest["files"].get(name)
            path = self.folder / _relative(name)
            if entry is None:
                raise ArtifactError(f"the manifest lists no file {name!r}", file=str(path))
            if not path.is_file():
                raise ArtifactError("a file the manifest lists is missing", file=str(path))
            data = path.read_bytes()
            if not isinstance(entry, dict) or entry.get("sha256") != sha256(data):
                raise ArtifactError("the file does not match its checksum in the manifest: it is damaged or "
                                    "from another save", file=str(path), hint="save or train the model again")
            self._cache[name] = data
        return self._cache[name]

    def verify(self) -> "Component":
        """Check every listed file now (loading reads them all anyway; this names the first bad one)."""
        for name in self.manifest["files"]:
            self.read(name)
        return self

    def sub(self, name: str, format: str, version: int) -> "Component":
        """A sub-component in folder `name`, whose manifest this component lists."""
        self.read(f"{name}/{MANIFEST}")
        return read_component(self.folder / name, format, version)


def read_component(folder: str | Path, format: str | tuple[str, ...], version: int) -> Component:
    """Open a component folder: its manifest must exist, parse, and name this format and version."""
    folder = Path(folder)
    path = folder / MANIFEST
    formats = (format,) if isinstance(format, str) else tuple(format)
    what = formats[0].removeprefix("recsys.")
    if not path.is_file():
        raise ArtifactError(f"no {MANIFEST}: not a saved recsys {what} (write one with save, or `recsys train`)",
                            file=str(folder))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"unreadable manifest: not valid JSON ({err})", file=str(path)) from err
    if not isinstance(manifest, dict) or manifest.get("format") not in formats:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ArtifactError(f"not a recsys {what} manifest (format {found!r})", file=str(path))
    if manifest.get("version") != version:
        raise ArtifactError(f"{what} format version {manifest.get('version')!r} is not supported (this recsys "
                            f"reads {version})", file=str(path), hint="retrain, or load it with a matching recsys")
    if not isinstance(manifest.get("files"), dict):
        raise ArtifactError("the manifest lists no files", file=str(path))
    return Component(folder, manifest)
