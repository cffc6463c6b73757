"""Benchmark: the aggregate and report stages on sweeps of many cells.

The reference row is a real demo sweep (``make sweep``: 5 models x 4 train sizes x 200 test
examples). Each synthetic sweep replicates its cells into N cells (model ``<demo model>-r<k>``
at the demo's train sizes), every per-example score jittered (a per-cell shift plus noise on
continuous scores, 3% of 0/1 scores flipped), written as real run folders with the project's
writers. Each stage runs as its own process, started through a small wrapper process so that
``resource.getrusage(RUSAGE_CHILDREN)`` gives the peak RSS (``ru_maxrss``) and CPU time
(user + system) of that stage alone; ``_s`` columns are wall-clock seconds. ``again_s`` is a
second, unchanged aggregate run (it keeps the published set).

    python scripts/bench_aggregate.py                      # runs the demo sweep first
    python scripts/bench_aggregate.py --demo-dir outputs   # reuse a finished `make sweep`
    python scripts/bench_aggregate.py --quick              # smoke test: tiny synthetic sweeps
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core.io import (  # noqa: E402
    read_json,
    read_jsonl,
    write_json,
    write_jsonl,
    write_parquet,
)
from pipeline.core.paths import OutputPaths, run_file  # noqa: E402

SIZES = (20, 100, 300, 1000)
QUICK_SIZES = (6,)
FLIP = 0.03  # share of 0/1 per-example scores flipped in a synthetic cell
# Runs one command and prints its wall time and peak RSS (the wrapper's only child).
WRAPPER = """import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - t, "rss_mb": use.ru_maxrss / 1024,
                  "cpu_s": use.ru_utime + use.ru_stime}))
"""


@dataclass
class Cell:
    """One finished template cell: its metrics record, per-example scores, manifest, outputs."""

    metrics: dict
    scores: pd.DataFrame
    manifest: dict
    predictions: list[dict]


def read_cells(root: Path) -> list[Cell]:
    """Every finished cell under ``<root>/runs``."""
    cells = []
    for manifest in sorted(OutputPaths(root).runs.glob("*/*/manifest.json")):
        run_dir = manifest.parent
        cells.append(Cell(read_json(run_file(run_dir, "metrics")),
                          pd.read_parquet(run_file(run_dir, "scores")), read_json(manifest),
                          read_jsonl(run_file(run_dir, "predictions"))))
    if not cells:
        raise SystemExit(f"no finished cells under {root}/runs")
    return cells


def quick_template(root: Path, n_examples: int = 20) -> None:
    """A tiny finished sweep (2 models x 2 train sizes) on demo test records, from scratch."""
    from pipeline.data.demo_corpus import build_demo_corpus

    paths = OutputPaths(root)
    _, test = build_demo_corpus(n_train=0, n_test=n_examples)
    write_jsonl(paths.data_dir("demo") / "test.jsonl", test)
    rng = np.random.default_rng(0)
    continuous = [f"{task}_{m}" for task in ("summarization", "title") for m in (
        "rouge1", "rouge2", "rougeL", "bertscore_precision", "bertscore_recall", "bertscore_f1")]
    continuous += ["tag_jaccard", "tag_f1"]
    for i, model in enumerate(("demo-a", "demo-b")):
        for size in (500, 2000):
            level = 0.4 + 0.2 * i + 0.05 * (size == 2000)
            scores = pd.DataFrame({"id": [r["id"] for r in test], **{
                m: np.clip(level + rng.normal(0, 0.1, n_examples), 0, 1) for m in continuous},
                **{m: (rng.random(n_examples) < level).astype(float)
                   for m in ("tag_exact_match", "type_accuracy")}})
            run_dir = paths.run_dir(model, size)
            write_parquet(run_file(run_dir, "scores"), scores)
            write_jsonl(run_file(run_dir, "predictions"), [
                {"id": r["id"], "summary": r["summary"], "title": r["title"],
                 "tags": r["tags"], "type": r["type"]} for r in test])
            write_json(run_file(run_dir, "metrics"), {
                "model": model, "family": f"fam-{model}", "params_b": 0.1 * (i + 1),
                "train_size": size, "perplexity": None,
                "metrics": scores.drop(columns="id").mean().to_dict()})
            write_json(run_file(run_dir, "manifest"), {"config": {"data": {"name": "demo"}}})


def _jitter(scores: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = scores.copy()
    shift = rng.normal(0, 0.01)
    for col in out.columns.drop("id"):
        values = out[col].to_numpy(dtype=float)
        if np.isin(values[~np.isnan(values)], (0.0, 1.0)).all():
            flip = rng.random(len(values)) < FLIP
            out[col] = np.where(flip, 1.0 - values, values)
        else:
            out[col] = np.clip(values + shift + rng.normal(0, 0.02, len(values)), 0, 1)
    return out


def build_sweep(root: Path, template: Path, n_cells: int, seed: int = 0) -> None:
    """``n_cells`` jittered replicas of the template sweep's cells, as finished run folders."""
    cells = read_cells(template)
    paths = OutputPaths(root)
    for data in OutputPaths(template).data_root.glob("*/test.jsonl"):
        write_jsonl(paths.data_root / data.parent.name / "test.jsonl", read_jsonl(data))
    rng = np.random.default_rng(seed)
    for i in range(n_cells):
        cell = cells[i % len(cells)]
        model = f"{cell.metrics['model']}-r{i // len(cells):03d}"
        scores = _jitter(cell.scores, rng)
        metrics = {**cell.metrics, "model": model, "metrics": {
            **cell.metrics["metrics"], **scores.drop(columns="id").mean().to_dict()}}
        run_dir = paths.run_dir(model, cell.metrics["train_size"])
        write_parquet(run_file(run_dir, "scores"), scores)
        write_jsonl(run_file(run_dir, "predictions"), cell.predictions)
        write_json(run_file(run_dir, "metrics"), metrics)
        write_json(run_file(run_dir, "manifest"), cell.manifest)


