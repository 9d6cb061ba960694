#!/usr/bin/env python3
"""Pathscope's IG on ONNX exports of twelve torchvision families, against Captum on the
PyTorch model itself: accuracy (relative L2) and IG wall time, one model at a time.

    bench/.venv/bin/python bench/onnx_zoo.py [--models resnet50,vgg16] [--exporters legacy,dynamo,statedict]
        [--threads 2] [--steps 50] [--out bench/out/onnx_zoo]

(`statedict` saves the state dict as safetensors instead of an ONNX export: what
Pathscope recognises by torchvision's tensor names.)

(`bash bench/onnx_zoo.sh ARGS` builds Pathscope, makes the venv and passes ARGS here.)

For each model (torchvision constructor, `weights=None`, `torch.manual_seed(0)`, eval mode):

1. Export to OUT/NAME_legacy.onnx (`torch.onnx.export(..., dynamo=False, opset_version=17)`)
   and OUT/NAME_dynamo.onnx (`dynamo=True`, weights in NAME_dynamo.onnx.data beside it),
   skipped when the file is already there. Each export is checked against the PyTorch
   model with onnxruntime (max |logit difference| in the JSON), so a bad export is not
   mistaken for a Pathscope error.
2. Preprocess the photo as torchvision does on PIL images (Pillow's antialiased resampler):
   Resize(shorter side), CenterCrop, ToTensor, Normalize. With --preprocess preset (the
   default) these are the model's DEFAULT weight transform, e.g. resnet50: resize 232
   bilinear, swin_t: 232 bicubic, which is what Pathscope applies by itself to a file named
   after a torchvision model (NAME_*.onnx); with --preprocess imagenet, resize 256 bilinear,
   crop 224 for every model, and Pathscope is told so with --resize/--interpolation/--crop/
   --mean/--std. Pathscope's summary.json says which preprocessing it used; a row where it
   differs from the PyTorch side's fails.
3. Captum IntegratedGradients on the PyTorch model: target = its top-1 class, `n_steps`
   = --steps, `method` = the Captum name of --rule, the baseline of --baseline built the way
   Pathscope builds it (black: the black photo normalised, (0 - mean)/std per channel;
   zero: all zeros in normalised space), `internal_batch_size` = --captum-batch (25 by
   default: 50 steps in two passes). `torch.set_num_threads(--threads)`. Wall time of
   `attribute` after one warm-up forward, best of --repeats.
4. `RAYON_NUM_THREADS=--threads pathscope explain --model OUT/NAME_EXPORTER.onnx --image
   PHOTO --method ig --steps N --baseline B --rule R --target top1 --out TMP`: wall time of
   the whole command (process start, ONNX load, preprocessing, IG, writing its files), as a
   user would see it, best of --repeats. Pathscope prints no separate load time, so a
   command with `--method gradient` (load + one forward/backward) runs just before it, timed
   apart (JSON: pathscope_gradient_command_seconds), to show roughly how much of the IG
   command is fixed overhead; it also puts the binary and the model in the page cache, so
   that the exporter timed first is not the one that pays for a cold cache.
5. Relative L2 ||pathscope - captum|| / ||captum|| of the [3, 224, 224] attributions, and
   whether both explained the same class. A row over --tolerance gets Captum again in
   float64 (untimed), to tell Pathscope's error from the float32 reference's own.

--bn-stats calibrated replaces BatchNorm's running statistics (0 / 1 from the constructor)
by those of one train-mode pass over the photos in --images, weights untouched: with the
constructor's statistics some families' activations shrink through the depth (MobileNetV2's
logits are ~1e-9).

Captum and Pathscope run one after the other, never at once. The table goes to stdout and
OUT/onnx_zoo.md, everything to OUT/onnx_zoo.json, the attributions to OUT/*.npy.
"""

import argparse
import copy
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

try:
    import torch
    import torchvision
    from captum.attr import IntegratedGradients
    from PIL import Image
    from torchvision import transforms
except ImportError as e:
    print(f"onnx_zoo: {e}; install torch torchvision captum onnx onnxscript onnxruntime "
          "(bench/onnx_zoo.sh does it in bench/.venv)", file=sys.stderr)
    sys.exit(3)

ALL_MODELS = ["resnet50", "vgg16", "densenet121", "mobilenet_v2", "mobilenet_v3_large",
              "efficientnet_b0", "convnext_tiny", "vit_b_16", "regnet_y_400mf",
              "shufflenet_v2_x1_0", "googlenet", "swin_t"]
