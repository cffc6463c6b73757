"""Which cells one ranking may hold: cells scored on the same examples (``aggregate.examples``).

Two cells are comparable when they were scored on the same test records: the same ids with
the same content (source text and references), checked by the checksum of the scored
records each cell's manifest records (``inputs.test``). When the finished cells differ (a
smoke test with ``data.limit=4`` beside 200-example cells, an edited test file):

* ``largest`` (default): rank the largest comparable group (most cells, then most examples)
  and leave the other cells out of every table, naming each with its example count;
* ``common``: rank every cell on the examples all of them share (same id and same record
  checksum); per-example metric means are recomputed on those examples, and cell-level
  values that cannot be (corpus-level metrics, perplexity) are left empty for cells whose
  example set was cut;
* ``error``: stop with a :class:`~pipeline.core.errors.ConfigError` listing the groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pipeline.aggregate.runs import ScoredExamples, SweepResults
from pipeline.core.errors import ConfigError

MODES = ("largest", "common", "error")
EXCLUDED_COLUMNS = ["model", "train_size", "n_examples", "examples_checksum", "reason"]
Cell = tuple[str, int]


@dataclass
class Comparable:
    """The results to rank, the cells left out (``EXCLUDED_COLUMNS``) and one sentence for
    ``analysis.md`` saying what the ranked cells were scored on."""

    results: SweepResults
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=EXCLUDED_COLUMNS))
    note: str = ""


def _label(cell: Cell) -> str:
    return f"{cell[0]}@{cell[1]}"


def groups_of(results: SweepResults) -> list[list[Cell]]:
    """Cells with per-example scores grouped by the checksum of their scored examples,
    largest first (most cells, then most examples, then checksum)."""
    by_sum: dict[str, list[Cell]] = {}
    for cell in results.per_example:
        by_sum.setdefault(results.scored[cell].checksum, []).append(cell)
    return sorted((sorted(cells) for cells in by_sum.values()),
                  key=lambda g: (-len(g), -len(results.per_example[g[0]]),
                                 results.scored[g[0]].checksum))


def _describe(results: SweepResults, group: list[Cell]) -> str:
    n = len(results.per_example[group[0]])
    checksum = results.scored[group[0]].checksum
    shown = ", ".join(_label(c) for c in group[:4]) + (" ..." if len(group) > 4 else "")
    return f"{len(group)} cell(s) on {n} examples (checksum {checksum}): {shown}"


def comparable(results: SweepResults, mode: str = "largest") -> Comparable:
    """The comparable part of ``results`` under ``mode`` (see the module docstring). Results
    without per-example scores (a per-model table) are returned as they are."""
    if mode not in MODES:
        raise ConfigError(f"aggregate.examples={mode}: expected one of {', '.join(MODES)}")
    if not results.per_example or not results.scored:
        return Comparable(results)
    groups = groups_of(results)
    first = results.per_example[groups[0][0]]
    if len(groups) == 1:
        return Comparable(results, note=(
            f"All {len(groups[0])} ranked cells were scored on the same {len(first)} test "
            f"examples (checksum {results.scored[groups[0][0]].checksum})."))
    if mode == "error":
        raise ConfigError(
            "aggregate.examples=error: the finished cells were scored on different examples, "
            f"in {len(groups)} groups: "
            + "; ".join(_describe(results, g) for g in groups)
            + ". Re-run the odd cells on the same data, or use aggregate.examples=largest "
            "(rank the largest group) or aggregate.examples=common (the shared examples)")
    if mode == "largest":
        return _largest(results, groups)
    return _common(results)


def _largest(results: SweepResults, groups: list[list[Cell]]) -> Comparable:
    kept = set(groups[0])
    n = len(results.per_example[groups[0][0]])
    checksum = results.scored[groups[0][0]].checksum
    rows = []
    for group in groups[1:]:
        for cell in group:
            rows.append({"model": cell[0], "train_size": cell[1],
                         "n_examples": len(results.per_example[cell]),
                         "examples_checksum": results.scored[cell].checksum,
                         "reason": f"scored on other examples than the {len(kept)} ranked "
                                   f"cells ({n} examples, checksum {checksum})"})
    excluded = pd.DataFrame(rows, columns=EXCLUDED_COLUMNS)
    note = (f"The ranking holds the largest group of cells scored on the same examples: "
            f"{len(kept)} cells on {n} test examples (checksum {checksum}). "
            f"{len(excluded)} cell(s) scored on other examples are left out of every table "
            "(aggregate.examples=common ranks all cells on their shared examples).")
    return Comparable(_keep(results, kept), excluded, note)


def _keep(results: SweepResults, kept: set[Cell]) -> SweepResults:
    cells = results.cells
    mask = [(m, int(t)) in kept for m, t in zip(cells["model"], cells["train_size"],
                                                 strict=True)]
    human = results.human
    if human is not None:
        keys = zip(human["model"], human["train_size"], strict=True)
        human = human[[(m, int(t)) in kept for m, t in keys]]
    return replace(results, cells=cells[mask].reset_index(drop=True),
                   per_example={c: f for c, f in results.per_example.items() if c in kept},
                   scored={c: s for c, s in results.scored.items() if c in kept}, human=human)


def shared_ids(scored: dict[Cell, ScoredExamples], ids: dict[Cell, set[str]]) -> set[str]:
    """Example ids every cell has, with the same record checksum in every cell that records
    one (cells whose manifest predates per-example checksums match by id)."""
    common = set.intersection(*ids.values())
    for example in list(common):
        sums = {s.digests.get(example) for s in scored.values() if s.digests is not None}
        if len(sums) > 1:
            common.discard(example)
    return common


def _common(results: SweepResults) -> Comparable:
    ids = {c: set(f["id"].astype(str)) for c, f in results.per_example.items()}
    common = shared_ids(results.scored, ids)
    if not common:
        raise ConfigError("aggregate.examples=common: the finished cells share no test "
                          "example (same id and content); use aggregate.examples=largest")
    per_example, rows = {}, []
    metric_cols = [c for c in results.cells.columns
                   if c not in ("model", "family", "params_b", "train_size", "n_examples")]
    cells = results.cells.copy()
    for i, (model, size) in enumerate(zip(cells["model"], cells["train_size"], strict=True)):
        cell = (model, int(size))
        frame = results.per_example[cell]
        cut = frame[frame["id"].astype(str).isin(common)].reset_index(drop=True)
        per_example[cell] = cut
        if len(cut) == len(frame):
            continue
        rows.append(_label(cell))
        for col in metric_cols:  # per-example means again; cell-level values cannot be
            cells.loc[i, col] = (float(np.mean(cut[col].to_numpy(dtype=float)))
                                 if col in cut.columns else np.nan)
    cells["n_examples"] = len(common)
    sizes = sorted({len(f) for f in results.per_example.values()})
    note = (f"aggregate.examples=common: every cell is ranked on the {len(common)} test "
            f"examples all {len(cells)} cells share (same id and content; the cells have "
            f"{sizes[0]} to {sizes[-1]} each). ")
    if rows:
        note += (f"Means were recomputed on those examples for {len(rows)} cell(s); their "
                 "corpus-level metrics and perplexity, computed on their own examples, are "
                 "left empty.")
    human = results.human
    if human is not None:
        human = human[human["id"].astype(str).isin(common)]
    return Comparable(replace(results, cells=cells, per_example=per_example, human=human),
                      note=note)