def measure(args: list[str], env: dict[str, str]) -> dict:
    """Wall time and peak RSS of one command, run through :data:`WRAPPER`."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:  # shown as NaN in the table, and said here
        print(f"failed (exit {result['rc']}): {' '.join(args)}", file=sys.stderr)
        return {**result, "seconds": float("nan"), "rss_mb": float("nan"), "cpu_s": float("nan")}
    return result


def bench(root: Path, env: dict[str, str], overrides: list[str],
          again: bool = True) -> dict[str, float]:
    """Aggregate (then, with ``again``, once more unchanged) and report on one sweep."""
    stage = [sys.executable, "-m"]
    agg = measure([*stage, "pipeline.aggregate", f"output_dir={root}", *overrides], env)
    row = {"aggregate_s": agg["seconds"], "aggregate_cpu_s": agg["cpu_s"],
           "aggregate_mb": agg["rss_mb"]}
    if again:
        row["again_s"] = measure([*stage, "pipeline.aggregate", f"output_dir={root}",
                                  *overrides], env)["seconds"]
    rep = measure([*stage, "pipeline.report", f"output_dir={root}", *overrides], env)
    page = root / "report" / "index.html"
    return {**row, "report_s": rep["seconds"], "report_cpu_s": rep["cpu_s"],
            "report_mb": rep["rss_mb"],
            "page_mb": page.stat().st_size / 2**20 if rep["rc"] == 0 else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, help="a finished demo sweep (make sweep)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="synthetic sweep sizes in cells (comma-separated)")
    parser.add_argument("--work", type=Path, help="where the sweeps are written (default: temp)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: a tiny synthetic template, sizes {QUICK_SIZES}, "
                             "no unchanged re-run")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_aggregate_"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PIPELINE_CACHE_DIR": os.environ.get("PIPELINE_CACHE_DIR", str(work / "cache"))}
    overrides = ["aggregate.n_boot=200"] if args.quick else []
    sizes = QUICK_SIZES if args.quick else tuple(int(s) for s in args.sizes.split(","))
    template = args.demo_dir
    if args.quick:
        template = work / "template"
        quick_template(template)
    elif template is None:
        template = work / "demo"
        print(f"running the demo sweep into {template} ...", flush=True)
        subprocess.run([sys.executable, "-m", "pipeline.compare", "-m", f"output_dir={template}"],
                       env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    cells = read_cells(template)
    n_examples = len(cells[0].scores)
    rows = [{"sweep": "demo (reference)" if not args.quick else "template",
             "cells": len(cells), "examples": n_examples,
             **bench(template, env, overrides, not args.quick)}]
    for n in sizes:
        root = work / f"sweep{n}"
        build_sweep(root, template, n)
        rows.append({"sweep": "synthetic", "cells": n, "examples": n_examples,
                     **bench(root, env, overrides, not args.quick)})
        print(f"{n} cells done", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    print(f"aggregate and report: wall and CPU seconds, peak RSS (MB), on {os.cpu_count()} "
          f"CPUs; sweeps under {work}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
