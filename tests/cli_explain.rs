//! `pathscope explain` end to end on the embedded model and a bundled photo: the files it
//! writes, and that they agree with each other and with the model.

use std::path::PathBuf;
use std::process::Command;

use pathscope::export::npy::parse_npy_f32;

fn run_explain(name: &str, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_explain")
        .join(name);
    let _ = std::fs::remove_dir_all(&out);
    let image = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/images/chelsea_cat.png");
    let status = Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args([
            "explain",
            "--image",
            image.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    (out, summary)
}

#[test]
fn integrated_gradients_writes_consistent_outputs() {
    let (out, summary) = run_explain("ig", &["--steps", "8", "--rule", "right", "--baseline", "black"]);
    // SqueezeNet-1.1 on the cat: top-1 "Egyptian cat" (ImageNet 285), as PyTorch gives.
    assert_eq!(summary["target"], 285);
    assert_eq!(summary["label"], "Egyptian cat");
    assert_eq!(summary["top5"].as_array().unwrap().len(), 5);
    assert_eq!(summary["top5"][0]["index"], 285);
    let logit = summary["top5"][0]["logit"].as_f64().unwrap();
    assert!((logit - 31.5078).abs() < 1e-3, "top-1 logit {logit}");

    let (values, shape) = parse_npy_f32(&std::fs::read(out.join("attribution.npy")).unwrap()).unwrap();
    assert_eq!(shape, vec![3, 224, 224]);
    let sum: f64 = values.iter().map(|&v| v as f64).sum();
    let reported = summary["attribution_sum"].as_f64().unwrap();
    assert!(
        (sum - reported).abs() < 1e-6 * sum.abs().max(1.0),
        "{sum} vs {reported}"
    );
    let delta = summary["convergence_delta"].as_f64().unwrap();
    let gap = summary["score_input"].as_f64().unwrap() - summary["score_baseline"].as_f64().unwrap();
    assert!((reported - gap - delta).abs() < 1e-4, "delta {delta} ≠ sum − gap");

    let heat = image::open(out.join("heatmap.png")).unwrap();
    assert_eq!((heat.width(), heat.height()), (224, 224));
}

#[test]
fn gradient_and_input_x_gradient_are_consistent() {
    let (g_out, g_sum) = run_explain("gradient", &["--method", "gradient"]);
    let (x_out, x_sum) = run_explain("ixg", &["--method", "input-x-gradient"]);
    assert!(g_sum["convergence_delta"].is_null());
    let (g, _) = parse_npy_f32(&std::fs::read(g_out.join("attribution.npy")).unwrap()).unwrap();
    let (ixg, _) = parse_npy_f32(&std::fs::read(x_out.join("attribution.npy")).unwrap()).unwrap();
    // input×gradient / gradient recovers the normalised input, which lies in ImageNet's
    // normalised range [−2.12, 2.64].
    let mut checked = 0;
    for (a, b) in ixg.iter().zip(&g) {
        if b.abs() > 1e-4 {
            let x = a / b;
            assert!((-2.2..=2.7).contains(&x), "{x}");
            checked += 1;
        }
    }
    assert!(checked > 1000);
    assert_eq!(x_sum["target"], 285);
}

#[test]
fn noise_baseline_is_deterministic_for_a_seed() {
    let (a, _) = run_explain("seed_a", &["--steps", "4", "--baseline", "uniform", "--seed", "3"]);
    let (b, _) = run_explain("seed_b", &["--steps", "4", "--baseline", "uniform", "--seed", "3"]);
    assert_eq!(
        std::fs::read(a.join("attribution.npy")).unwrap(),
        std::fs::read(b.join("attribution.npy")).unwrap()
    );
}

/// The determinism requirement: the same --seed gives bit-identical output, for
/// every stochastic method.
#[test]
fn every_stochastic_method_is_bit_identical_for_a_seed() {
    for (name, extra) in [
        ("smoothgrad", vec!["--method", "smoothgrad", "--samples", "3"]),
        ("vargrad", vec!["--method", "vargrad", "--samples", "3"]),
        (
            "ig-uniform",
            vec!["--method", "ig-uniform", "--references", "2", "--points", "2"],
        ),
        ("ig-sg", vec!["--method", "ig-sg", "--references", "2", "--points", "2"]),
        ("agi", vec!["--method", "agi", "--batch-size", "4"]),
    ] {
        let mut a_args = extra.clone();
        a_args.extend(["--seed", "11"]);
        let (a, _) = run_explain(&format!("det_{name}_a"), &a_args);
        let (b, _) = run_explain(&format!("det_{name}_b"), &a_args);
        let mut c_args = extra.clone();
        c_args.extend(["--seed", "12"]);
        let (c, _) = run_explain(&format!("det_{name}_c"), &c_args);
        let read = |d: &PathBuf| std::fs::read(d.join("attribution.npy")).unwrap();
        assert_eq!(read(&a), read(&b), "{name}: same seed, different output");
        assert_ne!(read(&a), read(&c), "{name}: the seed has no effect");
    }
}

/// Re-calibrated maps are non-negative; IDGI's sum equals f(x) − f(x′).
#[test]
fn compare_writes_every_variant() {
    let (out, _) = run_explain("compare", &["--compare", "--steps", "8", "--rule", "right"]);
    for v in ["vanilla", "absolute", "recalibrated", "idgi"] {
        assert!(out.join(v).join("heatmap.png").is_file(), "missing {v}");
    }
    let (recal, _) = parse_npy_f32(&std::fs::read(out.join("recalibrated/attribution.npy")).unwrap()).unwrap();
    assert!(recal.iter().all(|&v| v >= 0.0), "re-calibrated maps are non-negative");
    let idgi: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("idgi/summary.json")).unwrap()).unwrap();
    let delta = idgi["convergence_delta"].as_f64().unwrap();
    assert!(delta.abs() < 1e-4 * idgi["attribution_sum"].as_f64().unwrap().abs());
    let png = image::open(out.join("compare.png")).unwrap();
    assert_eq!(png.width(), 4 * 224 + 3 * 8);
    let legend: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(legend["panels"].as_array().unwrap().len(), 4);
}
