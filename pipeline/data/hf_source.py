"""Records from a Hugging Face dataset (``data=hf``), read offline by default.

``data.options.path`` is a hub id already in the local cache, a ``save_to_disk`` folder, a
JSON/JSONL/CSV/parquet file, or a ``datasets`` builder name (``json``, ``csv``, ``parquet``)
with ``data_files``. ``columns`` maps record fields (``id``, ``article``, ``meta`` and task
reference fields) to dataset columns; a column named like a field needs no mapping. Without
an id column a record's id is its row index.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.core.errors import ConfigError
from pipeline.core.io import file_sha256
from pipeline.core.registry import TASKS
from pipeline.core.tasks import get_task
from pipeline.data.dataset import check_records

FILE_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def _datasets(offline: bool) -> Any:
    """The ``datasets`` module, with hub access switched off when ``offline``."""
    if offline:
        os.environ["HF_DATASETS_OFFLINE"] = "1"
        os.environ["HF_HUB_OFFLINE"] = "1"
    already = "datasets" in sys.modules
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError("data=hf needs the `datasets` package: pip install datasets") from exc
    if offline and already:  # imported before with the hub on: its flag was read then
        datasets.config.HF_HUB_OFFLINE = True
    return datasets


def open_splits(opts: dict[str, Any]) -> dict[str, Any]:
    """``{split name: datasets.Dataset}`` of the dataset that ``opts`` (data.options) name;
    a dataset that cannot be read (not in the cache while offline) is a ``ConfigError``."""
    path = opts.get("path")
    if not path:
        raise ConfigError("data=hf needs data.options.path: a hub id in the local cache, a "
                          "save_to_disk folder or a JSON/CSV/parquet file")
    ds = _datasets(bool(opts.get("offline", True)))
    local = Path(str(path)).expanduser()
    try:
        if local.is_dir() and any((local / f).exists()
                                  for f in ("dataset_dict.json", "state.json")):
            loaded = ds.load_from_disk(str(local))
            if isinstance(loaded, ds.Dataset):
                loaded = {str(opts.get("split") or "test"): loaded}
        else:
            builder, files = str(path), opts.get("data_files")
            if local.is_file():
                if local.suffix.lower() not in FILE_FORMATS:
                    raise ConfigError(f"data.options.path={path}: read files ending "
                                      f"{', '.join(FILE_FORMATS)}")
                builder = FILE_FORMATS[local.suffix.lower()]
                files = files or {str(opts.get("split") or "test"): str(local)}
            loaded = ds.load_dataset(builder, opts.get("name"), revision=opts.get("revision"),
                                     data_files=files, cache_dir=_cache_dir(ds, opts, files))
    except (ConnectionError, FileNotFoundError, ds.exceptions.DatasetNotFoundError) as exc:
        hint = (" (offline: only datasets already in the local cache can be read; "
                "data.options.offline=false lets `datasets` download it)"
                if opts.get("offline", True) else "")
        raise ConfigError(f"data.options.path={path}: cannot read the dataset{hint}: "
                          f"{exc}") from exc
    return dict(loaded)


def _local_files(files: Any) -> list[Path]:
    """The existing local files among ``data_files`` (a path, a list, or split -> either)."""
    if isinstance(files, dict):
        return [p for v in files.values() for p in _local_files(v)]
    if isinstance(files, list | tuple):
        return [p for v in files for p in _local_files(v)]
    path = Path(str(files)).expanduser() if files else None
    return [path.resolve()] if path is not None and path.is_file() else []


def _cache_dir(ds: Any, opts: dict[str, Any], files: Any) -> str | None:
    """Where ``datasets`` caches what it built: for local data files, a folder named after
    their content checksum. ``datasets`` keys its cache by a file's path and mtime, so a
    file edited without its mtime changing (coarse timestamps, ``cp -p``, a restore) would
    be read from the stale cache; keyed by content, it is read again."""
    base = opts.get("cache_dir")
    local = sorted(set(_local_files(files)))
    if not local:
        return base
    content = hashlib.sha256("".join(f"{p}\0{file_sha256(p)}\n" for p in local).encode())
    return str(Path(base or ds.config.HF_DATASETS_CACHE) / f"local-{content.hexdigest()[:16]}")


def column_map(columns: list[str], mapping: dict[str, str], where: str) -> dict[str, str]:
    """``{record field: dataset column}``: the explicit ``mapping`` plus every column named
    like a field; an unknown field or a missing column is a ``ConfigError``."""
    fields = ["id", "article", "meta"] + [get_task(n).field for n in TASKS.names()]
    for key, col in mapping.items():
        if key not in fields:
            raise ConfigError(f"data.options.columns.{key}: not a record field; use one of "
                              f"{', '.join(fields)}")
        if col not in columns:
            raise ConfigError(f"data.options.columns.{key}={col}: no such column in {where}; "
                              f"its columns: {', '.join(columns)}")
    implicit = {f: f for f in fields if f in columns and f not in mapping}
    return {**implicit, **mapping}


def split_records(split: Any, fields: dict[str, str], tasks: list[str], where: str,
                  require_all: bool = True) -> list[dict]:
    """The validated records of one split, renamed by ``fields`` (ids: the row index when
    there is no id column)."""
    rows = ({**{f: row[c] for f, c in fields.items()},
             **({} if "id" in fields else {"id": str(i)})}
            for i, row in enumerate(split))
    return check_records(where, ((i + 1, r) for i, r in enumerate(rows)), tasks, require_all)


def read_hf(cfg: DictConfig) -> tuple[list[dict], list[dict], list[str], dict[str, Any]]:
    """``(test, train, tasks, source)`` of ``data=hf``; ``source`` records where the data
    came from and each split's ``datasets`` fingerprint."""
    opts = OmegaConf.to_container(cfg.options, resolve=True)
    splits = open_splits(opts)
    wanted = {"test": str(opts.get("split") or "test")}
    if opts.get("train_split"):
        wanted["train"] = str(opts["train_split"])
    for role, name in wanted.items():
        if name not in splits:
            key = "split" if role == "test" else "train_split"
            raise ConfigError(f"data.options.{key}={name}: no such split in "
                              f"{opts['path']}; its splits: {', '.join(splits)}")
    test_split = splits[wanted["test"]]
    where = f"{opts['path']} [{wanted['test']}]"
    fields = column_map(list(test_split.column_names), dict(opts.get("columns") or {}), where)
    tasks = list(cfg.tasks) or [n for n in TASKS.names() if get_task(n).field in fields]
    if not tasks:
        raise ConfigError(f"data.options.columns: no task reference column in {where}; map "
                          "one, e.g. data.options.columns.summary=<column>")
    test = split_records(test_split, fields, tasks, where)
    train: list[dict] = []
    if "train" in wanted:
        train_split = splits[wanted["train"]]
        train_where = f"{opts['path']} [{wanted['train']}]"
        train = split_records(train_split, column_map(list(train_split.column_names),
                                                      dict(opts.get("columns") or {}),
                                                      train_where), tasks, train_where)
    source = {role: splits[name]._fingerprint for role, name in wanted.items()}
    source["hf"] = {k: opts.get(k) for k in ("path", "name", "revision", "data_files")
                    if opts.get(k) is not None}
    return test, train, tasks, source
