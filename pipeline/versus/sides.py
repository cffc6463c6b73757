"""Two sides of a comparison (model vs model, sweep vs sweep): matching examples by id.

Examples are matched by ``id``; ids present on one side only are counted and listed (first
few), never silently dropped. A prediction source is a run folder
``runs/<model>/<train_size>`` (its ``predictions.jsonl``) or a predictions file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import InputError
from pipeline.core.io import read_json, read_records
from pipeline.core.paths import run_file
from pipeline.core.tasks import get_task
from pipeline.generators.predictions import validate_predictions

N_FIRST = 5  # one-sided ids listed by name


@dataclass(frozen=True)
class IdMatch:
    """Ids on both sides (in the left side's order) and ids on one side only."""

    shared: list[str]
    only_left: list[str]
    only_right: list[str]

    def report(self, left: str, right: str) -> dict:
        """Counts and first ids, for ``summary.json``."""
        return {"n_shared": len(self.shared),
                f"only_in_{left}": {"count": len(self.only_left),
                                    "first": self.only_left[:N_FIRST]},
                f"only_in_{right}": {"count": len(self.only_right),
                                     "first": self.only_right[:N_FIRST]}}

    def lines(self, left: str, right: str) -> list[str]:
        """Human-readable notes on the one-sided ids (empty when every id is shared)."""
        out = []
        for name, ids in ((left, self.only_left), (right, self.only_right)):
            if ids:
                shown = ", ".join(ids[:N_FIRST]) + (", ..." if len(ids) > N_FIRST else "")
                out.append(f"{len(ids)} example id(s) only in {name}: {shown}")
        return out


def match_ids(left: Iterable[str], right: Iterable[str]) -> IdMatch:
    """Match two id lists (each without duplicates)."""
    left, right = [str(i) for i in left], [str(i) for i in right]
    lset, rset = set(left), set(right)
    return IdMatch([i for i in left if i in rset], [i for i in left if i not in rset],
                   [i for i in right if i not in lset])


@dataclass
class Side:
    """One model's outputs: display name, source file, the task fields it carries, records."""

    name: str
    path: Path
    tasks: list[str]
    records: list[dict]

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.records]


def side_name(path: Path) -> str:
    """``<model>-<train_size>`` for a run folder (the model name its ``manifest.json``
    records, else the folder's name), else the file's stem."""
    if not path.is_dir():
        return path.stem
    try:
        manifest = read_json(run_file(path, "manifest"))
        return f"{manifest['model']}-{int(manifest['train_size'])}"
    except (OSError, ValueError, KeyError, TypeError):  # no readable manifest: unfinished
        return f"{path.parent.name}-{path.name}"


def load_side(spec: str | Path, tasks: Iterable[str]) -> Side:
    """Read and validate the predictions of a run folder or file.

    ``tasks`` are the candidate tasks; a side carries a task when any of its records has the
    task's field, and then every record must have a valid value (InputError naming the line).
    """
    path = Path(spec)
    if not path.exists():
        raise InputError(path, "not found (give a run folder runs/<model>/<train_size> or a "
                               "predictions file)")
    source = run_file(path, "predictions") if path.is_dir() else path
    if not source.exists():
        raise InputError(path, f"no {source.name} in this folder (give a run folder "
                               "runs/<model>/<train_size> or a predictions file)")
    rows = read_records(source)
    carried = [t for t in tasks if any(get_task(t).field in rec for _, rec in rows)]
    ids = [str(rec.get("id")) for _, rec in rows]
    records = validate_predictions(rows, source, carried, ids, list(dict.fromkeys(ids)))
    return Side(side_name(path), source, carried, records)
