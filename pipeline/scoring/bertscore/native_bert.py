"""A minimal pure-torch BERT encoder (inference only) loaded straight from safetensors.

Same maths as ``transformers.BertModel`` with absolute positions, token type 0 and exact
(erf) GELU; runs only the first ``num_layers`` layers and returns their output, which is
``hidden_states[num_layers]`` of the full model (what bert_score uses).  Loading takes a few
milliseconds instead of the seconds ``AutoModel.from_pretrained`` needs.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.scoring.bertscore.bert_weights import load_bert_weights


class NativeBert(nn.Module):
    """BERT embeddings + the first ``num_layers`` transformer layers."""

    def __init__(self, config: dict, num_layers: int) -> None:
        super().__init__()
        h, inter = int(config["hidden_size"]), int(config["intermediate_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.num_layers = num_layers
        self.word = nn.Embedding(int(config["vocab_size"]), h)
        self.pos = nn.Embedding(int(config["max_position_embeddings"]), h)
        self.tok_type = nn.Embedding(int(config.get("type_vocab_size", 2)), h)
        self.ln = nn.LayerNorm(h, eps=self.eps)
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            layer = nn.Module()
            layer.qkv = nn.Linear(h, 3 * h)
            layer.out = nn.Linear(h, h)
            layer.ln1 = nn.LayerNorm(h, eps=self.eps)
            layer.fc1 = nn.Linear(h, inter)
            layer.fc2 = nn.Linear(inter, h)
            layer.ln2 = nn.LayerNorm(h, eps=self.eps)
            self.layers.append(layer)

    @classmethod
    def load(cls, model_dir: Path, config: dict, num_layers: int) -> NativeBert:
        """Build the module with the weights of ``model.safetensors`` (see ``bert_weights``)."""
        weights = load_bert_weights(model_dir, config, num_layers)
        model = cls(config, num_layers)  # (a meta-device context would import torch._dynamo)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()},
                              assign=True, strict=True)
        return model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                all_layers: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Hidden states after ``num_layers`` layers, ``[batch, seq, hidden]``.

        With ``all_layers`` returns the list ``[embeddings, layer1, ..., layerN]``.
        """
        b, t = input_ids.shape
        pos = torch.arange(t, device=input_ids.device)
        x = self.word(input_ids) + self.pos(pos)[None] + self.tok_type.weight[0]
        x = self.ln(x)
        keep = attention_mask.bool()[:, None, None, :]  # True = attend
        h = x.shape[-1]
        hd = h // self.heads
        states = [x]
        for layer in self.layers:
            qkv = layer.qkv(x).view(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=keep)
            att = att.transpose(1, 2).reshape(b, t, h)
            x = layer.ln1(layer.out(att) + x)
            x = layer.ln2(layer.fc2(F.gelu(layer.fc1(x))) + x)
            states.append(x)
        return states if all_layers else x
