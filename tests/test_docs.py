"""The documentation: the site builds offline with ``mkdocs build --strict`` (no warning), and
the commands and outputs the pages show are real (``scripts/docs_check.py`` runs them)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("docs_check", ROOT / "scripts/docs_check.py")
docs_check = importlib.util.module_from_spec(spec)
sys.modules["docs_check"] = docs_check  # its dataclass looks its module up
spec.loader.exec_module(docs_check)


def test_site_builds_strict_and_offline(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs-material is not installed (the dev extra has it)")
        pytest.skip("mkdocs-material is not installed")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr
    index = (tmp_path / "site/index.html").read_text(encoding="utf-8")
    assert "A 5-minute tour" in index  # the README's tour, included by snippet
    assert "fonts.googleapis" not in index  # theme.font: false, nothing fetched
    assert not list((tmp_path / "site").glob("notes-*"))  # helpers' notes stay out


def test_screenshots_stay_small() -> None:
    images = list((ROOT / "docs/img").glob("*.png"))
    assert len(images) >= 5  # top, leaderboard and one chart per kind
    assert sum(p.stat().st_size for p in images) < 1_500_000


def test_readme_is_a_short_front_door() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    for line in text.splitlines():  # every command shown runs with the project's venv
        assert not line.lstrip().startswith(("python ", "python3 ")), line


def test_check_fails_on_drift_and_update_rewrites_the_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "<!-- docs-check demo setup: printf 'a\\nb\\n' > data.txt -->",
        "<!-- docs-check demo run -->", "```bash", "wc -l < data.txt", "```",
        "<!-- docs-check demo show: cat \"$LOG\" -->", "```", "3", "```",
        "<!-- docs-check demo run: fails -->", "```bash", "cat missing.txt", "```",
        "<!-- docs-check demo show: grep -o 'No such file' \"$LOG\" -->", "```",
        "No such file", "```", ""]), encoding="utf-8")
    assert docs_check.main([str(page)]) == 1  # the page says 3, the command prints 2
    assert docs_check.main(["--update", str(page)]) == 0
    assert "```\n2\n```" in page.read_text(encoding="utf-8")
    assert docs_check.main([str(page)]) == 0


def test_normalise_ignores_timings_and_dates_only() -> None:
    shown = "[2026-12-06 00:51:28,952] done in 4.4 s\nscore 0.7111"
    real = "[2027-01-01 10:00:00,000] done in 12 s\nscore 0.7111"
    assert docs_check.normalise(shown) == docs_check.normalise(real)
    assert docs_check.normalise("score 0.7111") != docs_check.normalise("score 0.7112")


def _scenarios() -> list[tuple[str, str]]:
    return sorted({(page, step.name) for page in docs_check.PAGES
                   for step in docs_check.parse(page)})


FAST = {"systems", "own"}  # seconds; the others run sweeps (make docs-check runs them all)


@pytest.mark.parametrize("page,name", [
    pytest.param(p, n, marks=() if n in FAST else pytest.mark.slow) for p, n in _scenarios()])
def test_page_outputs_match_the_real_ones(page: str, name: str, tmp_path: Path) -> None:
    assert docs_check.main([page, "--only", name, "--work", str(tmp_path)]) == 0
