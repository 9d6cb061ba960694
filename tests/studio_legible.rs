//! Issue 21, the comparison as a researcher meets it: every panel of the first run shows
//! its map (coloured pixels, each panel its own range and colour bar), progress runs
//! forward over the whole run and cancel keeps what finished, titles describe the maps
//! shown (not the controls), options read as words, Expected Gradients and AGI run from
//! the studio, and the grid holds from 800×500 to 2560×1440.
#![cfg(feature = "studio")]

mod common;

use std::time::Duration;

use eframe::egui;
use egui_kittest::kittest::{by, NodeT, Queryable};
use egui_kittest::Harness;
use pathscope::attribution::catalog::{Family, Variant};
use pathscope::attribution::method::PathKind;
use pathscope::ui::{PathscopeApp, StudioOptions};

use common::studio::{sized, wait_for};

fn ready(h: &mut Harness<'static, PathscopeApp>) {
    wait_for(h, "the model", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
}

/// Small settings keep the tests quick; they are what a user would set in the panel.
fn run_small(h: &mut Harness<'static, PathscopeApp>) {
    h.state_mut().state.settings.steps = 8;
    h.state_mut().state.settings.references = 2;
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.step();
    wait_for(h, "the maps", Duration::from_secs(180), |a| {
        !a.running() && !a.runtime.run.jobs.is_empty()
    });
}

/// Share of pixels inside `rect` (points; the harness renders at 1 pixel per point)
/// whose colour is clearly not grey: what makes a heatmap visible over the grey photo.
fn coloured_share(img: &image::RgbaImage, rect: egui::Rect) -> f64 {
    let (mut coloured, mut all) = (0usize, 0usize);
    for y in rect.min.y.ceil() as u32..rect.max.y.floor() as u32 {
        for x in rect.min.x.ceil() as u32..rect.max.x.floor() as u32 {
            if x >= img.width() || y >= img.height() {
                continue;
            }
            let [r, g, b, _] = img.get_pixel(x, y).0;
            let spread = r.max(g).max(b) - r.min(g).min(b);
            all += 1;
            coloured += (spread > 40) as usize;
        }
    }
    coloured as f64 / all.max(1) as f64
}

/// What a node says: a label's text is its AccessKit value, a control's its label.
fn text_of(node: &egui_kittest::Node<'_>) -> String {
    let n = node.accesskit_node();
    n.value().or_else(|| n.label()).unwrap_or_default()
}

/// Whether some node says exactly `text` (as its label or its value).
fn shows(h: &Harness<'static, PathscopeApp>, text: &str) -> bool {
    h.query_all(by().predicate(move |n| n.value().as_deref() == Some(text) || n.label().as_deref() == Some(text)))
        .next()
        .is_some()
}

/// The map of each panel: the square above its colour bar.
fn panel_rects(h: &Harness<'static, PathscopeApp>) -> Vec<(String, egui::Rect)> {
    h.query_all_by_label_contains("colour scale ")
        .map(|bar| {
            let r = bar.rect();
            let map = egui::Rect::from_min_max(egui::pos2(r.min.x, r.min.y - r.width()), egui::pos2(r.max.x, r.min.y));
            (text_of(&bar), map)
        })
        .collect()
}

#[test]
fn every_panel_of_the_first_run_shows_its_map_with_a_colour_bar() {
    let mut h = sized(1280.0, 800.0);
    ready(&mut h);
    run_small(&mut h);
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    h.run_steps(3);
    let panels = panel_rects(&h);
    assert_eq!(
        panels.len(),
        4,
        "a colour bar under each of the four panels: {panels:?}"
    );
    // Own ranges by default: the labels say so, with the numbers.
    for (label, _) in &panels {
        assert!(label.contains("(own range)"), "{label}");
    }
    let img = h.render().expect("render");
    // Measured at 8 steps: vanilla ~20 %, absolute and re-calibrated ~35 %, IDGI ~9 %
    // (its mass sits on few pixels); under the old shared default IDGI had < 1 %.
    for (label, rect) in &panels {
        let share = coloured_share(&img, *rect);
        eprintln!("{label}: {:.1} % coloured", 100.0 * share);
        assert!(
            share > 0.05,
            "{label}: only {:.1} % of the panel shows map colour",
            100.0 * share
        );
    }
    h.snapshot("first_run_1280x800");

    // Under the shared scale a panel far fainter than the shared clip says so.
    h.get_by_label("shared colour scale").click();
    h.run_steps(3);
    let app = h.state();
    let ranges: Vec<(Variant, f32)> = [Variant::Vanilla, Variant::Recalibrated, Variant::Idgi]
        .into_iter()
        .map(|v| (v, app.state.view.range_of(&app.map_of(v).unwrap())))
        .collect();
    let shared = ranges.iter().map(|r| r.1).fold(0f32, f32::max);
    let faint = ranges.iter().filter(|(_, r)| *r < 0.1 * shared).count();
    assert_eq!(
        h.query_all_by_label_contains("faint under the shared scale").count(),
        faint,
        "ranges {ranges:?}"
    );
    for (label, _) in panel_rects(&h) {
        assert!(label.contains("(shared range)"), "{label}");
    }
    // What the old default looked like: the faint panels are nearly grey.
    let img = h.render().expect("render");
    for (label, rect) in panel_rects(&h) {
        eprintln!("shared: {label}: {:.1} % coloured", 100.0 * coloured_share(&img, rect));
    }
}

#[test]
fn progress_runs_forward_and_cancel_keeps_the_finished_maps() {
    let mut h = sized(1280.0, 800.0);
    ready(&mut h);
    h.state_mut().state.settings.steps = 300;
    // The re-calibrated panel (60 references × 5 points) is still running when the vanilla
    // and IDGI panels (one walk) have finished.
    h.state_mut().state.settings.references = 60;
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.step();
    let mut seen = vec![h.state().progress()];
    // Until the first map has finished and the next is under way.
    wait_for(&mut h, "a finished map", Duration::from_secs(300), |a| {
        !a.state.results.is_empty()
    });
    let run = &h.state().runtime.run;
    let total = run.total();
    assert!(total > 300, "the bar counts every map's gradients: {total}");
    for _ in 0..20 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
        seen.push(h.state().progress());
    }
    assert!(
        seen.windows(2).all(|w| w[1] >= w[0]),
        "progress went backwards: {seen:?}"
    );
    let status = h.query_by_label_contains("gradients/s").map(|n| text_of(&n));
    let status = status.expect("gradients per second while running");
    assert!(status.contains("left"), "time left while running: {status}");
    let finished_before = h.state().state.results.len();
    assert!(h.state().running());
    h.get_by_label("Cancel").click();
    wait_for(&mut h, "the cancel", Duration::from_secs(60), |a| !a.running());
    let app = h.state();
    let (k, n) = app.runtime.run.cancelled.expect("cancelled");
    assert_eq!(n, total);
    assert!(k < n);
    assert!(app.state.results.len() >= finished_before, "finished maps stay");
    assert!(app.progress() < 1.0, "a cancelled run is not 100 %");
    h.get_by_label_contains(&format!("cancelled at {k} / {n} gradients"));
    assert!(
        h.query_all_by_label_contains("cancelled before it finished").count() >= 1,
        "the unfinished panels say so"
    );
    assert!(
        app.runtime.errors.is_empty(),
        "cancel is not an error: {:?}",
        app.runtime.errors
    );

    // The next successful run clears the panels' messages.
    run_small(&mut h);
    h.run_steps(2);
    assert!(h.state().runtime.panel_errors.is_empty());
    assert_eq!(h.query_all_by_label_contains("cancelled").count(), 0);
    h.get_by_label_contains("done: 4 maps");
    assert_eq!(h.state().progress(), 1.0);
}

