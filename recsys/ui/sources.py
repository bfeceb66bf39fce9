"""Data sources for the app: uploaded files become a folder named by their content, read as a data spec;
loader errors become messages that name the file, the column and example rows."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from pathlib import Path
from typing import Iterable

from ..atomic import atomic_write_bytes
from ..data import DataError
from ..data.loaders import TABLES
from .data_root import DataRoot

__all__ = ["save_uploads", "describe_error", "spec_label", "data_root", "plain", "MAX_UPLOAD_ROWS", "MAX_ROWS_ENV"]

#: Rows per uploaded file the app takes (`$RECSYS_MAX_UPLOAD_ROWS` overrides); larger data goes under the data
#: root or through the command line. Streamlit's `server.maxUploadSize` (.streamlit/config.toml) caps the bytes.
MAX_UPLOAD_ROWS = 5_000_000
MAX_ROWS_ENV = "RECSYS_MAX_UPLOAD_ROWS"


def data_root() -> DataRoot:
    """The configured data root, with this server's upload folder."""
    from .models import cache_dir

    return DataRoot.configured(cache_dir() / "uploads")


def _max_rows() -> int:
    raw = os.environ.get(MAX_ROWS_ENV, "").strip()
    try:
        return int(raw) if raw else MAX_UPLOAD_ROWS
    except ValueError:
        raise DataError(f"{MAX_ROWS_ENV}={raw!r} is not a whole number of rows") from None


def _rows(name: str, content: bytes, fmt: str) -> int:
    """Data rows in an uploaded file, counted without parsing it (CSV: lines after the header)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(io.BytesIO(content)).metadata.num_rows
        except Exception as err:  # pyarrow raises several types for a damaged file
            raise DataError(f"{name!r} is not a readable Parquet file ({err})", file=name) from None
    if name.lower().endswith(".gz"):
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as err:
            raise DataError(f"{name!r} is not a readable gzip file ({err})", file=name) from None
    lines = content.count(b"\n") + (0 if content.endswith(b"\n") or not content else 1)
    return max(lines - 1, 0)


def _table_and_format(name: str) -> tuple[str, str]:
    lower = name.lower()
    for fmt, suffixes in (("parquet", (".parquet", ".pq")), ("csv", (".csv", ".csv.gz"))):
        for suffix in suffixes:
            if lower.endswith(suffix):
                stem = lower[: -len(suffix)]
                table = next((t for t in TABLES if stem == t or stem.startswith(t + "_") or stem.startswith(t + "-")
                              or stem.startswith(t + ".")), None)
                if table is None:
                    raise DataError(f"cannot tell which table {name!r} is: name it {', '.join(TABLES)} "
                                    f"(e.g. events{suffix})", file=name)
                return table, fmt
    raise DataError(f"{name!r} is neither a CSV nor a Parquet file", file=name,
                    hint="upload .csv, .csv.gz or .parquet files")


def save_uploads(files: Iterable[tuple[str, bytes]], root: Path) -> tuple[str, dict[str, str]]:
    """Write uploaded (name, content) files to `root/upload-<content hash>/<table>.<fmt>` and return the
    data spec that reads them plus {stored name: uploaded name}. Raises DataError on unusable uploads."""
    files = list(files)
    if not files:
        raise DataError("no files uploaded", hint="upload items and events files (users and searches optional)")
    tables: dict[str, tuple[str, bytes, str]] = {}
    formats = set()
    for name, content in files:
        table, fmt = _table_and_format(name)
        if table in tables:
            raise DataError(f"two files for the {table} table: {tables[table][0]!r} and {name!r}", file=name)
        tables[table] = (name, content, fmt)
        formats.add(fmt)
    if len(formats) > 1:
        raise DataError("mixed CSV and Parquet uploads: upload every table in one format",
                        file=", ".join(n for n, _, _ in tables.values()))
    fmt = formats.pop()
    missing = [t for t in ("items", "events") if t not in tables]
    if missing:
        raise DataError(f"missing the required {' and '.join(missing)} file(s)",
                        file=", ".join(n for n, _, _ in tables.values()),
                        hint=f"upload items.{fmt} and events.{fmt} (users and searches are optional)")
    cap = _max_rows()
    for name, content, _ in tables.values():
        rows = _rows(name, content, fmt)
        if rows > cap:
            raise DataError(f"{name!r} has {rows:,} rows; the app takes at most {cap:,} rows per uploaded file",
                            file=name, hint=f"put larger data in a folder under the data root, or use the command "
                                            f"line (`recsys ... --data csv:FOLDER`); {MAX_ROWS_ENV} sets the cap")
    h = hashlib.sha256()
    for table in sorted(tables):
        name, content, _ = tables[table]
        h.update(table.encode() + b"\0" + hashlib.sha256(content).digest())
    folder = root / f"upload-{h.hexdigest()[:16]}"
    names: dict[str, str] = {}
    folder.mkdir(parents=True, exist_ok=True)
    for table, (name, content, _) in tables.items():
        gz = name.lower().endswith(".gz")
        target = folder / f"{table}.{fmt}{'.gz' if gz else ''}"
        if not target.exists() or target.read_bytes() != content:
            atomic_write_bytes(target, content)
        names[str(target)] = name
    return f"{fmt}:{folder}", names


def plain(text: object, limit: int = 300) -> str:
    """`text` shown literally in Markdown: what could make a link, an image, HTML or code escaped, and capped
    (messages echo what a visitor typed or a link carried)."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + "…"
    return "".join("\\" + c if c in "\\`[]()!<>" else c for c in value)


def _file_shown(file: str, names: dict[str, str]) -> str:
    """An error's file by its uploaded name, else relative to the data root, else its name alone."""
    if file in names:
        return names[file]
    for stored, uploaded in names.items():
        if file.startswith(stored):
            return uploaded
    return data_root().relative(file) or Path(file).name


def describe_error(err: DataError, names: dict[str, str] | None = None) -> str:
    """Markdown for a DataError: which file (by its uploaded name), which column, what is wrong, bad rows; every
    part shown literally."""
    names = names or {}
    lines = []
    where = []
    if err.file:
        where.append(f"file **{plain(_file_shown(err.file, names))}**")
    if err.column:
        where.append(f"column **{plain(err.column)}**")
    lines.append((", ".join(where) + ": " if where else "") + plain(err.problem, 600))
    if err.examples:
        lines.append("\n\nExamples of bad rows:\n" + "\n".join(f"- `{str(e).replace('`', chr(39))[:300]}`"
                                                              for e in err.examples))
    if err.hint:
        lines.append(f"\n\nHint: {plain(err.hint, 600)}")
    return "".join(lines)


def spec_label(spec: str) -> str:
    """A short human name for a data spec."""
    if spec == "sample":
        return "the shipped sample"
    kind, _, path = spec.partition(":")
    root = data_root()
    try:
        key = root.key(spec)
    except DataError:
        return f"{kind} folder {Path(path).name}"
    if key.startswith("upload:"):
        return f"uploaded {kind.upper()} files ({Path(path).name})"
    return f"{kind} folder {key.split(':', 1)[1]} (under {root.label})"
