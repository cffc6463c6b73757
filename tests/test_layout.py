"""The package layout: one package per stage, imports run downhill, light stages stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pipeline"
# Flow order: a package may import itself and packages to its left, never to its right.
ORDER = ["core", "data", "finetune", "generators", "scoring", "aggregate", "report", "versus"]
HEAVY = ("torch", "transformers", "sklearn", "onnxruntime")


def _imports(path: Path) -> set[str]:
    """Every ``pipeline.*`` module imported anywhere in ``path`` (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("pipeline.")}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else None


def test_imports_run_downhill() -> None:
    uphill = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if len(rel.parts) == 1:
            continue  # entry-point shims at the top may import any stage
        own = ORDER.index(rel.parts[0])
        for module in _imports(path):
            stage = _stage(module)
            if stage is not None and ORDER.index(stage) > own:
                uphill.append(f"{rel} imports {module}")
    assert uphill == []


def test_at_most_six_loose_modules() -> None:
    loose = [p.name for p in PKG.glob("*.py") if p.name != "__init__.py"]
    assert len(loose) <= 6, loose
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert set(ORDER) <= packages


@pytest.mark.parametrize("module", ["pipeline.aggregate", "pipeline.aggregate.stage",
                                    "pipeline.report", "pipeline.report.build",
                                    "pipeline.versus.diff"])
def test_light_stages_import_no_heavy_library(module: str) -> None:
    code = (f"import sys, {module}; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


def test_metric_directions_load_no_heavy_library() -> None:
    """The aggregate asks every metric for its directions; that must not load an encoder."""
    code = ("import sys\n"
            "from pipeline.scoring.metrics import directions\n"
            "from pipeline.core.registry import METRICS\n"
            "names = METRICS.names()\n"
            "tasks = {'summarization': {'metrics': ['rouge', 'bertscore']},\n"
            "         'tag': {'metrics': ['set_overlap']},\n"
            "         'type': {'metrics': ['classification']}}\n"
            "assert directions(tasks)['summarization_bertscore_f1'] is True\n"
            f"print(names, sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip().endswith("[]"), out.stdout
    assert "'rouge'" in out.stdout and "'bertscore'" in out.stdout