#[test]
fn titles_describe_the_maps_shown_and_steps_are_kept_per_path() {
    let mut h = sized(1400.0, 860.0);
    ready(&mut h);
    run_small(&mut h);
    h.run_steps(2);
    h.get_by_label("Maps: IG, black image baseline, 8 steps");
    h.get_by_label("IG + IDGI");
    h.get_by_label("IG-Uniform (valid-ip)");
    h.get_by_label("|IG|");
    assert_eq!(h.query_all_by_label_contains("settings changed").count(), 0);

    // The controls change; the maps and their titles do not, until Run.
    h.state_mut().state.settings.set_path(PathKind::Guided);
    h.run_steps(2);
    assert_eq!(h.state().state.settings.steps, PathKind::Guided.default_steps());
    h.get_by_label("Maps: IG, black image baseline, 8 steps");
    h.get_by_label("settings changed — Run to update");
    h.state_mut().state.settings.set_path(PathKind::Straight);
    assert_eq!(h.state().state.settings.steps, 8, "the straight line's steps came back");
    h.run_steps(2);
    assert_eq!(h.query_all_by_label_contains("settings changed").count(), 0);

    // One name per map on screen and in the figure.
    let rows = pathscope::ui::export_dialog::export_rows(&h.state().state);
    assert_eq!(rows.len(), 3);
    for (row, _) in &rows {
        h.get_by_label(row.label.as_str());
    }
}

