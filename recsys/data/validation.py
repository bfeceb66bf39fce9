"""Coerce raw frames to the documented schema, rejecting bad input with a precise DataError."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .errors import DataError
from .schema import Column, TableSchema

__all__ = ["coerce_table", "check_references", "normalize_ids", "split_list_cell"]

LIST_SEPARATOR = "|"

# Text that means "no value" in a numeric or timestamp column (CSV exports write these).
NA_TOKENS = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "n/a", "null", "NULL", "None", "<NA>", "NaT"})

# Whole numbers beyond this are not exact as floats, so they cannot be trusted as integers.
_MAX_EXACT_INT = 2**53
# Timestamps are stored as datetime64[ns]: the representable span is about 1677-09-22..2262-04-11.
_TS_MIN, _TS_MAX = pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s")
_EPOCH_MIN, _EPOCH_MAX = _TS_MIN.value // 10**9, _TS_MAX.value // 10**9


def _is_missing(value: Any) -> bool:
    """None, NaN, NA and NaT are missing; lists and other containers never are."""
    if value is None:
        return True
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _examples(frame: pd.DataFrame, mask: Iterable[bool], columns: list[str] | None = None) -> list[str]:
    mask = np.asarray(list(mask) if not isinstance(mask, (np.ndarray, pd.Series)) else mask, dtype=bool)
    rows = frame.loc[mask]
    if columns:
        rows = rows[[c for c in columns if c in rows.columns]]
    out = []
    for pos, (_, row) in zip(np.flatnonzero(mask), rows.head(5).iterrows()):
        out.append(f"row {pos}: {row.to_dict()}")
    return out


def split_list_cell(value) -> list[str]:
    """A list cell from any source: a list/array as is, text split on '|', missing as []."""
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [str(v).strip() for v in value if not _is_missing(v) and str(v).strip()]
    if _is_missing(value):
        return []
    text = str(value).strip()
    if not text:
        return []
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]


def _as_text(series: pd.Series) -> pd.Series | None:
    """The series as a pandas string array when every present value is text (fast paths); else None."""
    if isinstance(series.dtype, pd.StringDtype):
        return series
    if pd.api.types.is_object_dtype(series) and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return series.astype(pd.StringDtype())
    return None


def _text_to_object(text: pd.Series) -> pd.Series:
    """A string array back to plain Python str objects, with None for missing."""
    return pd.Series(text.to_numpy(dtype=object, na_value=None), index=text.index, dtype=object)


def _strip_na_tokens(text: pd.Series) -> pd.Series:
    """Stripped text with blanks and NA markers ('nan', 'NULL', ...) as missing."""
    text = text.str.strip()
    return text.mask(text.isin(NA_TOKENS))


def normalize_ids(series: pd.Series) -> pd.Series:
    """Ids become text: whole floats lose their '.0' (CSV columns with gaps read as float), blanks are missing."""
    text = _as_text(series)
    if text is not None:
        text = text.str.strip()
        return _text_to_object(text.mask(text.eq("")))
    if pd.api.types.is_bool_dtype(series):
        return series.map(lambda v: None if _is_missing(v) else str(v)).astype(object)
    if pd.api.types.is_integer_dtype(series) and not series.isna().any():
        return series.astype(str).astype(object)
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna().to_numpy(dtype=float)
        if len(whole) and np.all(np.isfinite(whole)) and np.all(np.mod(whole, 1) == 0):
            return series.map(lambda v: None if _is_missing(v) else str(int(v))).astype(object)

    def one(v: Any) -> str | None:
        if _is_missing(v):
            return None
        if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
            return str(int(v))
        text = str(v).strip()
        return text or None

    return series.map(one).astype(object)


def _na_tokens_to_missing(series: pd.Series) -> pd.Series:
    text = _as_text(series)
    if text is not None:
        return _strip_na_tokens(text)
    if pd.api.types.is_object_dtype(series):
        return series.map(lambda v: None if _is_missing(v) or (isinstance(v, str) and v.strip() in NA_TOKENS) else v)
    return series


def _to_float_elementwise(series: pd.Series) -> pd.Series:
    """Numbers from an object column of arbitrary values; anything not a number becomes NaN."""

    def one(v: Any) -> float:
        if isinstance(v, (bool, np.bool_)):
            return float(v)
        if isinstance(v, (int, float, Decimal, np.integer, np.floating)):
            return float(v)
        if isinstance(v, str):
            try:
                return float(pd.to_numeric(v))
            except (ValueError, TypeError, OverflowError):
                return np.nan
        return np.nan

    return series.map(one).astype(float)


def _coerce_numeric(series: pd.Series, col: Column, file: str, frame: pd.DataFrame) -> pd.Series:
    kind = series.dtype
    if pd.api.types.is_datetime64_any_dtype(kind) or pd.api.types.is_timedelta64_dtype(kind):
        raise DataError(
            f"values are dates or durations, not numbers (expected {col.kind})",
            file=file, column=col.name, examples=_examples(frame, series.notna(), [col.name]),
        )
    if pd.api.types.is_bool_dtype(kind):
        series = series.astype(float)
    series = _na_tokens_to_missing(series)
    try:
        numeric = pd.to_numeric(series, errors="coerce")
        numeric = numeric.astype(float)
    except (TypeError, ValueError, OverflowError):
        numeric = _to_float_elementwise(series)
    # Dates, lists and other objects hidden in an object column are not numbers either.
    if pd.api.types.is_object_dtype(series):
        plain = (str, bool, int, float, Decimal, np.number)
        odd = series.map(lambda v: not _is_missing(v) and not isinstance(v, plain))
        numeric = numeric.mask(odd)
    bad = numeric.isna() & series.notna()
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} value(s) are not numbers (expected {col.kind})",
            file=file, column=col.name, examples=_examples(frame, bad, [col.name]),
        )
    inf = np.isinf(numeric)
    if inf.any():
        raise DataError("infinite values", file=file, column=col.name, examples=_examples(frame, inf, [col.name]))
    if col.kind == "int":
        frac = numeric.notna() & (np.mod(numeric.fillna(0), 1) != 0)
        if frac.any():
            raise DataError(
                f"{int(frac.sum())} value(s) are not whole numbers",
                file=file, column=col.name, examples=_examples(frame, frac, [col.name]),
            )
        huge = numeric.abs() > _MAX_EXACT_INT
        if huge.any():
            raise DataError(
                f"{int(huge.sum())} value(s) are too large for a whole number (limit 2**53)",
                file=file, column=col.name, examples=_examples(frame, huge, [col.name]),
            )
    out_of_range = pd.Series(False, index=numeric.index)
    if col.min_value is not None:
        out_of_range |= numeric < col.min_value
    if col.max_value is not None:
        out_of_range |= numeric > col.max_value
    if out_of_range.any():
        lo = "-inf" if col.min_value is None else col.min_value
        hi = "inf" if col.max_value is None else col.max_value
        raise DataError(
            f"{int(out_of_range.sum())} value(s) outside the allowed range [{lo}, {hi}]",
            file=file, column=col.name, examples=_examples(frame, out_of_range, [col.name]),
        )
    if col.kind == "int":
        return numeric.astype("Int64") if numeric.isna().any() else numeric.astype("int64")
    return numeric


def _epoch_seconds(values: pd.Series, col: Column, file: str, frame: pd.DataFrame) -> pd.Series:
    """Unix epoch seconds (the MovieLens convention) to datetime64[ns]; out-of-span values are an error."""
    values = values.astype(float)
    bad = values.notna() & ((values < _EPOCH_MIN) | (values > _EPOCH_MAX) | np.isinf(values))
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} epoch timestamp(s) out of range (expected seconds between "
            f"{_TS_MIN.year} and {_TS_MAX.year})",
            file=file, column=col.name, examples=_examples(frame, bad, [col.name]),
            hint="numbers are read as Unix epoch seconds; divide milliseconds by 1000",
        )
    return pd.to_datetime(values, unit="s").astype("datetime64[ns]")


def _datetimes_to_ns(parsed: pd.Series, col: Column, file: str, frame: pd.DataFrame) -> pd.Series:
    """Naive UTC datetime64[ns]; dates outside the nanosecond span are an error, not an overflow."""
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    bad = parsed.notna() & ((parsed < _TS_MIN) | (parsed > _TS_MAX))
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} timestamp(s) outside the supported span {_TS_MIN.date()}..{_TS_MAX.date()}",
            file=file, column=col.name, examples=_examples(frame, bad, [col.name]),
        )
    return parsed.astype("datetime64[ns]")


def _coerce_datetime(series: pd.Series, col: Column, file: str, frame: pd.DataFrame) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        return _datetimes_to_ns(series, col, file, frame)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return _epoch_seconds(series, col, file, frame)
    # Text (or mixed objects): plain numbers are epoch seconds, everything else must be ISO 8601.
    text = _as_text(series)
    if text is None:
        text = series.map(lambda v: None if _is_missing(v) else str(v)).astype(pd.StringDtype())
    text = _strip_na_tokens(text)
    as_number = pd.to_numeric(text, errors="coerce").astype(float)
    numeric = as_number.notna()
    seconds = _epoch_seconds(as_number, col, file, frame)
    iso = pd.to_datetime(_text_to_object(text.mask(numeric)), errors="coerce", utc=True, format="ISO8601")
    bad = iso.isna() & text.notna() & ~numeric
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} timestamp(s) could not be parsed",
            file=file, column=col.name, examples=_examples(frame, bad, [col.name]),
            hint="use ISO 8601 such as 2025-07-01T20:15:00 (UTC unless an offset is given) or Unix epoch seconds",
        )
    iso = _datetimes_to_ns(iso, col, file, frame)
    return iso.where(~numeric, seconds).astype("datetime64[ns]")


def coerce_table(frame: pd.DataFrame, schema: TableSchema, file: str) -> pd.DataFrame:
    """Return `frame` with known columns in their documented types; raise DataError on bad input.

    Unknown columns are kept unchanged. Nothing is dropped: a bad value is an error.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a table, got {type(frame).__name__}", file=file)
    if len(frame.columns) == 0 or len(frame) == 0:
        raise DataError(f"the {schema.name} table is empty (no rows)", file=file)
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    dup_cols = frame.columns[frame.columns.duplicated()].tolist()
    if dup_cols:
        raise DataError("duplicate column names", file=file, column=dup_cols[0])
    missing = [c for c in schema.required if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing required column(s) {missing}",
            file=file, column=missing[0],
            hint=f"found columns {list(frame.columns)[:20]}; required: {schema.required}",
        )
    frame = frame.reset_index(drop=True)
    for col in schema.columns:
        if col.name not in frame.columns:
            continue
        raw = frame[col.name]
        if col.kind == "id":
            frame[col.name] = normalize_ids(raw)
        elif col.kind in ("int", "float"):
            frame[col.name] = _coerce_numeric(raw, col, file, frame)
        elif col.kind == "datetime":
            frame[col.name] = _coerce_datetime(raw, col, file, frame)
        elif col.kind == "list":
            frame[col.name] = raw.map(split_list_cell).astype(object)
        else:  # str, category
            text = _as_text(raw)
            frame[col.name] = (_text_to_object(text) if text is not None
                               else raw.map(lambda v: None if _is_missing(v) else str(v)).astype(object))
        if col.required:
            empty = frame[col.name].isna()
            if col.kind in ("id", "str"):
                text = _as_text(frame[col.name])
                empty |= (text.str.strip().eq("").fillna(False).astype(bool) if text is not None
                          else frame[col.name].map(lambda v: isinstance(v, str) and not v.strip()))
            if empty.any():
                raise DataError(
                    f"{int(empty.sum())} required value(s) are missing",
                    file=file, column=col.name, examples=_examples(frame, empty),
                )
    if schema.key is not None:
        dup = frame[schema.key].duplicated(keep=False)
        if dup.any():
            raise DataError(
                f"{int(frame[schema.key].duplicated().sum())} duplicate id(s)",
                file=file, column=schema.key, examples=_examples(frame, dup),
            )
    return frame


def check_references(events: pd.DataFrame, column: str, known: pd.Index, file: str, target: str) -> None:
    """Raise if any `events[column]` is not among `known` ids of the `target` table."""
    unknown = ~events[column].isin(known)
    if unknown.any():
        missing = pd.unique(events.loc[unknown, column])
        raise DataError(
            f"{int(unknown.sum())} row(s) point at {len(missing)} id(s) not in the {target} table "
            f"(e.g. {list(missing[:5])})",
            file=file, column=column, examples=_examples(events, unknown),
        )
