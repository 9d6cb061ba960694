//! Parity with PyTorch 2.15 / torchvision 0.29 / Captum 0.9 on the golden files in
//! `../shared/golden` (chelsea_cat.png, 32 interpolation steps).
//!
//! Tolerances (see ../shared/golden/README.md): logits from the golden input within 1e-4
//! absolute; logits from the PNG through our own preprocessing within 2e-2; the input
//! gradient and every IG rule within relative L2 1e-2 (ReLU kinks flip between f32
//! implementations, so element-wise 1e-6 is not meaningful).

#[macro_use]
mod common;

use candle_core::IndexOp;
use common::{load_golden, max_abs_diff, rel_l2, shared_dir, to_vec, Backend};
use pathscope::attribution::gradient::gradient;
use pathscope::attribution::{integrated_gradients, IgConfig, IntegrationRule, ModelOracle, Monitor, Objective};
use pathscope::model::preprocess::{load_rgb, resize_and_crop};
use pathscope::model::Architecture;

const MODELS: [(&str, &str, Architecture); 3] = [
    (
        "squeezenet1_1",
        "squeezenet1_1_imagenet.safetensors",
        Architecture::SqueezeNet1_1,
    ),
    (
        "efficientnet_lite0",
        "efficientnet_lite0_imagenet.safetensors",
        Architecture::EfficientNetLite0,
    ),
    (
        "resnet18_random",
        "resnet18_random_seed0.safetensors",
        Architecture::ResNet(18),
    ),
];

fn model_entry(golden: &str) -> (&'static str, &'static str, Architecture) {
    *MODELS.iter().find(|m| m.0 == golden).expect("known model")
}

/// Preprocessing, logits and the input gradient of one model.
fn check_forward_and_gradient(golden_name: &str, backend: Backend) {
    let Some(shared) = shared_dir(&format!("forward parity ({golden_name})")) else {
        return;
    };
    let (_, weights, arch) = model_entry(golden_name);
    let g = load_golden(&shared, golden_name);
    let model = backend.load(&shared.join("models").join(weights));
    let device = backend.device();
    assert_eq!(model.architecture(), arch);

    // Our PIL-exact resize + crop reproduces torchvision's bytes.
    let crop = resize_and_crop(&load_rgb(&shared.join("images/chelsea_cat.png")).unwrap());
    let golden_crop = g["resized_cropped_u8"].flatten_all().unwrap().to_vec1::<u8>().unwrap();
    let diffs = crop.as_raw().iter().zip(&golden_crop).filter(|(a, b)| a != b).count();
    let max = crop
        .as_raw()
        .iter()
        .zip(&golden_crop)
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(
        max <= 1 && diffs * 1000 <= golden_crop.len(),
        "crop differs: {diffs} bytes, max {max}"
    );

    // Logits from the golden input.
    let input = &g["input"].to_device(&device).unwrap();
    let logits = to_vec(&model.forward(input).unwrap());
    let golden_logits = to_vec(&g["logits"]);
    let d = max_abs_diff(&logits, &golden_logits);
    assert!(
        d < 1e-4,
        "{golden_name}: logits differ by {d} from PyTorch (tolerance 1e-4)"
    );

    // Logits through the whole pipeline from the PNG.
    let ours = model.normalization().image_to_tensor(&crop, &device).unwrap();
    let d_in = max_abs_diff(&to_vec(&ours), &to_vec(input));
    let d_png = max_abs_diff(&to_vec(&model.forward(&ours).unwrap()), &golden_logits);
    assert!(
        d_png < 2e-2,
        "{golden_name}: PNG pipeline logits differ by {d_png} (input differs by {d_in})"
    );

    // Input gradient of the target logit.
    let target = g["target"].to_vec1::<i64>().unwrap()[0] as usize;
    let oracle = ModelOracle::new(&model, Objective::Logit);
    let (score, grad) = gradient(&oracle, &input.i(0).unwrap(), target).unwrap();
    assert!((score - golden_logits[target]).abs() < 1e-4);
    let e = rel_l2(&to_vec(&grad), &to_vec(&g["grad"]));
    assert!(
        e < 1e-2,
        "{golden_name}: gradient relative L2 error {e} (tolerance 1e-2)"
    );
    eprintln!("{golden_name}: logits max |Δ| {d:.2e}, PNG pipeline {d_png:.2e}, crop bytes differing {diffs}, gradient rel L2 {e:.2e}");
}

