"""Turn the SummEval file in ../shared/data/summeval into the pipeline's input files.

Writes, under ``<output_dir>/data/summeval/``:
- ``test.jsonl``: one record per article (``id`` = doc_id, ``article``, ``summary`` = the 11
  references), for the ``files`` dataset builder;
- ``predictions.jsonl``: one long-format file, one row per system and article: ``id``,
  ``system``, ``summary`` and the expert scores as ``human_coherence``,
  ``human_consistency``, ``human_fluency``, ``human_relevance``; ``model=precomputed
  model.system_column=system`` splits it into one cell per system (``+experiment=summeval``).

The text is already tokenised (``team 's``); sentences are put on their own lines at
sentence-final tokens so ROUGE-Lsum sees one sentence per line.

    python scripts/prepare_summeval.py [--source FILE] [--output-dir outputs]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from pipeline.core.io import write_jsonl
from pipeline.core.paths import OutputPaths

DEFAULT_SOURCE = (Path(__file__).resolve().parent.parent.parent / "shared" / "data"
                  / "summeval" / "summeval_expert_16sys_100docs.jsonl")
_END = re.compile(r"(?<=\s[.!?])\s+|(?<=^[.!?])\s+")


def one_sentence_per_line(text: str) -> str:
    """Break tokenised text after the tokens ``.``, ``!`` and ``?``."""
    return "\n".join(s.strip() for s in _END.split(" " + text.strip()) if s.strip())


def prepare(source: Path, output_dir: Path) -> Path:
    """Write test.jsonl and one predictions file per system; returns the data folder."""
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    folder = OutputPaths(output_dir).data_dir("summeval")
    docs: dict[str, dict] = {}
    systems: set[str] = set()
    preds: list[dict] = []
    for row in rows:
        docs.setdefault(row["doc_id"], {
            "id": row["doc_id"], "article": row["source"],
            "summary": [one_sentence_per_line(r) for r in row["references"]]})
        systems.add(row["system_id"])
        preds.append({
            "id": row["doc_id"], "system": row["system_id"],
            "summary": one_sentence_per_line(row["summary"]),
            **{f"human_{k}": v for k, v in row["human"].items()}})
    write_jsonl(folder / "test.jsonl", docs.values())
    write_jsonl(folder / "predictions.jsonl", preds)
    print(f"{len(docs)} articles, {len(systems)} systems -> {folder}")
    print("systems: " + ",".join(sorted(systems, key=lambda s: int(s[1:]))))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    if not args.source.exists():
        raise SystemExit(f"error: {args.source} not found (pass --source)")
    prepare(args.source, args.output_dir)


if __name__ == "__main__":
    main()
