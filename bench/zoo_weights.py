#!/usr/bin/env python3
"""Writes full-size torchvision classifiers with random weights as state dicts
(`OUT/NAME.safetensors`), for bench/run.sh to time Pathscope and Captum on the same files.

    bench/.venv/bin/python bench/zoo_weights.py --out bench/out/zoo resnet50 vit_b_16

Weights are torchvision's own initialisation (seed 0), except that an all-zero final layer
(ViT's head) gets N(0, 0.02) weights: with all logits 0 there is nothing to explain.
"""

import argparse
import os

import torch
import torchvision
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.models:
        path = os.path.join(args.out, f"{name}.safetensors")
        if os.path.exists(path):
            continue
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None).eval()
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and not m.weight.detach().any():
                torch.nn.init.normal_(m.weight, std=0.02)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
