"""Replace a folder as a whole: its new files go to a staging folder beside it, then swap.

Until the swap, the old folder stays complete and valid; a failure (full disk, Ctrl-C)
removes the staging folder and leaves the old one untouched. The swap is two renames
(old folder aside, staging folder in place); :func:`recover` repairs a process killed
between them and removes what such a process left (names starting with ``.<folder>.``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGING, OLD = "staging", "old"


def _sibling(folder: Path, kind: str) -> Path:
    return folder.parent / f".{folder.name}.{kind}-{os.getpid()}"


def _leftovers(folder: Path, kind: str) -> list[Path]:
    prefix = f".{folder.name}.{kind}-"
    if not folder.parent.is_dir():
        return []
    return sorted(p for p in folder.parent.iterdir() if p.name.startswith(prefix))


@contextmanager
def staged(folder: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends normally, it replaces ``folder``.

    When the block raises, the staging folder is removed and ``folder`` is left as it was.
    """
    folder = Path(folder)
    stage = _sibling(folder, STAGING)
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    old = _sibling(folder, OLD)
    try:
        yield stage
        moved = folder.exists()
        if moved:
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        try:
            os.replace(stage, folder)
        except BaseException:
            if moved:
                os.replace(old, folder)
            raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover(folder: str | Path) -> None:
    """Restore ``folder`` when a swap was cut between its two renames; remove the staging
    and old copies left beside it by interrupted :func:`staged` blocks."""
    folder = Path(folder)
    for old in _leftovers(folder, OLD):
        if not folder.exists():
            os.replace(old, folder)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for stage in _leftovers(folder, STAGING):
        shutil.rmtree(stage, ignore_errors=True)
