#!/usr/bin/env python3
"""Times Captum's IntegratedGradients on the workloads `pathscope bench` times, and prints
Pathscope / Captum side by side.

    python bench/captum_ig.py --shared ../shared --pathscope-json pathscope-bench.json --out captum.json

Workload (the reference of the speed issue): one 224x224 image, all-zero baseline in
normalised space, riemann_right, 50 and 200 steps, torch.set_num_threads(N), the best
internal_batch_size of a small set (each model gets its own best), median of --repeats runs
after one warm-up. Also times one forward + backward at batch 1 (parameters keep
requires_grad, as in a plain PyTorch model, so weight gradients are computed too).

Models come from the shared safetensors: torchvision's squeezenet1_1 and resnet18, and a
small EfficientNet-Lite0 written below (torchvision has none) with TensorFlow SAME padding
and BatchNorm eps 1e-3, like Pathscope's.
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time


def die_skip(msg):
    print(f"SKIPPED Captum side: {msg}", file=sys.stderr)
    sys.exit(3)


try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
    from captum.attr import IntegratedGradients
    from safetensors.torch import load_file
except ImportError as e:  # the caller prints how to install
    die_skip(f"{e}; install torch, torchvision, captum and safetensors (bench/run.sh does it in bench/.venv)")


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (extra row/column at bottom/right)."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        s = self.stride[0]
        ph = max((math.ceil(ih / s) - 1) * s + kh - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


class MBConv(nn.Module):
    def __init__(self, c_in, c_out, k, stride, ratio):
        super().__init__()
        hidden = c_in * ratio
        self.has_expand = ratio != 1
        if self.has_expand:
            self._expand_conv = SameConv(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=1e-3)
        self._depthwise_conv = SameConv(hidden, hidden, k, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=1e-3)
        self._project_conv = SameConv(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=1e-3)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
              (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks, c = [], 32
        for repeats, k, s, ratio, c_out in self.STAGES:
            for r in range(repeats):
                blocks.append(MBConv(c, c_out, k, s if r == 0 else 1, ratio))
                c = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


def load(name, shared, zoo=None):
    if zoo and hasattr(torchvision.models, name) and os.path.exists(os.path.join(zoo, f"{name}.safetensors")):
        # A full-size torchvision model from bench/zoo_weights.py, by its builder name.
        model = getattr(torchvision.models, name)(weights=None)
        model.load_state_dict(load_file(os.path.join(zoo, f"{name}.safetensors")))
        return model.eval(), name
    state = load_file(os.path.join(shared, "models", f"{name}.safetensors"))
    if name.startswith("squeezenet1_1"):
        model, label = torchvision.models.squeezenet1_1(weights=None), "SqueezeNet-1.1"
    elif name.startswith("resnet18"):
        model, label = torchvision.models.resnet18(weights=None), "ResNet-18"
    else:
        model, label = EfficientNetLite0(), "EfficientNet-Lite0"
    model.load_state_dict(state, strict=False)
    return model.eval(), label


def reset_peak_rss():
    """Linux: `5` to /proc/self/clear_refs resets the peak resident set size (VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def median_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--models", default="squeezenet1_1_imagenet,efficientnet_lite0_imagenet,resnet18_random_seed0")
    ap.add_argument("--steps", default="50,200")
    ap.add_argument("--batch-sizes", default="16,50")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="captum-bench.json")
    ap.add_argument("--pathscope-json", help="a `pathscope bench` report to print the ratio against")
    ap.add_argument("--zoo", help="folder of full-size torchvision state dicts (bench/zoo_weights.py), "
                                  "loaded for models named by torchvision's builder names")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 224, 224)
    baseline = torch.zeros_like(x)
    report = {"torch": torch.__version__, "captum": __import__("captum").__version__,
              "threads": args.threads, "cpu": platform.processor() or platform.machine(), "models": []}
    for name in args.models.split(","):
        model, label = load(name, args.shared, args.zoo)
        target = int(model(x).argmax())

        def fwd_bwd():
            xi = x.clone().requires_grad_(True)
            model(xi)[0, target].backward()

        fb = median_time(fwd_bwd, args.repeats)
        ig = IntegratedGradients(model)
        rows = []
        for steps in map(int, args.steps.split(",")):
            best = None
            for b in map(int, args.batch_sizes.split(",")):
                if b > steps:
                    continue
                run = lambda: ig.attribute(x, baselines=baseline, target=target, n_steps=steps,
                                           method="riemann_right", internal_batch_size=b)
                reset_peak_rss()
                t = median_time(run, args.repeats if steps <= 50 else max(1, args.repeats - 1))
                peak = peak_rss_mb()
                print(f"{label}: IG {steps} steps, internal batch {b}: {t:.2f} s, peak memory {peak or 0:.0f} MiB",
                      file=sys.stderr)
                if best is None or t < best[1]:
                    best = (b, t, peak)
            rows.append({"steps": steps, "batch_size": best[0], "seconds": best[1], "peak_rss_mb": best[2]})
        print(f"{label}: forward+backward batch 1 {fb * 1e3:.0f} ms; " +
              ", ".join(f"IG {r['steps']}: {r['seconds']:.2f} s (batch {r['batch_size']})" for r in rows),
              file=sys.stderr)
        report["models"].append({"model": name, "architecture": label,
                                 "forward_backward_ms": fb * 1e3, "ig": rows})
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)

    if args.pathscope_json:
        with open(args.pathscope_json) as f:
            ours = json.load(f)
        by_arch = {m["architecture"]: m for m in ours["models"]}
        # Zoo models are matched by file name (their architecture names differ).
        by_arch.update({os.path.splitext(os.path.basename(m["model"]))[0]: m for m in ours["models"]})
        print(f"\nPathscope vs Captum {report['captum']} (PyTorch {report['torch']}), {args.threads} threads, "
              f"machine GEMM peak {ours['matmul_gflops']:.0f} GFLOP/s\n")
        print("| model | steps | Captum (s) | Pathscope (s) | Pathscope / Captum | peak MiB Captum / Pathscope |")
        print("| --- | --- | --- | --- | --- | --- |")
        for m in report["models"]:
            p = by_arch.get(m["architecture"])
            for r in m["ig"]:
                q = next((i for i in (p or {}).get("ig", []) if i["steps"] == r["steps"]), None)
                mem = lambda v: f"{v:.0f}" if v else "-"
                if q is None:
                    print(f"| {m['architecture']} | {r['steps']} | {r['seconds']:.2f} | - | - | - |")
                else:
                    print(f"| {m['architecture']} | {r['steps']} | {r['seconds']:.2f} | {q['seconds']:.2f} "
                          f"| {q['seconds'] / r['seconds']:.2f} "
                          f"| {mem(r.get('peak_rss_mb'))} / {mem(q.get('peak_rss_mb'))} |")


if __name__ == "__main__":
    main()
