"""Where a causal LM's weights are and how they load (offline): checkpoint directories, LoRA
adapters, hub ids already in the local cache, and GGUF files (``model.gguf_file``,
dequantised by transformers with the ``gguf`` package); prompts as token ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from pipeline.core.errors import ConfigError, MissingModelError
from pipeline.core.io import atomic_write_text, file_sha256
from pipeline.core.paths import generation_cache_dir
from pipeline.finetune.prompts import Prompt


def digest(*parts: Any) -> str:
    """sha256 (24 hex digits) of JSON-serialised ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def directory_checksum(path: Path, memo_file: Path | None = None) -> str:
    """sha256 over the relative names and contents of every file under ``path`` (hidden
    files and ``__pycache__`` aside).

    Hashing multi-GB weights takes a while, so results are memoised in ``memo_file`` (when
    given) by the directory's (name, size, mtime, inode, ctime) listing; a changed file is
    hashed again. The inode and ctime catch what mtime misses: weights rewritten in place
    with the same size and their old mtime restored (``cp -p``, ``touch -r``, a restore),
    since no tool can set a file's ctime.
    """
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith(".") or part == "__pycache__" for part in p.relative_to(path).parts))
    if memo_file is None:
        return digest([(str(p.relative_to(path)), file_sha256(p)) for p in files])
    listing = digest([(str(p.relative_to(path)), st.st_size, st.st_mtime_ns, st.st_ino,
                        st.st_ctime_ns) for p in files for st in [p.stat()]])
    memo: dict[str, dict[str, str]] = {}
    if memo_file.exists():
        try:
            memo = json.loads(memo_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            memo = {}
    entry = memo.get(str(path))
    if entry and entry.get("listing") == listing:
        return entry["sha256"]
    checksum = digest([(str(p.relative_to(path)), file_sha256(p)) for p in files])
    memo[str(path)] = {"listing": listing, "sha256": checksum}
    atomic_write_text(memo_file, json.dumps(memo, indent=1, sort_keys=True) + "\n")
    return checksum


def local_dir(name: str, revision: str | None, key: str) -> Path:
    """A checkpoint directory, or the local snapshot of a cached hub id (never downloads)."""
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision, local_files_only=True))
    except Exception:  # not a repo id, or not in the cache: one message for both
        raise MissingModelError(
            f"{key}={name!r} is neither a directory nor a hub model in the local cache "
            "(nothing is downloaded); set it to a checkpoint directory") from None


