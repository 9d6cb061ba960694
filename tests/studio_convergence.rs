//! The Convergence tab (issue 22): the study runs on the engine's worker from the tab's
//! button, its curves are drawn log–log with a legend, and what it shows agrees with the
//! study's numbers (Gauss–Legendre's map error falls as points are added).
#![cfg(feature = "studio")]

mod common;

use std::time::Duration;

use egui_kittest::kittest::Queryable;
use pathscope::attribution::convergence::{Direction, Scheme};
use pathscope::attribution::IntegrationRule;
use pathscope::ui::convergence_view::{COMPLETENESS_PLOT, CONVERGENCE_VIEW, LEGEND, MAP_PLOT};
use pathscope::ui::state::Tab;

use common::studio::{sized, wait_for};

/// A small study (128-point reference, n up to 16) on the default model and photo at
/// 1280×800.
#[test]
fn convergence_tab_at_1280x800() {
    let mut h = sized(1280.0, 800.0);
    wait_for(&mut h, "the model", Duration::from_secs(60), |a| {
        a.model_ready() && a.state.target.is_some()
    });
    h.get_by_label("Convergence").click();
    h.run_steps(2);
    assert_eq!(h.state().state.tab, Tab::Convergence);
    h.get_by_label(CONVERGENCE_VIEW);
    {
        let v = &mut h.state_mut().convergence;
        v.reference_steps = 128;
        v.largest_n = 16;
        v.tolerance = 0.05;
    }
    h.run_steps(2);
    // Cancel stops a study within a model pass and says so.
    h.state_mut().convergence.reference_steps = 4096;
    h.run_steps(2);
    h.get_by_label("Run study").click();
    h.step();
    assert!(h.state().convergence.running());
    h.step();
    h.get_by_label("Cancel study").click();
    wait_for(&mut h, "the cancel", Duration::from_secs(60), |a| {
        !a.convergence.running()
    });
    assert_eq!(h.state().convergence.error.as_deref(), Some("cancelled"));
    assert!(h.state().convergence.study.is_none());
    h.get_by_label_contains("Study: cancelled");

    h.state_mut().convergence.reference_steps = 128;
    h.run_steps(2);
    h.get_by_label("Run study").click();
    h.step();
    assert!(h.state().convergence.running());
    wait_for(&mut h, "the study", Duration::from_secs(300), |a| {
        !a.convergence.running()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    let study = h.state().convergence.study.clone().expect("a study");
    let gl = |n: usize| {
        study
            .rows
            .iter()
            .find(|r| {
                r.scheme == Scheme::Rule(IntegrationRule::GaussLegendre)
                    && r.parameter == n
                    && r.direction == Direction::ToInput
            })
            .map(|r| r.map_error)
            .unwrap()
    };
    assert!(gl(4) > gl(8) && gl(8) > gl(16), "{} {} {}", gl(4), gl(8), gl(16));
    assert!(study.rows.iter().all(|r| r.direction == Direction::ToInput));
    h.run_steps(3);

    // Both plots, each scheme once in the legend above them, the 1 % summary line.
    h.get_by_label(MAP_PLOT);
    h.get_by_label(COMPLETENESS_PLOT);
    {
        let legend = h.get_by_label(LEGEND);
        for label in [
            "Gauss–Legendre",
            "IDGI",
            "adaptive (tolerance mode)",
            "left Riemann sum",
        ] {
            assert_eq!(legend.query_all_by_label(label).count(), 1, "{label} in the legend");
        }
    }
    h.get_by_label_contains("Gradients to a 1 % map error");

    // What a person sees: the curves' colours in the plot area (blue: the first rule,
    // orange: the second), not only a frame.
    let img = h.render().expect("render");
    let count = |rgb: [u8; 3]| {
        img.pixels()
            .filter(|p| {
                (p.0[0] as i32 - rgb[0] as i32).abs() < 30
                    && (p.0[1] as i32 - rgb[1] as i32).abs() < 30
                    && (p.0[2] as i32 - rgb[2] as i32).abs() < 30
            })
            .count()
    };
    assert!(
        count([31, 119, 180]) > 150,
        "blue curve pixels: {}",
        count([31, 119, 180])
    );
    assert!(
        count([255, 127, 14]) > 150,
        "orange curve pixels: {}",
        count([255, 127, 14])
    );
    // The study's duration is printed; fix it so the snapshot does not depend on the machine.
    h.state_mut().convergence.seconds = Some(5.0);
    h.run_steps(2);
    h.snapshot("convergence_1280x800");

    // Saving writes the CSV beside the figure.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("studio_convergence");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("study.png");
    pathscope::ui::convergence_view::save(&h.state().convergence, &png).unwrap();
    let csv = std::fs::read_to_string(dir.join("study.csv")).unwrap();
    assert_eq!(csv.lines().count(), study.rows.len() + 1);
    assert!(image::open(&png).unwrap().width() > 1000);
}
