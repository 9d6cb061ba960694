//! The studio driven through egui_kittest with the real app state and engine: the
//! default model and sample load, Run computes every panel, display settings change
//! without recomputing, the scrubber steps through the path. Snapshots of the comparison
//! grid and the scrubber are rendered with wgpu (Mesa lavapipe in CI).
#![cfg(feature = "studio")]

mod common;

use std::time::Duration;

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use pathscope::attribution::catalog::Variant;
use pathscope::ui::state::Tab;
use pathscope::ui::StudioOptions;

use common::studio::{harness, wait_for};

#[test]
fn run_compare_and_scrub() {
    let mut h = harness(StudioOptions::default());
    wait_for(&mut h, "the model", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
    assert_eq!(h.state().target_label().as_deref(), Some("Egyptian cat"));
    assert!(
        h.state().gpu_rendering(),
        "heatmaps must be drawn by the WGSL shader under wgpu"
    );
    h.get_by_label("explaining: Egyptian cat");
    h.get_by_label("SqueezeNet-1.1 on CPU");

    // Small settings keep the test quick; they are what a user would set in the panel.
    h.state_mut().state.settings.steps = 8;
    h.state_mut().state.settings.references = 2;
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.step();
    assert!(h.state().running(), "Run started the jobs");
    wait_for(&mut h, "the maps", Duration::from_secs(180), |a| {
        !a.running() && !a.runtime.run.jobs.is_empty()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    assert_eq!(h.state().progress(), 1.0);
    for v in [Variant::Vanilla, Variant::Recalibrated, Variant::Idgi] {
        assert!(h.state().state.results.contains_key(&v), "{v:?} missing");
    }
    // The bar itself draws "100%"; its text is not an accessible label, so the state is checked above.
    h.get_by_label_contains("done: 4 maps");

    // A display change recolours the panels without a new job.
    let jobs_before = h.state().runtime.run.jobs.clone();
    h.get_by_label("shared colour scale").click();
    h.step();
    assert!(
        h.state().state.view.shared_scale,
        "per-panel ranges by default; the click shares one"
    );
    assert_eq!(h.state().runtime.run.jobs, jobs_before, "no recomputation");
    h.get_by_label("shared colour scale").click();
    h.run_steps(3);
    h.snapshot("comparison_grid");

    // The scrubber: move to the 4th of 8 interpolation points.
    h.get_by_label("Interpolation scrubber").click();
    h.step();
    assert_eq!(h.state().state.tab, Tab::Scrubber);
    h.state_mut().scrubber.step = 3;
    h.run_steps(3);
    h.get_by_label_contains("step 4 / 8");
    h.snapshot("scrubber");
}

/// Any method as rows: a gradient map pinned, then VarGrad computed below it; changing
/// the colour scale and the range rule starts no job.
#[test]
fn pinned_rows_compare_methods() {
    use pathscope::attribution::catalog::Family;
    let mut h = harness(StudioOptions::default());
    wait_for(&mut h, "the model", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
    h.state_mut().state.settings.method = Family::Gradient;
    // Lay the changed panel out before clicking: kittest clicks where a widget was drawn.
    h.run_steps(2);
    h.get_by_label("Run").click();
    wait_for(&mut h, "the gradient", Duration::from_secs(60), |a| {
        !a.running() && !a.state.results.is_empty()
    });
    h.get_by_label("Pin as a row").click();
    h.step();
    assert_eq!(h.state().state.pinned.len(), 1);
    assert_eq!(h.state().state.pinned[0].label, "Gradient");

    h.state_mut().state.settings.method = Family::VarGrad;
    h.state_mut().state.settings.samples = 3;
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.step();
    wait_for(&mut h, "VarGrad", Duration::from_secs(60), |a| {
        !a.running() && a.state.results.contains_key(&Variant::Vanilla)
    });
    h.get_by_label("pinned 0: Gradient");
    h.get_by_label_contains("Maps: VarGrad of gradient, 3 samples");

    let jobs = h.state().runtime.run.jobs.clone();
    h.state_mut().state.view.sequential = pathscope::render::colormap::Colormap::Viridis;
    h.state_mut().state.view.clip = pathscope::attribution::display::ClipRule::MaxAbs;
    h.run_steps(2);
    assert_eq!(h.state().runtime.run.jobs, jobs, "display settings never recompute");
    // Any subset of panels: switch the absolute panel off.
    h.get(
        egui_kittest::kittest::by()
            .label("absolute")
            .role(egui::accesskit::Role::CheckBox),
    )
    .click();
    h.run_steps(2);
    assert!(h.state().state.hidden.contains(&Variant::Absolute));
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
}

/// A broken model file is reported in the window's error panel; the window keeps
/// working and the default model can be loaded again.
#[test]
fn a_bad_model_file_is_an_error_in_the_window_not_a_crash() {
    let mut h = harness(StudioOptions::default());
    wait_for(&mut h, "the model", Duration::from_secs(60), |a| a.model_ready());
    let bad = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("studio_broken.safetensors");
    std::fs::write(&bad, b"\x08\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    h.state_mut().open_model(Some(bad));
    wait_for(&mut h, "the error", Duration::from_secs(30), |a| {
        !a.runtime.errors.is_empty()
    });
    let message = h.state().runtime.errors.last().cloned().unwrap();
    assert!(message.contains("studio_broken.safetensors"), "{message}");
    h.get_by_label("no model");
    h.get_by_label(message.as_str());
    h.get_by_label("Default model").click();
    wait_for(&mut h, "the default model again", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
}

/// The Metrics tab: a gradient map is scored in the background, the legend names each
/// map and the table carries its AUCs, hovering the plot shows the perturbed image, and a
/// snapshot is taken.
#[test]
fn metrics_view_scores_the_maps() {
    use pathscope::attribution::catalog::Family;
    let mut h = harness(StudioOptions::default());
    wait_for(&mut h, "the model", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
    h.state_mut().state.settings.method = Family::Gradient;
    h.run_steps(2);
    h.get_by_label("Run").click();
    wait_for(&mut h, "the gradient", Duration::from_secs(60), |a| {
        !a.running() && !a.state.results.is_empty()
    });
    h.get_by_label("Metrics").click();
    h.run_steps(2);
    assert_eq!(h.state().state.tab, Tab::Metrics);
    // The gradient run has two panels: the signed map and its magnitude.
    let sources: Vec<String> = h.state().metric_sources().into_iter().map(|(l, _)| l).collect();
    assert_eq!(sources, ["Gradient", "|Gradient|"]);
    // 8 rows of pixels per step keeps the test quick (29 images per curve).
    h.state_mut().metrics.pixels_per_step = 224 * 8;
    h.run_steps(2);
    h.get_by_label("Score").click();
    h.step();
    assert!(h.state().metrics.running(), "Score queued the metrics jobs");
    wait_for(&mut h, "the curves", Duration::from_secs(120), |a| {
        !a.metrics.running() && !a.metrics.entries.is_empty()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    assert_eq!(h.state().metrics.progress(), 1.0);
    for e in &h.state().metrics.entries {
        let c = e.curves.as_ref().unwrap_or_else(|| panic!("{} not scored", e.label));
        for auc in [c.insertion.auc, c.deletion.auc] {
            assert!((0.0..=1.0).contains(&auc), "{}: AUC {auc}", e.label);
        }
        assert_eq!(c.insertion.scores.len(), 29);
        let legend = h.get_by_label(pathscope::ui::metrics_view::CURVES_LEGEND);
        legend.get_by_label(e.label.as_str());
        for auc in [c.insertion.auc, c.deletion.auc] {
            let text = format!("{auc:.3}");
            assert!(
                h.query_all_by_label(text.as_str()).next().is_some(),
                "AUC {text} in the table"
            );
        }
    }
    h.get_by_label("2 / 2 maps scored");

    // Hover a fifth of the way along the plot: a point is picked and its image shown.
    let rect = h.state().metrics.plot_rect.expect("the plot was drawn");
    h.hover_at(egui::pos2(rect.left() + rect.width() * 0.2, rect.center().y));
    h.run_steps(3);
    let point = h.state().metrics.selected.expect("hovering picks a curve point");
    assert!(point.step > 0 && point.step < 28, "{point:?}");
    h.get_by_label_contains("% of pixels");
    h.run_steps(2);
    h.snapshot("metrics_view");

    // Scoring again with the same settings reuses the curves: no job is queued.
    h.get_by_label("Score").click();
    h.step();
    assert!(!h.state().metrics.running(), "unchanged maps are not scored twice");
}

/// The sanity-check plot on made-up stages: one line per similarity measure, the x ticks
/// named by block.
#[test]
fn sanity_plot_draws_one_line_per_measure() {
    use pathscope::ui::metrics_view::{sanity_plot, SanityPoint};
    let blocks = ["original", "classifier", "fire9", "fire8", "fire7", "fire6"];
    let points: Vec<SanityPoint> = blocks
        .iter()
        .enumerate()
        .map(|(depth, label)| {
            let d = depth as f64;
            SanityPoint {
                label: label.to_string(),
                depth,
                spearman_abs: 1.0 / (1.0 + 0.6 * d),
                spearman_signed: 1.0 / (1.0 + 1.5 * d),
                ssim: 1.0 - 0.15 * d,
                hog: 1.0 / (1.0 + 0.3 * d * d),
            }
        })
        .collect();
    let mut h = Harness::builder().with_size([720.0, 320.0]).wgpu().build_ui(move |ui| {
        sanity_plot(ui, "sanity_test", &points, 280.0);
    });
    h.run_steps(2);
    for name in ["Spearman (abs)", "Spearman (signed)", "SSIM", "HOG"] {
        h.get_by_label(name);
    }
    h.snapshot("sanity_plot");
}

/// The sanity check from the Metrics tab: the gradient at 3 depths of the embedded
/// SqueezeNet (0, 5 and all 10 blocks randomised) runs in the background and fills the
/// plot; the trained stage is 1 by every measure and so is the edge control throughout.
#[test]
fn sanity_check_runs_from_the_metrics_tab() {
    use pathscope::attribution::catalog::Family;
    use pathscope::ui::metrics_view::EDGE_CONTROL_LEGEND;
    let mut h = harness(StudioOptions::default());
    wait_for(&mut h, "the model", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
    h.state_mut().state.settings.method = Family::Gradient;
    h.get_by_label("Metrics").click();
    h.run_steps(2);
    // SqueezeNet has 10 blocks: every block by default; untick it and ask for 3 depths.
    assert!(h.state().sanity_every_block());
    h.get_by_label("every block").click();
    h.run_steps(2);
    assert!(!h.state().sanity_every_block());
    h.state_mut().metrics.sanity_depth_count = 3;
    h.run_steps(2);
    h.get_by_label("Run sanity check").click();
    h.step();
    assert!(h.state().metrics.sanity_running(), "the sanity job was queued");
    wait_for(&mut h, "the sanity stages", Duration::from_secs(120), |a| {
        !a.metrics.sanity_running()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    let m = &h.state().metrics;
    assert_eq!(m.sanity_progress(), (3, 3));
    let depths: Vec<(usize, &str)> = m.sanity.iter().map(|p| (p.depth, p.label.as_str())).collect();
    assert_eq!(depths, [(0, "original"), (5, "features.9"), (10, "features.0")]);
    let first = &m.sanity[0];
    for v in [first.spearman_abs, first.spearman_signed, first.ssim, first.hog] {
        assert!((v - 1.0).abs() < 1e-9, "{first:?}");
    }
    assert_eq!(m.sanity_control.len(), 3);
    for p in &m.sanity_control {
        for v in [p.spearman_abs, p.spearman_signed, p.ssim, p.hog] {
            assert!((v - 1.0).abs() < 1e-9, "the edge control ignores the model: {p:?}");
        }
    }
    assert!(m.sanity[2].spearman_abs < 0.5, "{:?}", m.sanity[2]);
    h.get_by_label("3 / 3 stages");
    h.get_by_label(EDGE_CONTROL_LEGEND);
    h.get_by_label_contains("Gradient, explaining Egyptian cat");
    h.run_steps(2);
    h.snapshot("sanity_view");
}

/// `pathscope gui --device cpu:generic`: the model runs on candle's graph and the top bar
/// says so.
#[test]
fn the_top_bar_names_the_device_generic_path() {
    let mut h = harness(StudioOptions {
        compute: pathscope::device::Compute {
            device: candle_core::Device::Cpu,
            generic: true,
        },
        ..StudioOptions::default()
    });
    wait_for(&mut h, "the model", Duration::from_secs(60), |a| a.model_ready());
    h.get_by_label("SqueezeNet-1.1 on CPU (device-generic path)");
    let engine = h.state().runtime.engine().expect("a loaded model");
    assert!(engine.model().is_generic());
}
