"""The one folder the app's visitors may read data from: a path typed in the browser (or carried by a link)
resolves, symlinks and all, under it or is refused with a message naming only the root. The command line
reads any path; only the app goes through here."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..data import DataError

__all__ = ["DataRoot", "ROOT_ENV", "FOLDER_KINDS"]

#: The environment variable naming the data root (default: `data/` in the project).
ROOT_ENV = "RECSYS_DATA_ROOT"
#: The data-spec kinds that read a folder.
FOLDER_KINDS = ("movielens", "csv", "parquet")
#: How deep a chosen folder is checked for links leading out: the loaders read no deeper.
LINK_DEPTH = 2
_UPLOAD = re.compile(r"upload-([0-9a-f]{16})")
_PROJECT = Path(__file__).resolve().parents[2]


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


@dataclass(frozen=True)
class DataRoot:
    """The data root (`path`, resolved) and the app's upload folder (`uploads`, where `save_uploads` writes)."""

    path: Path
    uploads: Path

    @classmethod
    def configured(cls, uploads: Path) -> "DataRoot":
        """The root from `$RECSYS_DATA_ROOT` (relative to the working directory), else the project's `data/`."""
        env = os.environ.get(ROOT_ENV, "").strip()
        root = Path(env).expanduser() if env else _PROJECT / "data"
        return cls(root.resolve(), Path(uploads).resolve())

    @property
    def label(self) -> str:
        """How messages name the root: relative to the project when it lies inside it."""
        return f"{self.path.relative_to(_PROJECT)}/" if _inside(self.path, _PROJECT) and self.path != _PROJECT \
            else str(self.path)

    def folder(self, typed: str) -> Path:
        """The folder `typed` (relative to the root, or absolute) names, resolved; DataError when it is empty,
        lies outside the root (after resolving symlinks), is missing, or holds a link that leads out."""
        raw = (typed or "").strip()
        if not raw:
            raise DataError("no folder given", hint=f"type a folder under the data root {self.label}, e.g. ml-100k")
        if "\0" in raw or len(raw) > 4096:
            raise DataError("that is not a folder name", hint=f"type a folder under the data root {self.label}")
        candidate = Path(raw)
        try:
            resolved = (candidate if candidate.is_absolute() else self.path / candidate).resolve()
        except (OSError, ValueError, RuntimeError):  # a symlink loop, a name the filesystem refuses
            raise DataError("that folder cannot be read", hint=f"type a folder under the data root {self.label}") \
                from None
        if not _inside(resolved, self.path):
            raise DataError(f"{raw!r} is outside the data root: the app reads only folders under {self.label}",
                            hint=f"put the data under {self.label} (or start the app with {ROOT_ENV} set to its "
                                 "folder); the command line reads any path")
        if not resolved.is_dir():
            raise DataError(f"there is no folder {self._shown(resolved)!r} under the data root {self.label}",
                            hint=self._hint())
        self._no_links_out(resolved)
        return resolved

    def spec(self, key: str) -> str:
        """The loader's data spec for a browser-facing `key`: `sample`, `upload:<id>` (files uploaded to this
        server) or `KIND:FOLDER` with FOLDER under the root. DataError for anything else."""
        key = (key or "").strip()
        if key.lower() == "sample":
            return "sample"
        kind, colon, rest = key.partition(":")
        kind = kind.strip().lower()
        if colon and kind == "upload":
            match = _UPLOAD.fullmatch("upload-" + rest.strip())
            folder = self.uploads / f"upload-{match.group(1)}" if match is not None else None
            if folder is None or not folder.is_dir():
                raise DataError("those uploaded files are not on this server (uploads are kept per server)",
                                hint="upload the files again on the Home page")
            fmt = "parquet" if any(folder.glob("*.parquet")) else "csv"
            return f"{fmt}:{folder}"
        if not colon or kind not in FOLDER_KINDS:
            raise DataError(f"unknown data source {key!r}",
                            hint="sample, or movielens:FOLDER, csv:FOLDER or parquet:FOLDER with FOLDER under "
                                 f"the data root {self.label}")
        return f"{kind}:{self.folder(rest)}"

    def key(self, spec: str) -> str:
        """The browser-facing key of a loader spec that `spec()` made: a folder relative to the root, or the
        upload's id; never a server path."""
        if spec == "sample":
            return spec
        kind, _, rest = spec.partition(":")
        path = Path(rest)
        upload = _UPLOAD.fullmatch(path.name)
        if upload is not None and path.parent.resolve() == self.uploads:
            return f"upload:{upload.group(1)}"
        inside = self.relative(path)
        if inside is None:
            raise DataError(f"the data in use is outside the data root {self.label}, so it has no link")
        return f"{kind}:{inside}"

    def relative(self, path: str | Path) -> str | None:
        """`path` (symlinks resolved) relative to the root, "." for the root itself; None when it lies outside."""
        resolved = Path(path).resolve()
        return resolved.relative_to(self.path).as_posix() or "." if _inside(resolved, self.path) else None

    def folders(self, limit: int = 50) -> list[str]:
        """Folders under the root (two levels deep; hidden ones, the upload folder and links leading out left
        out: uploads are reached by their id only), relative."""
        if not self.path.is_dir():
            return []
        found: list[str] = []
        for level in (self.path.glob("*"), self.path.glob("*/*")):
            for p in sorted(level):
                rel = p.relative_to(self.path)
                if any(part.startswith(".") for part in rel.parts) or not p.is_dir():
                    continue
                resolved = p.resolve()
                if not _inside(resolved, self.path) or _inside(resolved, self.uploads):
                    continue
                found.append(p.relative_to(self.path).as_posix())
        return sorted(found)[:limit]

    def _no_links_out(self, folder: Path) -> None:
        """Refuse a folder holding a link that leads out, down to `LINK_DEPTH` levels: as deep as the loaders read
        (a MovieLens release nests one folder down; table files and world.json sit in the folder)."""
        for level in (folder.glob("/".join(["*"] * depth)) for depth in range(1, LINK_DEPTH + 1)):
            for p in level:
                if p.is_symlink() and not _inside(p.resolve(), self.path):
                    raise DataError(f"{self._shown(p)!r} is a link leading outside the data root {self.label}",
                                    hint="copy the file into the data root instead of linking to it")

    def _shown(self, path: Path) -> str:
        return path.relative_to(self.path).as_posix() if _inside(path, self.path) else path.name

    def _hint(self) -> str:
        there = self.folders(limit=12)
        return (f"folders under {self.label}: {', '.join(there)}" if there
                else f"{self.label} has no folders yet: put a dataset folder there")
