"""Atomic writes and the on-disk formats (JSON, JSONL, parquet, CSV, Markdown)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import InputError

if TYPE_CHECKING:  # pandas is imported where a table is read, so light readers stay light
    import pandas as pd


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """Replace NaN/inf by None so the JSON is valid."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Deterministic JSON (sorted keys, NaN as null)."""
    return json.dumps(_clean(obj), default=_json_default, sort_keys=True, ensure_ascii=False,
                      indent=2)


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as pretty, key-sorted JSON."""
    atomic_write_text(path, dumps(obj) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file; malformed JSON is an :class:`InputError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Atomically write one compact JSON object per line."""
    lines = [json.dumps(_clean(r), default=_json_default, ensure_ascii=False) for r in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)``; blank lines are skipped, bad lines raise InputError."""
    path = Path(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})",
                                 line=lineno) from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"not valid JSON: {exc.msg}", line=lineno) from None
            if not isinstance(obj, dict):
                raise InputError(path, f"expected a JSON object, got {type(obj).__name__}",
                                 line=lineno)
            yield lineno, obj


def read_jsonl(path: str | Path) -> list[dict]:
    """All objects of a JSONL file."""
    return [obj for _, obj in iter_jsonl(path)]


def write_parquet(path: str | Path, df: pd.DataFrame) -> None:
    """Atomically write a DataFrame as parquet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_csv(path: str | Path, df: pd.DataFrame, float_format: str = "%.6g") -> None:
    """Atomically write a CSV with a fixed float format (byte-identical for equal inputs)."""
    atomic_write_text(path, df.to_csv(index=False, float_format=float_format, lineterminator="\n"))


def to_markdown(df: pd.DataFrame, float_digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (no third-party dependency)."""

    def fmt(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, float):
            return f"{v:.{float_digits}f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_table(path_csv: str | Path, df: pd.DataFrame) -> None:
    """Write ``df`` as CSV and as Markdown beside it (same stem, ``.md``)."""
    path_csv = Path(path_csv)
    write_csv(path_csv, df)
    atomic_write_text(path_csv.with_suffix(".md"), to_markdown(df))


TABLE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def _plain(value: Any) -> Any:
    """numpy arrays (parquet list columns) and scalars as plain Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def read_records(path: str | Path) -> list[tuple[int, dict]]:
    """Rows of a JSONL, CSV or parquet file as ``(line, record)``.

    ``line`` is the 1-based line of the file for JSONL and CSV (the header is line 1) and the
    1-based row number for parquet. Missing CSV/parquet cells become ``None``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = list(iter_jsonl(path))
        first_line = None
    elif suffix == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[],
                             encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(path, f"not a readable CSV: {exc}") from None
        first_line = 2
    elif suffix == ".parquet":
        import pandas as pd

        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputError(path, f"not a readable parquet file: {exc}") from None
        first_line = 1
    else:
        raise InputError(path, f"unsupported file type {suffix!r}; use one of "
                               f"{', '.join(TABLE_SUFFIXES)}")
    if first_line is not None:
        records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
        rows = [(first_line + i, {k: _plain(v) for k, v in rec.items()})
                for i, rec in enumerate(records)]
    if not rows:
        raise InputError(path, "file is empty (no records)")
    return rows
