"""BERTScore maths (greedy cosine matching, IDF, multi-reference aggregation, rescaling).

Definitions follow ``bert_score`` 0.3.13 (``score.py`` / ``utils.py``):

* tokens: ``sent_encode`` (strip; empty -> special tokens only; truncation to the tokenizer's
  ``model_max_length``); embeddings are the output after ``num_layers`` layers, L2-normalised.
* weights: without IDF every token weighs 1 except ``[CLS]``/``[SEP]`` (0); with IDF,
  ``idf(w) = log((M + 1) / (df(w) + 1))`` over the M reference texts (duplicates counted,
  specials included, so they get log(1) = 0), unseen tokens ``log(M + 1)``.
* ``P = sum_i w_i max_j cos(c_i, r_j) / sum_i w_i`` over candidate tokens, ``R`` likewise
  over reference tokens, ``F = 2PR / (P + R)`` with NaN -> 0; a candidate or reference with
  no token besides the specials gets ``P = R = 0`` (and F 0).
* several references: ``max`` takes the max of P, R and F *independently* (bert_score),
  ``mean`` averages each over the references.
* rescaling: ``(x - b) / (1 - b)`` with ``b`` = row ``num_layers`` of the baseline file.

Padding quirk, reproduced on purpose: bert_score scores the (candidate, reference) pairs in
chunks of ``batch_size`` (in input order, one pair per reference) and multiplies the padded
similarity matrix by the mask, so padded positions hold cosine 0 and take part in the max.
A candidate token's best match is therefore ``max(0, best cosine)`` whenever the pair's
reference is shorter than the longest reference of its chunk (and likewise for recall and
the candidate).  This matters for short candidates against long unrelated references
(observed differences up to 7e-4 in F1), so the engine applies the same rule with the same
``batch_size`` to match bert_score to 1e-6.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.core.errors import ConfigError
from pipeline.core.io import file_sha256  # noqa: E402
from pipeline.core.paths import bertscore_cache_dir  # noqa: E402
from pipeline.scoring.bertscore.cache import EmbeddingCache  # noqa: E402
from pipeline.scoring.bertscore.encoder import (  # noqa: E402
    DEFAULT_MODEL,
    DTYPES,
    Encoder,
    ModelSpec,
    known_num_layers,
    resolve_model,
)

log = logging.getLogger(__name__)

ENGINE_VERSION = "1"
BASELINE_DIR = Path(__file__).resolve().parent / "baselines"
AGGREGATIONS = ("max", "mean")
CacheMode = Literal["use", "refresh", "off"]
CACHE_MODES: tuple[str, ...] = get_args(CacheMode)
EPS = 1e-5  # slack on the [-1, 1] range of raw scores (float32 cosines)


def _folder(cache_dir: str | Path | None) -> Path:
    """The engine's cache folder: ``cache_dir``, by default ``<default cache>/bertscore``."""
    return Path(cache_dir) if cache_dir is not None else bertscore_cache_dir(None)


def find_baseline(model: str, lang: str) -> Path | None:
    """Shipped baseline for ``model``/``lang``: ours first, then bert_score's files."""
    from pipeline.core.paths import safe_name

    candidates = [BASELINE_DIR / lang / f"{safe_name(model, 'metrics.bertscore.model')}.tsv"]
    try:
        import importlib.util

        spec = importlib.util.find_spec("bert_score")
        if spec is not None and spec.origin:
            candidates.append(Path(spec.origin).parent / "rescale_baseline" / lang
                              / f"{model}.tsv")
    except (ImportError, ValueError):  # pragma: no cover
        pass
    return next((p for p in candidates if p.is_file()), None)


def read_baseline(path: str | Path, num_layers: int) -> np.ndarray:
    """``[b_P, b_R, b_F]`` from row ``num_layers`` of a bert_score-style baseline CSV/TSV."""
    path = Path(path)
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    rows = lines[1:]  # first line is the header (LAYER,P,R,F)
    if num_layers >= len(rows):
        raise ConfigError(f"baseline {path.name} has no row for num_layers={num_layers}")
    values = rows[num_layers].replace("\t", ",").split(",")
    try:
        return np.array([float(v) for v in values[1:4]], dtype=np.float64)
    except ValueError:
        raise ConfigError(f"baseline {path.name}: row {num_layers} is not numeric") from None


