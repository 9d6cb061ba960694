#!/usr/bin/env python3
"""Time to a converged map, Captum's side, against `pathscope bench --converged`'s report.

    python bench/captum_converged.py --shared ../shared --dir bench/out/converged \
        --pathscope-json bench/out/pathscope_converged.json --out bench/out/captum_converged.json

For each model and photo Pathscope wrote its normalised input and a Gauss–Legendre reference
map (`<dir>/<model>/<photo>.{input,reference}.npy`, zero baseline in normalised space, the
model's top-1 class). Captum runs IntegratedGradients with method="gausslegendre" at
n = 8, 16, 32, … and stops at the smallest n whose map is within 2 % relative L2 of the
reference and whose completeness error |Σ A − (f(x) − f(x′))| / |f(x) − f(x′)| is within
1 %; its time to a converged map is the time of that one run (an oracle that knew n: the
search itself is not charged). Pathscope's is its `--tolerance` run, checked against the same
two criteria. Prints per-model medians and the ratio Pathscope / Captum.
"""

import argparse
import json
import os
import statistics
import sys
import time

from captum_ig import load  # noqa: E402  (the same model builders as the IG bench)

import numpy as np
import torch
from captum.attr import IntegratedGradients


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--dir", default="bench/out/converged")
    ap.add_argument("--pathscope-json", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=1024)
    ap.add_argument("--out", default="captum-converged.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.pathscope_json) as f:
        ours = json.load(f)
    report = {"torch": torch.__version__, "captum": __import__("captum").__version__, "models": []}
    print("| model | photos | Captum GL n (median) | Captum s (median) | Pathscope points (median) "
          "| Pathscope s (median) | Pathscope / Captum (median of ratios) | Pathscope met criteria |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in ours:
        stem = os.path.splitext(os.path.basename(m["model"].split(" ")[0]))[0]
        model, label = load(stem, args.shared)
        ig = IntegratedGradients(model)
        rows = []
        for p in m["photos"]:
            x = torch.from_numpy(np.load(os.path.join(args.dir, stem, f"{p['photo']}.input.npy"))).unsqueeze(0)
            ref = np.load(os.path.join(args.dir, stem, f"{p['photo']}.reference.npy")).ravel().astype(np.float64)
            b = torch.zeros_like(x)
            with torch.no_grad():
                change = float(model(x)[0, p["target"]] - model(b)[0, p["target"]])
            n, found = 8, None
            while n <= args.max_steps:
                t = time.perf_counter()
                a, delta = ig.attribute(x, baselines=b, target=p["target"], n_steps=n, method="gausslegendre",
                                        internal_batch_size=args.batch_size, return_convergence_delta=True)
                secs = time.perf_counter() - t
                a = a.detach().numpy().ravel().astype(np.float64)
                map_err = np.linalg.norm(a - ref) / np.linalg.norm(ref)
                compl = abs(float(delta)) / max(abs(change), 1e-12)
                if map_err <= 0.02 and compl <= 0.01:
                    found = (n, secs, map_err, compl)
                    break
                n *= 2
            if found is None:
                print(f"{label} {p['photo']}: no n up to {args.max_steps} met the criteria", file=sys.stderr)
                continue
            rows.append({"photo": p["photo"], "n": found[0], "seconds": found[1], "map_error": found[2],
                         "completeness_error": found[3], "pathscope_seconds": p["seconds"],
                         "pathscope_points": p["gradient_points"], "pathscope_met": p["met"]})
            print(f"{label} {p['photo']}: Captum GL {found[0]} in {found[1]:.2f} s (map {100 * found[2]:.2f}%), "
                  f"Pathscope {p['gradient_points']} points in {p['seconds']:.2f} s", file=sys.stderr)
        report["models"].append({"model": stem, "architecture": label, "photos": rows})
        if rows:
            med = lambda k: statistics.median(r[k] for r in rows)
            ratio = statistics.median(r["pathscope_seconds"] / r["seconds"] for r in rows)
            met = sum(r["pathscope_met"] for r in rows)
            print(f"| {label} | {len(rows)} | {med('n'):.0f} | {med('seconds'):.2f} | {med('pathscope_points'):.0f} "
                  f"| {med('pathscope_seconds'):.2f} | {ratio:.2f} | {met}/{len(rows)} |")
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