# Constructor arguments beyond weights=None: GoogLeNet's auxiliary heads are training-only
# (and warn without init_weights when no weights are given).
# transform_input as torchvision sets it for its published weights (and as Pathscope assumes
# for GoogLeNet and Inception-v3 state dicts).
EXTRA_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": True, "transform_input": True},
                "inception_v3": {"aux_logits": False, "init_weights": True, "transform_input": True}}
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# Pathscope's --rule names → Captum's `method`.
RULES = {"left": "riemann_left", "right": "riemann_right", "middle": "riemann_middle",
         "trapezoid": "riemann_trapezoid", "gauss-legendre": "gausslegendre"}
PREFERRED_IMAGES = ["chelsea_cat.png", "coffee.png", "astronaut.png"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build_model(name, calibration=None):
    """The constructor's random weights, eval mode. With a `calibration` batch, BatchNorm's
    running statistics (mean 0, variance 1 at construction) are replaced by those of that
    batch (one train-mode pass, no gradients), so activations stay O(1) through the depth;
    the weights are untouched."""
    torch.manual_seed(0)
    if name.startswith("timm/"):  # timm's own modules (its GELU, LayerNorm2d, attention)
        import timm
        model = timm.create_model(name[len("timm/"):], pretrained=False).eval()
    else:
        ctor = getattr(torchvision.models, name)
        model = ctor(weights=None, **EXTRA_KWARGS.get(name, {})).eval()
    # torchvision's ViT starts with a zero head (all logits 0, nothing to explain): give
    # any all-zero final layer small random weights instead.
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and not m.weight.detach().any():
            torch.nn.init.normal_(m.weight, std=0.02)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if calibration is not None and bns:
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: exactly the batch's statistics
        torch.manual_seed(0)  # stochastic depth draws in train mode
        model.train()
        with torch.no_grad():
            model(calibration)
        model.eval()
        for bn, m in zip(bns, momenta):
            bn.momentum = m
    return model


def export(model, x, path, exporter, reference):
    if exporter == "statedict":
        # The state dict Pathscope recognises by torchvision's tensor names (issue 20).
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, path)
        return
    if os.path.exists(path):
        diff = ort_check(path, x, reference)
        scale = float(np.abs(reference).max())
        if diff is None or diff <= 1e-3 * scale:
            log(f"  {os.path.basename(path)}: exists, not exported again")
            return
        log(f"  {os.path.basename(path)}: exists but its logits are {diff:.1e} off PyTorch's; exporting again")
        for p in (path, path + ".data"):
            if os.path.exists(p):
                os.remove(p)
    t = time.perf_counter()
    try:
        if exporter == "legacy":
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["logits"])
        else:
            torch.onnx.export(model, (x,), path, dynamo=True, input_names=["input"],
                              output_names=["logits"], external_data=True)
    except BaseException:
        for p in (path, path + ".data"):  # never leave a half-written export to be reused
            if os.path.exists(p):
                os.remove(p)
        raise
    log(f"  {os.path.basename(path)}: exported in {time.perf_counter() - t:.1f} s")


def ort_check(path, x, reference):
    """Max |logit difference| between onnxruntime on the export and PyTorch."""
    try:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        return float(np.abs(out - reference).max())
    except Exception as e:  # onnxruntime missing or refusing the graph: not our verdict
        log(f"  onnxruntime check of {os.path.basename(path)} failed: {e}")
        return None


