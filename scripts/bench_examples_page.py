"""Benchmark: the example explorer (``report/examples.html``) on a sweep of many cells.

The reference row is a finished demo sweep (``--demo-dir``, e.g. ``make sweep``'s 20 cells x
200 examples). The synthetic sweep replicates its cells into N cells (model
``<demo model>-r<k>``, the demo's train sizes), scores jittered as in
``scripts/bench_aggregate.py`` and, unlike there, every text output rewritten per cell (each
word replaced, with probability 0.2, by a word of the same example's article, and 5% of words
dropped), so that no two cells share an output and the chunks cannot shrink by sharing texts.
Per sweep: wall and CPU seconds to assemble and write the page data (``assemble`` +
``write_explorer``, the ranking taken from the cells' mean overall score, so aggregate is not
run), the sizes of the page and its data, and, in headless Chromium, the time from navigation
to the first example drawn, to draw an example of the last chunk, and to reorder by largest
disagreement (with the default cells shown: each model's best).

    python scripts/bench_examples_page.py --demo-dir outputs          # 1000 cells
    python scripts/bench_examples_page.py --demo-dir outputs --cells 100,1000
    python scripts/bench_examples_page.py --quick                     # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_aggregate import _jitter, quick_template, read_cells  # noqa: E402

from pipeline.aggregate.ranking import OVERALL, example_overall  # noqa: E402
from pipeline.core.io import read_jsonl, write_json, write_jsonl, write_parquet  # noqa: E402
from pipeline.core.paths import OutputPaths, run_file  # noqa: E402
from pipeline.core.schema import register_schema  # noqa: E402
from pipeline.report.examples_page import assemble, write_explorer  # noqa: E402

REPLACE, DROP = 0.2, 0.05
TEXT_FIELDS = ("summary", "title")


def _rewrite(text: str, vocab: list[str], rng: np.random.Generator) -> str:
    words = text.split(" ")
    keep = rng.random(len(words)) >= DROP
    swap = rng.random(len(words)) < REPLACE
    picks = rng.integers(0, len(vocab), len(words))
    return " ".join(vocab[p] if s else w for w, k, s, p in zip(words, keep, swap, picks,
                                                               strict=True) if k)


def build_sweep(root: Path, template: Path, n_cells: int, seed: int = 0) -> None:
    """``n_cells`` replicas of the template's cells with jittered scores and rewritten texts."""
    cells = read_cells(template)
    paths = OutputPaths(root)
    vocab: dict[str, list[str]] = {}
    for data in OutputPaths(template).data_root.glob("*/test.jsonl"):
        records = read_jsonl(data)
        write_jsonl(paths.data_root / data.parent.name / "test.jsonl", records)
        vocab.update({r["id"]: r.get("article", "").split() or ["word"] for r in records})
    rng = np.random.default_rng(seed)
    for i in range(n_cells):
        cell = cells[i % len(cells)]
        model = f"{cell.metrics['model']}-r{i // len(cells):03d}"
        scores = _jitter(cell.scores, rng)
        run_dir = paths.run_dir(model, cell.metrics["train_size"])
        preds = [{**p, **{f: _rewrite(p[f], vocab.get(p["id"], ["word"]), rng)
                          for f in TEXT_FIELDS if isinstance(p.get(f), str)}}
                 for p in cell.predictions]
        write_parquet(run_file(run_dir, "scores"), scores)
        write_jsonl(run_file(run_dir, "predictions"), preds)
        write_json(run_file(run_dir, "metrics"), {**cell.metrics, "model": model})
        write_json(run_file(run_dir, "manifest"), cell.manifest)


def ranking(root: Path, weights: dict[str, float]) -> pd.DataFrame:
    """A ranking of every finished cell by its mean per-example overall score."""
    rows = []
    for cell in read_cells(root):
        overall = example_overall(cell.scores, weights)
        rows.append({"model": cell.metrics["model"], "family": cell.metrics.get("family"),
                     "train_size": int(cell.metrics["train_size"]),
                     OVERALL: float(overall.mean()) if overall is not None else np.nan})
    ranked = pd.DataFrame(rows).sort_values(OVERALL, ascending=False, ignore_index=True)
    return ranked.assign(rank=np.arange(1, len(ranked) + 1))


