"""Llama- and Qwen2-style decoders for bench/unseen: RMSNorm with weight,
rotary position embeddings (rotate_half: Slice/Neg/Concat on head_dim),
grouped-query attention (8 query heads, 2 KV heads), SwiGLU MLP
(down(silu(gate(x)) * up(x))), causal mask sliced from a buffer by the
run-time sequence length, pre-norm, final RMSNorm and LM head.

  llama_gqa  no biases, KV heads repeated the way Hugging Face's repeat_kv
             does it (x[:, :, None].expand(...).reshape(...)), untied lm_head
  qwen2_gqa  q/k/v WITH biases, KV heads repeated with a constant-size
             expand + flatten (same result as repeat_interleave on dim 1),
             lm_head tied to the token embedding
  qwen2_gqa_ri    as qwen2_gqa but with torch.repeat_interleave: torch 1.13
             exports it as a SplitToSequence/Loop that onnxruntime cannot
             run ("left operand cannot broadcast on dim 1"), so the reference
             itself fails; kept to show it, not usable for `pare check`
  llama_gqa_norope  llama_gqa without rotary embeddings (diagnostic: does
             RoPE alone freeze the attention groups?)

Untrained, seeded, with small random offsets so no two tensors are equal.

Usage: /usr/bin/python3 bench/unseen/llama.py OUT_DIR
Writes OUT_DIR/<name>_op17.onnx and .inputs.npz for each name above.
"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn

V, E, H, KV, D, F, L, S = 512, 256, 8, 2, 32, 688, 4, 32
THETA = 10000.0


class RMSNorm(nn.Module):
    def __init__(s, eps=1e-6):
        super().__init__()
        s.weight, s.eps = nn.Parameter(torch.ones(E)), eps

    def forward(s, x):
        v = x.pow(2).mean(-1, keepdim=True)
        return s.weight * (x * torch.rsqrt(v + s.eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Attn(nn.Module):
    def __init__(s, bias, interleave, rope=True):
        super().__init__()
        s.rope = rope
        s.q_proj = nn.Linear(E, H * D, bias=bias)
        s.k_proj = nn.Linear(E, KV * D, bias=bias)
        s.v_proj = nn.Linear(E, KV * D, bias=bias)
        s.o_proj = nn.Linear(H * D, E, bias=False)
        s.interleave = interleave

    def repeat_kv(s, x):
        if s.interleave == "ri":
            return torch.repeat_interleave(x, H // KV, dim=1)
        if s.interleave:
            return x[:, :, None].expand(-1, -1, H // KV, -1, -1).flatten(1, 2)
        b, kv, t, d = x.shape  # Hugging Face repeat_kv
        return x[:, :, None, :, :].expand(b, kv, H // KV, t, d).reshape(b, kv * (H // KV), t, d)

    def forward(s, x, cos, sin, mask):
        b, t = x.shape[0], x.shape[1]
        q = s.q_proj(x).view(b, t, -1, D).transpose(1, 2)
        k = s.k_proj(x).view(b, t, -1, D).transpose(1, 2)
        v = s.v_proj(x).view(b, t, -1, D).transpose(1, 2)
        if s.rope:
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        k, v = s.repeat_kv(k), s.repeat_kv(v)
        a = torch.matmul(q, k.transpose(2, 3)) / (D ** 0.5) + mask
        a = torch.softmax(a.float(), dim=-1)
        o = torch.matmul(a, v).transpose(1, 2).contiguous().reshape(b, t, -1)
        return s.o_proj(o)


class MLP(nn.Module):
    def __init__(s):
        super().__init__()
        s.gate_proj = nn.Linear(E, F, bias=False)
        s.up_proj = nn.Linear(E, F, bias=False)
        s.down_proj = nn.Linear(F, E, bias=False)

    def forward(s, x):
        return s.down_proj(nn.functional.silu(s.gate_proj(x)) * s.up_proj(x))


class Layer(nn.Module):
    def __init__(s, bias, interleave, rope):
        super().__init__()
        s.input_layernorm, s.post_attention_layernorm = RMSNorm(), RMSNorm()
        s.self_attn, s.mlp = Attn(bias, interleave, rope), MLP()

    def forward(s, x, cos, sin, mask):
        x = x + s.self_attn(s.input_layernorm(x), cos, sin, mask)
        return x + s.mlp(s.post_attention_layernorm(x))


class Decoder(nn.Module):
    def __init__(s, bias, interleave, tied, rope=True):
        super().__init__()
        s.embed_tokens = nn.Embedding(V, E)
        s.layers = nn.ModuleList([Layer(bias, interleave, rope) for _ in range(L)])
        s.norm = RMSNorm()
        s.lm_head = nn.Linear(E, V, bias=False)
        if tied:
            s.lm_head.weight = s.embed_tokens.weight
        inv = 1.0 / (THETA ** (torch.arange(0, D, 2).float() / D))
        f = torch.outer(torch.arange(S).float(), inv)
        emb = torch.cat((f, f), dim=-1)
        s.register_buffer("cos_cached", emb.cos())
        s.register_buffer("sin_cached", emb.sin())
        s.register_buffer("causal", torch.triu(torch.full((S, S), -1e9), diagonal=1))

    def forward(s, ids):
        t = ids.shape[1]
        cos = s.cos_cached[:t][None, None]
        sin = s.sin_cached[:t][None, None]
        mask = s.causal[:t, :t][None, None]
        x = s.embed_tokens(ids)
        for layer in s.layers:
            x = layer(x, cos, sin, mask)
        return s.lm_head(s.norm(x))


def perturb(m, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    ids = torch.randint(0, V, (2, S))
    models = {
        "llama_gqa": Decoder(bias=False, interleave=False, tied=False),
        "qwen2_gqa": Decoder(bias=True, interleave=True, tied=True),
        "qwen2_gqa_ri": Decoder(bias=True, interleave="ri", tied=True),
        "llama_gqa_norope": Decoder(bias=False, interleave=False, tied=False, rope=False),
    }
    for i, (name, m) in enumerate(models.items()):
        perturb(m, 200 + i)
        m.eval()
        path = os.path.join(out, "%s_op17.onnx" % name)
        torch.onnx.export(m, (ids,), path, opset_version=17, do_constant_folding=True,
                          input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}})
        onnx.checker.check_model(path, full_check=True)
        np.savez(path[:-5] + ".inputs.npz", input_ids=ids.numpy())
        print("ok  ", path, flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pare-llama-models")