def idf_dict(id_lists: Sequence[Sequence[int]]) -> tuple[dict[int, float], float]:
    """bert_score's ``get_idf_dict`` over tokenised documents: (dict, default for unseen)."""
    m = len(id_lists)
    df: Counter[int] = Counter()
    for ids in id_lists:
        df.update(set(int(i) for i in ids))
    return ({i: math.log((m + 1) / (c + 1)) for i, c in df.items()}, math.log(m + 1))


def greedy_prf(c_emb: np.ndarray, c_w: np.ndarray, r_emb: np.ndarray, r_w: np.ndarray,
               clamp_p: bool = False, clamp_r: bool = False) -> tuple[float, float]:
    """Raw (P, R) of one pair: idf-weighted mean best cosine over each side's tokens.

    ``clamp_p``/``clamp_r`` floor the best cosines at 0 (bert_score's padding quirk).
    """
    sim = c_emb @ r_emb.T
    wp = sim.max(axis=1).astype(np.float64)
    wr = sim.max(axis=0).astype(np.float64)
    if clamp_p:
        np.maximum(wp, 0.0, out=wp)
    if clamp_r:
        np.maximum(wr, 0.0, out=wr)
    with np.errstate(invalid="ignore"):  # weights >= 0: a zero sum is 0/0 -> NaN
        p = float((wp * (c_w / c_w.sum())).sum())
        r = float((wr * (r_w / r_w.sum())).sum())
    return p, r