def build_page(root: Path, cfg: object) -> dict[str, float]:
    """Assemble and write the explorer; wall/CPU seconds and the sizes written (MB)."""
    ranked = ranking(root, dict(cfg.aggregate.weights))
    paths = OutputPaths(root)
    test = next(paths.data_root.glob("*/test.jsonl"))
    examples = pd.json_normalize(read_jsonl(test), sep=".")
    cpu0, t0 = time.process_time(), time.perf_counter()
    page = write_explorer(paths.report_dir, assemble(cfg, paths, ranked, examples))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    data = sorted((paths.report_dir / "examples").iterdir())
    chunks = [p.stat().st_size for p in data if p.name.startswith("chunk-")]
    mb = 2**-20
    return {"build_s": wall, "build_cpu_s": cpu,
            "page_kb": page.stat().st_size / 1024,
            "index_mb": (paths.report_dir / "examples" / "index.js").stat().st_size * mb,
            "chunks": len(chunks), "max_chunk_mb": max(chunks) * mb,
            "total_mb": (page.stat().st_size + sum(p.stat().st_size for p in data)) * mb}


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-extensions", "--window-size=1400,900",
         "--remote-debugging-port=0"]
SHOWN = "document.getElementById('detail').dataset.example"


def _until(page: object, expression: str, timeout: float = 120) -> float:
    """Seconds until ``expression`` is truthy (polled every 10 ms)."""
    t0 = time.perf_counter()
    while not page.evaluate(expression):
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(expression)
        time.sleep(0.01)
    return time.perf_counter() - t0


def browse(chromium: str, page_path: Path, work: Path) -> dict[str, float]:
    """Open the page in headless Chromium and time the first draw and two interactions."""
    from tests.test_report_browser import Page, console_errors

    profile = Path(tempfile.mkdtemp(dir=work, prefix="profile-"))
    proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        while not (port_file.exists() and port_file.read_text().strip()):
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
            target = next(t for t in json.load(resp) if t["type"] == "page")
        page = Page(target["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url=page_path.resolve().as_uri())
        opened = _until(page, "document.querySelector('#detail tr[data-cell]') !== null")
        last = page.evaluate("INDEX.examples[INDEX.examples.length - 1].id")
        page.evaluate("document.querySelector('#list tbody tr:last-child').click()")
        other = _until(page, f"{SHOWN} === {json.dumps(last)}")
        t0 = time.perf_counter()
        page.evaluate("document.getElementById('by-spread').click()")
        top = page.evaluate("document.querySelector('#list tbody tr').children[1].textContent")
        _until(page, f"{SHOWN} === {json.dumps(top)}")
        spread = time.perf_counter() - t0
        shown = page.evaluate("document.querySelectorAll('#chips .chip').length")
        errors = len(console_errors(page))
        page.ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {"shown": shown, "open_s": opened, "last_chunk_s": other, "by_spread_s": spread,
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, help="a finished demo sweep (make sweep)")
    parser.add_argument("--cells", default="1000", help="synthetic sweep sizes (comma-separated)")
    parser.add_argument("--work", type=Path, help="where the sweeps are written (default: temp)")
    parser.add_argument("--quick", action="store_true", help="tiny template, 12 cells")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_examples_"))
    work.mkdir(parents=True, exist_ok=True)
    register_schema()
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose(config_name="config", overrides=[f"output_dir={work}"])
    template = args.demo_dir
    if args.quick or template is None:
        template = work / "template"
        quick_template(template)
    sizes = (12,) if args.quick else tuple(int(s) for s in args.cells.split(","))
    chromium = shutil.which("chromium")
    rows = []
    for name, root in [("template", None), *[(f"synthetic {n}", n) for n in sizes]]:
        if root is None:
            folder = work / "reference"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(template / "runs", folder / "runs")
            shutil.copytree(template / "data", folder / "data")
        else:
            folder = work / f"sweep{root}"
            build_sweep(folder, template, root)
        n_cells = len(list(OutputPaths(folder).runs.glob("*/*/manifest.json")))
        row = {"sweep": name, "cells": n_cells, **build_page(folder, cfg)}
        if chromium:
            row.update(browse(chromium, folder / "report" / "examples.html", work))
        rows.append(row)
        print(f"{name} done", file=sys.stderr, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"example explorer: build (wall/CPU s), sizes, headless Chromium timings (s) on "
          f"{os.cpu_count()} CPUs; peak RSS of this process {peak:.0f} MB; under {work}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if not chromium:
        print("chromium not found: browser timings left out")


if __name__ == "__main__":
    main()
