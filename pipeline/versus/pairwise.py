"""Model against model: score one model's outputs with another model's outputs as references.

    python -m pipeline.pairwise candidate=outputs/runs/demo-knn/2000 \\
        reference=outputs/runs/demo-linear-large/2000

``candidate`` and ``reference`` are run folders (``runs/<model>/<train_size>``, named
``<model>-<train_size>``) or predictions files (named by their stem). Every configured metric
of every task both sides carry is computed with the reference model's output as the
reference, on the example ids both sides share (one-sided ids are reported). Writes
``<output_dir>/pairwise/<candidate>_vs_<reference>/``: ``scores.parquet`` (``id`` + one
column per metric), ``pairs.jsonl`` (the two outputs side by side), ``summary.json`` (see
:mod:`pipeline.versus.pairwise_summary`) and ``index.html``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from pipeline.aggregate.manifest_summary import cell_provenance
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.io import read_json, write_json, write_jsonl, write_parquet
from pipeline.core.paths import OutputPaths
from pipeline.core.provenance import package_versions
from pipeline.core.tasks import get_task
from pipeline.scoring.metrics.bertscore import scorer_for
from pipeline.scoring.score import score_cell
from pipeline.versus.pairwise_html import write_page
from pipeline.versus.pairwise_summary import bertscore_prefixes, summarize
from pipeline.versus.sides import IdMatch, Side, load_side, match_ids

log = logging.getLogger(__name__)

def load_pair(cfg: DictConfig) -> tuple[Side, Side, IdMatch, list[str]]:
    """Both sides, their id match and the tasks both carry; errors when nothing is shared."""
    for key in ("candidate", "reference"):
        if not cfg.get(key):
            raise ConfigError(f"{key}: required, e.g. candidate=outputs/runs/demo-knn/2000 "
                              "reference=outputs/runs/demo-linear-large/2000")
    candidate = load_side(cfg.candidate, list(cfg.tasks))
    reference = load_side(cfg.reference, list(cfg.tasks))
    tasks = [t for t in candidate.tasks if t in reference.tasks]
    if not tasks:
        raise InputError(reference.path, f"no task field in common with {candidate.path} "
                                         f"(candidate has {candidate.tasks}, reference has "
                                         f"{reference.tasks})")
    match = match_ids(candidate.ids, reference.ids)
    if not match.shared:
        raise InputError(reference.path, f"no example id in common with {candidate.path}",
                         field="id")
    return candidate, reference, match, tasks


def score_pair(cfg: DictConfig, candidate: Side, reference: Side, match: IdMatch,
               tasks: list[str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-example scores on the shared ids and the corpus-level values (e.g. macro-F1)."""
    cand = {r["id"]: r for r in candidate.records}
    ref = {r["id"]: r for r in reference.records}
    scores, values = score_cell([ref[i] for i in match.shared], [cand[i] for i in match.shared],
                                cfg.tasks, cfg.metrics, tasks, cfg.cache_dir)
    return scores, {k: v for k, v in values.items() if k not in scores.columns}


def side_by_side(candidate: Side, reference: Side, match: IdMatch,
                 tasks: list[str]) -> list[dict]:
    """``{"id", "candidate": {field: output}, "reference": {...}}`` per shared id."""
    fields = [get_task(t).field for t in tasks]
    cand = {r["id"]: r for r in candidate.records}
    ref = {r["id"]: r for r in reference.records}
    return [{"id": i, "candidate": {f: cand[i][f] for f in fields},
             "reference": {f: ref[i][f] for f in fields}} for i in match.shared]


def pair_provenance(cfg: DictConfig, candidate: Side, reference: Side,
                    scores: pd.DataFrame) -> dict[str, dict[str, str]]:
    """What produced the pairwise scores (encoder, layer, idf, rescaling, package versions)
    and, for run-folder sides, their manifests' provenance (config hash, data checksum ...)."""
    scoring: dict = {"packages": package_versions()}
    if bertscore_prefixes([c for c in scores.columns if c != "id"]):
        scoring["encoder"] = scorer_for(dict(cfg.metrics.get("bertscore", {})),
                                        cfg.cache_dir).describe()
    out = {"pairwise scoring": cell_provenance(scoring)}
    for role, side in (("candidate", candidate), ("reference", reference)):
        manifest = side.path.parent / "manifest.json"
        if side.path.name == "predictions.jsonl" and manifest.exists():
            out[f"{role} run"] = cell_provenance(read_json(manifest))
    return out


def run_pairwise(cfg: DictConfig) -> Path:
    """Compare the two sides and write the pairwise folder; returns it."""
    candidate, reference, match, tasks = load_pair(cfg)
    out = OutputPaths(Path(cfg.output_dir)).pairwise_dir(candidate.name, reference.name)
    log.info("%s vs %s: %d shared examples, tasks %s", candidate.name, reference.name,
             len(match.shared), ", ".join(tasks))
    scores, corpus = score_pair(cfg, candidate, reference, match, tasks)
    bands = {str(m): {str(k): float(v) for k, v in b.items()}
             for m, b in cfg.pairwise.bands.items()}
    summary = {
        "candidate": {"name": candidate.name, "source": str(candidate.path),
                      "n_examples": len(candidate.records)},
        "reference": {"name": reference.name, "source": str(reference.path),
                      "n_examples": len(reference.records)},
        "tasks": tasks, "ids": match.report("candidate", "reference"), "bands": bands,
        **summarize(scores, bands), "corpus": corpus,
        "provenance": pair_provenance(cfg, candidate, reference, scores)}
    pairs = side_by_side(candidate, reference, match, tasks)
    write_parquet(out / "scores.parquet", scores)
    write_jsonl(out / "pairs.jsonl", pairs)
    write_json(out / "summary.json", summary)
    write_page(out / "index.html", summary, scores, pairs, int(cfg.pairwise.n_lowest))
    _print_summary(summary, match, out)
    return out


def _print_summary(summary: dict, match: IdMatch, out: Path) -> None:
    cand, ref = summary["candidate"]["name"], summary["reference"]["name"]
    print(f"\n{cand} judged against {ref} on {len(match.shared)} shared "
          "examples")
    for line in match.lines(f"candidate {cand}", f"reference {ref}"):
        print(f"  note: {line}")
    for col, d in summary["metrics"].items():
        if d["mean"] is not None:
            print(f"  {col:36s} mean {d['mean']:.4f}  median {d['median']:.4f}  "
                  f"{d['band'] or ''}")
    print(f"-> {out}")
