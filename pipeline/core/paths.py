"""The one place that knows where every file of the pipeline lives.

Everything derives from the config key ``output_dir``; the embedding/score cache lives
under ``cache_dir`` (config key, or the ``PIPELINE_CACHE_DIR`` environment variable).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"  # the project's Hydra configs
CACHE_ENV = "PIPELINE_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$PIPELINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/model-comparison``, else ``~/.cache/...``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "model-comparison"


def log_dir(path: str) -> str:
    """Hydra's log folder ``path`` (under ``output_dir``), or, when ``output_dir`` cannot be
    written (a colleague's sweep, a read-only mount), the same path under
    ``<tmp>/pipeline-logs-<uid>/``, so that a command that only reads the sweep still runs
    and one that writes it ends in one ``error: cannot write ...`` line, not in Hydra's
    traceback. Config resolver ``${log_dir:...}`` (``conf/config.yaml``)."""
    target = Path(path).expanduser().absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return path
    fallback = Path(tempfile.gettempdir()) / f"pipeline-logs-{os.getuid()}"
    return str(fallback / target.relative_to(target.anchor))


def generation_cache_dir(cache_dir: str | Path | None) -> Path:
    """Where generated outputs and checkpoint checksums are cached (``<cache>/generations``)."""
    return (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / "generations"


def bertscore_cache_dir(cache_dir: str | Path | None) -> Path:
    """Where BERTScore embeddings, ONNX graphs and encoder checksums are cached
    (``<cache>/bertscore``)."""
    return (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / "bertscore"


def prompt_file(name: str) -> Path:
    """``conf/prompts/<name>.yaml`` of this project (a path to a ``.yaml`` file is kept)."""
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    return CONF_DIR / "prompts" / f"{name}.yaml"


SAFE_NAME = re.compile(r"[A-Za-z0-9_=-][A-Za-z0-9._=-]{0,99}")  # kept as its own folder name
HASH_SEP = "+"  # never in a safe name, so a hashed folder cannot be another name's folder


def safe_name(name: str, key: str = "model.name") -> str:
    """The unique folder name of ``name`` (a model, dataset or comparison side).

    A name of ASCII letters, digits and ``-_.=`` (not starting with ``.``, at most 100
    characters) is its own folder name. Any other name becomes a readable slug plus
    ``+`` and 8 hex digits of the sha256 of the exact name (``org/model`` ->
    ``org_model+<hash>``), so two names never share a folder and ``.``/``..`` stay inside.
    An empty name is a :class:`ConfigError` naming ``key``.
    """
    if name is None or str(name) == "":
        raise ConfigError(f"{key}: empty name; give a non-empty name (it names the output "
                          "folder)")
    name = str(name)
    if SAFE_NAME.fullmatch(name):
        return name
    slug = re.sub(r"[^A-Za-z0-9._=-]", "_", name).lstrip(".")[:60] or "_"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}{HASH_SEP}{digest}"


@dataclass(frozen=True)
class OutputPaths:
    """Every location under ``output_dir``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    def data_dir(self, dataset: str) -> Path:
        return self.data_root / safe_name(dataset, "data.name")

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dir(self, model: str, train_size: int) -> Path:
        return self.runs / safe_name(model) / str(int(train_size))

    @property
    def comparison_csv(self) -> Path:
        return self.root / "model_comparison.csv"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def analysis_md(self) -> Path:
        return self.root / "analysis.md"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def pairwise_dir(self, candidate: str, reference: str) -> Path:
        """Folder of one model-against-model comparison (``pipeline.versus.pairwise``)."""
        return self.root / "pairwise" / (f"{safe_name(candidate, 'candidate')}_vs_"
                                         f"{safe_name(reference, 'reference')}")

    @property
    def diff_dir(self) -> Path:
        """Folder of the sweep-against-sweep comparison (``pipeline.versus.diff``)."""
        return self.root / "diff"


RUN_FILES = {
    "predictions": "predictions.jsonl",
    "scores": "scores.parquet",
    "metrics": "metrics.json",
    "manifest": "manifest.json",
    # raw outputs of an unfinished generation (hf/openai), appended per batch; see textgen.py
    "partial": "generations.partial.jsonl",
}


def run_file(run_dir: Path, kind: str) -> Path:
    """Path of one of the documented files of a run folder (see ``RUN_FILES``)."""
    return Path(run_dir) / RUN_FILES[kind]
