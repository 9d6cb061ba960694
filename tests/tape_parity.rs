//! The CPU tape (fused activations, input-gradient-only reverse pass) against candle's
//! autograd over the same network description, on all three architectures: logits and
//! input gradients of the logit, probability and log-probability objectives, on a photo
//! crop and on a constant image (ties in every max-pool window, units on ReLU kinks).

mod common;

use candle_core::{Device, Tensor, Var};
use pathscope::attribution::Objective;
use pathscope::model::Classifier;

use common::{max_abs_diff, rel_l2, shared_dir, to_vec};

/// Relative L2 tolerance: both sides are f32 with different summation orders (GEMM
/// blocking, f64 pooling sums), measured ≤ 1e-6 on these inputs.
const TOLERANCE: f64 = 1e-4;

fn inputs(model: &Classifier) -> Tensor {
    let sample = &pathscope::assets::SAMPLE_IMAGES[0];
    let photo = pathscope::model::preprocess::decode_rgb(std::path::Path::new(sample.name), sample.bytes).unwrap();
    let crop = pathscope::model::preprocess::resize_and_crop(&photo);
    let x = model.normalization().image_to_tensor(&crop, &Device::Cpu).unwrap();
    let constant = x.zeros_like().unwrap();
    let half = (&x * 0.5).unwrap();
    Tensor::cat(&[x, constant, half], 0).unwrap()
}

fn check(model: &Classifier, name: &str) {
    // Any element the tape reads before writing it comes out NaN and fails the comparison.
    pathscope::kernels::buffers::poison_taken_buffers();
    let x = inputs(model);
    let fast = to_vec(&model.forward(&x).unwrap());
    let reference = to_vec(&model.forward_autograd(&x).unwrap());
    let e = rel_l2(&fast, &reference);
    assert!(e < TOLERANCE, "{name}: logits differ, rel L2 {e:.2e}");
    let classes = model.num_classes();
    // The reference's top class of the photo.
    let target = reference[..classes]
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap();
    for objective in [Objective::Logit, Objective::Probability, Objective::LogProbability] {
        let mut scores = Vec::new();
        let (_, g) = model
            .logits_and_input_gradient(&x, |z| {
                let (s, seed) = objective.scores_and_seed(z, classes, target);
                scores = s;
                seed
            })
            .unwrap();
        let var = Var::from_tensor(&x).unwrap();
        let f = objective
            .select(&model.forward_autograd(var.as_tensor()).unwrap(), target)
            .unwrap();
        let grads = f.sum_all().unwrap().backward().unwrap();
        let g_ref = to_vec(grads.get(var.as_tensor()).unwrap());
        let g_fast = to_vec(&g);
        let per = g_ref.len() / 3;
        for (i, label) in ["photo", "constant", "half"].iter().enumerate() {
            let (a, b) = (&g_fast[i * per..(i + 1) * per], &g_ref[i * per..(i + 1) * per]);
            if b.iter().all(|v| *v == 0.0) {
                // No gradient reaches the input (every unit below its kink): both must agree.
                assert!(
                    max_abs_diff(a, b) < 1e-12,
                    "{name} {objective:?} {label}: reference is zero, tape is not"
                );
                continue;
            }
            let e = rel_l2(a, b);
            assert!(
                e < TOLERANCE,
                "{name} {objective:?} {label}: gradients differ, rel L2 {e:.2e}, max abs {}",
                max_abs_diff(a, b)
            );
        }
        let f_ref = to_vec(&f);
        let e = rel_l2(&scores, &f_ref);
        assert!(e < TOLERANCE, "{name} {objective:?}: scores differ, rel L2 {e:.2e}");
    }
}

#[test]
fn tape_matches_candle_autograd_on_squeezenet() {
    let model = pathscope::assets::default_classifier(&Device::Cpu).unwrap();
    check(&model, "SqueezeNet-1.1");
}

#[test]
fn tape_matches_candle_autograd_on_efficientnet_and_resnet() {
    let Some(shared) = shared_dir("tape_matches_candle_autograd_on_efficientnet_and_resnet") else {
        return;
    };
    for file in ["efficientnet_lite0_imagenet", "resnet18_random_seed0"] {
        let model = Classifier::load(&shared.join(format!("models/{file}.safetensors")), &Device::Cpu).unwrap();
        check(&model, file);
    }
}

