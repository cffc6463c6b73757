"""Atomic writes and the on-disk formats (JSON, JSONL, parquet, CSV, Markdown)."""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import json
import math
import os
import re
import secrets
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


def _temp_name(folder: str | Path, prefix: str, suffix: str) -> str:
    return os.path.join(folder, f"{prefix}{secrets.token_hex(8)}{suffix}")


def create_temp_file(folder: str | Path, prefix: str, suffix: str = ".tmp") -> tuple[int, str]:
    """A new empty file in ``folder``, opened for writing: ``(fd, path)``.

    Unlike ``tempfile.mkstemp`` (always 0600) its permissions follow the umask like any
    ``open()`` (0644 under umask 022), so a shared ``output_dir`` or cache stays readable
    to colleagues once the file is renamed into place.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = _temp_name(folder, prefix, suffix)
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue


def create_temp_dir(folder: str | Path, prefix: str, suffix: str = ".tmp") -> str:
    """A new empty directory in ``folder`` whose permissions follow the umask (0755 under
    umask 022), unlike ``tempfile.mkdtemp`` (always 0700)."""
    while True:
        name = _temp_name(folder, prefix, suffix)
        try:
            os.mkdir(name, 0o777)
            return name
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp_file(path.parent, prefix=f".{path.name}.")
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


class _DuplicateKeyError(Exception):
    """A key given twice in one JSON object (``key``); readers turn it into an InputError."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """``object_pairs_hook`` refusing a repeated key (json's default keeps the last one)."""
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKeyError(key)
        obj[key] = value
    return obj


_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys)
_DUPLICATE_KEY = "key given twice in one JSON object"


def _decode(path: Path, data: bytes, line: int | None = None) -> str:
    """UTF-8 text of ``data`` without a leading byte-order mark (Windows editors add one)."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})",
                         line=line) from None


def read_json(path: str | Path) -> Any:
    """Read a JSON file; malformed JSON or a repeated key is an :class:`InputError`."""
    path = Path(path)
    try:
        return _STRICT_JSON.decode(_decode(path, path.read_bytes()))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except _DuplicateKeyError as exc:
        raise InputError(path, _DUPLICATE_KEY, field=exc.key) from None


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Atomically write one compact JSON object per line."""
    lines = [json.dumps(_clean(r), default=_json_default, ensure_ascii=False) for r in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)``; blank lines are skipped, bad lines (and a key given
    twice in one object) raise InputError. A UTF-8 byte-order mark opening a line (files
    saved by Windows editors, or joined with ``cat``) is ignored."""
    path = Path(path)
    with open(path, "rb") as fh:
        yield from _jsonl_rows(path, fh)


def _jsonl_rows(path: Path, lines: Iterable[bytes]) -> Iterator[tuple[int, dict]]:
    for lineno, raw in enumerate(lines, start=1):
        text = _decode(path, raw, lineno)
        if not text.strip():
            continue
        try:
            obj = _STRICT_JSON.decode(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON: {exc.msg}", line=lineno) from None
        except _DuplicateKeyError as exc:
            raise InputError(path, _DUPLICATE_KEY, line=lineno, field=exc.key) from None
        if not isinstance(obj, dict):
            raise InputError(path, f"expected a JSON object, got {type(obj).__name__}",
                             line=lineno)
        yield lineno, obj


def read_jsonl(path: str | Path) -> list[dict]:
    """All objects of a JSONL file."""
    return [obj for _, obj in iter_jsonl(path)]


def _json_array(path: Path, text: str) -> list[tuple[int, dict]]:
    """Objects of a JSON array ``[{...}, ...]`` as ``(line where each starts, object)``;
    errors name the 0-based element index and the line."""
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    space = re.compile(r"[ \t\n\r]*")  # JSON's whitespace
    pos = space.match(text, space.match(text).end() + 1).end()  # after the "["
    rows: list[tuple[int, dict]] = []
    while not (rows == [] and text.startswith("]", pos)):
        where = f"array element [{len(rows)}]"
        try:
            obj, end = _STRICT_JSON.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"{where}: not valid JSON: {exc.msg}",
                             line=exc.lineno) from None
        except _DuplicateKeyError as exc:
            raise InputError(path, f"{where}: {_DUPLICATE_KEY}", line=line_at(pos),
                             field=exc.key) from None
        if not isinstance(obj, dict):
            raise InputError(path, f"{where}: expected a JSON object, got "
                                   f"{type(obj).__name__}", line=line_at(pos))
        rows.append((line_at(pos), obj))
        pos = space.match(text, end).end()
        if text.startswith("]", pos):
            break
        if not text.startswith(",", pos):
            raise InputError(path, f"after {where}: expected ',' or ']'", line=line_at(pos))
        pos = space.match(text, pos + 1).end()
    pos = space.match(text, pos + 1).end()
    if pos < len(text):
        raise InputError(path, "extra data after the JSON array", line=line_at(pos))
    return rows


def write_parquet(path: str | Path, df: pd.DataFrame) -> None:
    """Atomically write a DataFrame as parquet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp_file(path.parent, prefix=f".{path.name}.")
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


