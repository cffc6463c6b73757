"""Per-example values of every cell, aligned on example ids once per aggregation.

The ranking, the pairwise tests and the significance table all need ``(examples x cells)``
matrices of one column, for different orderings of the cells. Reading them out of the
per-cell DataFrames each time costs a pandas re-index per cell and per matrix; at a thousand
cells that dominates the aggregate. :class:`Examples` does that work once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from pipeline.core.errors import UserError

PerExample = Mapping[tuple[str, int], pd.DataFrame]
Getter = Callable[[pd.DataFrame], pd.Series | None]


class Examples:
    """The requested per-example ``columns`` of every cell in ``per_example``, as arrays on
    the sorted union of example ids (NaN where a cell lacks an id or a column).

    ``derived`` adds columns computed per cell from its frame (e.g. the per-example overall
    score): a function ``frame -> Series | None`` (None: not available for that cell).
    """

    def __init__(self, per_example: PerExample, columns: Iterable[str],
                 derived: Mapping[str, Getter] | None = None) -> None:
        self._cells = {key: j for j, key in enumerate(per_example)}
        for (model, size), frame in per_example.items():
            if frame["id"].duplicated().any():
                raise UserError(f"per-example scores of {model}@{size} repeat an id")
        ids = pd.Index(sorted({str(i) for f in per_example.values() for i in f["id"]}))
        shape = (len(ids), len(self._cells))
        self._present = np.zeros(shape, dtype=bool)  # the cell's frame has this id
        self._values: dict[str, np.ndarray] = {}
        columns = list(columns)
        for key, frame in per_example.items():
            j = self._cells[key]
            rows = ids.get_indexer(frame["id"].astype(str))
            self._present[rows, j] = True
            here = [c for c in columns if c in frame.columns]
            block = frame[here].to_numpy(dtype=float)  # one conversion per cell
            found = dict(zip(here, block.T, strict=True))
            for name, getter in (derived or {}).items():
                col = getter(frame)
                if col is not None:
                    found[name] = col.to_numpy(dtype=float)
            for name, col in found.items():
                self._values.setdefault(name, np.full(shape, np.nan))[rows, j] = col

    def matrix(self, ordered: pd.DataFrame, column: str) -> np.ndarray:
        """``(n_ids, n_cells)`` values of ``column`` for the cells of ``ordered`` (its row
        order), on the union of those cells' ids; NaN where absent."""
        keys = zip(ordered["model"], ordered["train_size"], strict=True)
        cols = np.array([self._cells.get(key, -1) for key in keys], dtype=int)
        have = cols >= 0
        rows = self._present[:, cols[have]].any(axis=1)
        out = np.full((int(rows.sum()), len(cols)), np.nan)
        values = self._values.get(column)
        if values is not None and have.any():
            out[:, have] = values[np.ix_(rows, cols[have])]
        return out
