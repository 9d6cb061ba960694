//! Properties of the path methods on the real models (../shared/models): IDGI is
//! complete step by step, so Σ A = f(x) − f(x′) up to float error, for every path.

mod common;

use candle_core::Device;
use common::shared_dir;
use pathscope::attribution::method::{explain, MethodSpec, PathKind, RunOptions};
use pathscope::attribution::path::Integration;
use pathscope::attribution::{Baseline, IntegrationRule, ModelOracle, Monitor, Objective};
use pathscope::model::preprocess::{load_rgb, resize_and_crop};
use pathscope::model::Classifier;

const MODELS: [&str; 2] = [
    "squeezenet1_1_imagenet.safetensors",
    "efficientnet_lite0_imagenet.safetensors",
];

fn idgi_completeness(path: PathKind, steps: usize) {
    let Some(shared) = shared_dir(&format!("IDGI completeness on the {path} path")) else {
        return;
    };
    for weights in MODELS {
        let model = Classifier::load(&shared.join("models").join(weights), &Device::Cpu).unwrap();
        let crop = resize_and_crop(&load_rgb(&shared.join("images/chelsea_cat.png")).unwrap());
        let input = model
            .normalization()
            .image_to_tensor(&crop, &Device::Cpu)
            .unwrap()
            .squeeze(0)
            .unwrap();
        for objective in [Objective::Logit, Objective::Probability] {
            let oracle = ModelOracle::new(&model, objective);
            let spec = MethodSpec::PathIntegral {
                path,
                integration: Integration::Idgi,
                baseline: Baseline::Black,
                steps,
                rule: IntegrationRule::RiemannRight,
                tolerance: None,
            };
            let e = explain(
                &oracle,
                &input,
                &model.normalization(),
                285,
                &spec,
                &RunOptions::default(),
                &mut Monitor::none(),
            )
            .unwrap();
            let gap = e.score_input as f64 - e.score_baseline.unwrap() as f64;
            let rel = e.convergence_delta.unwrap().abs() / gap.abs();
            eprintln!(
                "{weights} {path} {objective:?}: Σ A = {:.6}, f(x) − f(x′) = {gap:.6}, relative error {rel:.2e}",
                e.attribution_sum
            );
            assert!(
                rel < 1e-4,
                "{weights} {path} {objective:?}: IDGI completeness error {rel} (tolerance 1e-4)"
            );
        }
    }
}

#[test]
fn idgi_is_complete_on_the_straight_path() {
    idgi_completeness(PathKind::Straight, 16);
}

#[test]
fn idgi_is_complete_on_the_guided_path() {
    idgi_completeness(PathKind::Guided, 12);
}

#[test]
fn idgi_is_complete_on_the_blur_path() {
    idgi_completeness(PathKind::Blur, 12);
}
