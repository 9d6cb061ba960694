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


if __name__ == "__main__":
    main()
