"""Read a Dataset from a data spec (the shipped sample, MovieLens, CSV or Parquet folders) and write one back.

Every loader ends in `Dataset.from_frames`, so all sources are validated the same way; errors name
the real file. Anything a loader drops or derives is recorded in `dataset.report`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write
from .dataset import Dataset, LoadReport, _hashable
from .errors import DataError
from .schema import SCHEMAS, TableSchema

__all__ = [
    "SPEC_FORMS",
    "load_dataset",
    "load_movielens",
    "load_table_folder",
    "read_parquet_folder",
    "sample_data_dir",
    "world_of",
    "save_dataset",
    "split_title_year",
]

SPEC_FORMS = ("sample", "movielens:PATH", "csv:PATH", "parquet:PATH")
TABLES = ("users", "items", "events", "searches")
FORMATS = ("csv", "parquet")
_FORMS_HINT = "accepted forms: " + ", ".join(SPEC_FORMS) + " (PATH is a folder)"
_LIST_SEPARATOR = "|"


# --------------------------------------------------------------------------- specs
def world_of(spec: str):
    """The simulated world behind a data spec (the sample, or a folder `recsys generate` wrote), else None."""
    from .synthetic import load_world

    if spec == "sample":
        folder = sample_data_dir()
    elif spec.startswith(("parquet:", "csv:")):
        folder = Path(spec.split(":", 1)[1]).expanduser()
    else:
        return None
    if not (folder / "world.json").exists():
        return None
    return load_world(folder)


def sample_data_dir() -> Path:
    """The shipped sample folder: $RECSYS_SAMPLE_DATA if set, else `sample_data/` beside the package."""
    env = os.environ.get("RECSYS_SAMPLE_DATA")
    if env:
        return Path(env).expanduser()
    # recsys/data/loaders.py -> parents[2] is the repository root, i.e. Path(recsys.__file__).parents[1].
    return Path(__file__).resolve().parents[2] / "sample_data"


def load_dataset(spec: str = "sample") -> Dataset:
    """Load `sample`, `movielens:PATH`, `csv:PATH` or `parquet:PATH`; raise DataError on anything else."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError("no data spec given", hint=_FORMS_HINT)
    spec = spec.strip()
    if spec.lower() == "sample":
        return _load_sample()
    prefix, colon, rest = spec.partition(":")
    prefix = prefix.strip().lower()
    if colon and prefix in ("movielens", "csv", "parquet"):
        if not rest.strip():
            raise DataError(f"the {prefix}: spec needs a path, e.g. {prefix}:data/my-folder", hint=_FORMS_HINT)
        path = Path(rest.strip()).expanduser()
        if not path.exists():
            raise DataError(f"no such file or folder: {path}", file=str(path), hint=_FORMS_HINT)
        if prefix == "movielens":
            return load_movielens(path)
        return load_table_folder(path, prefix)
    hint = _FORMS_HINT
    if Path(spec).expanduser().exists():
        hint += f"; to read this folder, prefix it, e.g. csv:{spec} or movielens:{spec}"
    raise DataError(f"unknown data spec {spec!r}", hint=hint)


def _load_sample() -> Dataset:
    folder = sample_data_dir()
    missing = [f"{t}.parquet" for t in ("items", "events") if not (folder / f"{t}.parquet").is_file()]
    if missing:
        raise DataError(
            f"the sample data is missing ({', '.join(missing)} not found in {folder})",
            file=str(folder),
            hint="run `recsys generate` to create it, or point RECSYS_SAMPLE_DATA at a folder that has it",
        )
    return read_parquet_folder(folder, name="sample")


# ------------------------------------------------------------------- shared steps
def _finish(
    users: pd.DataFrame | None,
    items: pd.DataFrame,
    events: pd.DataFrame,
    searches: pd.DataFrame | None,
    *,
    name: str,
    files: dict[str, str],
    report: LoadReport,
) -> Dataset:
    """Validate, then drop exact duplicate event rows (counted in the report, never silently)."""
    dataset = Dataset.from_frames(users, items, events, searches, name=name, report=report, files=files)
    events = dataset.events
    dup = _hashable(events).duplicated(keep="first")
    if dup.any():
        report.drop(f"exact duplicate rows in {Path(files['events']).name}", int(dup.sum()))
        dataset = replace(dataset, events=events[~dup.to_numpy()].reset_index(drop=True))
    return dataset