@dataclass(frozen=True)
class Weights:
    """A model directory, or a GGUF file (``gguf_file``, a name inside ``path``)."""

    path: Path
    gguf_file: str | None = None

    def __str__(self) -> str:
        return str(self.path / self.gguf_file) if self.gguf_file else str(self.path)

    def kwargs(self) -> dict[str, Any]:
        """Extra ``from_pretrained`` arguments."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}

    def checksum(self, cfg: DictConfig) -> str:
        """Content checksum (memoised per directory under the cache dir)."""
        if self.gguf_file:
            return file_sha256(self.path / self.gguf_file)
        return directory_checksum(self.path, generation_cache_dir(cfg.cache_dir) /
                                  "checksums.json")

    def is_adapter(self) -> bool:
        """True for a LoRA adapter directory (``adapter_config.json``)."""
        return not self.gguf_file and (self.path / "adapter_config.json").exists()

    def has_tokenizer(self) -> bool:
        """True when the weights carry their own tokenizer."""
        return bool(self.gguf_file) or any((self.path / f).exists() for f in
                                           ("tokenizer.json", "tokenizer_config.json"))


def base_weights(cfg: DictConfig) -> Weights | None:
    """The base model: ``model.gguf_file`` or ``model.base_model`` (None when neither)."""
    gguf = cfg.model.get("gguf_file")
    if gguf:
        if not Path(gguf).is_file():
            raise MissingModelError(f"model.gguf_file={gguf!r} is not a file (run `make "
                                    "smollm2` for SmolLM2, or point it at a .gguf file)")
        return Weights(Path(gguf).parent, Path(gguf).name)
    if cfg.model.base_model:
        return Weights(local_dir(str(cfg.model.base_model), cfg.model.revision,
                                 "model.base_model"))
    return None


def cell_weights(cfg: DictConfig) -> tuple[Weights, Weights | None]:
    """What an ``hf`` cell loads: ``(checkpoint, base model)``.

    The checkpoint is ``model.checkpoint``, or the base model itself with ``train_size=0``.
    The base model is ``model.gguf_file`` or ``model.base_model``, else for a LoRA adapter the
    ``base_model_name_or_path`` its ``adapter_config.json`` names; None for a full checkpoint
    without them.
    """
    base = base_weights(cfg)
    if base is not None and int(cfg.train_size) == 0:
        return base, base  # train_size=0: the base model itself
    if not cfg.model.checkpoint:
        raise MissingModelError(f"model {cfg.model.name!r} has no checkpoint: set "
                                "model.checkpoint=<dir> (or model.gguf_file=<file>)")
    ckpt = Weights(local_dir(str(cfg.model.checkpoint), cfg.model.revision, "model.checkpoint"))
    if base is None and ckpt.is_adapter():
        with open(ckpt.path / "adapter_config.json", encoding="utf-8") as fh:
            name = json.load(fh).get("base_model_name_or_path")
        if not name:
            raise ConfigError(f"'{ckpt}' is a LoRA adapter without a base model: set "
                              "model.base_model=<dir>")
        base = Weights(local_dir(str(name), cfg.model.revision, "model.base_model"))
    return ckpt, base


def cpu_bf16_supported() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 / AMX), as oneDNN reports it;
    there bf16 generates about twice as fast as fp32 (README: "Real LLMs on CPU")."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def load_tokenizer(weights: Weights) -> Any:
    """The tokenizer of ``weights``, with a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(weights.path, local_files_only=True, **weights.kwargs())
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(weights: Weights, dtype: Any) -> Any:
    """The causal LM of ``weights`` in ``dtype`` (a GGUF file is dequantised)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(weights.path, dtype=dtype,
                                                local_files_only=True, **weights.kwargs())


def prompt_ids(tok: Any, prompt: Prompt, chat: bool, chat_kwargs: dict[str, Any]) -> list[int]:
    """Token ids of ``prompt``: the chat template with the generation prompt, or plain text."""
    if chat:
        text = tok.apply_chat_template(prompt.messages(), tokenize=False,
                                       add_generation_prompt=True, **chat_kwargs)
        return tok(text, add_special_tokens=False)["input_ids"]
    return tok(prompt.plain())["input_ids"]


def answer_ids(tok: Any, prompt: Prompt, answer: str, chat: bool,
               chat_kwargs: dict[str, Any]) -> tuple[list[int], list[int]]:
    """``(prompt ids, answer ids)`` of a training pair. With a chat template the answer is
    the template's rendering of the assistant turn (its end-of-turn marker included, the
    token an instruct model stops on); otherwise the answer's tokens plus EOS."""
    head = prompt_ids(tok, prompt, chat, chat_kwargs)
    if chat:
        turns = [*prompt.messages(), {"role": "assistant", "content": answer}]
        text = tok.apply_chat_template(turns, tokenize=False, **chat_kwargs)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if ids[:len(head)] == head and len(ids) > len(head):
            return head, ids[len(head):]
    eos = [] if tok.eos_token_id is None else [tok.eos_token_id]
    return head, tok(answer, add_special_tokens=False)["input_ids"] + eos


def convert_gguf(gguf: Path, out: Path) -> Path:
    """Dequantise the GGUF file ``gguf`` once into a checkpoint directory ``out`` (model and
    tokenizer, safetensors); written beside ``out`` first, then renamed."""
    import shutil

    import torch

    if (out / "config.json").exists():
        return out
    weights = Weights(gguf.parent, gguf.name)
    model = load_causal_lm(weights, torch.float32)
    # dequantised already: detach the quantizer (save_pretrained refuses it) and drop its
    # config, else the saved checkpoint reloads as "GGUF-quantized" and cannot be trained
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    load_tokenizer(weights).save_pretrained(tmp)
    tmp.rename(out)
    return out