class BertScorer:
    """BERTScore with a shared on-disk embedding cache; build it with :func:`get_scorer`."""

    def __init__(self, model: str = DEFAULT_MODEL, num_layers: int | None = None,
                 idf: bool = False, rescale: bool = False, baseline_path: str | None = None,
                 batch_size: int = 64, device: str = "cpu", dtype: str = "fp32",
                 cache_dir: str | Path | None = None, ref_aggregation: str = "max",
                 lang: str = "en", cache_max_bytes: int | None = None,
                 backend: str = "auto", cache: CacheMode = "use") -> None:
        if cache not in CACHE_MODES:
            raise ConfigError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
        if ref_aggregation not in AGGREGATIONS:
            raise ConfigError(f"ref_aggregation must be one of {AGGREGATIONS}, "
                             f"got {ref_aggregation!r}")
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if num_layers is None:
            num_layers = known_num_layers(model)
            if num_layers is None:
                raise ConfigError(f"num_layers is required for encoder {model!r} (not in "
                                 "bert_score's model2layers table)")
        self.cache_dir = _folder(cache_dir)
        self.model_name, self.num_layers, self.idf = model, int(num_layers), bool(idf)
        self.rescale, self.dtype, self.ref_aggregation = bool(rescale), dtype, ref_aggregation
        self.lang, self.device = lang, device
        self.spec: ModelSpec = resolve_model(model, memo_dir=self.cache_dir / "checksums")
        self.encoder = Encoder(self.spec, self.num_layers, device=device, dtype=dtype,
                               batch_size=batch_size, backend=backend,
                               cache_dir=self.cache_dir)
        self.baseline: np.ndarray | None = None
        self.baseline_tag = ""
        if self.rescale:
            path = Path(baseline_path) if baseline_path else find_baseline(model, lang)
            if path is None or not path.is_file():
                where = f" at {baseline_path}" if baseline_path else ""
                raise ConfigError(
                    f"rescale=True but no baseline file exists for encoder {model!r} "
                    f"(lang {lang!r}){where}; pass baseline_path= or set rescale=False")
            self.baseline = read_baseline(path, self.num_layers)
            if baseline_path:
                digest = file_sha256(path)[:12]
                self.baseline_tag = f"-custom-rescaled(sha256:{digest})"
            else:
                self.baseline_tag = "-rescaled"
        self.cache = EmbeddingCache(self.cache_dir, self.encoder.cache_namespace(),
                                    max_bytes=cache_max_bytes)
        self.cache_mode = cache  # use: read and write; refresh: write only; off: neither
        self._store_dtype = np.float32 if dtype == "fp32" else np.float16

    # identity ----------------------------------------------------------------------------
    @property
    def hash(self) -> str:
        """Reproducibility string in the spirit of ``bert_score.utils.get_hash``."""
        msg = (f"{self.spec.stable_id}_L{self.num_layers}{'_idf' if self.idf else '_no-idf'}"
               f"_version=pipeline-bertscore-{ENGINE_VERSION}(bert_score-compat=0.3.13,"
               f"{self.encoder.runtime()})")
        if self.rescale:
            msg += self.baseline_tag
        return msg + f"_{self.dtype}_refs-{self.ref_aggregation}"

    def describe(self) -> dict[str, Any]:
        """Settings that identify the numbers (stable encoder id, never a path)."""
        return {"encoder": self.spec.stable_id, "num_layers": self.num_layers,
                "idf": self.idf, "rescale": self.rescale, "dtype": self.dtype,
                "ref_aggregation": self.ref_aggregation, "impl": self.encoder.impl,
                "hash": self.hash}

    def bounds(self) -> dict[str, tuple[float, float]]:
        """The range each output (``precision``, ``recall``, ``f1``) can take: [-1, 1] for
        raw cosine-based scores, mapped through the rescaling when it is on."""
        base = np.zeros(3) if self.baseline is None else self.baseline
        lows, highs = (-1 - EPS - base) / (1 - base), (1 + EPS - base) / (1 - base)
        return {name: (float(lo), float(hi)) for name, lo, hi
                in zip(("precision", "recall", "f1"), lows, highs, strict=True)}

    # embeddings ---------------------------------------------------------------------------
    def _entries(self, texts: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Ids and normalised embeddings of each unique text: cache first (unless the cache
        mode is ``refresh`` or ``off``), then encode (and store, unless ``off``)."""
        unique = list(dict.fromkeys(texts))
        found = self.cache.get_many(unique) if self.cache_mode == "use" else {}
        missing = [t for t in unique if t not in found]
        if missing:
            ids = self.encoder.tokenize(missing)
            embs = self.encoder.embed(ids)
            new = []
            for t, i, e in zip(missing, ids, embs, strict=True):
                entry = (np.asarray(i, dtype=np.int32), e.astype(self._store_dtype))
                found[t] = entry
                new.append((t, *entry))
            if self.cache_mode != "off":
                self.cache.put_many(new)
        return {t: (i, e.astype(np.float32, copy=False)) for t, (i, e) in found.items()}

    # scoring ------------------------------------------------------------------------------
    def score(self, candidates: list[str], references: list[list[str]],
              idf_references: list[str] | None = None) -> dict[str, np.ndarray]:
        """Per-candidate ``precision``, ``recall``, ``f1`` (float64 arrays)."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} candidates but {len(references)} "
                             "reference lists")
        for k, refs in enumerate(references):
            if isinstance(refs, str) or not isinstance(refs, list | tuple) or not refs:
                raise ValueError(f"references[{k}] must be a non-empty list of strings")
        flat = [r for refs in references for r in refs]
        entries = self._entries(list(candidates) + flat)
        n_special = len(self.encoder.special_only())
        if self.idf:
            idf_texts = flat if idf_references is None else list(idf_references)
            known = {t: entries[t][0] for t in idf_texts if t in entries}
            todo = list(dict.fromkeys(t for t in idf_texts if t not in known))
            if todo:
                known.update(zip(todo, (np.asarray(i) for i in self.encoder.tokenize(todo)),
                                 strict=True))
            table, default = idf_dict([known[t] for t in idf_texts])
        else:
            table, default = {int(i): 0.0 for i in self.encoder.cls_sep_ids()}, 1.0

        w = {t: np.array([table.get(int(i), default) for i in ids], dtype=np.float64)
             for t, (ids, _) in entries.items()}
        # bert_score's chunking of the flattened pairs (see the module docstring)
        bs = self.encoder.batch_size
        c_len = [len(entries[c][0]) for c, refs in zip(candidates, references, strict=True)
                 for _ in refs]
        r_len = [len(entries[r][0]) for r in flat]
        max_c = [max(c_len[i:i + bs]) for i in range(0, len(c_len), bs)]
        max_r = [max(r_len[i:i + bs]) for i in range(0, len(r_len), bs)]
        j = -1
        n = len(candidates)
        out = np.zeros((n, 3), dtype=np.float64)
        n_empty = 0
        for k, (cand, refs) in enumerate(zip(candidates, references, strict=True)):
            c_ids, c_emb = entries[cand]
            rows = []
            for ref in refs:
                r_ids, r_emb = entries[ref]
                j += 1
                p, r = greedy_prf(c_emb, w[cand], r_emb, w[ref],
                                  clamp_p=r_len[j] < max_r[j // bs],
                                  clamp_r=c_len[j] < max_c[j // bs])
                f = 2 * p * r / (p + r) if p + r else 0.0  # F = 0 when P + R is 0 or NaN
                f = 0.0 if math.isnan(f) else f
                if len(c_ids) == n_special or len(r_ids) == n_special:
                    p, r = 0.0, 0.0
                    n_empty += 1
                rows.append((p, r, f))
            arr = np.array(rows, dtype=np.float64)
            out[k] = arr.max(axis=0) if self.ref_aggregation == "max" else arr.mean(axis=0)
        if n_empty:
            warnings.warn(f"BERTScore: {n_empty} candidate/reference pair(s) with an empty "
                          "text; their raw scores are 0 (as bert_score)", stacklevel=2)
        if self.baseline is not None:
            out = (out - self.baseline) / (1 - self.baseline)
        return {"precision": out[:, 0].copy(), "recall": out[:, 1].copy(),
                "f1": out[:, 2].copy()}


def files_checksum(model: str = DEFAULT_MODEL, rescale: bool = False,
                   baseline_path: str | None = None, lang: str = "en",
                   cache_dir: str | Path | None = None) -> str:
    """Checksum of the files the scores come from: the encoder's weight and tokenizer files
    (memoised by file stat under ``<cache_dir>/checksums``, as the scorer does) and, when
    rescaling, the baseline file."""
    spec = resolve_model(model, memo_dir=_folder(cache_dir) / "checksums")
    parts = [spec.stable_id, spec.tokenizer_id]
    if rescale:
        baseline = Path(baseline_path) if baseline_path else find_baseline(model, lang)
        parts.append(file_sha256(baseline) if baseline and baseline.is_file() else "")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


_SCORERS: dict[tuple, tuple[str, BertScorer]] = {}


def get_scorer(model: str = DEFAULT_MODEL, num_layers: int | None = None, idf: bool = False,
               rescale: bool = False, baseline_path: str | None = None, batch_size: int = 64,
               device: str = "cpu", dtype: str = "fp32", cache_dir: str | Path | None = None,
               ref_aggregation: str = "max", lang: str = "en",
               backend: str = "auto", cache: CacheMode = "use") -> BertScorer:
    """A :class:`BertScorer` for these settings, built once per process, and again when
    the encoder's or the baseline's files changed (:func:`files_checksum`).

    ``cache``: ``use`` reads and writes the embedding cache, ``refresh`` recomputes every
    embedding and writes it, ``off`` neither reads nor writes.
    """
    key = (model, num_layers, bool(idf), bool(rescale), str(baseline_path or ""), batch_size,
           device, dtype, str(cache_dir or ""), ref_aggregation, lang, backend, cache)
    files = files_checksum(model, rescale, baseline_path, lang, cache_dir)
    held = _SCORERS.get(key)
    if held is None or held[0] != files:
        held = _SCORERS[key] = (files, BertScorer(
            model, num_layers, idf, rescale, baseline_path, batch_size, device, dtype,
            cache_dir, ref_aggregation, lang, backend=backend, cache=cache))
    return held[1]