def _read_text(path: Path, encoding: str) -> str:
    """The file's text. For 'latin-1' (the older MovieLens files) UTF-8 is tried first: latin-1 accented
    text is almost never valid UTF-8, so either kind of file decodes correctly."""
    try:
        if encoding == "latin-1":
            raw = path.read_bytes()
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.decode("latin-1")
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not valid {encoding} text ({exc.reason} at byte {exc.start})", file=str(path),
            hint="save the file as UTF-8" if encoding.lower().replace("-", "") == "utf8" else None,
        ) from None
    except OSError as exc:
        raise DataError(f"cannot be read: {exc.strerror or exc}", file=str(path)) from None


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with empty cells as the only missing marker; parse failures become DataError."""
    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    kwargs.setdefault("index_col", False)
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not valid {kwargs.get('encoding', 'utf-8')} text ({exc.reason} at byte {exc.start})",
            file=str(path), hint="save the file as UTF-8",
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=str(path)) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"could not be read as CSV: {str(exc).strip()}", file=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot be read: {exc.strerror or exc}", file=str(path)) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file as a frame; whole-number columns with gaps come back as nullable Int64, not float."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"could not be read as Parquet: {exc}", file=str(path)) from None
    frame = table.to_pandas()
    for fld in table.schema:
        if pa.types.is_integer(fld.type) and table.column(fld.name).null_count:
            frame[fld.name] = pd.array(table.column(fld.name).to_pylist(), dtype="Int64")
    return frame


# --------------------------------------------------------------- table folders
def _table_file(folder: Path, table: str, fmt: str) -> Path | None:
    names = [f"{table}.{fmt}"] + ([f"{table}.csv.gz"] if fmt == "csv" else [])
    for candidate in names:
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def load_table_folder(path: str | Path, fmt: str, *, name: str | None = None) -> Dataset:
    """Load a folder of users/items/events/searches files in `fmt` ('csv' or 'parquet').

    items and events are required; users are derived from the events when absent (and reported);
    searches are optional. CSV list columns are '|'-separated; empty cells are missing values.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise DataError(f"unknown table format {fmt!r}; use one of {list(FORMATS)}", hint=_FORMS_HINT)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"expected a folder holding items.{fmt} and events.{fmt}", file=str(folder),
                        hint=_FORMS_HINT)
    found = {t: _table_file(folder, t, fmt) for t in TABLES}
    for table in ("items", "events"):
        if found[table] is None:
            present = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))[:20]
            raise DataError(
                f"required file {table}.{fmt} not found (folder holds {present})",
                file=str(folder / f"{table}.{fmt}"),
                hint=f"a {fmt} folder holds items.{fmt} and events.{fmt}, and optionally users.{fmt} and "
                     f"searches.{fmt}",
            )
    frames: dict[str, pd.DataFrame | None] = {}
    for table, file in found.items():
        if file is None:
            frames[table] = None
        elif fmt == "parquet":
            frames[table] = _read_parquet(file)
        else:
            ids = {c.name: str for c in SCHEMAS[table].columns if c.kind == "id"}
            frames[table] = _read_csv(file, dtype=ids, encoding="utf-8")
    files = {t: str(f) for t, f in found.items() if f is not None}
    if found["users"] is None:
        files["users"] = f"users (derived from {found['events']})"
    return _finish(
        frames["users"], frames["items"], frames["events"], frames["searches"],
        name=name or folder.resolve().name, files=files, report=LoadReport(),
    )


def read_parquet_folder(path: str | Path, *, name: str | None = None) -> Dataset:
    """Load a folder written by `save_dataset(..., fmt="parquet")` (the sample is one)."""
    return load_table_folder(path, "parquet", name=name)


