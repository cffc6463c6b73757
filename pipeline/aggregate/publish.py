"""Write the ranked table, every summary table and ``analysis.md`` for one sweep, as one set.

The set (``model_comparison.csv``, ``tables/``, ``analysis.md`` and the stamp
``aggregate.json``) is written into a staging folder that then replaces
``<output_dir>/aggregate/`` as a whole (:mod:`pipeline.core.staging`); the documented paths
``<output_dir>/model_comparison.csv``, ``tables`` and ``analysis.md`` are symbolic links into
it. A run killed while writing leaves the previous set complete and untouched; readers never
see a new CSV beside old tables.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.aggregate import tables as tb
from pipeline.aggregate.analysis import untested_note, write_analysis_md
from pipeline.aggregate.examples import Examples
from pipeline.aggregate.provenance import read_provenance
from pipeline.aggregate.ranking import (
    PerExample,
    adjacent_significance,
    pairwise_tests,
    pvalue_matrix,
    rank_cells,
    sweep_examples,
)
from pipeline.core.errors import InputError
from pipeline.core.io import (
    atomic_write_text,
    file_sha256,
    read_json,
    write_csv,
    write_json,
    write_table,
)
from pipeline.core.paths import OutputPaths
from pipeline.core.staging import recover, staged

SET_DIR = "aggregate"  # <output_dir>/aggregate/ holds the published set
STAMP = "aggregate.json"
LINKED = ("model_comparison.csv", "tables", "analysis.md", STAMP)  # links at <output_dir>


def build_tables(ranked: pd.DataFrame, cells: pd.DataFrame, per_example: PerExample,
                 higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                 human: pd.DataFrame | None = None, margin: float = 0.01, n_boot: int = 1000,
                 seed: int = 0, alpha: float = 0.05,
                 max_pairs: int | None = None,
                 examples: Examples | None = None) -> dict[str, pd.DataFrame]:
    """All summary tables by file stem (``significance`` excluded, see :func:`write_all`).

    ``pairwise_pvalues`` is the matrix of the cells whose every pair was tested; when
    ``max_pairs`` bounds the tests, ``pairwise_tests`` lists every tested pair.
    """
    tests, top = pairwise_tests(cells, per_example, higher_is_better, weights, n_boot, seed,
                                "holm", alpha, max_pairs, examples)
    out = {
        "efficiency": tb.efficiency(ranked),
        "scaling": tb.scaling(ranked),
        "train_size_summary": tb.train_size_summary(ranked),
        "family_comparison": tb.family_comparison(ranked, higher_is_better),
        "task_leaders": tb.task_leaders(ranked, higher_is_better),
        "factor_correlations": tb.factor_correlations(ranked),
        "metric_correlations": tb.metric_correlations(ranked, higher_is_better),
        "recommendations": tb.recommendations(ranked, margin, alpha),
        "pairwise_pvalues": pvalue_matrix(tests, top),
    }
    if len(top) < len(ranked):
        out["pairwise_tests"] = tests
    if human is not None:
        out["human_correlations"] = tb.human_correlations(per_example, ranked, human, weights,
                                                          n_boot, seed, alpha)
    return out


def write_all(out_dir: Path, cells: pd.DataFrame, per_example: PerExample,
              higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
              human: pd.DataFrame | None = None, margin: float = 0.01, n_boot: int = 1000,
              seed: int = 0, alpha: float = 0.05, max_pairs: int | None = None,
              inputs: str = "", min_effect: float = 0.0) -> dict[str, Path]:
    """Publish ``model_comparison.csv``, ``tables/<name>.csv`` + ``.md`` and ``analysis.md``
    under ``out_dir`` as one set (see the module docstring), stamped with ``inputs`` (the
    digest of what was aggregated).

    Returns the written CSV/Markdown paths by name (``model_comparison``, each table stem,
    ``analysis``), as their documented paths under ``out_dir``.
    """
    out_dir = Path(out_dir)
    examples = sweep_examples(per_example, higher_is_better, weights)
    ranked = rank_cells(cells, per_example, higher_is_better, weights, n_boot, seed, alpha,
                        examples)
    significance = adjacent_significance(cells, per_example, higher_is_better, weights, n_boot,
                                         seed, alpha, examples)
    tables = build_tables(ranked, cells, per_example, higher_is_better, weights, human, margin,
                          n_boot, seed, alpha, max_pairs, examples)
    keys = zip(ranked["model"], ranked["train_size"], strict=True)
    n_examples = [len(per_example[k]) for k in keys if k in per_example]
    remove_strays(out_dir)
    with staged(out_dir / SET_DIR) as stage:
        layout = OutputPaths(stage)
        written = {"model_comparison": layout.comparison_csv}
        write_csv(written["model_comparison"], ranked)
        for name, frame in {**tables, "significance": significance}.items():
            written[name] = layout.tables / f"{name}.csv"
            write_table(written[name], frame)
            if (note := untested_note(name, frame)) is not None:  # not an empty table
                atomic_write_text(written[name].with_suffix(".md"), note)
        written["analysis"] = layout.analysis_md
        write_analysis_md(ranked, tables, significance, written["analysis"], alpha=alpha,
                          n_examples=n_examples, min_effect=min_effect,
                          provenance=read_provenance(out_dir, per_example))
        _write_stamp(stage, inputs, len(ranked))
    _link(out_dir)
    return {name: out_dir / path.relative_to(stage) for name, path in written.items()}


def _set_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != STAMP)


def _write_stamp(folder: Path, inputs: str, n_cells: int) -> None:
    """``aggregate.json``: the set's id, its inputs digest and the sha256 of every file."""
    now = dt.datetime.now(dt.UTC)
    write_json(folder / STAMP, {
        "run_id": f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}", "inputs": inputs,
        "n_cells": n_cells, "written": now.isoformat(timespec="seconds"),
        "files": {p.relative_to(folder).as_posix(): file_sha256(p) for p in _set_files(folder)},
    })


def _link(out_dir: Path) -> None:
    """Make each documented path under ``out_dir`` a relative link into the set folder,
    replacing what an older version wrote there (plain files, a ``tables`` folder)."""
    for name in LINKED:
        path, target = out_dir / name, Path(SET_DIR) / name
        if path.is_symlink() and Path(os.readlink(path)) == target:
            continue
        tmp = out_dir / f".{name}.link-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target, target_is_directory=name == "tables")
        if path.is_dir() and not path.is_symlink():  # an old tables/ folder: set aside
            aside = out_dir / f".{name}.old-{os.getpid()}"
            os.replace(path, aside)
            os.replace(tmp, path)
            shutil.rmtree(aside)
        else:
            os.replace(tmp, path)


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
    actual = {p.relative_to(folder).as_posix(): p for p in _set_files(folder)}
    for rel, digest in files.items():
        if rel not in actual or file_sha256(actual[rel]) != digest:
            raise InputError(folder / rel, f"{'changed' if rel in actual else 'missing'} since "
                                           f"aggregate set {stamp['run_id']} was published; "
                                           "rerun `python -m pipeline.aggregate`")
    return stamp
