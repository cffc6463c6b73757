"""CLI: ``python -m pipeline.bertscore FILE.jsonl [options]`` -> one JSON object on stdout.

Each line of FILE is ``{"candidate": str, "references": [str, ...]}``.  Bad input (empty
file, invalid JSON, missing/mistyped field, empty reference list) is reported on stderr with
the file, line and field, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.scoring.bertscore.encoder import DEFAULT_MODEL


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.bertscore", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="JSONL with candidate/references per line")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--num-layers", type=int, default=None)
    p.add_argument("--idf", action="store_true")
    p.add_argument("--rescale", action="store_true")
    p.add_argument("--baseline-path", default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32")
    p.add_argument("--backend", choices=["auto", "onnx", "torch", "transformers"],
                   default="auto",
                   help="forward implementation: auto = ONNX Runtime on CPU at fp32 for "
                        "BERT-architecture encoders, else a native torch BERT, else "
                        "transformers' AutoModel")
    p.add_argument("--ref-aggregation", choices=["max", "mean"], default="max")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--cache", choices=["use", "refresh", "off"], default="use",
                   help="embedding cache: use (read and write), refresh (recompute every "
                        "embedding and store it), off (neither read nor write)")
    return p


def read_examples(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Candidates and reference lists of a JSONL file; raises ``InputError`` on bad input."""
    from pipeline.core.io import InputError, iter_jsonl

    cands: list[str] = []
    refs: list[list[str]] = []
    try:
        rows = iter_jsonl(path)
        for lineno, obj in rows:
            cand = obj.get("candidate")
            if "candidate" not in obj:
                raise InputError(path, "missing field", line=lineno, field="candidate")
            if not isinstance(cand, str):
                raise InputError(path, f"expected a string, got {type(cand).__name__}",
                                 line=lineno, field="candidate")
            if "references" not in obj:
                raise InputError(path, "missing field", line=lineno, field="references")
            rs = obj["references"]
            if not isinstance(rs, list) or not all(isinstance(r, str) for r in rs):
                raise InputError(path, "expected a list of strings", line=lineno,
                                 field="references")
            if not rs:
                raise InputError(path, "empty reference list", line=lineno, field="references")
            cands.append(cand)
            refs.append(rs)
    except OSError as exc:
        raise InputError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not cands:
        raise InputError(path, "no examples (empty file)")
    return cands, refs


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    from pipeline.core.io import InputError

    try:
        cands, refs = read_examples(args.file)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from pipeline.scoring.bertscore import get_scorer

    try:
        scorer = get_scorer(model=args.model, num_layers=args.num_layers, idf=args.idf,
                            rescale=args.rescale, baseline_path=args.baseline_path,
                            batch_size=args.batch_size, device=args.device, dtype=args.dtype,
                            cache_dir=args.cache_dir, ref_aggregation=args.ref_aggregation,
                            backend=args.backend, cache=args.cache)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = scorer.score(cands, refs)
    per = [{"precision": float(p), "recall": float(r), "f1": float(f)}
           for p, r, f in zip(out["precision"], out["recall"], out["f1"], strict=True)]
    result = {
        "bertscore_f1": float(out["f1"].mean()),
        "bertscore_precision": float(out["precision"].mean()),
        "bertscore_recall": float(out["recall"].mean()),
        "per_example": per,
        "model": scorer.describe()["encoder"],
        "num_layers": scorer.num_layers,
        "idf": scorer.idf,
        "rescale": scorer.rescale,
        "hash": scorer.hash,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
