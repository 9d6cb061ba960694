"""Reduced torchvision classifiers as state dicts, with PyTorch's logits and input gradients.

Writes tests/data/torchvision/{name}.safetensors and {name}.pth (the same weights), plus
{name}_input.npy, {name}_logits.npy, {name}_grad.npy (d logits[0, target] / d input) and
{name}_target.txt, for tests/torchvision_families.rs. Every model is built with
torchvision's own classes; where a class fixes its widths (GoogLeNet, Inception-v3) its
`conv_block` is swapped for one that divides every width, and where it fixes its head (VGG,
AlexNet) the head is swapped for a narrow one with the same indices. The checkpoints keep
torchvision's tensor names, so Pathscope recognises them as it recognises full-size ones.

    bench/.venv/bin/python tests/data/make_torchvision_refs.py
"""

import os
import sys
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torchvision.models as tv
from safetensors.torch import save_file
from torchvision.models import convnext, efficientnet, mobilenetv3, regnet, resnet, swin_transformer
import importlib

# `torchvision.models.googlenet` is also the builder function: import the modules by path.
googlenet_mod = importlib.import_module("torchvision.models.googlenet")
inception_mod = importlib.import_module("torchvision.models.inception")

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "torchvision")


def shrunk_conv(block, divisor):
    """A `conv_block` that builds `block` with every width divided by `divisor` (3 input
    channels stay 3)."""

    def make(c_in, c_out, **kwargs):
        return block(c_in if c_in == 3 else c_in // divisor, c_out // divisor, **kwargs)

    return make


class ResNetTiny(nn.Module):
    """torchvision's ResNet layout (conv1, bn1, layer1..4, fc) with narrow widths, built from
    torchvision's own blocks: `block` BasicBlock or Bottleneck, `groups`/`base_width` for
    ResNeXt and Wide ResNet."""

    def __init__(self, block, widths=(4, 8, 8, 16), groups=1, base_width=64, stem=8, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = stem
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            c_out = planes * block.expansion
            down = None
            if stride != 1 or c_in != c_out:
                down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            kwargs = dict(groups=groups, base_width=base_width) if block is resnet.Bottleneck else {}
            blocks = [block(c_in, planes, stride, down, **kwargs), block(c_out, planes, **kwargs)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c_in = c_out
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def vgg(batch_norm):
    model = tv.VGG(tv.vgg.make_layers([8, "M", 16, 16, "M"], batch_norm=batch_norm), num_classes=10,
                   init_weights=False)
    # The 7×7 adaptive pool stays (on an 8×8 map: uneven bins); the head narrows.
    model.classifier = nn.Sequential(nn.Linear(16 * 7 * 7, 32), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(32, 32), nn.ReLU(True), nn.Dropout(), nn.Linear(32, 10))
    return model


def alexnet():
    model = tv.AlexNet(num_classes=10)
    model.features = nn.Sequential(
        nn.Conv2d(3, 8, 11, 4, 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(True),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(True),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2))
    model.classifier = nn.Sequential(nn.Dropout(), nn.Linear(16 * 6 * 6, 32), nn.ReLU(True), nn.Dropout(),
                                     nn.Linear(32, 32), nn.ReLU(True), nn.Linear(32, 10))
    return model


def googlenet():
    conv = shrunk_conv(googlenet_mod.BasicConv2d, 8)
    model = tv.GoogLeNet(num_classes=10, aux_logits=False, transform_input=True, init_weights=False,
                         blocks=[conv, partial(googlenet_mod.Inception, conv_block=conv), googlenet_mod.InceptionAux])
    model.fc = nn.Linear(1024 // 8, 10)
    return model


def inception_v3():
    conv = shrunk_conv(inception_mod.BasicConv2d, 16)
    blocks = [conv] + [partial(b, conv_block=conv) for b in (
        inception_mod.InceptionA, inception_mod.InceptionB, inception_mod.InceptionC, inception_mod.InceptionD,
        inception_mod.InceptionE, inception_mod.InceptionAux)]
    model = tv.Inception3(num_classes=10, aux_logits=False, transform_input=True, init_weights=False,
                          inception_blocks=blocks)
    model.fc = nn.Linear(2048 // 16, 10)
    return model


def mobilenet_v3(arch, blocks):
    settings, last = mobilenetv3._mobilenet_v3_conf(arch)
    return mobilenetv3.MobileNetV3(settings[:blocks], last_channel=64, num_classes=10)


def efficientnet_b(stages):
    settings, last = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=1.0, depth_mult=1.0)
    settings = settings[:stages]
    for s in settings:
        s.num_layers = min(s.num_layers, 2)
    return efficientnet.EfficientNet(settings, dropout=0.2, num_classes=10, last_channel=64)


def efficientnet_v2(stages):
    settings, last = efficientnet._efficientnet_conf("efficientnet_v2_s")
    settings = settings[:stages]
    for s in settings:
        s.num_layers = 1
    return efficientnet.EfficientNet(settings, dropout=0.2, num_classes=10, last_channel=64,
                                     norm_layer=partial(nn.BatchNorm2d, eps=1e-03))


def regnet_tiny(se):
    params = regnet.BlockParams.from_init_params(depth=4, w_0=8, w_a=8.0, w_m=2.0, group_width=8,
                                                  se_ratio=0.25 if se else None)
    return regnet.RegNet(params, num_classes=10, stem_width=8)


def families():
    """(name, model, input shape). The name says which torchvision variant it imitates."""
    return [
        ("resnet18", ResNetTiny(resnet.BasicBlock), (1, 3, 32, 32)),
        ("resnext50_32x4d", ResNetTiny(resnet.Bottleneck, widths=(16, 16, 32, 32), groups=2, base_width=16), (1, 3, 32, 32)),
        ("vgg16", vgg(False), (1, 3, 32, 32)),
        ("vgg16_bn", vgg(True), (1, 3, 32, 32)),
        ("alexnet", alexnet(), (1, 3, 64, 64)),
        ("densenet121", tv.DenseNet(growth_rate=4, block_config=(2, 2, 2), num_init_features=8, bn_size=2,
                                    num_classes=10), (1, 3, 32, 32)),
        ("googlenet", googlenet(), (1, 3, 32, 32)),
        ("inception_v3", inception_v3(), (1, 3, 80, 80)),
        ("mobilenet_v2", tv.MobileNetV2(num_classes=10, inverted_residual_setting=[[1, 8, 1, 1], [6, 8, 2, 2],
                                                                                   [6, 16, 1, 2]]),
         (1, 3, 32, 32)),
        ("mobilenet_v3_large", mobilenet_v3("mobilenet_v3_large", 7), (1, 3, 32, 32)),
        ("mobilenet_v3_small", mobilenet_v3("mobilenet_v3_small", 5), (1, 3, 32, 32)),
        ("efficientnet_b0", efficientnet_b(3), (1, 3, 32, 32)),
        ("efficientnet_v2_s", efficientnet_v2(4), (1, 3, 32, 32)),
        ("regnet_y_400mf", regnet_tiny(True), (1, 3, 32, 32)),
        ("regnet_x_400mf", regnet_tiny(False), (1, 3, 32, 32)),
        ("shufflenet_v2_x1_0", tv.ShuffleNetV2([1, 2, 1], [8, 16, 32, 64, 32], num_classes=10), (1, 3, 32, 32)),
        ("convnext_tiny", convnext.ConvNeXt([convnext.CNBlockConfig(8, 16, 2), convnext.CNBlockConfig(16, None, 1)],
                                            num_classes=10), (1, 3, 32, 32)),
        ("vit_b_16", tv.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=128,
                                          mlp_dim=64, num_classes=10), (1, 3, 32, 32)),
        ("swin_t", tv.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                                      window_size=[4, 4], num_classes=10), (1, 3, 32, 32)),
        # A 2-class fine-tune's head on a 224-input-sized family: any head size loads.
        ("resnet18_2class", ResNetTiny(resnet.BasicBlock, num_classes=2), (1, 3, 32, 32)),
    ]


def seeded(i, model):
    """Random weights large enough that every layer matters, BatchNorm statistics away from
    the identity, and non-zero layer scales (ConvNeXt starts them at 1e-6)."""
    torch.manual_seed(1000 + i)
    for name, p in model.named_parameters():
        fan_in = p[0].numel() if p.dim() > 1 else 1
        std = 1.0 / max(fan_in, 1) ** 0.5 if p.dim() > 1 else 0.3
        p.data.normal_(0.0, std * 1.5 if p.dim() > 1 else std)
        if name.endswith("layer_scale"):
            p.data.uniform_(0.5, 1.5)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def main():
    os.makedirs(OUT, exist_ok=True)
    only = set(sys.argv[1:])
    for i, (name, model, shape) in enumerate(families()):
        if only and name not in only:
            continue
        model = seeded(i, model)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(i))
        xv = x.clone().requires_grad_(True)
        logits = model(xv)
        target = int(logits[0].argmax())
        (grad,) = torch.autograd.grad(logits[0, target], xv)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(OUT, f"{name}.safetensors"))
        torch.save(state, os.path.join(OUT, f"{name}.pth"))
        np.save(os.path.join(OUT, f"{name}_input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(OUT, f"{name}_logits.npy"), logits.detach().numpy().astype(np.float32))
        np.save(os.path.join(OUT, f"{name}_grad.npy"), grad.numpy().astype(np.float32))
        with open(os.path.join(OUT, f"{name}_target.txt"), "w") as f:
            f.write(f"{target}\n")
        params = sum(v.numel() for v in state.values())
        print(f"{name:22s} {tuple(shape)} params {params:8d} logits {logits.detach().numpy()[0, :4]} target {target}")
    # The wrappers users' checkpoints come in: {"state_dict": …} and DataParallel's `module.`.
    model = seeded(0, families()[0][1])
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3},
               os.path.join(OUT, "resnet18_wrapped.pth"))


if __name__ == "__main__":
    main()
