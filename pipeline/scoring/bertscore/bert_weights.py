"""Weights of a BERT-architecture encoder as float32 numpy arrays, in one canonical layout.

Both native forwards (:mod:`pipeline.scoring.bertscore.native_bert` on torch and
:mod:`pipeline.scoring.bertscore.onnx_bert` on ONNX Runtime) read their weights from here, so the
mapping from the checkpoint's tensor names is written once.  Keys follow torch's ``Linear``
layout (``weight`` is ``[out, in]``); the query, key and value projections are stacked
into one ``qkv`` matrix.  Only the first ``num_layers`` layers are returned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.errors import ConfigError

LAYER_PARTS = {  # canonical name -> checkpoint name inside "encoder.layer.<i>."
    "out": "attention.output.dense",
    "ln1": "attention.output.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "ln2": "output.LayerNorm",
}


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as float32 numpy arrays (bf16 files via torch)."""
    try:
        from safetensors.numpy import load_file

        tensors = load_file(str(path))
    except (TypeError, ValueError):  # numpy has no bfloat16
        from safetensors.torch import load_file as load_torch

        return {k: v.float().numpy() for k, v in load_torch(str(path)).items()}
    return {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}


def load_bert_weights(model_dir: str | Path, config: dict,
                      num_layers: int) -> dict[str, np.ndarray]:
    """Embedding and first-``num_layers``-layer weights of ``model_dir/model.safetensors``.

    Keys: ``word.weight``, ``pos.weight``, ``tok_type.weight``, ``ln.{weight,bias}`` and
    ``layers.<i>.{qkv,out,ln1,fc1,fc2,ln2}.{weight,bias}``.
    """
    total = int(config["num_hidden_layers"])
    if not 0 <= num_layers <= total:
        raise ConfigError(f"num_layers must be between 0 and {total}, got {num_layers}")
    sd = _read_safetensors(Path(model_dir) / "model.safetensors")
    sd = {k.removeprefix("bert."): v for k, v in sd.items()}
    w = {
        "word.weight": sd["embeddings.word_embeddings.weight"],
        "pos.weight": sd["embeddings.position_embeddings.weight"],
        "tok_type.weight": sd["embeddings.token_type_embeddings.weight"],
        "ln.weight": sd["embeddings.LayerNorm.weight"],
        "ln.bias": sd["embeddings.LayerNorm.bias"],
    }
    for i in range(num_layers):
        prefix = f"encoder.layer.{i}."
        attn = prefix + "attention.self."
        for kind in ("weight", "bias"):
            w[f"layers.{i}.qkv.{kind}"] = np.concatenate(
                [sd[f"{attn}{n}.{kind}"] for n in ("query", "key", "value")], axis=0)
            for name, src in LAYER_PARTS.items():
                w[f"layers.{i}.{name}.{kind}"] = sd[f"{prefix}{src}.{kind}"]
    return w