# -------------------------------------------------------------------- writing
def _arrow_table(frame: pd.DataFrame, schema: TableSchema, target: Path):
    """An Arrow table with the documented types (ids/text as string, lists as list<string>)."""
    import pyarrow as pa

    types = {"id": pa.string(), "str": pa.string(), "category": pa.string(), "int": pa.int64(),
             "float": pa.float64(), "datetime": pa.timestamp("ns"), "list": pa.list_(pa.string())}
    known = {c.name: c.kind for c in schema.columns}
    arrays, names = [], []
    for col in frame.columns:
        values = frame[col]
        kind = known.get(col)
        try:
            if kind == "list":
                arr = pa.array([[str(v) for v in cell] for cell in values], type=types["list"])
            elif kind is not None:
                arr = pa.array(values, type=types[kind], from_pandas=True)
            else:
                arr = pa.array(values, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise DataError(f"column cannot be written to Parquet: {exc}", file=str(target), column=str(col)) from None
        arrays.append(arr)
        names.append(str(col))
    # No pandas metadata: it embeds the pandas version, and the bytes should depend on the data only.
    return pa.Table.from_arrays(arrays, names=names)


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists become '|'-joined text, the documented CSV list encoding."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: _LIST_SEPARATOR.join(str(x) for x in v) if isinstance(v, (list, tuple, np.ndarray)) else v
            )
    return out


def save_dataset(dataset: Dataset, folder: str | Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write users/items/events/searches files into `folder` atomically; returns table -> path.

    The same data always gives the same bytes (a regenerated sample compares identical), and
    `load_table_folder(folder, fmt)` reads back an equal Dataset.
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {list(FORMATS)}, not {fmt!r}")
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for table in TABLES:
        frame = getattr(dataset, table).reset_index(drop=True)
        target = folder / f"{table}.{fmt}"
        if fmt == "parquet":
            import pyarrow.parquet as pq

            arrow = _arrow_table(frame, SCHEMAS[table], target)
            atomic_write(target, lambda tmp, arrow=arrow: pq.write_table(arrow, tmp, compression="zstd"))
        else:
            text = _csv_frame(frame)
            atomic_write(
                target,
                lambda tmp, text=text: text.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8"),
            )
        written[table] = target
    return written


# ------------------------------------------------------------------- MovieLens
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)

# ml-1m users.dat occupation codes, from the dataset's README.
ML1M_OCCUPATIONS = {
    "0": "other", "1": "academic/educator", "2": "artist", "3": "clerical/admin", "4": "college/grad student",
    "5": "customer service", "6": "doctor/health care", "7": "executive/managerial", "8": "farmer",
    "9": "homemaker", "10": "K-12 student", "11": "lawyer", "12": "programmer", "13": "retired",
    "14": "sales/marketing", "15": "scientist", "16": "self-employed", "17": "technician/engineer",
    "18": "tradesman/craftsman", "19": "unemployed", "20": "writer",
}

NO_GENRES = "(no genres listed)"
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")

# Layout -> the files that identify it (all required) and the default dataset name.
_ML_LAYOUTS = {
    "100k": (("u.data", "u.item"), "movielens-100k"),
    "1m": (("ratings.dat", "movies.dat"), "movielens-1m"),
    "latest": (("ratings.csv", "movies.csv"), "movielens-latest"),
}

