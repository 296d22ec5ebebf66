"""Derived variants for bench/unseen/run.sh.

  derive.py novi SRC DST  SRC without value_info (torch exports carry it)
  derive.py op18 SRC DST  SRC (opset 17) relabelled as opset 18, IR 8

onnx 1.12 (the /usr/bin/python3 one) knows opsets up to 17, so its
version_converter cannot target 18. "op18" therefore only rewrites the
opset import, and refuses a graph that uses any operator whose definition
changed at opset 18 (list below, from the ONNX operator changelog): for the
rest the opset-17 and opset-18 definitions are the same, so the relabelled
model is a valid opset-18 model, which onnxruntime loads as such.
"""
import sys

import onnx

CHANGED_AT_18 = {
    "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor", "CenterCropPad", "Col2Im",
    "GroupNormalization", "LpPool", "Mish", "OptionalGetElement", "OptionalHasElement", "Pad",
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSumSquare", "Resize", "ScatterElements", "ScatterND",
    "Split",
}


def main(mode, src, dst):
    m = onnx.load(src)
    if mode == "novi":
        del m.graph.value_info[:]
    elif mode == "op18":
        ops = {n.op_type for n in m.graph.node if n.domain in ("", "ai.onnx")}
        bad = sorted(ops & CHANGED_AT_18)
        if bad:
            sys.exit("%s uses operators changed at opset 18: %s" % (src, bad))
        for imp in m.opset_import:
            if imp.domain in ("", "ai.onnx"):
                if imp.version != 17:
                    sys.exit("%s is opset %d, not 17" % (src, imp.version))
                imp.version = 18
        m.ir_version = 8
    else:
        sys.exit("mode must be novi or op18")
    onnx.save(m, dst)


if __name__ == "__main__":
    main(*sys.argv[1:])