/// A straight-line batch summed through the first convolution
/// (`logits_and_line_gradient_sum`) against the weighted sum of per-point gradients of the
/// same points. The first layer's outputs are rounded differently (u₀ + α·(u₁ − u₀)
/// rather than conv(x′ + α·Δ)), and these networks' gradients move by up to 1.1e-3 (rel
/// L2, EfficientNet-Lite0) when every seventh input value moves by one ulp: units on
/// ReLU kinks and near-ties in max-pool windows switch. Measured here: up to 2.7e-3, so
/// the bound is 1e-2; a wrong α, mask or weight is off by O(1). Exact equality is checked
/// on an integer network in `net::tape`'s tests.
const LINE_TOLERANCE: f64 = 1e-2;

fn check_line_sum(model: &Classifier, name: &str) {
    pathscope::kernels::buffers::poison_taken_buffers();
    let photo = inputs(model).narrow(0, 0, 1).unwrap().squeeze(0).unwrap();
    let start = (&photo * 0.25).unwrap();
    let alphas = [0.1, 0.35, 0.5, 0.8, 1.0];
    let weights = [0.2, -0.5, 1.0, 0.3, 0.7];
    let classes = model.num_classes();
    let seed = |z: &[f32]| Objective::Probability.scores_and_seed(z, classes, 281).1;
    let points = pathscope::net::line::line_points(&start, &photo, &alphas).unwrap();
    let (logits, g) = model.logits_and_input_gradient(&points, seed).unwrap();
    let g = to_vec(&g);
    let per = g.len() / alphas.len();
    let mut expected = vec![0f64; per];
    for (gk, w) in g.chunks(per).zip(weights) {
        expected.iter_mut().zip(gk).for_each(|(e, &v)| *e += w * v as f64);
    }
    let (line_logits, sum) = model
        .logits_and_line_gradient_sum(&start, &photo, &alphas, &weights, seed)
        .unwrap();
    let e = rel_l2(&line_logits, &logits);
    assert!(e < 1e-5, "{name}: logits on the line differ, rel L2 {e:.2e}");
    let (sum, expected): (Vec<f32>, Vec<f32>) = sum.iter().zip(&expected).map(|(&a, &b)| (a as f32, b as f32)).unzip();
    let e = rel_l2(&sum, &expected);
    eprintln!("{name}: line gradient sum against per-point gradients, rel L2 {e:.2e}");
    assert!(e < LINE_TOLERANCE, "{name}: line gradient sum differs, rel L2 {e:.2e}");

    // The same line's per-point gradients (the studio's step-by-step route) round the first
    // layer the same way, so their weighted sum matches the line sum to summation order.
    let (step_logits, g) = model.logits_and_line_gradients(&start, &photo, &alphas, seed).unwrap();
    assert_eq!(step_logits, line_logits, "{name}: the line's logits, step by step");
    let g = to_vec(&g);
    let mut stepwise = vec![0f64; per];
    for (gk, w) in g.chunks(per).zip(weights) {
        stepwise.iter_mut().zip(gk).for_each(|(e, &v)| *e += w * v as f64);
    }
    let stepwise: Vec<f32> = stepwise.iter().map(|&v| v as f32).collect();
    let e = rel_l2(&sum, &stepwise);
    eprintln!("{name}: line gradient sum against the line's per-point gradients, rel L2 {e:.2e}");
    assert!(
        e < 1e-5,
        "{name}: line sum and step-by-step line gradients differ, rel L2 {e:.2e}"
    );
}

#[test]
fn line_gradient_sum_matches_the_weighted_per_point_gradients() {
    let model = pathscope::assets::default_classifier(&Device::Cpu).unwrap();
    check_line_sum(&model, "SqueezeNet-1.1");
    let Some(shared) = shared_dir("line_gradient_sum_matches_the_weighted_per_point_gradients") else {
        return;
    };
    for file in ["efficientnet_lite0_imagenet", "resnet18_random_seed0"] {
        let model = Classifier::load(&shared.join(format!("models/{file}.safetensors")), &Device::Cpu).unwrap();
        check_line_sum(&model, file);
    }
}