def pick_image(images_dir):
    for name in PREFERRED_IMAGES:
        p = os.path.join(images_dir, name)
        if os.path.exists(p):
            return p
    files = sorted(f for f in os.listdir(images_dir) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    if not files:
        sys.exit(f"onnx_zoo: no image in {images_dir}")
    return os.path.join(images_dir, files[0])


class Prep:
    """Resize (shorter side) → centre crop → ToTensor → Normalize, on PIL images (Pillow's
    antialiased resampler), as torchvision's eval transforms and Pathscope do."""

    explicit = False  # passed to Pathscope as flags even in `preset` mode

    def __init__(self, resize, crop, interpolation, mean, std):
        self.resize, self.crop, self.interpolation = resize, crop, interpolation
        self.mean, self.std = list(mean), list(std)
        mode = {"bilinear": transforms.InterpolationMode.BILINEAR,
                "bicubic": transforms.InterpolationMode.BICUBIC}[interpolation]
        self.tf = transforms.Compose([transforms.Resize(resize, interpolation=mode), transforms.CenterCrop(crop),
                                      transforms.ToTensor(), transforms.Normalize(self.mean, self.std)])

    @classmethod
    def for_model(cls, name, kind):
        """`imagenet`: Resize(256) bilinear, CenterCrop(224), ImageNet mean/std. `preset`: the
        model's DEFAULT weight transform (torchvision's `get_model_weights(name).DEFAULT
        .transforms()`), which Pathscope applies by itself to a file named after the model."""
        if kind == "imagenet":
            return cls(256, 224, "bilinear", MEAN, STD)
        if name.startswith("timm/"):
            # timm's eval transform: Resize(floor(size / crop_pct)), CenterCrop(size); told
            # to Pathscope by flags (no preset names a timm model).
            import math
            import timm
            cfg = timm.models.get_pretrained_cfg(name[len("timm/"):]).to_dict()
            size = cfg["input_size"][-1]
            prep = cls(math.floor(size / cfg["crop_pct"]), size, cfg["interpolation"], cfg["mean"], cfg["std"])
            prep.explicit = True
            return prep
        t = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        return cls(t.resize_size[0], t.crop_size[0], t.interpolation.value, t.mean, t.std)

    def __call__(self, path):
        return self.tf(Image.open(path).convert("RGB")).unsqueeze(0)

    def describe(self):
        return f"resize {self.resize} {self.interpolation}, crop {self.crop}×{self.crop}"

    def pathscope_flags(self):
        return ["--resize", str(self.resize), "--interpolation", self.interpolation, "--crop", str(self.crop),
                "--mean", ",".join(map(str, self.mean)), "--std", ",".join(map(str, self.std))]

    def matches(self, described):
        """Whether Pathscope's summary `preprocessing` ("resize 232 bilinear, crop 224×224,
        mean 0.485 0.456 0.406, std 0.229 0.224 0.225, rgb") is this one."""
        m = re.match(r"resize (\d+) (\w+), crop (\d+)×(\d+), mean ([\d. ]+), std ([\d. ]+), rgb$", described or "")
        if not m:
            return False
        mean = [float(v) for v in m.group(5).split()]
        std = [float(v) for v in m.group(6).split()]
        return (int(m.group(1)) == self.resize and m.group(2) == self.interpolation
                and int(m.group(3)) == int(m.group(4)) == self.crop
                and np.allclose(mean, self.mean, atol=1e-6) and np.allclose(std, self.std, atol=1e-6))


def calibration_batch(images_dir, prep):
    files = sorted(f for f in os.listdir(images_dir) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    return torch.cat([prep(os.path.join(images_dir, f)) for f in files])


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def baseline_tensor(kind, x, prep):
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "black":
        mean = torch.tensor(prep.mean).view(1, 3, 1, 1)
        std = torch.tensor(prep.std).view(1, 3, 1, 1)
        return ((torch.zeros_like(x) - mean) / std).contiguous()
    raise ValueError(kind)


def captum_ig(model, x, baseline, target, args):
    ig = IntegratedGradients(model)
    with torch.no_grad():
        model(x)  # warm-up
    if x.dtype == torch.float64:  # the exact-arithmetic reference: untimed, one run
        attr = ig.attribute(x, baselines=baseline, target=target, n_steps=args.steps,
                            method=RULES[args.rule], internal_batch_size=args.captum_batch)
        return attr.detach()[0].numpy(), None
    best, attr = None, None
    for _ in range(args.repeats):
        t = time.perf_counter()
        attr = ig.attribute(x, baselines=baseline, target=target, n_steps=args.steps,
                            method=RULES[args.rule], internal_batch_size=args.captum_batch)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return attr.detach()[0].numpy().astype(np.float32), best


def run_pathscope(args, model_path, image, method, out_dir, prep):
    cmd = [args.pathscope, "explain", "--model", model_path, "--image", image,
           "--method", method, "--target", "top1", "--out", out_dir]
    if args.preprocess == "imagenet" or prep.explicit:
        cmd += prep.pathscope_flags()
    if method == "ig":
        cmd += ["--steps", str(args.steps), "--baseline", args.baseline, "--rule", args.rule]
        if args.pathscope_batch:
            cmd += ["--batch-size", str(args.pathscope_batch)]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    best, proc = None, None
    for _ in range(args.repeats if method == "ig" else 1):
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t
        if proc.returncode != 0:
            return {"cmd": cmd, "error": (proc.stderr or proc.stdout).strip()[-4000:],
                    "rc": proc.returncode}
        best = dt if best is None else min(best, dt)
    with open(os.path.join(out_dir, "summary.json")) as f:
        summary = json.load(f)
    return {"cmd": cmd, "seconds": best, "summary": summary,
            "attribution": np.load(os.path.join(out_dir, "attribution.npy")),
            "stdout": proc.stdout.strip()}


def run_model(name, args, image, exporters, stem_tag):
    """Exports, Captum, then Pathscope per exporter: one row per exporter."""
    rows = []
    log(f"{name}:")
    prep = Prep.for_model(name, args.preprocess)
    x = prep(image)
    baseline = baseline_tensor(args.baseline, x, prep)
    calibration = calibration_batch(args.images, prep) if args.bn_stats == "calibrated" else None
    model = build_model(name, calibration)
    del calibration
    with torch.no_grad():
        logits = model(x)
    target = int(logits.argmax())
    ref_logits = logits.numpy()
    paths = {}
    export_errors = {}
    for e in exporters:
        ext = "safetensors" if e == "statedict" else "onnx"
        p = os.path.join(args.out, f"{name.replace('/', '_')}{stem_tag}_{e}.{ext}")
        try:
            export(model, x, p, e, ref_logits)
            paths[e] = p
        except Exception as err:
            export_errors[e] = f"{type(err).__name__}: {err}"
            log(f"  {e} export failed: {export_errors[e]}")
            traceback.print_exc()

    ig_attr, captum_s = captum_ig(model, x, baseline, target, args)
    np.save(os.path.join(args.out, f"{name.replace('/', '_')}{stem_tag}_captum.npy"), ig_attr)
    captum_sum = float(ig_attr.astype(np.float64).sum())
    log(f"  Captum IG-{args.steps}: {captum_s:.2f} s, target {target} (logit {ref_logits[0, target]:.4g}, "
        f"runner-up {np.sort(ref_logits[0])[-2]:.4g}), sum {captum_sum:.4g}")
    ig64 = None

    for e in exporters:
        row = {"model": name, "exporter": e, "bn_stats": args.bn_stats, "captum_seconds": captum_s,
               "captum_target": target, "torch_logit": float(ref_logits[0, target]),
               "torch_runner_up_logit": float(np.sort(ref_logits[0])[-2]), "captum_sum": captum_sum,
               "preprocessing": prep.describe()}
        if e in export_errors:
            row["error"] = f"export failed: {export_errors[e]}"
            rows.append(row)
            continue
        row["onnx"] = paths[e]
        row["ort_max_abs_logit_diff"] = ort_check(paths[e], x, ref_logits) if e != "statedict" else None
        tmp = tempfile.mkdtemp(prefix=f"pathscope_{name.replace('/', '_')}_{e}_")
        try:
            if not args.no_overhead:  # first, so that it also warms the page cache for the timed run
                g = run_pathscope(args, paths[e], image, "gradient", tmp, prep)
                row["pathscope_gradient_command_seconds"] = g.get("seconds")
                shutil.rmtree(tmp, ignore_errors=True)
                os.makedirs(tmp)
            ps = run_pathscope(args, paths[e], image, "ig", tmp, prep)
            row["pathscope_command"] = " ".join(ps["cmd"])
            if "error" in ps:
                row["error"] = f"pathscope exited {ps['rc']}: {ps['error']}"
                log(f"  {e}: {row['error']}")
                rows.append(row)
                continue
            a = ps["attribution"].reshape(ig_attr.shape)
            s = ps["summary"]
            row.update({
                "pathscope_seconds": ps["seconds"],
                "pathscope_reported_seconds": s.get("seconds"),
                "pathscope_target": s["target"],
                "pathscope_logit": s.get("score_input"),
                "pathscope_sum": s.get("attribution_sum"),
                "rel_l2": rel_l2(a, ig_attr),
                "pathscope_stdout": ps["stdout"],
                "same_target": s["target"] == target,
                "pathscope_preprocessing": s.get("preprocessing"),
                "pathscope_preprocessing_source": s.get("preprocessing_source"),
                "same_preprocessing": prep.matches(s.get("preprocessing")),
                "ratio_captum_over_pathscope": captum_s / ps["seconds"],
            })
            np.save(os.path.join(args.out, f"{name.replace('/', '_')}{stem_tag}_{e}_pathscope.npy"), ps["attribution"])
            if row["rel_l2"] > args.tolerance and not args.no_f64_check:
                if ig64 is None:
                    log("  over tolerance: Captum again in float64 (untimed)")
                    model64 = copy.deepcopy(model).double()
                    ig64, _ = captum_ig(model64, x.double(), baseline.double(), target, args)
                    del model64
                row["captum_f32_vs_f64_rel_l2"] = rel_l2(ig_attr, ig64)
                row["pathscope_vs_f64_rel_l2"] = rel_l2(a, ig64)
                log(f"  float64 Captum: Captum float32 is {row['captum_f32_vs_f64_rel_l2']:.1e} off it, "
                    f"Pathscope {row['pathscope_vs_f64_rel_l2']:.1e}")
            row["ok"] = row["same_target"] and row["same_preprocessing"] and row["rel_l2"] <= args.tolerance
            if not row["same_preprocessing"]:
                log(f"  {e}: PREPROCESSING DIFFERS: Pathscope {s.get('preprocessing')!r} "
                    f"({s.get('preprocessing_source')}), PyTorch side {prep.describe()}")
            log(f"  {e}: rel L2 {row['rel_l2']:.2e}, Pathscope {ps['seconds']:.2f} s "
                f"(load + 1 gradient {fmt(row.get('pathscope_gradient_command_seconds'), '.2f')} s), "
                f"target {s['target']}{'' if row['same_target'] else ' (MISMATCH)'}, "
                f"logit {s.get('score_input'):.6g} vs {row['torch_logit']:.6g}, "
                f"sum {s.get('attribution_sum'):.6g} vs {captum_sum:.6g}, "
                f"ort Δlogit {fmt(row['ort_max_abs_logit_diff'], '.1e')}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append(row)
    del model
    return rows


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(ALL_MODELS), help="comma-separated torchvision names")
    ap.add_argument("--exporters", default="legacy,dynamo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--out", default="bench/out/onnx_zoo")
    ap.add_argument("--image", help="the photo (default: chelsea_cat.png from --images)")
    ap.add_argument("--images", default="../shared/images")
    ap.add_argument("--baseline", choices=["black", "zero"], default="black",
                    help="black (Pathscope's default) or zero in normalised space (Captum's)")
    ap.add_argument("--rule", choices=list(RULES), default="gauss-legendre",
                    help="quadrature, Pathscope's name (gauss-legendre = both tools' default)")
    ap.add_argument("--captum-batch", type=int, default=25, help="Captum's internal_batch_size")
    ap.add_argument("--pathscope-batch", type=int, help="pathscope --batch-size (default: its own, 16)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per side; the best is kept")
    ap.add_argument("--no-overhead", action="store_true",
                    help="skip the `--method gradient` command that estimates Pathscope's load time")
    ap.add_argument("--preprocess", choices=["preset", "imagenet"], default="preset",
                    help="preset: each model's torchvision DEFAULT weight transform (e.g. resnet50: resize 232), "
                         "which Pathscope picks by itself from a file named after the model; imagenet: resize 256 "
                         "bilinear / crop 224 for all, passed to Pathscope as --resize/--interpolation/--crop/--mean/--std")
    ap.add_argument("--bn-stats", choices=["init", "calibrated"], default="init",
                    help="BatchNorm running statistics: init (the constructor's mean 0 / variance 1) or "
                         "calibrated (one train-mode pass over every photo in --images; weights unchanged). "
                         "Exports of calibrated models are named NAME_bncal_EXPORTER.onnx")
    ap.add_argument("--no-f64-check", action="store_true",
                    help="when a row misses --tolerance, do not rerun Captum in float64 to tell Pathscope's "
                         "error from the float32 reference's own")
    ap.add_argument("--tolerance", type=float, default=1e-2)
    ap.add_argument("--pathscope", default="target/release/pathscope")
    args = ap.parse_args()

    models = [m for m in args.models.split(",") if m]
    exporters = [e for e in args.exporters.split(",") if e]
    for m in models:
        if not m.startswith("timm/") and not hasattr(torchvision.models, m):
            sys.exit(f"onnx_zoo: torchvision has no model `{m}`")
    for e in exporters:
        if e not in ("legacy", "dynamo", "statedict"):
            sys.exit(f"onnx_zoo: unknown exporter `{e}` (legacy, dynamo, statedict)")
    if not os.access(args.pathscope, os.X_OK):
        sys.exit(f"onnx_zoo: {args.pathscope} is not an executable (cargo build --release)")
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    image = args.image or pick_image(args.images)
    stem_tag = "_bncal" if args.bn_stats == "calibrated" else ""
    report = {
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "captum": __import__("captum").__version__, "threads": args.threads,
        "cpu": platform.processor() or platform.machine(), "image": image, "steps": args.steps,
        "baseline": args.baseline, "rule": args.rule, "captum_method": RULES[args.rule],
        "captum_internal_batch_size": args.captum_batch,
        "pathscope_batch_size": args.pathscope_batch or 16, "tolerance": args.tolerance,
        "bn_stats": args.bn_stats, "preprocess": args.preprocess, "rows": [],
    }
    log(f"image {image}; IG {args.steps} steps, {args.rule} ({RULES[args.rule]}), {args.baseline} baseline, "
        f"{args.threads} threads, Captum internal_batch_size {args.captum_batch}")

    for name in models:
        try:
            report["rows"] += run_model(name, args, image, exporters, stem_tag)
        except Exception as err:  # one model's failure does not stop the others
            traceback.print_exc()
            report["rows"] += [{"model": name, "exporter": e, "captum_seconds": None,
                                "error": f"{type(err).__name__}: {err}"} for e in exporters]
        with open(os.path.join(args.out, "onnx_zoo.json"), "w") as f:  # kept up to date
            json.dump(report, f, indent=2)

    lines = [
        f"IG-{args.steps}, {args.rule} / Captum `{RULES[args.rule]}`, {args.baseline} baseline, "
        f"{args.threads} threads, {os.path.basename(image)} ({args.preprocess} preprocessing), "
        f"BatchNorm statistics {args.bn_stats}; PyTorch {report['torch']}, torchvision "
        f"{report['torchvision']}, Captum {report['captum']} (internal_batch_size {args.captum_batch}). "
        f"Pathscope: wall time of the whole `pathscope explain` command (load included); "
        f"Captum: `attribute` only, after a warm-up forward.",
        "",
        "| model | exporter | rel L2 vs Captum | Pathscope IG-%d s | Captum IG-%d s | ratio (Captum/Pathscope) |"
        % (args.steps, args.steps),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['exporter']} | FAILED | - | {fmt(r['captum_seconds'], '.2f')} | - |")
            continue
        flag = "" if r["rel_l2"] <= args.tolerance else " ✗"
        if not r["same_preprocessing"]:
            flag += f" (preprocessing {r['pathscope_preprocessing']!r} vs {r['preprocessing']!r})"
        if not r["same_target"]:
            flag += f" (target {r['pathscope_target']} vs {r['captum_target']})"
        lines.append(f"| {r['model']} | {r['exporter']} | {r['rel_l2']:.1e}{flag} | {r['pathscope_seconds']:.2f} "
                     f"| {r['captum_seconds']:.2f} | {r['ratio_captum_over_pathscope']:.2f} |")
    failures = [r for r in report["rows"] if "error" in r]
    for r in report["rows"]:
        if "captum_f32_vs_f64_rel_l2" in r:
            lines.append("")
            lines.append(f"{r['model']} / {r['exporter']}: over tolerance. Against Captum in float64, Captum's float32 "
                         f"attribution is {r['captum_f32_vs_f64_rel_l2']:.1e} off, Pathscope's "
                         f"{r['pathscope_vs_f64_rel_l2']:.1e}; target logit: Pathscope {r['pathscope_logit']:.6g}, "
                         f"PyTorch {r['torch_logit']:.6g}.")
    for r in failures:
        lines.append("")
        lines.append(f"{r['model']} / {r['exporter']}: {r['error']}")
        if "pathscope_command" in r:
            lines.append(f"  command: {r['pathscope_command']}")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(args.out, "onnx_zoo.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "onnx_zoo.json"), "w") as f:
        json.dump(report, f, indent=2)
    bad = [r for r in report["rows"] if not r.get("ok")]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