#[test]
fn options_read_as_words_with_labels_before_controls() {
    let mut h = sized(1400.0, 860.0);
    ready(&mut h);
    for words in [
        "Method",
        "Path",
        "Baseline",
        "Steps",
        "Rule",
        "Re-calibration",
        "Explains",
        "Path integral (IG / Blur IG / Guided IG)",
        "valid interpolation points (RECAL)",
        "straight line (IG)",
        "black image",
        "Gauss–Legendre",
        "logit",
    ] {
        assert!(shows(&h, words), "{words} is not on screen");
    }
    // Labels come first: the "Method" label sits left of its combo box on one line.
    let label = h.get(by().label("Method").role(egui::accesskit::Role::Label)).rect();
    let combo = h.get(by().label("Method").role(egui::accesskit::Role::ComboBox)).rect();
    assert!(
        label.max.x <= combo.min.x + 1.0 && (label.center().y - combo.center().y).abs() < 8.0,
        "{label:?} {combo:?}"
    );
    for rust in ["ValidIp", "ValidRef", "LogProbability", "GaussLegendre"] {
        assert_eq!(h.query_all_by_label_contains(rust).count(), 0, "{rust} on screen");
    }
}

#[test]
fn expected_gradients_and_agi_run_from_the_studio() {
    let mut h = sized(1400.0, 860.0);
    ready(&mut h);
    let refs = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("studio_eg_references");
    std::fs::create_dir_all(&refs).unwrap();
    for (i, shade) in [40u8, 200].into_iter().enumerate() {
        image::RgbImage::from_pixel(64, 48, image::Rgb([shade, 90, 255 - shade]))
            .save(refs.join(format!("ref{i}.png")))
            .unwrap();
    }
    {
        let s = &mut h.state_mut().state.settings;
        s.method = Family::ExpectedGradients;
        s.reference_folder = Some(refs.clone());
        s.samples = 4;
    }
    h.run_steps(2);
    assert!(shows(&h, "Expected Gradients (reference folder)"));
    assert!(shows(&h, "Reference folder"));
    h.get_by_label("Run").click();
    wait_for(&mut h, "Expected Gradients", Duration::from_secs(120), |a| {
        a.state.results.contains_key(&Variant::Vanilla) && !a.running()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    let eg = h.state().map_of(Variant::Vanilla).unwrap();
    assert!(eg.iter().any(|v| *v != 0.0));
    h.get_by_label_contains("Maps: Expected Gradients, references from studio_eg_references");

    // A folder that is not there: a message, no run.
    h.state_mut().state.settings.reference_folder = Some(refs.join("missing"));
    h.state_mut().start_run();
    wait_for(&mut h, "the error", Duration::from_secs(30), |a| {
        !a.runtime.errors.is_empty()
    });
    assert!(
        h.state().runtime.errors[0].contains("missing"),
        "{:?}",
        h.state().runtime.errors
    );

    h.state_mut().state.settings.method = Family::Agi;
    h.run_steps(2);
    h.state_mut().start_run();
    wait_for(&mut h, "AGI", Duration::from_secs(300), |a| {
        a.state.results.contains_key(&Variant::Recalibrated) && !a.running()
    });
    for v in [Variant::Vanilla, Variant::Recalibrated] {
        assert!(h.state().state.results.contains_key(&v), "AGI {v:?}");
    }
}

/// The grid at `size`: four panels, none off screen, each at least `min_panel` wide.
fn grid_holds_at(size: [f32; 2], min_panel: f32) {
    let mut h = sized(size[0], size[1]);
    ready(&mut h);
    run_small(&mut h);
    h.run_steps(3);
    let panels = panel_rects(&h);
    assert_eq!(panels.len(), 4, "{size:?}");
    for (label, rect) in &panels {
        assert!(
            rect.max.x <= size[0] + 0.5,
            "{size:?}: {label} at {rect:?} is off screen"
        );
        assert!(rect.width() >= min_panel, "{size:?}: {label} is {} wide", rect.width());
    }
    // Run stays in view however short the window.
    let run = h.get_by_label("Run").rect();
    assert!(run.max.y <= size[1] && run.max.x <= size[0], "Run at {run:?}");
    h.snapshot(format!("grid_{}x{}", size[0], size[1]));
}

#[test]
fn the_grid_holds_at_800x500() {
    grid_holds_at([800.0, 500.0], 140.0);
}

#[test]
fn the_grid_fills_2560x1440() {
    grid_holds_at([2560.0, 1440.0], 500.0);
}

/// Sessions: a clean exit leaves the last session; the next studio reopens it from the
/// Session menu, shows the maps at once, says where it is, and walks the path again so
/// the scrubber has its trace (session files keep maps, not traces).
#[test]
fn reopen_last_session_restores_the_maps_and_recomputes_the_trace() {
    use eframe::App;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("studio_reopen_last");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let autosave = dir.join("autosave.pathscope");
    let options = StudioOptions {
        autosave: Some(autosave.clone()),
        ..StudioOptions::default()
    };
    let build = |options: StudioOptions| {
        Harness::builder()
            .with_size([1280.0, 800.0])
            .wgpu()
            .build_eframe(move |cc| PathscopeApp::new(cc, options.clone()))
    };
    let mut h = build(options.clone());
    ready(&mut h);
    run_small(&mut h);
    let sum = h.state().state.results[&Variant::Vanilla].attribution_sum;
    // Coarse curves keep the test quick; the session remembers that they were shown.
    h.state_mut().metrics.pixels_per_step = 224 * 16;
    h.state_mut().score_maps();
    wait_for(&mut h, "the curves", Duration::from_secs(120), |a| {
        !a.metrics.entries.is_empty() && a.metrics.entries.iter().all(|e| e.curves.is_some())
    });
    // And a two-depth sanity check.
    h.state_mut().metrics.sanity_every_block = Some(false);
    h.state_mut().metrics.sanity_depth_count = 2;
    h.state_mut().start_sanity();
    wait_for(&mut h, "the sanity check", Duration::from_secs(180), |a| {
        a.metrics.sanity.len() >= 2
    });
    let sanity_before = h.state().metrics.sanity.len();
    h.state_mut().on_exit();
    drop(h);
    assert!(dir.join("last-session.pathscope").exists());

    let mut h = build(options);
    ready(&mut h);
    h.state_mut().metrics.pixels_per_step = 224 * 16;
    h.state_mut().metrics.sanity_every_block = Some(false);
    h.state_mut().metrics.sanity_depth_count = 2;
    assert!(h.state().state.results.is_empty());
    h.get_by_label("Session").click();
    h.run_steps(2);
    h.get_by_label("Reopen last session").click();
    h.run_steps(2);
    assert_eq!(h.state().state.results.len(), 3, "the maps show at once");
    wait_for(&mut h, "the notice", Duration::from_secs(60), |a| {
        a.runtime.notice.is_some()
    });
    h.get_by_label_contains("walked again for the scrubber");
    wait_for(&mut h, "the trace", Duration::from_secs(120), |a| {
        !a.running()
            && a.state
                .results
                .get(&Variant::Vanilla)
                .is_some_and(|r| r.trace.is_some())
    });
    let again = h.state().state.results[&Variant::Vanilla].attribution_sum;
    assert!((again - sum).abs() <= 1e-4 * sum.abs().max(1.0), "{again} vs {sum}");
    assert_eq!(h.state().state.results.len(), 3);
    // Then the curves this session showed, computed again with a notice.
    wait_for(&mut h, "the curves again", Duration::from_secs(120), |a| {
        !a.metrics.entries.is_empty() && a.metrics.entries.iter().all(|e| e.curves.is_some())
    });
    h.get_by_label_contains("recomputing the insertion/deletion curves and the sanity check it showed");
    assert_eq!(h.state().metrics.entries.len(), 4);
    wait_for(&mut h, "the sanity check again", Duration::from_secs(180), |a| {
        a.metrics.sanity.len() >= sanity_before
    });
    h.get_by_label("Interpolation scrubber").click();
    h.run_steps(3);
    assert_eq!(h.query_all_by_label_contains("No trace recorded").count(), 0);
    h.get_by_label_contains("completeness: Σ attribution so far");
}
