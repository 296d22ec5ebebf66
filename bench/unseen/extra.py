"""Transformer exports that are not torchvision models and not fixtures, for
bench/unseen/run.sh: a BERT-style encoder written the way Hugging Face's
BertModel is (separate Q/K/V Linear, view + permute, additive attention mask
from an input, token-type and position embeddings, post-LN, pooler) and a
GPT-2-style decoder (one packed c_attn Linear split three ways, causal mask
sliced from a buffer by the run-time sequence length, pre-LN, tied LM head).
Untrained, seeded, with small random offsets so no two tensors are equal.

Usage: /usr/bin/python3 bench/unseen/extra.py OUT_DIR
Writes OUT_DIR/{bert_hf,gpt2_tied}_op{13,17}.onnx and .inputs.npz.
"""
import math
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn

V, E, H, L, F, S = 1000, 256, 8, 4, 1024, 32


class BertAttn(nn.Module):
    def __init__(s):
        super().__init__()
        s.q, s.k, s.v, s.o = (nn.Linear(E, E) for _ in range(4))
        s.ln = nn.LayerNorm(E)

    def split(s, x):
        b, t, _ = x.size()
        return x.view(b, t, H, E // H).permute(0, 2, 1, 3)

    def forward(s, x, mask):
        q, k, v = s.split(s.q(x)), s.split(s.k(x)), s.split(s.v(x))
        a = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(E // H) + mask
        c = torch.matmul(torch.softmax(a, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        c = c.view(c.size()[:-2] + (E,))
        return s.ln(s.o(c) + x)


class BertLayer(nn.Module):
    def __init__(s):
        super().__init__()
        s.att, s.i, s.out, s.ln = BertAttn(), nn.Linear(E, F), nn.Linear(F, E), nn.LayerNorm(E)

    def forward(s, x, mask):
        x = s.att(x, mask)
        return s.ln(s.out(nn.functional.gelu(s.i(x))) + x)


class Bert(nn.Module):
    def __init__(s):
        super().__init__()
        s.tok, s.pos, s.typ = nn.Embedding(V, E), nn.Embedding(S, E), nn.Embedding(2, E)
        s.ln = nn.LayerNorm(E)
        s.layers = nn.ModuleList([BertLayer() for _ in range(L)])
        s.pool, s.cls = nn.Linear(E, E), nn.Linear(E, 2)

    def forward(s, ids, attn):
        pos = torch.arange(ids.size(1)).unsqueeze(0)
        x = s.ln(s.tok(ids) + s.pos(pos) + s.typ(torch.zeros_like(ids)))
        mask = (1.0 - attn[:, None, None, :]) * -10000.0
        for layer in s.layers:
            x = layer(x, mask)
        return s.cls(torch.tanh(s.pool(x[:, 0])))


class GPTBlock(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(E), nn.LayerNorm(E)
        s.c_attn, s.c_proj = nn.Linear(E, 3 * E), nn.Linear(E, E)
        s.fc, s.proj = nn.Linear(E, F), nn.Linear(F, E)
        s.register_buffer("bias", torch.tril(torch.ones(S, S, dtype=torch.bool)).view(1, 1, S, S))

    def heads(s, x):
        b, t, _ = x.size()
        return x.view(b, t, H, E // H).transpose(1, 2)

    def forward(s, x):
        t = x.size(1)
        q, k, v = s.c_attn(s.ln1(x)).split(E, dim=2)
        q, k, v = s.heads(q), s.heads(k), s.heads(v)
        a = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(E // H)
        a = torch.where(s.bias[:, :, :t, :t], a, torch.tensor(-1e4))
        c = torch.matmul(torch.softmax(a, dim=-1), v).transpose(1, 2).contiguous().view(x.size())
        x = x + s.c_proj(c)
        return x + s.proj(nn.functional.gelu(s.fc(s.ln2(x))))


class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, E), nn.Embedding(S, E)
        s.blocks = nn.ModuleList([GPTBlock() for _ in range(L)])
        s.ln_f = nn.LayerNorm(E)

    def forward(s, ids):
        pos = torch.arange(ids.size(1)).unsqueeze(0)
        x = s.wte(ids) + s.wpe(pos)
        for b in s.blocks:
            x = b(x)
        return torch.matmul(s.ln_f(x), s.wte.weight.t())  # tied LM head


def perturb(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    ids = torch.randint(0, V, (2, S))
    attn = torch.ones(2, S)
    attn[1, 20:] = 0
    models = {
        "bert_hf": (Bert(), (ids, attn), ["input_ids", "attention_mask"],
                    {"input_ids": {0: "batch"}, "attention_mask": {0: "batch"}, "logits": {0: "batch"}},
                    {"input_ids": ids.numpy(), "attention_mask": attn.numpy()}),
        "gpt2_tied": (GPT(), (ids,), ["input_ids"],
                      {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
                      {"input_ids": ids.numpy()}),
    }
    for i, (name, (m, args, names, dyn, feeds)) in enumerate(models.items()):
        perturb(m, 100 + i)
        m.eval()
        for op in (13, 17):
            path = os.path.join(out, "%s_op%d.onnx" % (name, op))
            with torch.enable_grad():
                torch.onnx.export(m, args, path, opset_version=op, do_constant_folding=True,
                                  input_names=names, output_names=["logits"], dynamic_axes=dyn)
            onnx.checker.check_model(path, full_check=True)
            np.savez(path[:-5] + ".inputs.npz", **feeds)
            print("ok  ", path, flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pare-unseen-work/models")
