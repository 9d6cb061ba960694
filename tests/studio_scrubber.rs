//! The Interpolation scrubber tab driven through egui_kittest with the real default model
//! (SqueezeNet) and engine: stepping by buttons, arrow keys, Home/End and clicks in the
//! plots; the completeness gap printed as a number that matches the trace; the three plots
//! on one x-axis (the current step's line at the same screen x, checked in the rendered
//! pixels); honest messages when there is no trace; and a window of 800×500.
#![cfg(feature = "studio")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use eframe::egui;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use pathscope::attribution::catalog::{Family, Variant};
use pathscope::attribution::method::Explanation;
use pathscope::ui::scrubber::{NO_PATH, NO_TRACE};
use pathscope::ui::state::Tab;
use pathscope::ui::{PathscopeApp, StudioOptions};

use common::studio::{harness, wait_for};

const STEPS: usize = 8;

/// Loads the default model, runs IG with 8 steps and 2 references (what a user would set
/// in the panel), and opens the scrubber tab. `click_run`: press the Run button (false:
/// start the run as the button does, for a window whose left panel has it below the fold).
fn run_and_open_scrubber(h: &mut Harness<'static, PathscopeApp>, click_run: bool) {
    wait_for(h, "the model", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
    h.state_mut().state.settings.steps = STEPS;
    h.state_mut().state.settings.references = 2;
    h.run_steps(2);
    if click_run {
        h.get_by_label("Run").click();
    } else {
        h.state_mut().start_run();
    }
    h.step();
    wait_for(h, "the maps", Duration::from_secs(180), |a| {
        !a.running() && a.state.results.contains_key(&Variant::Vanilla)
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    h.get_by_label("Interpolation scrubber").click();
    h.run_steps(3);
    assert_eq!(h.state().state.tab, Tab::Scrubber);
}

fn vanilla(h: &Harness<'static, PathscopeApp>) -> Arc<Explanation> {
    h.state().state.results[&Variant::Vanilla].clone()
}

fn step_label(h: &Harness<'static, PathscopeApp>, k: usize) {
    h.get_by_label_contains(&format!("step {k} / {STEPS} "));
}

/// The numbers after each "= " of the completeness line: Σ so far, f(x) − f(x'), gap.
fn completeness_numbers(h: &Harness<'static, PathscopeApp>) -> (String, Vec<f64>) {
    // AccessKit keeps a label's text in its value.
    let node = h.get_by_label_contains("completeness:").accesskit_node();
    let text = node
        .value()
        .or_else(|| node.label())
        .expect("the completeness line has text");
    let numbers = text
        .split("= ")
        .skip(1)
        .map(|part| {
            let token: String = part.chars().take_while(|c| !matches!(c, ',' | ' ' | ';')).collect();
            token
                .replace('−', "-")
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("{token:?} in {text:?}: {e}"))
        })
        .collect();
    (text, numbers)
}

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + abs
}

#[test]
fn scrubber_steps_seeks_and_prints_the_completeness_gap() {
    let mut h = harness(StudioOptions::default());
    run_and_open_scrubber(&mut h, true);
    let result = vanilla(&h);
    let trace = result.trace.as_ref().expect("the vanilla panel records its path");
    assert_eq!(trace.steps.len(), STEPS);
    assert_eq!(trace.stride(), 1, "a small path keeps every step");
    let alphas: Vec<f64> = trace.steps.iter().map(|s| s.alpha).collect();
    step_label(&h, 1);

    // The buttons.
    h.get_by_label("next ›").click();
    h.run_steps(2);
    assert_eq!(h.state().scrubber.step, 1);
    step_label(&h, 2);
    h.get_by_label("next ›").click();
    h.run_steps(2);
    h.get_by_label("‹ previous").click();
    h.run_steps(2);
    assert_eq!(h.state().scrubber.step, 1);
    step_label(&h, 2);

    // The keys.
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    assert_eq!(h.state().scrubber.step, 3);
    step_label(&h, 4);
    h.key_press(egui::Key::ArrowLeft);
    h.run_steps(2);
    assert_eq!(h.state().scrubber.step, 2);
    h.key_press(egui::Key::End);
    h.run_steps(2);
    assert_eq!(h.state().scrubber.step, STEPS - 1);
    step_label(&h, STEPS);
    h.key_press(egui::Key::Home);
    h.run_steps(2);
    assert_eq!(h.state().scrubber.step, 0);

    // The completeness gap at step 4, from the trace's own running sums.
    h.state_mut().scrubber.step = 3;
    h.run_steps(2);
    let (text, n) = completeness_numbers(&h);
    assert!(text.starts_with("completeness: Σ attribution so far = "), "{text}");
    assert_eq!(n.len(), 3, "{text}");
    let sum_so_far = trace.cumulative_totals()[3];
    let difference = result.score_input as f64 - result.score_baseline.expect("a path has a start") as f64;
    assert!(close(n[0], sum_so_far, 1e-3, 5e-5), "{text}: Σ so far {sum_so_far}");
    assert!(close(n[1], difference, 1e-3, 5e-5), "{text}: f(x) − f(x') {difference}");
    assert!(close(n[2], sum_so_far - difference, 1e-3, 1e-4), "{text}");
    // At the last step: the final map's sum, and the gap is the convergence delta.
    h.state_mut().scrubber.step = STEPS - 1;
    h.run_steps(2);
    let (text, n) = completeness_numbers(&h);
    assert!(
        text.starts_with("completeness: Σ attribution of the final map = "),
        "{text}"
    );
    assert!(close(n[0], result.attribution_sum, 1e-3, 5e-5), "{text}");
    let delta = result.convergence_delta.expect("a path has a convergence delta");
    assert!(close(n[2], delta, 1e-3, 1e-4), "{text}: delta {delta}");

    // One x-axis: the current step's α is at the same screen x in all three plots.
    let s = &h.state().scrubber;
    let frames: Vec<egui::Rect> = (0..3).map(|i| s.plot_frame(i).expect("three plots")).collect();
    for f in &frames[1..] {
        assert!((f.left() - frames[0].left()).abs() < 0.5, "{frames:?}");
        assert!((f.right() - frames[0].right()).abs() < 0.5, "{frames:?}");
    }
    for a in [0.0, 0.5, 1.0, alphas[STEPS - 1]] {
        let xs: Vec<f32> = (0..3).map(|i| s.screen_x(i, a).unwrap()).collect();
        assert!(xs.iter().all(|x| (x - xs[0]).abs() < 0.5), "α = {a}: {xs:?}");
    }

    // Click-to-seek: a click at step 6's α in the completeness plot, then at step 3's in
    // the score plot.
    for (plot, target) in [(2, 5), (0, 2)] {
        let s = &h.state().scrubber;
        let pos = egui::pos2(
            s.screen_x(plot, alphas[target]).unwrap(),
            s.plot_frame(plot).unwrap().center().y,
        );
        h.drag_at(pos);
        h.step();
        h.drop_at(pos);
        h.run_steps(3);
        assert_eq!(h.state().scrubber.step, target, "click in plot {plot}");
        step_label(&h, target + 1);
    }

    // Legends are rows of words above the plots (one "current step" per plot).
    assert_eq!(h.get_all_by_label("current step").count(), 3);
    h.get_by_label("Σ attribution so far");
    h.get_by_label("f(x) − f(x')");

    // The rendered cursor: red at the same column in each plot.
    let image = h.render().expect("rendered");
    let ppp = h.ctx.pixels_per_point();
    let s = &h.state().scrubber;
    for i in 0..3 {
        let x = s.screen_x(i, alphas[2]).unwrap();
        let f = s.plot_frame(i).unwrap();
        let red_rows = (f.top() as i32 + 4..f.bottom() as i32 - 4)
            .filter(|&y| {
                ((x * ppp) as i32 - 1..=(x * ppp) as i32 + 1).any(|px| {
                    let p = image.get_pixel(px as u32, (y as f32 * ppp) as u32);
                    p[0] > 150 && p[1] < 110 && p[2] < 110
                })
            })
            .count();
        let rows = (f.height() - 8.0) as usize;
        assert!(
            red_rows * 2 > rows,
            "plot {i}: the current step's red line at x = {x} covers {red_rows} of {rows} rows"
        );
    }
    h.snapshot("scrubber_wide");

    // A restored session has maps but no trace: say so, not "no path".
    let mut without = (*result).clone();
    without.trace = None;
    h.state_mut().state.results.insert(Variant::Vanilla, Arc::new(without));
    h.run_steps(2);
    h.get_by_label(NO_TRACE);
    assert!(h.query_by_label(NO_PATH).is_none());

    // The gradient has no path at all.
    h.state_mut().state.settings.method = Family::Gradient;
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.step();
    wait_for(&mut h, "the gradient", Duration::from_secs(60), |a| {
        !a.running()
            && a.state
                .results
                .get(&Variant::Vanilla)
                .is_some_and(|r| r.convergence_delta.is_none())
    });
    h.run_steps(2);
    h.get_by_label(NO_PATH);
    assert!(h.query_by_label(NO_TRACE).is_none());
}

/// At 800×500 the controls wrap instead of running off the window: the next button is
/// inside it and works.
#[test]
fn scrubber_holds_at_800_by_500() {
    let mut h = Harness::builder()
        .with_size([800.0, 500.0])
        .wgpu()
        .build_eframe(|cc| PathscopeApp::new(cc, StudioOptions::default()));
    run_and_open_scrubber(&mut h, false);
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(800.0, 500.0));
    for label in ["next ›", "‹ previous"] {
        let rect = h.get_by_label(label).rect();
        assert!(window.contains_rect(rect), "{label} at {rect:?} is outside the window");
    }
    let frame = h.state().scrubber.plot_frame(0).expect("the first plot is drawn");
    assert!(frame.right() <= 800.0, "the plots fit the width: {frame:?}");
    h.get_by_label("next ›").click();
    h.run_steps(2);
    assert_eq!(h.state().scrubber.step, 1);
    step_label(&h, 2);
    h.get_by_label_contains("completeness:");
    h.remove_cursor();
    h.run_steps(2);
    h.snapshot("scrubber_narrow");
}
