//! The Metrics tab as a researcher meets it (issue 21, point 7): maps named by panel in a
//! legend outside the plot, the method's description once, a log x axis that spreads the
//! first percent of deletion, and at 1280×800 both plots in view without scrolling; at
//! 800×500 the controls wrap inside the window; the ROAD curves and their AUCs below the
//! table.
#![cfg(feature = "studio")]

mod common;

use std::time::Duration;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use pathscope::attribution::catalog::Variant;
use pathscope::metrics::imputation::Imputation;
use pathscope::ui::metrics_view::{
    x_fraction, x_position, XScale, CURVES_LEGEND, METRICS_VIEW, ROAD_HEADING, ROAD_LEGEND, SANITY_HEADING,
    SANITY_LEGEND,
};
use pathscope::ui::state::Tab;
use pathscope::ui::PathscopeApp;

use common::studio::{sized, wait_for};

fn model_ready(h: &mut Harness<'static, PathscopeApp>) {
    wait_for(h, "the model", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
}

/// The axis transform's numbers: linear is the identity; log keeps 0 and 1, puts 1 % at
/// 0.150 and 3 % at 0.300 (where SqueezeNet's deletion curves fall: 3 % of the width on a
/// linear axis), and reads back.
#[test]
fn the_x_axis_transform() {
    for f in [0.0, 0.01, 0.3, 1.0] {
        assert_eq!(x_position(XScale::Linear, f), f);
        assert_eq!(x_fraction(XScale::Linear, f), f);
    }
    let log = |f| x_position(XScale::Log, f);
    assert_eq!(log(0.0), 0.0);
    assert!((log(1.0) - 1.0).abs() < 1e-12);
    assert!((log(0.01) - 0.1502).abs() < 1e-4, "{}", log(0.01));
    assert!((log(0.03) - 0.3004).abs() < 1e-4, "{}", log(0.03));
    assert!((log(0.5) - 0.8519).abs() < 1e-4, "{}", log(0.5));
    for i in 0..=200 {
        let f = i as f64 / 200.0;
        assert!((x_fraction(XScale::Log, log(f)) - f).abs() < 1e-12, "inverse at {f}");
        if i > 0 {
            assert!(log(f) > log(f - 0.005), "increasing at {f}");
        }
    }
    assert_eq!(
        XScale::default(),
        XScale::Log,
        "deletion curves are not crushed by default"
    );
}

/// IG at small settings (steps 8, references 2) on the default model, scored and
/// sanity-checked at 1280×800.
#[test]
fn metrics_tab_at_1280x800() {
    let (width, height) = (1280.0, 800.0);
    let mut h = sized(width, height);
    model_ready(&mut h);
    h.state_mut().state.settings.steps = 8;
    h.state_mut().state.settings.references = 2;
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.step();
    wait_for(&mut h, "the maps", Duration::from_secs(180), |a| {
        !a.running() && !a.runtime.run.jobs.is_empty()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    h.get_by_label("Metrics").click();
    h.run_steps(2);
    assert_eq!(h.state().state.tab, Tab::Metrics);

    // The maps are named as the comparison grid names its panels.
    let names: Vec<String> = h.state().metric_sources().into_iter().map(|(l, _)| l).collect();
    let panels: Vec<String> = Variant::ALL
        .into_iter()
        .filter(|v| match v {
            Variant::Absolute => h.state().state.results.contains_key(&Variant::Vanilla),
            _ => h.state().state.results.contains_key(v),
        })
        .map(|v| h.state().state.panel_title(v))
        .collect();
    assert_eq!(names, panels);
    assert!(
        names.len() >= 3,
        "IG has at least the signed, absolute and re-calibrated panels: {names:?}"
    );

    // 4 rows of pixels per step (57 images per curve) keeps the test quick.
    h.state_mut().metrics.pixels_per_step = 224 * 4;
    h.run_steps(2);
    h.get_by_label("Score").click();
    h.step();
    wait_for(&mut h, "the curves", Duration::from_secs(240), |a| {
        !a.metrics.running() && !a.metrics.entries.is_empty()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    for e in &h.state().metrics.entries {
        let c = e.curves.as_ref().unwrap_or_else(|| panic!("{} not scored", e.label));
        let half = c.deletion.scores[0] / 2.0;
        let fall = c.deletion.fractions[c.deletion.scores.iter().position(|&s| s < half).unwrap_or(0)];
        eprintln!(
            "{}: deletion falls below half its start at {:.1} % of pixels",
            e.label,
            fall * 100.0
        );
    }
    h.run_steps(2);

    // Each map once in the legend; the method's long description once in the whole tab.
    {
        let legend = h.get_by_label(CURVES_LEGEND);
        for name in &names {
            assert_eq!(legend.query_all_by_label(name).count(), 1, "{name} in the legend");
        }
        let method = h.state().state.settings.method_label();
        assert!(method.contains("IG, ") && method.contains("8 steps"), "{method}");
        let view = h.get_by_label(METRICS_VIEW);
        assert_eq!(
            view.query_all_by_label_contains(&method).count(),
            1,
            "the description `{method}` is written once, as the caption"
        );
        view.get_by_label(format!("maps: {method}").as_str());
        // The legend is a row above the plot, not inside it.
        let plot = h.state().metrics.plot_rect.expect("the curves plot was drawn");
        for name in &names {
            let entry = legend.get_by_label(name).rect();
            assert!(entry.bottom() <= plot.top(), "{name} at {entry:?}, plot at {plot:?}");
        }
    }

    // The x axis: the same point of the screen is early in the sweep on the log axis and
    // late on the linear one.
    let fraction_at = |h: &mut Harness<'static, PathscopeApp>, scale: XScale| {
        h.get_by_label(scale.name()).click();
        h.run_steps(2);
        assert_eq!(h.state().metrics.x_scale, scale);
        let rect = h.state().metrics.plot_rect.expect("the plot was drawn");
        h.hover_at(eframe::egui::pos2(rect.left() + rect.width() * 0.3, rect.center().y));
        h.run_steps(3);
        let m = &h.state().metrics;
        let p = m.selected.expect("hovering picks a curve point");
        let e = &m.entries[p.entry];
        let curves = e.curves.as_ref().expect("scored");
        let curve = match p.kind {
            pathscope::ui::metrics_view::CurveKind::Insertion => &curves.insertion,
            pathscope::ui::metrics_view::CurveKind::Deletion => &curves.deletion,
        };
        curve.fractions[p.step]
    };
    let linear = fraction_at(&mut h, XScale::Linear);
    let log = fraction_at(&mut h, XScale::Log);
    assert!(linear > 0.2 && linear < 0.4, "30 % of the linear axis: {linear}");
    assert!(
        log > 0.0 && log < 0.05,
        "30 % of the log axis is within the first 5 %: {log}"
    );

    // The sanity check fills its plot beside the curves, within the window.
    h.get_by_label("every block").click();
    h.run_steps(2);
    h.state_mut().metrics.sanity_depth_count = 3;
    h.run_steps(2);
    h.get_by_label("Run sanity check").click();
    h.step();
    wait_for(&mut h, "the sanity stages", Duration::from_secs(240), |a| {
        !a.metrics.sanity_running()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    assert_eq!(h.state().metrics.sanity.len(), 3);
    h.run_steps(3);
    let sanity = h.state().metrics.sanity_plot_rect.expect("the sanity plot was drawn");
    let curves = h.state().metrics.plot_rect.expect("the curves plot was drawn");
    for (what, rect) in [("sanity plot", sanity), ("curves plot", curves)] {
        assert!(rect.height() >= 180.0, "{what} is {rect:?}");
        assert!(
            rect.top() >= 0.0 && rect.bottom() <= height,
            "{what} {rect:?} is out of the window"
        );
        assert!(rect.right() <= width, "{what} {rect:?}");
    }
    assert!(
        sanity.left() > curves.right(),
        "side by side: {curves:?} then {sanity:?}"
    );
    let heading = h.get_by_label(SANITY_HEADING).rect();
    assert!(heading.bottom() < sanity.top(), "{heading:?} above {sanity:?}");
    let legend = h.get_by_label(SANITY_LEGEND);
    for name in [
        "Spearman (abs)",
        "Spearman (signed)",
        "SSIM",
        "HOG",
        "edge control (Sobel)",
    ] {
        assert_eq!(
            legend.query_all_by_label(name).count(),
            1,
            "{name} in the sanity legend"
        );
    }
    // The sanity plot checks the same method: its caption refers to the curves' rather than
    // repeating the description.
    let method = h.state().state.settings.method_label();
    let view = h.get_by_label(METRICS_VIEW);
    assert_eq!(view.query_all_by_label_contains(&method).count(), 1);
    view.get_by_label("the curves' method, explaining Egyptian cat, randomisation seed 0");
    h.snapshot("metrics_1280x800");
}

/// At 800×500 the tab is one column and every control row wraps inside the window.
#[test]
fn metrics_tab_wraps_at_800x500() {
    let width = 800.0;
    let mut h = sized(width, 500.0);
    model_ready(&mut h);
    h.get_by_label("Metrics").click();
    h.run_steps(3);
    for label in [
        "pixels per step",
        "Score",
        "Cancel scoring",
        "x axis",
        "linear",
        XScale::Log.name(),
        "every block",
        "randomisation seed",
        "Run sanity check",
        "Cancel sanity check",
    ] {
        let rect = h.get_by_label(label).rect();
        assert!(rect.right() <= width, "{label} at {rect:?} is cut off on the right");
        assert!(rect.width() > 0.0, "{label} at {rect:?}");
    }
    // Stacked: the sanity section comes below the curves' controls.
    let ranking = h.get_by_label("Insertion / deletion (RISE)").rect();
    let sanity = h.get_by_label(SANITY_HEADING).rect();
    assert!(sanity.top() > ranking.bottom(), "{ranking:?} then {sanity:?}");
    assert!(
        (sanity.left() - ranking.left()).abs() < 1.0,
        "one column: {ranking:?}, {sanity:?}"
    );
    h.snapshot("metrics_800x500");
}

/// The gradient's maps scored with ROAD (the fill's buttons switch it; noisy linear): every map
/// gets both curves at 10..90 % with their AUCs (the mean of each curve) in the table, and
/// the curves' plot with its MoRF/LeRF legend is drawn below, inside the window.
#[test]
fn road_curves_in_the_metrics_tab() {
    let (width, height) = (1280.0, 1300.0);
    let mut h = sized(width, height);
    model_ready(&mut h);
    h.state_mut().state.settings.method = pathscope::attribution::catalog::Family::Gradient;
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.step();
    wait_for(&mut h, "the maps", Duration::from_secs(120), |a| {
        !a.running() && !a.runtime.run.jobs.is_empty()
    });
    h.get_by_label("Metrics").click();
    h.run_steps(2);
    assert!(h.state().metrics.road, "ROAD is on by default");
    h.get_by_label(Imputation::Mean.label()).click();
    h.run_steps(2);
    assert_eq!(h.state().metrics.road_imputation, Imputation::Mean);
    h.get_by_label(Imputation::default().label()).click();
    h.run_steps(2);
    assert_eq!(h.state().metrics.road_imputation, Imputation::default());
    // A coarse insertion/deletion (5 images a curve) keeps the test on ROAD.
    h.state_mut().metrics.pixels_per_step = 224 * 56;
    h.run_steps(2);
    h.get_by_label("Score").click();
    h.step();
    wait_for(&mut h, "the curves", Duration::from_secs(240), |a| {
        !a.metrics.running() && !a.metrics.entries.is_empty()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    h.run_steps(3);
    let mut aucs = Vec::new();
    for e in &h.state().metrics.entries {
        let road = e.road.as_ref().unwrap_or_else(|| panic!("{}: no ROAD curves", e.label));
        assert_eq!(road.params.imputation, Imputation::default());
        for curve in [&road.morf, &road.lerf] {
            assert_eq!(curve.fractions, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
            assert!(curve.scores.iter().all(|p| (0.0..=1.0).contains(p)), "{curve:?}");
            let area: f64 = curve
                .fractions
                .windows(2)
                .zip(curve.scores.windows(2))
                .map(|(f, p)| (f[1] - f[0]) * (p[0] + p[1]) / 2.0)
                .sum();
            assert!((curve.auc - area / 0.8).abs() < 1e-12);
        }
        eprintln!("{}: ROAD MoRF {:.3}, LeRF {:.3}", e.label, road.morf.auc, road.lerf.auc);
        aucs.push(format!("{:.3}", road.morf.auc));
        aucs.push(format!("{:.3}", road.lerf.auc));
    }
    let view = h.get_by_label(METRICS_VIEW);
    view.get_by_label("ROAD MoRF AUC");
    view.get_by_label("ROAD LeRF AUC");
    for auc in &aucs {
        assert!(view.query_all_by_label(auc).count() >= 1, "{auc} in the table");
    }
    let heading = view.get_by_label(ROAD_HEADING).rect();
    let legend = h.get_by_label(ROAD_LEGEND);
    for name in ["MoRF", "LeRF"] {
        assert_eq!(legend.query_all_by_label(name).count(), 1, "{name} in the ROAD legend");
    }
    let plot = h.state().metrics.road_plot_rect.expect("the ROAD plot was drawn");
    let curves = h.state().metrics.plot_rect.expect("the curves plot was drawn");
    assert!(heading.bottom() <= plot.top() && curves.bottom() < heading.top());
    assert!(plot.bottom() <= height && plot.right() <= width, "{plot:?}");
    h.snapshot("metrics_road");
}
