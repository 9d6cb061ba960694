#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into fuzz/seeds/<target>/ (committed; rerun
only to change it). Needs Pillow, numpy, torch and safetensors (bench/.venv has them) and
a release build of pathscope for the figure seeds, which are cut down to a few KB so the
fuzzer spends its time on the structure, not on kilobytes of image data."""
import io, os, re, subprocess, sys
import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
seeds = os.path.join(here, "seeds")

def out(target, name, data):
    os.makedirs(os.path.join(seeds, target), exist_ok=True)
    with open(os.path.join(seeds, target, name), "wb") as f:
        f.write(data)

# Images: every format the decoder accepts, several colour types, one EXIF-rotated JPEG.
rng = np.random.default_rng(0)
rgb = Image.fromarray(rng.integers(0, 255, (6, 5, 3), dtype=np.uint8))
for fmt, mode, ext in [("PNG", "RGB", "png"), ("PNG", "L", "gray.png"), ("PNG", "RGBA", "rgba.png"),
                       ("PNG", "I;16", "16bit.png"), ("PNG", "P", "palette.png"), ("JPEG", "RGB", "jpg"),
                       ("JPEG", "L", "gray.jpg"), ("JPEG", "CMYK", "cmyk.jpg"), ("BMP", "RGB", "bmp"),
                       ("TIFF", "RGB", "tif"), ("WEBP", "RGB", "webp")]:
    buf = io.BytesIO()
    rgb.convert(mode).save(buf, fmt)
    out("image_decode", ext, buf.getvalue())
exif = Image.Exif()
exif[0x0112] = 6
buf = io.BytesIO()
rgb.save(buf, "JPEG", exif=exif.tobytes())
out("image_decode", "exif-rotated.jpg", buf.getvalue())

# Checkpoints: a tiny SqueezeNet-looking state dict (names right, shapes small) in both formats.
import torch
from safetensors.torch import save as st_save
state = {"features.0.weight": torch.randn(4, 3, 3, 3), "features.0.bias": torch.randn(4),
         "features.3.squeeze.weight": torch.randn(2, 4, 1, 1), "classifier.1.weight": torch.randn(5, 4, 1, 1)}
out("safetensors_model", "tiny.safetensors", st_save(state))
out("safetensors_model", "empty.safetensors", st_save({}))
buf = io.BytesIO()
torch.save(state, buf)
out("pth_model", "tiny.pth", buf.getvalue())
buf = io.BytesIO()
torch.save({"state_dict": state}, buf)
out("pth_model", "nested.pth", buf.getvalue())

# .npy arrays.
for name, arr in [("f32.npy", np.arange(12, dtype="<f4").reshape(3, 4)), ("f64.npy", np.zeros(2)),
                  ("fortran.npy", np.asfortranarray(np.ones((2, 3), dtype="<f4")))]:
    buf = io.BytesIO()
    np.save(buf, arr)
    out("npy", name, buf.getvalue())

# Figures, exported by pathscope, then cut down.
binary = os.path.join(here, "..", "target", "release", "pathscope")
tmp = os.path.join(here, "..", "target", "fuzz-seed-figures")
os.makedirs(tmp, exist_ok=True)
for fmt in ["png", "svg", "pdf"]:
    path = os.path.join(tmp, f"tiny.{fmt}")
    subprocess.run([binary, "figure", "--images", os.path.join(here, "..", "assets/images/chelsea_cat.png"),
                    "--methods", "gradient", "--modes", "absolute", "--layout", "1x1", "--format", fmt,
                    "--width", "30", "--dpi", "30", "--colorbar", "none", "--out", path], check=True)
    data = open(path, "rb").read()
    if fmt == "svg":
        data = re.sub(rb"base64,[A-Za-z0-9+/=]+", b"base64,AAAA", data)
    if fmt == "pdf":  # the header and the info dictionary at the end
        data = data[:16] + data[-3000:]
    out("figure_metadata", f"tiny.{fmt}", data)

# ONNX graphs: the two PyTorch exports of the tests' tiny CNN (tests/data/make_tiny_onnx.py).
for name in ["tiny_cnn_torchscript.onnx", "tiny_cnn_dynamo.onnx"]:
    with open(os.path.join(here, "..", "tests", "data", name), "rb") as f:
        out("onnx_model", name, f.read())

# Sessions: a small .pathscope file (safetensors with the session header), as the studio
# writes them: a 2×2 crop, one map, settings JSON.
import json as _json, struct as _struct
def _session(maps, version="1"):
    tensors = {"image": ("U8", [2, 2, 3], bytes(range(12)))}
    for name, shape in maps:
        n = 1
        for d in shape:
            n *= d
        tensors["map/" + name] = ("F32", shape, _struct.pack("<%df" % n, *[i * 0.5 - 1 for i in range(n)]))
    header, offset, data = {}, 0, b""
    for name, (dtype, shape, raw) in sorted(tensors.items()):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    header["__metadata__"] = {"pathscope.session": version, "model": "", "image.name": "cat.png",
                              "state": _json.dumps({"target": 281, "settings": {"steps": 8}})}
    h = _json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return _struct.pack("<Q", len(h)) + h + data
out("session", "small.pathscope", _session([("result/Vanilla", [3, 2, 2]), ("pinned/0/Idgi", [4])]))
out("session", "newer.pathscope", _session([], version="3"))
