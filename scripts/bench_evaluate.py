"""Per-example scoring with a local ``evaluate`` module against calling its ``compute()``
once per example directly (the reference), measured in the same run (issue 25, item 4).

    python scripts/bench_evaluate.py [--n 60] [--module tests/evaluate_modules/word_overlap]

Prints one JSON line: seconds of the direct per-example loop, of the pipeline's per-example
scoring (``score_module``, module already loaded) and their ratio (target: at most about 2),
plus the one-time cost of importing ``evaluate`` and loading the module.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pipeline.core.tasks import get_task
from pipeline.data.demo_corpus import build_demo_corpus
from pipeline.scoring.metrics.hf_evaluate import (
    _module_checksum,
    check_block,
    load_module,
    score_module,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--module", default="tests/evaluate_modules/word_overlap")
    ap.add_argument("--output", default="overlap")
    args = ap.parse_args()
    _, test = build_demo_corpus(n_train=0, n_test=args.n)
    refs = [r["summary"] for r in test]
    preds = [r["article"][:200] for r in test]
    block = check_block("bench", {"module": str(Path(args.module).resolve()),
                                  "outputs": {args.output: True}})
    start = time.perf_counter()
    script = Path(args.module).resolve() / f"{Path(args.module).name}.py"
    module = load_module(str(script), _module_checksum("bench")({"evaluate": block}, None))
    load_s = time.perf_counter() - start
    module.compute(predictions=preds[:1], references=refs[:1])  # warm-up
    start = time.perf_counter()
    direct = [module.compute(predictions=[p], references=[r])[args.output]
              for p, r in zip(preds, refs, strict=True)]
    direct_s = time.perf_counter() - start
    start = time.perf_counter()
    got = score_module("bench", block, get_task("summarization"), preds, [[r] for r in refs])
    pipeline_s = time.perf_counter() - start
    assert list(got.per_example[args.output]) == direct, "per-example values differ"
    print(json.dumps({"examples": args.n, "direct_compute_per_example_s": round(direct_s, 4),
                      "pipeline_per_example_s": round(pipeline_s, 4),
                      "ratio": round(pipeline_s / direct_s, 3),
                      "import_and_load_s": round(load_s, 2)}))


if __name__ == "__main__":
    main()
