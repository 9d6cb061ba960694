"""Exports a tiny CNN to ONNX with PyTorch, as a reference for tests/onnx_models.rs.

The network uses every operator Pathscope maps from ONNX (convolution with and without
bias, BatchNorm, ReLU, ReLU6, max pooling with padding and ceil mode, a SqueezeNet fire
concatenation, a ResNet residual add, depthwise convolution, global average pooling,
flatten, dropout, linear). Both exporters are used, since they emit different operator
patterns (the TorchScript one folds BatchNorm and uses Gemm; the dynamo one keeps
BatchNormalization nodes). PyTorch's logits and the input gradient of one logit are
saved next to the models as .npy.

Run from the repository root with any Python that has torch, onnx and onnxscript:
    bench/.venv/bin/python tests/data/make_tiny_onnx.py

`families` (bench/.venv/bin/python tests/data/make_tiny_onnx.py families) writes the
reduced variants of twelve torchvision families into tests/data/onnx/ for
tests/onnx_families.rs: each built from torchvision's own classes with few channels
and blocks (the same operators as the full model), exported by both exporters (the
dynamo one with its weights in a .onnx.data file beside the graph, as it writes them by
default), with PyTorch's logits and the input gradient of one logit as .npy. Also a
non-square input, a 1-channel model and a 10-class head with its labels.

`opsets` writes the same families at opset 13 (legacy) and 21 (dynamo, transformers)
into tests/data/onnx/opsets/.
"""

import os

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.squeeze = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU())
        self.expand1 = nn.Sequential(nn.Conv2d(4, 6, 1), nn.ReLU())
        self.expand3 = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.res = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12))
        self.relu = nn.ReLU()
        self.dw = nn.Sequential(nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=12, bias=False), nn.BatchNorm2d(12), nn.ReLU6())
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        x = self.pool(self.stem(x))
        s = self.squeeze(x)
        x = torch.cat([self.expand1(s), self.expand3(s)], 1)
        x = self.relu(self.res(x) + x)
        x = self.dw(x)
        x = torch.flatten(self.gap(x), 1)
        return self.fc(self.drop(x))