/// Every Captum rule against the golden IG maps (black baseline; zero baseline for the two
/// rules Captum's golden set has).
fn check_integrated_gradients(golden_name: &str, backend: Backend) {
    let Some(shared) = shared_dir(&format!("IG parity ({golden_name})")) else {
        return;
    };
    let (_, weights, _) = model_entry(golden_name);
    let g = load_golden(&shared, golden_name);
    let model = backend.load(&shared.join("models").join(weights));
    let device = backend.device();
    let oracle = ModelOracle::new(&model, Objective::Logit);
    let input = g["input"].i(0).unwrap().to_device(&device).unwrap();
    let target = g["target"].to_vec1::<i64>().unwrap()[0] as usize;
    let black = g["baseline_black"].i(0).unwrap().to_device(&device).unwrap();
    let zero = input.zeros_like().unwrap();
    let mut cases: Vec<(&str, IntegrationRule, &candle_core::Tensor)> =
        IntegrationRule::ALL.iter().map(|&r| ("black", r, &black)).collect();
    cases.push(("zero", IntegrationRule::RiemannRight, &zero));
    cases.push(("zero", IntegrationRule::RiemannTrapezoid, &zero));
    if backend == Backend::CpuGeneric && golden_name != "squeezenet1_1" {
        // Candle's own ops are slow on the CPU (EfficientNet-Lite0 takes ~2 s a point):
        // every rule on SqueezeNet, and on the other two the rule whose first point is the
        // black baseline itself (where a max-pool's windows tie) and Gauss–Legendre.
        cases.retain(|(b, r, _)| {
            *b == "black" && matches!(r, IntegrationRule::RiemannLeft | IntegrationRule::GaussLegendre)
        });
    }
    for (bname, rule, baseline) in cases {
        let config = IgConfig {
            steps: 32,
            rule,
            // Candle's graph keeps every intermediate of a batch for its backward pass.
            batch_size: if backend.is_candle_graph() { 4 } else { 16 },
        };
        let r = integrated_gradients(&oracle, &input, baseline, target, &config, &mut Monitor::none()).unwrap();
        let key = format!("ig_{bname}_{}", rule.captum_name());
        let reference = to_vec(&g[&key]);
        let ours = to_vec(&r.attribution);
        let e = rel_l2(&ours, &reference);
        let ref_sum: f64 = reference.iter().map(|&v| v as f64).sum();
        let sum_err = (r.attribution_sum - ref_sum).abs() / ref_sum.abs().max(1e-6);
        eprintln!(
            "{golden_name} {key} ({}): rel L2 {e:.2e}, sum {:.4} vs Captum {ref_sum:.4}",
            backend.name(),
            r.attribution_sum
        );
        assert!(e < 1e-2, "{golden_name} {key}: relative L2 error {e} (tolerance 1e-2)");
        assert!(
            sum_err < 1e-2,
            "{golden_name} {key}: attribution sum {} vs {ref_sum}",
            r.attribution_sum
        );
    }
}

// One test per model and check, each run on every backend, with the same tolerances.
on_each_backend! {
    squeezenet_forward_and_gradient_match_pytorch => check_forward_and_gradient("squeezenet1_1");
    efficientnet_lite0_forward_and_gradient_match_pytorch => check_forward_and_gradient("efficientnet_lite0");
    resnet18_forward_and_gradient_match_pytorch => check_forward_and_gradient("resnet18_random");
    squeezenet_integrated_gradients_match_captum => check_integrated_gradients("squeezenet1_1");
    efficientnet_lite0_integrated_gradients_match_captum => check_integrated_gradients("efficientnet_lite0");
    resnet18_integrated_gradients_match_captum => check_integrated_gradients("resnet18_random");
}
