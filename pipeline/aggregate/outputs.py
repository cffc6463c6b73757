"""The published set of aggregate outputs: its inputs digest, its stamp, its links.

Light on purpose (no pandas, scipy): the aggregate decides from here whether its inputs
changed since the set was published, and the report checks the set, before either imports
the heavy modules.

    <output_dir>/aggregate/                the set: model_comparison.csv, tables/, analysis.md,
                                           aggregate.json (run id, inputs digest, file sha256s)
    <output_dir>/model_comparison.csv ->   aggregate/model_comparison.csv (and tables,
                                           analysis.md, aggregate.json alike)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from pipeline.core.errors import InputError
from pipeline.core.io import dumps, file_sha256, read_json, write_json
from pipeline.core.paths import OutputPaths, run_file
from pipeline.core.staging import recover

log = logging.getLogger(__name__)
SET_DIR = "aggregate"  # <output_dir>/aggregate/ holds the published set
STAMP = "aggregate.json"
LOCK = ".aggregate.lock"  # held while an aggregate reads and publishes (core.locking)
LINKED = ("model_comparison.csv", "tables", "analysis.md", STAMP)  # links at <output_dir>


def run_dirs(paths: OutputPaths) -> list[Path]:
    """Every run folder under ``runs/``, sorted (``.<name>``: a re-run's staging, left out)."""
    return sorted(p for p in paths.runs.glob("*/*") if p.is_dir() and not p.name.startswith("."))


def inputs_digest(output_dir: str | Path, settings: Any, table: str | Path | None = None) -> str:
    """sha256 over everything the aggregate reads: each run folder's name and, when finished,
    the bytes of its manifest, metrics and scores (and predictions, when they carry human
    judgments), or the ``input=`` table; plus ``settings`` (JSON-serialisable config) and the
    aggregate stage's own source code: what, unchanged, gives the same outputs."""
    h = hashlib.sha256(dumps(settings).encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        h.update(source.read_bytes())
    if table is not None:
        h.update(file_sha256(table).encode())
        return h.hexdigest()
    paths = OutputPaths(Path(output_dir))
    for run_dir in run_dirs(paths):
        h.update(run_dir.relative_to(paths.root).as_posix().encode() + b"\0")
        if not run_file(run_dir, "manifest").exists():
            continue
        kinds = ["manifest", "metrics", "scores"]
        try:
            if read_json(run_file(run_dir, "metrics")).get("human_fields"):
                kinds.append("predictions")
            h.update("".join(file_sha256(run_file(run_dir, k)) for k in kinds).encode())
        except (OSError, ValueError, AttributeError) as exc:  # left out by load_runs too
            h.update(f"unreadable: {exc}".encode())
    return h.hexdigest()


def set_files(folder: Path) -> list[Path]:
    """The files of a set folder that its stamp lists (all but the stamp itself)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != STAMP)


def write_stamp(folder: Path, inputs: str, n_cells: int) -> None:
    """``aggregate.json``: the set's id, its inputs digest and the sha256 of every file."""
    now = dt.datetime.now(dt.UTC)
    write_json(folder / STAMP, {
        "run_id": f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}", "inputs": inputs,
        "n_cells": n_cells, "written": now.isoformat(timespec="seconds"),
        "files": {p.relative_to(folder).as_posix(): file_sha256(p) for p in set_files(folder)},
    })


def link_set(out_dir: Path) -> None:
    """Make each documented path under ``out_dir`` a relative link into the set folder.

    Whatever else stands at such a path (a user's own ``tables/`` or file, or what an older
    version wrote there) is never removed: it is moved aside to ``<name>.moved-<time>``,
    with a warning naming both paths.
    """
    for name in LINKED:
        path, target = out_dir / name, Path(SET_DIR) / name
        if path.is_symlink() and Path(os.readlink(path)) == target:
            continue
        tmp = out_dir / f".{name}.link-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target, target_is_directory=name == "tables")
        if path.exists() or path.is_symlink():
            _move_aside(path)
        os.replace(tmp, path)


def _move_aside(path: Path) -> None:
    """Rename ``path`` to a free ``<name>.moved-<UTC time>[-n]`` beside it, with a warning."""
    base = f"{path.name}.moved-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    aside, n = path.with_name(base), 1
    while aside.exists() or aside.is_symlink():
        aside, n = path.with_name(f"{base}-{n}"), n + 1
    os.rename(path, aside)
    log.warning("%s was not written by the aggregate's set: moved to %s (nothing deleted)",
                path, aside)


def remove_strays(out_dir: Path) -> None:
    """Finish or undo what a killed aggregate left: a half-swapped set folder, its staging
    copy, and temporary files beside the linked paths (``.<name>.*``)."""
    out_dir = Path(out_dir)
    recover(out_dir / SET_DIR)
    recover(out_dir / "tables")
    if not out_dir.is_dir():
        return
    prefixes = tuple(f".{name}." for name in LINKED)
    for path in out_dir.iterdir():
        if path.name.startswith(prefixes):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def published(out_dir: Path) -> dict[str, Any] | None:
    """The stamp of the set published under ``out_dir``, checked against its files; None when
    nothing was published this way (no aggregate yet, or one written before sets existed).

    Raises :class:`InputError` when a file of the set is missing or changed since it was
    published (an interrupted or hand-edited set): rerun ``python -m pipeline.aggregate``.
    """
    folder = Path(out_dir) / SET_DIR
    if not (folder / STAMP).exists():
        return None
    stamp = read_json(folder / STAMP)
    files = stamp.get("files", {})
    actual = {p.relative_to(folder).as_posix(): p for p in set_files(folder)}
    for rel, digest in files.items():
        if rel not in actual or file_sha256(actual[rel]) != digest:
            raise InputError(folder / rel, f"{'changed' if rel in actual else 'missing'} since "
                                           f"aggregate set {stamp['run_id']} was published; "
                                           "rerun `python -m pipeline.aggregate`")
    return stamp
