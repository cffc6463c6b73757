"""Run the commands the docs show and compare the outputs the docs show with the real ones.

Markers (HTML comments, invisible on the page) tie a page's blocks to a *scenario*, a scratch
folder in which that page's commands run in order:

    <!-- docs-check NAME run -->            the next fenced block is run (bash, -e)
    <!-- docs-check NAME run: fails -->     ... and must exit with a non-zero status
    <!-- docs-check NAME setup: CMD -->    CMD is run, nothing is shown (data preparation)
    <!-- docs-check NAME show: CMD -->      the next fenced block must equal CMD's stdout

A ``show`` command runs in the scenario folder after the blocks above it; ``$LOG`` is the file
holding the stdout and stderr of the last ``run`` block. The scratch folder links the
project's ``.venv``, ``conf``, ``examples``, ``scripts``, ``tests`` and ``Makefile``, so the
commands are exactly those a reader types in the project folder. Timings and dates are
normalised before comparing, and the scratch folder's path is left out. ``--update``
rewrites every ``show`` block from the real output (the way to refresh excerpts after an
output format changed).

    .venv/bin/python scripts/docs_check.py [--update] [--only NAME ...] [--skip NAME ...] [PAGE ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")
                              if not p.name.startswith("notes-"))]
MARKER = re.compile(
    r"<!-- docs-check (?P<name>[\w-]+) (?P<kind>run|setup|show)(?::\s*(?P<cmd>.*?))?\s*-->")
FENCE = re.compile(r"^(```+)")
LINKED = (".venv", "conf", "examples", "scripts", "tests", "Makefile")
# (pattern, replacement) applied to both the page and the real output before comparing
NORMALISE = [
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T_]\d{2}[:-]\d{2}[:-]\d{2}([.,]\d+)?"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)? ?(s|ms|min)\b"), "<t> s"),
]


@dataclass
class Step:
    """One marker: its page, kind, command and (for run/show) the fenced block's line span."""
    page: str
    name: str
    kind: str
    cmd: str
    start: int = -1  # first line of the block's body (0-based), -1 for setup
    end: int = -1    # line of the closing fence
    body: list[str] = field(default_factory=list)


def _close(lines: list[str], start: int) -> int:
    """The line closing the fenced block opened at ``start`` (or the end of the page)."""
    fence = FENCE.match(lines[start])[1]
    k = start + 1
    while k < len(lines) and lines[k].rstrip() != fence:
        k += 1
    return k


def parse(page: str) -> list[Step]:
    """The markers of one page, in order, with the fenced block each one refers to; markers
    inside a fenced block are example text, not markers."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    steps: list[Step] = []
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            i = _close(lines, i) + 1
            continue
        m = MARKER.search(lines[i])
        if not m:
            i += 1
            continue
        step = Step(page, m["name"], m["kind"], (m["cmd"] or "").strip())
        steps.append(step)
        if step.kind == "setup":
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        if j == len(lines):
            raise SystemExit(f"error: {page}, line {i + 1}: no fenced block after the marker")
        k = _close(lines, j)
        step.start, step.end, step.body = j + 1, k, lines[j + 1:k]
        i = k + 1
    return steps


def normalise(text: str) -> str:
    for pattern, repl in NORMALISE:
        text = pattern.sub(repl, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def scratch(base: Path, name: str) -> Path:
    """A fresh scenario folder with the project's files linked in."""
    work = Path(tempfile.mkdtemp(prefix=f"docs-check-{name}-", dir=base))
    venv = ROOT / ".venv" if (ROOT / ".venv").exists() else Path(sys.prefix)
    for item in LINKED:
        (work / item).symlink_to(venv if item == ".venv" else ROOT / item)
    # make's install stamp is newer than this copy, so `make sweep` installs nothing
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    os.utime(work / "pyproject.toml", (0, 0))
    return work


def sh(cmd: str, cwd: Path, env: dict[str, str], log: Path | None = None,
       fails: bool = False) -> str:
    """Run ``cmd`` with bash; stop with the output when it fails (or, with ``fails``, when it
    does not)."""
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if log is not None:
        log.write_text(proc.stdout, encoding="utf-8")
    if bool(proc.returncode) != fails:
        raise SystemExit(f"error: docs-check: `{cmd}` exited {proc.returncode} in {cwd}:\n"
                         f"{proc.stdout[-4000:]}")
    return proc.stdout


def run_scenario(steps: list[Step], base: Path) -> dict[int, str]:
    """Run one scenario's steps; the real output of each ``show`` step by its index."""
    work = scratch(base, steps[0].name)
    log = work / ".docs-check.log"
    log.touch()
    env = {**os.environ, "LOG": str(log), "HF_HUB_OFFLINE": "1", "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for key in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # a nested make prints "Leaving directory"
        env.pop(key, None)
    real: dict[int, str] = {}
    for idx, step in enumerate(steps):
        if step.kind == "setup":
            sh(step.cmd, work, env)
        elif step.kind == "run":
            sh("\n".join(step.body), work, env, log, fails=step.cmd == "fails")
        else:
            real[idx] = sh(step.cmd, work, env).replace(f"{work}/", "")
    return real


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", help="pages (default: README.md and docs/*.md)")
    ap.add_argument("--update", action="store_true", help="rewrite show blocks from real output")
    ap.add_argument("--only", nargs="*", default=None, help="scenario names to run")
    ap.add_argument("--skip", nargs="*", default=[], help="scenario names to leave out")
    ap.add_argument("--work", type=Path, default=None, help="keep scenario folders here")
    args = ap.parse_args(argv)

    scenarios: dict[tuple[str, str], list[Step]] = {}
    for page in args.pages or PAGES:
        for step in parse(page):
            scenarios.setdefault((page, step.name), []).append(step)
    chosen = {k: v for k, v in scenarios.items()
              if (args.only is None or k[1] in args.only) and k[1] not in args.skip}
    if not chosen:
        print("error: docs-check: no scenario selected", file=sys.stderr)
        return 2
    base = args.work or Path(tempfile.mkdtemp(prefix="docs-check-"))
    base.mkdir(parents=True, exist_ok=True)
    failures, updates = [], {}
    for (page, name), steps in chosen.items():
        print(f"docs-check: {page}: {name}", flush=True)
        for idx, out in run_scenario(steps, base).items():
            step = steps[idx]
            if normalise("\n".join(step.body)) == normalise(out):
                continue
            if args.update:
                updates.setdefault(page, []).append(
                    (step, [line.rstrip() for line in out.strip("\n").splitlines()]))
            else:
                failures.append(f"{page}, line {step.start}: block `{name} show: {step.cmd}` "
                                f"differs from the real output:\n{out}")
    for page, edits in updates.items():
        lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
        for step, new in sorted(edits, key=lambda e: -e[0].start):
            lines[step.start:step.end] = new
        (ROOT / page).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"docs-check: updated {len(edits)} block(s) in {page}")
    if args.work is None:
        shutil.rmtree(base, ignore_errors=True)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
