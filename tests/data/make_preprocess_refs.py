"""References for tests/model_conventions.rs: torchvision's preprocessing of the bundled
cat photo (PIL images, so Pillow's resampler) and the weight transforms behind the
presets of src/model/conventions.rs.

Run with the bench venv (torch, torchvision, Pillow):
    bench/.venv/bin/python tests/data/make_preprocess_refs.py
Writes tests/data/preprocess/*.png and tests/data/preprocess/presets.json.
"""
import json
import os

import torchvision
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode as I

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "preprocess")

# (file, resize, crop, interpolation, grey): the crop torchvision makes of the photo.
CASES = [
    ("bicubic_80_crop_64x72.png", 80, (64, 72), I.BICUBIC, False),
    ("bilinear_exact_50x90_crop_48.png", (50, 90), (48, 48), I.BILINEAR, False),
    ("bicubic_up_520_crop_24x40.png", 520, (24, 40), I.BICUBIC, False),
    ("grey_bilinear_40_crop_32.png", 40, (32, 32), I.BILINEAR, True),
]

# The presets: every model whose DEFAULT weights Pathscope names.
PRESETS = [
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_l", "efficientnet_v2_m", "efficientnet_v2_s",
    "googlenet", "inception_v3", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
    "regnet_x_400mf", "regnet_y_400mf", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50",
    "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1", "swin_b", "swin_s", "swin_t",
    "vgg16", "vgg16_bn", "vgg19", "vit_b_16", "vit_b_32", "vit_l_16", "wide_resnet50_2",
]


def main():
    os.makedirs(OUT, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "assets/images/chelsea_cat.png")).convert("RGB")
    for name, resize, crop, interpolation, grey in CASES:
        steps = [T.Resize(resize, interpolation=interpolation), T.CenterCrop(crop)]
        if grey:
            steps.append(T.Grayscale(num_output_channels=3))
        T.Compose(steps)(photo).save(os.path.join(OUT, name))
    presets = {}
    for name in PRESETS:
        t = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        presets[name] = {
            "resize": t.resize_size[0],
            "crop": t.crop_size[0],
            "interpolation": t.interpolation.value,
            "mean": list(t.mean),
            "std": list(t.std),
        }
    with open(os.path.join(OUT, "presets.json"), "w") as f:
        json.dump({"torchvision": torchvision.__version__, "presets": presets}, f, indent=1)
    print(f"wrote {len(CASES)} crops and {len(presets)} presets into {OUT}")


if __name__ == "__main__":
    main()
