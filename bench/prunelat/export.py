"""Export untrained torchvision models for bench/prune-latency.sh.

/usr/bin/python3 bench/prunelat/export.py OUTDIR [NAME...]

Random weights (seed 0), opset 13, dynamic batch, eval mode; nothing is
committed. vit_s is torchvision's VisionTransformer at 6 layers, 6 heads,
width 384 (a ViT-S/16 cut to half depth, so that batch 8 runs in a few
hundred milliseconds on one thread).
"""
import os
import sys

import torch
import torchvision
from torchvision.models.vision_transformer import VisionTransformer

BUILDERS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None),
    "resnet50": lambda: torchvision.models.resnet50(weights=None),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(weights=None),
    "densenet121": lambda: torchvision.models.densenet121(weights=None),
    "vit_s": lambda: VisionTransformer(image_size=224, patch_size=16, num_layers=6, num_heads=6,
                                       hidden_dim=384, mlp_dim=1536),
}


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(BUILDERS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        path = os.path.join(out, name + ".onnx")
        if os.path.exists(path):
            continue
        torch.manual_seed(0)
        m = BUILDERS[name]().eval()
        tmp = path + ".tmp"
        torch.onnx.export(m, torch.randn(1, 3, 224, 224), tmp, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        os.replace(tmp, path)
        print("exported", path, file=sys.stderr)


if __name__ == "__main__":
    main()