def is_name_column(column: str) -> bool:
    """Whether a column of our CSVs holds model or family names (or ``model@size`` cells)."""
    return column in ("model", "family", "cell") or column.endswith(("_model", "_family"))


def read_csv(path: str | Path) -> pd.DataFrame:
    """A CSV this pipeline wrote (:func:`write_csv`), with names as text: model and family
    names such as ``007``, ``NA``, ``1e3`` or ``True`` are read exactly as written, never
    as numbers, booleans or missing values. Other columns are read as pandas reads them
    (an empty field is NaN). Every reader of our own CSVs goes through here."""
    import pandas as pd

    header = pd.read_csv(path, nrows=0).columns
    names = [c for c in header if is_name_column(c)]
    missing = ["", "NaN", "nan", "NA", "N/A", "null", "None", "<NA>"]
    return pd.read_csv(path, dtype={c: str for c in names}, keep_default_na=False,
                       na_values={c: missing for c in header if c not in names})


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


def read_input_bytes(path: str | Path) -> bytes:
    """The bytes of an input file; a missing file or a directory is an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a directory, not a file")
    return path.read_bytes()


def csv_record_lines(path: Path, text: str) -> list[int]:
    """The physical line where each record of a CSV starts (the header first; blank lines
    are no record): a quoted field may hold newlines, so record n need not be on line n.

    Raises :class:`InputError` naming the line where a record has more fields than the
    header or where a quoted field never ends.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    starts: list[int] = []
    start, width = 1, 0
    try:
        for row in reader:
            if row != [] and (len(row) > 1 or row[0].strip()):  # pandas skips blank lines
                if starts and len(row) > width:
                    raise InputError(path, f"{len(row)} fields where the header has {width}",
                                     line=start)
                width = width or len(row)
                starts.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(path, f"not a readable CSV: {exc} (a quoted field not closed?)",
                         line=start) from None
    return starts


def read_records(path: str | Path, data: bytes | None = None) -> list[tuple[int, dict]]:
    """Rows of a JSONL, JSON, CSV or parquet file as ``(line, record)``.

    ``line`` is the 1-based line of the file for JSONL and CSV (the header is line 1; for
    CSV the line where the record starts, a quoted field may span lines), the
    line where each object starts in a ``.json`` array file (a ``.json`` file not starting
    with ``[`` is read as JSONL) and the 1-based row number for parquet. Missing CSV/parquet
    cells become ``None``; a UTF-8 byte-order mark is ignored; a key repeated in one JSON
    object, a semicolon-separated CSV and a directory are errors; a parquet file's named
    index (``id`` saved as the index) is read as a column. ``data``: the file's bytes when
    the caller has read them already (parsed as the content of ``path``).
    """
    path = Path(path)
    data = read_input_bytes(path) if data is None else data
    suffix = path.suffix.lower()
    text = _decode(path, data) if suffix == ".json" else ""
    if text.lstrip(" \t\n\r").startswith("["):
        rows = _json_array(path, text)
        lines = None
    elif suffix in (".jsonl", ".json"):
        rows = list(_jsonl_rows(path, io.BytesIO(data)))
        lines = None
    elif suffix == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[],
                             encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(path, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            csv_record_lines(path, _decode(path, data))  # raises, naming the line
            raise InputError(path, f"not a readable CSV: {exc}") from None
        if len(df.columns) == 1 and ";" in str(df.columns[0]):
            raise InputError(path, "one column whose header contains ';': the file looks "
                                   "semicolon-separated; save it comma-separated", line=1)
        lines = csv_record_lines(path, _decode(path, data))[1:]
        if len(lines) != len(df):  # a layout the two parsers count differently: by row
            lines = list(range(2, len(df) + 2))
    elif suffix == ".parquet":
        import pandas as pd

        try:
            df = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputError(path, f"not a readable parquet file: {exc}") from None
        index = [n for n in df.index.names if n is not None]
        if index and not set(index) & set(df.columns):
            df = df.reset_index()  # e.g. df.set_index("id").to_parquet(...)
        lines = list(range(1, len(df) + 1))
    else:
        raise InputError(path, f"unsupported file type {suffix!r}; use one of "
                               f"{', '.join(TABLE_SUFFIXES)}")
    if lines is not None:
        records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
        rows = [(line, {k: _plain(v) for k, v in rec.items()})
                for line, rec in zip(lines, records, strict=True)]
    if not rows:
        raise InputError(path, "file is empty (no records)")
    return rows
