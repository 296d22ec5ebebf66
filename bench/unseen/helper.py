"""Independent measurements for bench/unseen/run.sh, with onnx (not pare).

  helper.py count MODEL          JSON: opset, value_info count, parameter counts
                                 (params: the rules of docs/COUNTING.md for float models,
                                 written from that page, not from pare's code)
  helper.py share MODEL GROUPS   JSON: parameters in prunable groups, freeze reasons
  helper.py checker MODEL        onnx.checker.check_model(full_check=True); exit 1 + message
"""
import collections
import json
import re
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper  # noqa: F401

SHAPE_TYPES = {TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL}
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}


def numel(t):
    return int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1


def tensors(m):
    """name -> TensorProto for initializers and Constant-node tensors (main graph)."""
    out = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = a.t
    return out


# Inputs that hold weights, by op (docs/COUNTING.md): a float Constant node
# is a parameter only when some node reads it at one of these.
WEIGHT_INPUTS = {
    "Conv": {1, 2}, "ConvTranspose": {1, 2}, "Gemm": None, "MatMul": None, "Einsum": None,
    "BatchNormalization": {1, 2, 3, 4}, "InstanceNormalization": {1, 2},
    "LayerNormalization": {1, 2}, "GroupNormalization": {1, 2}, "RMSNormalization": {1, 2},
    "PRelu": {1}, "LSTM": {1, 2, 3}, "GRU": {1, 2, 3}, "RNN": {1, 2, 3}, "Gather": {0},
}
# Uses that do not make a float initializer a parameter (quantization scales and
# zero points, Resize/Upsample roi and scales).
NOT_PARAM_USES = {"QuantizeLinear": {1, 2}, "DequantizeLinear": {1, 2}, "Resize": {1, 2}, "Upsample": {1}}


def param_tensors(m):
    """name -> elements, for the tensors docs/COUNTING.md calls parameters
    (float models: no quantized weights are handled here)."""
    uses = collections.defaultdict(list)
    for n in m.graph.node:
        for i, x in enumerate(n.input):
            if x:
                uses[x].append((n.op_type, i))
    out = {}
    for t in m.graph.initializer:
        if t.data_type not in FLOAT_TYPES:
            continue
        us = uses.get(t.name, [])
        if us and all(i in NOT_PARAM_USES.get(op, ()) for op, i in us):
            continue
        out[t.name] = numel(t)
    for n in m.graph.node:
        if n.op_type != "Constant" or n.domain not in ("", "ai.onnx"):
            continue
        t = next((a.t for a in n.attribute if a.name == "value"), None)
        if t is None or t.data_type not in FLOAT_TYPES:
            continue
        if any(WEIGHT_INPUTS.get(op, set()) is None or i in WEIGHT_INPUTS.get(op, set())
               for op, i in uses.get(n.output[0], []) if op in WEIGHT_INPUTS):
            out[n.output[0]] = numel(t)
    return out


def count(path):
    m = onnx.load(path)
    inits = list(m.graph.initializer)
    float_init = sum(numel(t) for t in inits if t.data_type in FLOAT_TYPES)
    numeric = sum(numel(t) for t in tensors(m).values() if t.data_type not in SHAPE_TYPES)
    opset = max(i.version for i in m.opset_import if i.domain in ("", "ai.onnx"))
    print(json.dumps({"opset": opset, "value_info": len(m.graph.value_info),
                      "params": sum(param_tensors(m).values()),
                      "float_initializer_elems": float_init, "numeric_tensor_elems": numeric}))


def share(path, groups_path):
    m = onnx.load(path)
    ps = param_tensors(m)
    total = sum(ps.values())
    groups = json.load(open(groups_path))["groups"] or []
    prunable, frozen = set(), set()
    reasons = collections.Counter()
    for g in groups:
        names = {mb["tensor"] for mb in g["members"]}
        if g.get("frozen"):
            frozen |= names
            r = re.sub(r'"[^"]*"', '…', g.get("reason", ""))
            r = re.sub(r"^\S+: ", "", r)  # the node the reason names
            reasons[r] += 1
        else:
            prunable |= names
    size = lambda names: sum(ps.get(n, 0) for n in names)
    p = size(prunable)
    print(json.dumps({
        "groups": len(groups), "frozen_groups": sum(1 for g in groups if g.get("frozen")),
        "total_params": total, "prunable_params": p, "share": p / total if total else 0.0,
        "frozen_only_params": size(frozen - prunable),
        "reasons": reasons.most_common(3),
    }))


def checker(path):
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as e:  # noqa: BLE001 - report whatever the checker says
        print(("%s: %s" % (type(e).__name__, e)).replace("\n", " ")[:400])
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"count": count, "share": share, "checker": checker}[cmd](*args)
