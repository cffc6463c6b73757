"""BERT encoder forward on ONNX Runtime (CPU, fp32): the engine's default CPU backend.

The graph is written by :func:`build_graph` from the checkpoint's weights (through
:mod:`pipeline.scoring.bertscore.bert_weights`, the same arrays the torch forward uses): embeddings,
the first ``num_layers`` transformer layers with exact (erf) GELU, then per-token L2
normalisation.  It is built once per (encoder, layer) and kept in the folder
``<cache_dir>/onnx/<digest>/`` as ``model.onnx`` plus its weights in ``weights.bin``
(external data, which ONNX Runtime maps into memory: opening the session takes ~0.1 s
instead of ~0.3 s for a single 90 MB file).  Later processes only import ``onnxruntime``
(~0.1 s) and open the session, where the torch path needs ~2-3 s to import torch.  Numbers
agree with the torch/``transformers`` forward to ~1e-6 per embedding component.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.io import create_temp_dir
from pipeline.scoring.bertscore.bert_weights import load_bert_weights

GRAPH_VERSION = 1  # bump when build_graph changes what it writes
OPSET = 20         # first opset with a Gelu operator


def graph_dir(cache_dir: str | Path, stable_id: str, num_layers: int) -> Path:
    """The folder of this encoder and layer's graph in the cache."""
    key = f"{stable_id}|L{num_layers}|graph-{GRAPH_VERSION}|opset-{OPSET}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return Path(cache_dir) / "onnx" / digest


def build_graph(weights: dict[str, np.ndarray], config: dict, num_layers: int) -> Any:
    """ONNX ``ModelProto``: ``input_ids``, ``attention_mask`` [B, T] -> ``embeddings``.

    ``embeddings`` is ``[B, T, hidden]``, the output of layer ``num_layers`` L2-normalised
    per token (padded positions are computed but meaningless).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{kind.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(x: str, name: str) -> str:  # x @ W.T + b
        w = const(f"{name}.wt", weights[f"{name}.weight"].T)
        return op("Add", [op("MatMul", [x, w]), const(f"{name}.b", weights[f"{name}.bias"])])

    def layer_norm(x: str, name: str) -> str:
        return op("LayerNormalization", [x, const(f"{name}.g", weights[f"{name}.weight"]),
                                         const(f"{name}.b", weights[f"{name}.bias"])],
                  axis=-1, epsilon=eps)

    # embeddings: word + position (rows 0..T-1) + token type 0, then LayerNorm
    seq_len = op("Shape", ["input_ids"], start=1, end=2)
    pos = op("Slice", [const("pos", weights["pos.weight"]),
                       const("zero", np.array([0], np.int64)), seq_len,
                       const("axis0", np.array([0], np.int64))])
    x = op("Gather", [const("word", weights["word.weight"]), "input_ids"])
    x = op("Add", [op("Add", [x, pos]), const("tok_type0", weights["tok_type.weight"][0])])
    x = layer_norm(x, "ln")
    # additive attention mask [B, 1, 1, T]: 0 where attended, -1e9 on padding
    mask = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = op("Mul", [op("Sub", [mask, const("one", np.array(1, np.float32))]),
                      const("big", np.array(1e9, np.float32))])
    mask = op("Unsqueeze", [mask, const("axes12", np.array([1, 2], np.int64))])
    split_heads = const("shape_qkv", np.array([0, 0, 3, heads, head_dim], np.int64))
    merge_heads = const("shape_bth", np.array([0, 0, hidden], np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(head_dim), np.float32))
    axis0 = "axis0"
    for i in range(num_layers):
        p = f"layers.{i}"
        qkv = op("Transpose", [op("Reshape", [linear(x, f"{p}.qkv"), split_heads])],
                 perm=[2, 0, 3, 1, 4])                        # [3, B, heads, T, head_dim]
        q, k, v = (op("Squeeze", [op("Gather", [qkv, const(f"{p}.i{j}", np.array([j],
                                                                         np.int64))]), axis0])
                   for j in range(3))
        scores = op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])])
        probs = op("Softmax", [op("Add", [op("Mul", [scores, scale]), mask])], axis=-1)
        ctx = op("Transpose", [op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = op("Reshape", [ctx, merge_heads])
        x = layer_norm(op("Add", [linear(ctx, f"{p}.out"), x]), f"{p}.ln1")
        ffn = linear(op("Gelu", [linear(x, f"{p}.fc1")]), f"{p}.fc2")
        x = layer_norm(op("Add", [ffn, x]), f"{p}.ln2")
    norm = op("ReduceL2", [x, const("last", np.array([-1], np.int64))], keepdims=1)
    nodes.append(helper.make_node("Div", [x, norm], ["embeddings"]))
    graph = helper.make_graph(
        nodes, "bert_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT,
                                       ["batch", "seq", hidden])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="pipeline.bertscore")
    onnx.checker.check_model(model)
    return model


def write_graph(model: Any, folder: Path) -> None:
    """Save ``model`` as ``folder/model.onnx`` + ``folder/weights.bin``, atomically.

    Both files are written into a temporary sibling folder that is then renamed; when a
    concurrent process renamed its identical folder first, ours is discarded.
    """
    import onnx

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(create_temp_dir(folder.parent, prefix=f".{folder.name}."))
    try:
        onnx.save_model(model, str(tmp / "model.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="weights.bin",
                        size_threshold=1024)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "model.onnx").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class OnnxBert:
    """An ONNX Runtime session over the cached graph (built on first use)."""

    def __init__(self, model_dir: Path, config: dict, stable_id: str, num_layers: int,
                 cache_dir: str | Path) -> None:
        import onnxruntime as ort

        folder = graph_dir(cache_dir, stable_id, num_layers)
        path = folder / "model.onnx"
        if not path.is_file():
            weights = load_bert_weights(model_dir, config, num_layers)
            write_graph(build_graph(weights, config, num_layers), folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.path = path

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Normalised embeddings ``[B, T, hidden]`` (float32) of int64 ``[B, T]`` inputs."""
        return self.session.run(["embeddings"], {"input_ids": input_ids,
                                                 "attention_mask": attention_mask})[0]

