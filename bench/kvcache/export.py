"""Exports one decoding step of a Llama with a key/value cache, at a size
where the cache matters, for bench/kvcache/run.sh: the same module as the
llama_kv_nano fixture (fixtures/gen/hf_masked.py, KVLlama), random
initialised, torch 1.13's exporter at opset 17.

  /usr/bin/python3 bench/kvcache/export.py OUT.onnx [--hidden 1024]
      [--layers 4] [--heads 8] [--kv-heads 4] [--mlp 2816] [--vocab 4096]
"""

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "gen"))

import torch  # noqa: E402

from hf_masked import KVLlama  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--mlp", type=int, default=2816)
    p.add_argument("--vocab", type=int, default=4096)
    a = p.parse_args()
    torch.manual_seed(0)
    model = KVLlama(a.vocab, a.hidden, a.layers, a.heads, a.kv_heads, a.mlp).eval()
    head = a.hidden // a.heads
    past_len = 4
    ids = torch.randint(0, a.vocab, (1, 1))
    mask = torch.ones(1, past_len + 1, dtype=torch.int64)
    pos = torch.full((1, 1), past_len, dtype=torch.int64)
    past = [torch.randn(1, a.kv_heads, past_len, head) for _ in range(2 * a.layers)]
    names = ["input_ids", "attention_mask", "position_ids"] + ["past_%s%d" % (k, i) for i in range(a.layers) for k in "kv"]
    outs = ["logits"] + ["present_%s%d" % (k, i) for i in range(a.layers) for k in "kv"]
    axes = {"input_ids": {0: "batch", 1: "seq"}, "position_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "total"}, "logits": {0: "batch", 1: "seq"}}
    axes.update({n: {0: "batch", 2: "past"} for n in names[3:]})
    axes.update({n: {0: "batch", 2: "total"} for n in outs[1:]})
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask, pos, *past), a.out, opset_version=17, input_names=names,
                          output_names=outs, dynamic_axes=axes)


if __name__ == "__main__":
    main()