# Where each schema column comes from in the source files, for hints in error messages.
_ML_SOURCE_COLUMNS = {
    "100k": {"user_id": "user id", "item_id": "item id / movie id", "rating": "rating", "timestamp": "timestamp"},
    "1m": {"user_id": "UserID", "item_id": "MovieID", "rating": "Rating", "timestamp": "Timestamp"},
    "latest": {"user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "timestamp"},
}


def split_title_year(title: str | None) -> tuple[str | None, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); titles without a trailing year are kept whole."""
    if title is None:
        return None, None
    text = str(title).strip()
    match = _TITLE_YEAR.match(text)
    if match and match.group("title"):
        return match.group("title"), int(match.group("year"))
    return text, None


def _detect_layout(folder: Path) -> str | None:
    for layout, (needed, _) in _ML_LAYOUTS.items():
        if all((folder / f).is_file() for f in needed):
            return layout
    return None


def _movielens_root(path: Path) -> tuple[Path, str]:
    """The folder holding the MovieLens files (PATH itself, a file's folder, or its one MovieLens subfolder)."""
    folder = path.parent if path.is_file() else path
    layout = _detect_layout(folder)
    if layout:
        return folder, layout
    subs = [(d, _detect_layout(d)) for d in sorted(folder.iterdir()) if d.is_dir()] if folder.is_dir() else []
    subs = [(d, lay) for d, lay in subs if lay]
    if len(subs) == 1:
        return subs[0]
    present = sorted(p.name for p in folder.iterdir())[:20] if folder.is_dir() else []
    expected = "; ".join(f"ml-{k}: {' + '.join(v[0])}" for k, v in _ML_LAYOUTS.items())
    problem = (f"{len(subs)} MovieLens folders inside; point at one of {[d.name for d, _ in subs]}" if subs
               else f"no MovieLens files found (folder holds {present})")
    raise DataError(problem, file=str(folder), hint=f"expected one of the layouts {expected}")


def _read_fields(path: Path, sep: str, names: list[str], encoding: str, *, middle: int | None = None) -> pd.DataFrame:
    """Split a headerless delimited file into text columns, refusing lines with the wrong field count.

    With `middle`, that field may itself contain `sep` (movie titles): the fields before and after it
    are taken from the ends of the line.
    """
    text = _read_text(path, encoding)
    fast = _split_fast(text, sep, names) if middle is None else None
    if fast is not None:
        return fast
    n = len(names)
    rows: list[list[str]] = []
    bad: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if middle is not None and len(parts) > n:
            tail = len(names) - middle - 1
            parts = parts[:middle] + [sep.join(parts[middle:len(parts) - tail])] + parts[len(parts) - tail:]
        if len(parts) != n:
            bad.append(f"line {lineno}: {line!r}")
            continue
        rows.append([p.strip() for p in parts])
    if bad:
        raise DataError(
            f"{len(bad)} line(s) do not have {n} {sep!r}-separated fields ({', '.join(names)})",
            file=str(path), examples=bad,
        )
    if not rows:
        raise DataError("the file has no rows", file=str(path))
    return pd.DataFrame(rows, columns=names, dtype="str")


def _split_fast(text: str, sep: str, names: list[str]) -> pd.DataFrame | None:
    """The C parser's reading of a clean file (ratings files are large); None when anything looks off,
    so that the line-by-line reader can report the bad lines precisely."""
    if sep != "\t":
        if "\t" in text:
            return None
        text = text.replace(sep, "\t")
    try:
        frame = pd.read_csv(io.StringIO(text), sep="\t", header=None, names=names, dtype="str", quoting=csv.QUOTE_NONE,
                            keep_default_na=False, na_values=[], index_col=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    if frame.empty or frame.isna().any().any():
        return None
    return frame.apply(lambda c: c.str.strip()).astype("str")


def _titles(frame: pd.DataFrame) -> pd.DataFrame:
    """Split 'Title (1995)' into title and release_year (nullable Int64)."""
    parts = [split_title_year(t) for t in frame["title"].astype(object)]
    frame = frame.copy()
    frame["title"] = [p[0] for p in parts]
    frame["release_year"] = pd.array([p[1] for p in parts], dtype="Int64")
    return frame


def _ml100k_genre_names(folder: Path) -> tuple[str, ...]:
    path = folder / "u.genre"
    if not path.is_file():
        return ML100K_GENRES
    table = _read_fields(path, "|", ["genre", "index"], "latin-1")
    index = pd.to_numeric(table["index"], errors="coerce")
    if index.isna().any() or sorted(index.astype(int)) != list(range(len(table))):
        raise DataError("genre indices must be 0, 1, 2, ... without gaps", file=str(path), column="index",
                        examples=[f"line {i + 1}: {r}" for i, r in table.head(5).iterrows()])
    return tuple(table.assign(index=index.astype(int)).sort_values("index")["genre"])


def _load_ml100k(folder: Path, report: LoadReport) -> tuple[pd.DataFrame | None, pd.DataFrame, pd.DataFrame, dict]:
    genres = _ml100k_genre_names(folder)
    item_path = folder / "u.item"
    raw = _read_fields(item_path, "|", ["item_id", "title", "release_date", "video_release_date", "imdb_url",
                                         *genres], "latin-1")
    flags = raw[list(genres)]
    for genre in genres:
        bad = ~flags[genre].isin(["0", "1"])
        if bad.any():
            raise DataError(
                f"{int(bad.sum())} genre flag(s) are not 0 or 1", file=str(item_path), column=f"genre flag {genre}",
                examples=[f"line {i + 1}: item {raw.at[i, 'item_id']} has {raw.at[i, genre]!r}"
                          for i in np.flatnonzero(bad.to_numpy())[:5]],
            )
    released = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce")
    bad = released.isna() & raw["release_date"].fillna("").str.strip().ne("")
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} release date(s) are not like 01-Jan-1995", file=str(item_path), column="release date",
            examples=[f"line {i + 1}: {raw.at[i, 'release_date']!r}" for i in np.flatnonzero(bad.to_numpy())[:5]],
        )
    items = _titles(raw[["item_id", "title"]])
    items["release_year"] = items["release_year"].fillna(
        pd.Series(released.dt.year, index=items.index).astype("Int64")
    )
    items["release_date"] = released.astype("datetime64[ns]")
    items["kind"] = "movie"
    named = [g for g in genres if g != "unknown"]
    items["genres"] = [[g for g in named if row[g] == "1"] for _, row in flags.iterrows()]
    for col in ("imdb_url", "video_release_date"):
        text = raw[col].astype(object)
        items[col] = text.where(text.ne(""), None)
    report.note("u.item: the 'unknown' genre flag means no genre (genres list left empty)")

    events = _read_fields(folder / "u.data", "\t", ["user_id", "item_id", "rating", "timestamp"], "latin-1")
    users = None
    files = {"items": str(item_path), "events": str(folder / "u.data")}
    if (folder / "u.user").is_file():
        users = _read_fields(folder / "u.user", "|", ["user_id", "age", "gender", "occupation", "zip_code"],
                             "latin-1")
        files["users"] = str(folder / "u.user")
    return users, items, events, files


def _load_ml1m(folder: Path, report: LoadReport) -> tuple[pd.DataFrame | None, pd.DataFrame, pd.DataFrame, dict]:
    movies = _read_fields(folder / "movies.dat", "::", ["item_id", "title", "genres"], "latin-1", middle=1)
    items = _titles(movies[["item_id", "title"]])
    items["kind"] = "movie"
    items["genres"] = [_split_genres(g) for g in movies["genres"].astype(object)]
    if (folder / "tags.dat").is_file():
        tags = _read_fields(folder / "tags.dat", "::", ["user_id", "item_id", "tag", "timestamp"], "latin-1",
                            middle=2)
        items["tags"] = _aggregate_tags(tags, items, folder / "tags.dat", report)
    events = _read_fields(folder / "ratings.dat", "::", ["user_id", "item_id", "rating", "timestamp"], "latin-1")
    files = {"items": str(folder / "movies.dat"), "events": str(folder / "ratings.dat")}
    users = None
    if (folder / "users.dat").is_file():
        users = _read_fields(folder / "users.dat", "::", ["user_id", "gender", "age", "occupation", "zip_code"],
                             "latin-1")
        users = users[["user_id", "age", "gender", "occupation", "zip_code"]].astype(object)
        codes = users["occupation"]
        users["occupation"] = codes.map(lambda c: ML1M_OCCUPATIONS.get(c, c))
        files["users"] = str(folder / "users.dat")
        report.note("users.dat: occupation codes mapped to names; age is the ml-1m age-group code "
                    "(1 = under 18, 18 = 18-24, 25, 35, 45, 50, 56 = 56+)")
    return users, items, events, files


def _load_mllatest(folder: Path, report: LoadReport) -> tuple[None, pd.DataFrame, pd.DataFrame, dict]:
    movies_path = folder / "movies.csv"
    movies = _read_csv(movies_path, dtype=str, encoding="utf-8")
    for col in ("movieId", "title", "genres"):
        if col not in movies.columns:
            raise DataError(f"missing column {col!r} (found {list(movies.columns)})", file=str(movies_path),
                            column=col)
    items = _titles(movies[["movieId", "title"]].rename(columns={"movieId": "item_id"}))
    items["kind"] = "movie"
    items["genres"] = [_split_genres(g) for g in movies["genres"].astype(object)]
    ratings_path = folder / "ratings.csv"
    ratings = _read_csv(ratings_path, dtype={"userId": str, "movieId": str}, encoding="utf-8")
    events = ratings.rename(columns={"userId": "user_id", "movieId": "item_id"})
    for col in ("user_id", "item_id", "rating", "timestamp"):
        if col not in events.columns:
            raise DataError(f"missing column {_ML_SOURCE_COLUMNS['latest'][col]!r} (found {list(ratings.columns)})",
                            file=str(ratings_path), column=_ML_SOURCE_COLUMNS["latest"][col])
    tags_path = folder / "tags.csv"
    if tags_path.is_file():
        tags = _read_csv(tags_path, dtype=str, encoding="utf-8")
        missing = [c for c in ("movieId", "tag") if c not in tags.columns]
        if missing:
            raise DataError(f"missing column {missing[0]!r} (found {list(tags.columns)})", file=str(tags_path),
                            column=missing[0])
        tags = tags.rename(columns={"userId": "user_id", "movieId": "item_id"})
        items["tags"] = _aggregate_tags(tags, items, tags_path, report)
    return None, items, events, {"items": str(movies_path), "events": str(ratings_path)}


def _split_genres(value) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    text = str(value).strip()
    if not text or text == NO_GENRES:
        return []
    return [g.strip() for g in text.split("|") if g.strip() and g.strip() != NO_GENRES]


def _aggregate_tags(tags: pd.DataFrame, items: pd.DataFrame, path: Path, report: LoadReport) -> list[list[str]]:
    """Each movie's distinct tags (case-insensitive, first spelling and file order kept)."""
    item_ids = tags["item_id"].astype(object).map(lambda v: None if pd.isna(v) else str(v).strip())
    text = tags["tag"].astype(object).map(lambda v: "" if pd.isna(v) else str(v).strip())
    unknown = ~item_ids.isin(set(items["item_id"]))
    if unknown.any():
        raise DataError(
            f"{int(unknown.sum())} tag row(s) point at movie id(s) not in the movies file",
            file=str(path), column="movieId",
            examples=[f"row {i}: movie {item_ids.iat[i]!r}, tag {text.iat[i]!r}"
                      for i in np.flatnonzero(unknown.to_numpy())[:5]],
        )
    empty = text.eq("")
    report.drop(f"empty tags in {path.name}", int(empty.sum()))
    by_item: dict[str, dict[str, str]] = {}
    for item, tag in zip(item_ids[~empty], text[~empty]):
        by_item.setdefault(item, {}).setdefault(tag.casefold(), tag)
    report.note(f"{path.name}: {int((~empty).sum())} tag rows folded into the items' tags lists")
    return [list(by_item.get(i, {}).values()) for i in items["item_id"]]


_ML_LOADERS = {"100k": _load_ml100k, "1m": _load_ml1m, "latest": _load_mllatest}


def load_movielens(path: str | Path) -> Dataset:
    """Load a MovieLens folder (ml-100k, ml-1m or ml-latest/ml-25m layout, detected from its files).

    Ratings stay explicit ratings (no watch fractions are invented); titles lose their trailing
    '(year)', which becomes release_year. Without a users file, users are derived from the ratings.
    """
    folder, layout = _movielens_root(Path(path).expanduser())
    report = LoadReport()
    users, items, events, files = _ML_LOADERS[layout](folder, report)
    if users is None:
        files["users"] = f"users (derived from {Path(files['events']).name})"
    default_name = _ML_LAYOUTS[layout][1]
    folder_name = folder.resolve().name.lower()
    name = "movielens-" + folder_name[3:] if folder_name.startswith("ml-") and len(folder_name) > 3 else default_name
    try:
        return _finish(users, items, events, None, name=name, files=files, report=report)
    except DataError as exc:
        source = _ML_SOURCE_COLUMNS[layout].get(exc.column or "")
        if source is None or exc.file != files["events"]:
            raise
        hint = f"{exc.column} is the {source!r} column of {Path(exc.file).name}"
        raise DataError(exc.problem, file=exc.file, column=exc.column, examples=exc.examples,
                        hint=hint if not exc.hint else f"{exc.hint}; {hint}") from None