def main():
    torch.manual_seed(0)
    model = Tiny()
    # Non-trivial BatchNorm statistics, so folding them is actually tested.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    # Large enough that ReLU6 clips part of its input at 6 (else Clip(0, 6) is untested).
    model.dw[1].weight.data.uniform_(15.0, 25.0)
    model.eval()

    x = torch.randn(2, 3, 37, 41, generator=torch.Generator().manual_seed(1))
    xv = x.clone().requires_grad_(True)
    seen = {}
    hook = model.dw[1].register_forward_hook(lambda m, i, o: seen.update(pre=o.detach()))
    logits = model(xv)
    hook.remove()
    pre = seen["pre"]
    target = 3
    (grad,) = torch.autograd.grad(logits[:, target].sum(), xv)
    print(f"ReLU6 input: {(pre > 6).float().mean():.2f} above 6, {(pre < 0).float().mean():.2f} below 0")
    np.save(os.path.join(HERE, "tiny_cnn_input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(HERE, "tiny_cnn_logits.npy"), logits.detach().numpy().astype(np.float32))
    np.save(os.path.join(HERE, "tiny_cnn_grad_target3.npy"), grad.numpy().astype(np.float32))

    dynamic = {"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}}
    torch.onnx.export(model, (x,), os.path.join(HERE, "tiny_cnn_torchscript.onnx"), dynamo=False,
                      input_names=["input"], output_names=["logits"], dynamic_axes=dynamic, opset_version=13)
    torch.onnx.export(model, (x,), os.path.join(HERE, "tiny_cnn_dynamo.onnx"), dynamo=True,
                      input_names=["input"], output_names=["logits"], external_data=False,
                      dynamic_shapes={"x": {0: torch.export.Dim("batch"), 2: torch.export.Dim("h"), 3: torch.export.Dim("w")}},
                      )

    import onnx
    for name in ["tiny_cnn_torchscript.onnx", "tiny_cnn_dynamo.onnx"]:
        m = onnx.load(os.path.join(HERE, name))
        ops = sorted({n.op_type for n in m.graph.node})
        print(name, os.path.getsize(os.path.join(HERE, name)), "bytes, opset",
              [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")], ops)


def reduced_families():
    """(name, model, input shape) of the twelve families, reduced."""
    import torchvision.models as tv
    from torchvision.models import resnet, mobilenetv3, efficientnet, convnext, regnet, vgg
    import sys
    googlenet = sys.modules["torchvision.models.googlenet"]
    from functools import partial

    class ResNetTiny(nn.Module):
        """A torchvision ResNet-50's stem, bottlenecks (with downsampling) and head."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            down = lambda i, o, s: nn.Sequential(nn.Conv2d(i, o, 1, s, bias=False), nn.BatchNorm2d(o))
            self.layer1 = resnet.Bottleneck(8, 4, downsample=down(8, 16, 1))
            self.layer2 = resnet.Bottleneck(16, 8, stride=2, downsample=down(16, 32, 2))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer2(self.layer1(x))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    class VggTiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = vgg.make_layers([8, "M", 16, "M"], batch_norm=False)
            self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
            self.classifier = nn.Sequential(nn.Linear(64, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    class GoogLeNetTiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = googlenet.BasicConv2d(3, 8, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception = googlenet.Inception(8, 4, 4, 8, 2, 4, 4)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(20, 10)

        def forward(self, x):
            x = self.inception(self.maxpool1(self.conv1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    v3 = partial(mobilenetv3.InvertedResidualConfig, width_mult=1.0)
    mb = efficientnet.MBConvConfig
    return [
        ("resnet50", ResNetTiny(), (1, 3, 32, 32)),
        ("vgg16", VggTiny(), (1, 3, 32, 32)),
        ("densenet121", tv.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2, num_classes=10), (1, 3, 32, 32)),
        ("mobilenet_v2", tv.MobileNetV2(num_classes=10, inverted_residual_setting=[[1, 8, 1, 1], [6, 8, 2, 2]]), (1, 3, 32, 32)),
        ("mobilenet_v3_large", mobilenetv3.MobileNetV3(
            [v3(8, 3, 8, 8, False, "RE", 1, 1), v3(8, 3, 24, 8, True, "HS", 2, 1), v3(8, 5, 24, 16, True, "HS", 1, 1)],
            last_channel=32, num_classes=10), (1, 3, 32, 32)),
        ("efficientnet_b0", efficientnet.EfficientNet(
            [mb(1, 3, 1, 8, 8, 1, 1.0, 1.0), mb(6, 3, 2, 8, 16, 2, 1.0, 1.0)], dropout=0.2, num_classes=10,
            last_channel=32), (1, 3, 32, 32)),
        ("convnext_tiny", convnext.ConvNeXt([convnext.CNBlockConfig(8, 16, 1), convnext.CNBlockConfig(16, None, 1)],
                                            num_classes=10), (1, 3, 32, 32)),
        ("vit_b_16", tv.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                                          mlp_dim=32, num_classes=10), (1, 3, 32, 32)),
        ("regnet_y_400mf", regnet.RegNet(regnet.BlockParams.from_init_params(depth=2, w_0=8, w_a=8.0, w_m=2.0,
                                                                             group_width=8, se_ratio=0.25),
                                         num_classes=10, stem_width=8), (1, 3, 32, 32)),
        ("shufflenet_v2_x1_0", tv.ShuffleNetV2([1, 1, 1], [8, 16, 32, 64, 32], num_classes=10), (1, 3, 32, 32)),
        ("googlenet", GoogLeNetTiny(), (1, 3, 32, 32)),
        ("swin_t", tv.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                                      window_size=[4, 4], num_classes=10), (1, 3, 32, 32)),
        # Inputs other classifiers have: not square, one channel.
        ("nonsquare", ResNetTiny(), (1, 3, 32, 48)),
        ("gray", nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
                               nn.Conv2d(8, 8, 3, padding=1), nn.Sigmoid(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                               nn.Linear(8, 2)), (1, 1, 28, 28)),
    ]


def seeded(i, model):
    """The family's weights: the same for every export of it."""
    torch.manual_seed(100 + i)
    for p in model.parameters():
        p.data.normal_(0.0, 0.3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


# Opsets beyond the default exports' (legacy 17, dynamo 18): the oldest the issue names
# (13, or 14 where attention needs it; LayerNorm and GELU are decomposed into
# ReduceMean/Pow/Sqrt/Erf…) for every family, and the newest (21) for the transformer-like ones.
OPSET_EXPORTS = [("legacy", 13, None), ("dynamo", 21, {"vit_b_16", "swin_t", "convnext_tiny"})]


def opsets():
    """Writes tests/data/onnx/opsets/{family}_{exporter}{opset}.onnx: the same weights as
    `families`, so its .npy references apply."""
    out = os.path.join(HERE, "onnx", "opsets")
    os.makedirs(out, exist_ok=True)
    for i, (name, model, shape) in enumerate(reduced_families()):
        model = seeded(i, model)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(i))
        for exporter, opset, only in OPSET_EXPORTS:
            if only is not None and name not in only:
                continue
            for version in (opset, opset + 1):  # attention needs 14
                path = os.path.join(out, f"{name}_{exporter}{version}.onnx")
                try:
                    torch.onnx.export(model, (x,), path, dynamo=exporter == "dynamo", opset_version=version,
                                      external_data=False)
                    print(path)
                    break
                except torch.onnx.errors.UnsupportedOperatorError:
                    continue


def families():
    out = os.path.join(HERE, "onnx")
    os.makedirs(out, exist_ok=True)
    for i, (name, model, shape) in enumerate(reduced_families()):
        model = seeded(i, model)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(i))
        xv = x.clone().requires_grad_(True)
        logits = model(xv)
        target = int(logits[0].argmax())
        (grad,) = torch.autograd.grad(logits[0, target], xv)
        np.save(os.path.join(out, f"{name}_input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(out, f"{name}_logits.npy"), logits.detach().numpy().astype(np.float32))
        np.save(os.path.join(out, f"{name}_grad.npy"), grad.numpy().astype(np.float32))
        with open(os.path.join(out, f"{name}_target.txt"), "w") as f:
            f.write(f"{target}\n")
        torch.onnx.export(model, x, os.path.join(out, f"{name}_legacy.onnx"), dynamo=False, opset_version=17)
        path = os.path.join(out, f"{name}_dynamo.onnx")
        torch.onnx.export(model, (x,), path, dynamo=True)
        import onnx
        ops = sorted({n.op_type for n in onnx.load(path, load_external_data=False).graph.node})
        print(name, shape, "target", target, "dynamo ops:", " ".join(ops))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["families"]:
        families()
    elif sys.argv[1:] == ["opsets"]:
        opsets()
    else:
        main()
