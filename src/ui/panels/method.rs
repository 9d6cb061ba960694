//! The Method panel: the family and its settings (labels before controls, in the words of
//! the method catalog), a thumbnail of the baseline, Run and Cancel, and the run's progress
//! as a whole.

use eframe::egui::{self, ColorImage, TextureOptions};

use crate::attribution::catalog::{EnsembleBase, Family};
use crate::attribution::method::PathKind;
use crate::attribution::recalibration::Recalibration;
use crate::attribution::{Baseline, IntegrationRule, Objective};
use crate::ui::command::{Command, Commands};
use crate::ui::runtime::{Runtime, Textures};
use crate::ui::state::{family_label, StudioState, STUDIO_FAMILIES};

/// The baselines the panel offers.
const BASELINES: [Baseline; 6] = [
    Baseline::Black,
    Baseline::White,
    Baseline::Zero,
    Baseline::Blur { sigma: 20.0 },
    Baseline::Uniform,
    Baseline::Gaussian { fraction: 0.15 },
];

/// A row of the form: the label, then the control, linked so screen readers (and tests)
/// find the control by its label.
fn row(ui: &mut egui::Ui, label: &str, control: impl FnOnce(&mut egui::Ui) -> egui::Response) {
    let label = ui.label(label);
    control(ui).labelled_by(label.id);
    ui.end_row();
}

/// A combo box choosing `value` among `options`, each shown by `label`.
fn choice<T: PartialEq + Clone>(
    ui: &mut egui::Ui,
    id: &str,
    value: &mut T,
    options: impl IntoIterator<Item = T>,
    label: impl Fn(&T) -> String,
) -> egui::Response {
    egui::ComboBox::from_id_salt(id)
        .selected_text(label(value))
        .show_ui(ui, |ui| {
            for option in options {
                let text = label(&option);
                ui.selectable_value(value, option, text);
            }
        })
        .response
}

pub fn show(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    rt: &Runtime,
    textures: &mut Textures,
    commands: &mut Commands,
) {
    let s = &mut state.settings;
    egui::Grid::new("method-form")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            row(ui, "Method", |ui| {
                egui::ComboBox::from_id_salt("method")
                    .selected_text(family_label(s.method))
                    .width(190.0)
                    .show_ui(ui, |ui| {
                        for (family, label) in STUDIO_FAMILIES {
                            ui.selectable_value(&mut s.method, family, label)
                                .on_hover_text(family.summary());
                        }
                    })
                    .response
            });
            if s.method.is_ensemble() {
                row(ui, "Averages", |ui| {
                    choice(ui, "ensemble-base", &mut s.ensemble_base, EnsembleBase::ALL, |b| {
                        b.label().into()
                    })
                });
            }
            if s.uses_path() {
                let mut path = s.path;
                row(ui, "Path", |ui| {
                    choice(ui, "path", &mut path, PathKind::ALL, |p| p.label().into())
                });
                s.set_path(path);
                if s.path != PathKind::Blur {
                    row(ui, "Baseline", |ui| {
                        choice(ui, "baseline", &mut s.baseline, BASELINES, Baseline::label)
                    });
                }
                if s.path != PathKind::Guided {
                    let mut adaptive = s.tolerance.is_some();
                    row(ui, "Points", |ui| {
                        choice(ui, "points", &mut adaptive, [false, true], |a| {
                            if *a {
                                "until converged (tolerance)".into()
                            } else {
                                "a fixed number of steps".into()
                            }
                        })
                        .on_hover_text(
                            "until converged: gradients are added where the score changes until completeness and the map's own error estimate are within the tolerance",
                        )
                    });
                    match (adaptive, s.tolerance) {
                        (true, None) => s.tolerance = Some(0.01),
                        (false, Some(_)) => s.tolerance = None,
                        _ => {}
                    }
                }
                match s.tolerance() {
                    Some(mut t) => {
                        row(ui, "Tolerance", |ui| {
                            ui.add(
                                egui::Slider::new(&mut t, 0.001..=0.1)
                                    .logarithmic(true)
                                    .custom_formatter(|v, _| format!("{:.2}%", v * 100.0)),
                            )
                        });
                        s.tolerance = Some(t);
                        row(ui, "Most gradients", |ui| {
                            ui.add(egui::Slider::new(&mut s.max_points, 9..=1024))
                        });
                    }
                    None => {
                        row(ui, "Steps", |ui| ui.add(egui::Slider::new(&mut s.steps, 1..=400)));
                    }
                }
                if s.path == PathKind::Straight && s.tolerance().is_none() {
                    row(ui, "Rule", |ui| {
                        choice(ui, "rule", &mut s.rule, IntegrationRule::ALL, |r| r.label().into())
                    });
                }
            }
            if s.method == Family::ExpectedGradients {
                row(ui, "Reference folder", |ui| reference_folder(ui, s, commands));
            }
            if s.method.has_recalibration() || s.method == Family::Ig {
                row(ui, "Re-calibration", |ui| {
                    let options = [Recalibration::ValidIp, Recalibration::ValidRef, Recalibration::Vanilla];
                    choice(ui, "recalibration", &mut s.recalibration, options, |r| r.label().into())
                });
                if s.method != Family::ExpectedGradients && s.method != Family::Agi {
                    row(ui, "References", |ui| {
                        ui.add(egui::Slider::new(&mut s.references, 1..=50))
                    });
                }
            }
            row(ui, "Explains", |ui| {
                choice(ui, "objective", &mut s.objective, Objective::ALL, |o| o.label().into())
            });
            if s.method.is_ensemble() {
                row(ui, "Samples", |ui| ui.add(egui::Slider::new(&mut s.samples, 1..=100)));
                row(ui, "Noise σ (× range)", |ui| {
                    ui.add(egui::Slider::new(&mut s.noise, 0.0..=0.5))
                });
            }
            row(ui, "Batch", |ui| {
                ui.add(egui::Slider::new(&mut s.batch_size, 1..=64))
                    .on_hover_text("points per model pass; the maps do not depend on it")
            });
        });
    if s.method == Family::Ig {
        ui.checkbox(&mut s.idgi, "IDGI panel");
    }
    if s.uses_path() && s.path != PathKind::Blur {
        ui.horizontal(|ui| {
            ui.label("Baseline preview");
            baseline_preview(ui, state, rt, textures, commands);
        });
    }
}

/// Run, Cancel and the run's progress: kept at the foot of the control column, visible
/// however small the window.
pub fn run_controls(ui: &mut egui::Ui, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    ui.horizontal(|ui| {
        let can_run = rt.input.is_some() && state.target.is_some() && !rt.running();
        if ui.add_enabled(can_run, egui::Button::new("Run")).clicked() {
            commands.push(Command::Run);
        }
        if ui.add_enabled(rt.running(), egui::Button::new("Cancel")).clicked() {
            commands.push(Command::CancelRun);
        }
    });
    if !rt.run.jobs.is_empty() {
        ui.add(egui::ProgressBar::new(progress(rt)).show_percentage());
        ui.add(egui::Label::new(run_status(state, rt)).wrap());
    }
}

/// The run's state in words: gradients, rate and time left while running; what was kept
/// after a cancel; the maps on screen when done.
pub fn run_status(state: &StudioState, rt: &Runtime) -> String {
    let run = &rt.run;
    let (done, total) = (run.done(), run.total());
    if rt.running() {
        let eta = run.eta_seconds().map_or_else(
            || "estimating time left".to_string(),
            |s| format!("about {} left", seconds(s)),
        );
        return format!("{done} / {total} gradients · {:.1} gradients/s · {eta}", run.rate());
    }
    let maps = shown_maps(state);
    let maps = format!("{maps} map{}", if maps == 1 { "" } else { "s" });
    match run.cancelled {
        Some((k, n)) => format!("cancelled at {k} / {n} gradients; {maps} finished"),
        None if !rt.panel_errors.is_empty() => format!("done with errors: {maps}"),
        None => format!("done: {maps}"),
    }
}

/// The panels with a finished map (the absolute panel shows the vanilla map's magnitude).
pub fn shown_maps(state: &StudioState) -> usize {
    let absolute = state
        .results
        .contains_key(&crate::attribution::catalog::Variant::Vanilla);
    state.results.len() + absolute as usize
}

fn seconds(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.0} min", s / 60.0)
    }
}

/// Fraction of the run's gradients computed, 0..=1, never decreasing during a run.
pub fn progress(rt: &Runtime) -> f32 {
    if rt.run.jobs.is_empty() {
        return 0.0;
    }
    if rt.run.finished && rt.run.cancelled.is_none() {
        return 1.0;
    }
    rt.run.shown as f32
}

/// Expected Gradients' folder of reference images: typed or pasted, checked at once.
fn reference_folder(ui: &mut egui::Ui, s: &mut crate::ui::state::Settings, commands: &mut Commands) -> egui::Response {
    let mut text = s
        .reference_folder
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let response = ui.add(
        egui::TextEdit::singleline(&mut text)
            .hint_text("folder of reference images")
            .desired_width(190.0),
    );
    if response.changed() {
        s.reference_folder = (!text.trim().is_empty()).then(|| std::path::PathBuf::from(text.trim()));
    }
    if response.lost_focus() {
        if let Some(dir) = &s.reference_folder {
            if !dir.is_dir() {
                commands.push(Command::ReportError(format!(
                    "Expected Gradients: {} is not a folder",
                    dir.display()
                )));
            }
        }
    }
    response
}

/// A thumbnail of the current baseline, rebuilt only when the baseline, image or seed
/// change.
fn baseline_preview(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    rt: &Runtime,
    textures: &mut Textures,
    commands: &mut Commands,
) {
    let (Some((input, key)), Some(norm)) = (&rt.input, rt.normalization()) else {
        return;
    };
    let s = &mut state.settings;
    let want = format!("{key}|{}|{}", s.baseline, s.seed);
    if textures
        .baseline_preview
        .as_ref()
        .map(|(k, _)| k != &want)
        .unwrap_or(true)
    {
        match s.baseline.build(input, &norm, s.seed) {
            Ok(b) => {
                let (_, h, w) = b.dims3().unwrap_or((3, 224, 224));
                let mut px = b.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default();
                norm.denormalize(&mut px, h * w);
                let rgb = norm.pixels_to_rgb8(&px, h * w);
                let tex =
                    ui.ctx()
                        .load_texture("baseline", ColorImage::from_rgb([w, h], &rgb), TextureOptions::NEAREST);
                textures.baseline_preview = Some((want, tex));
            }
            Err(e) => {
                commands.push(Command::ReportError(format!("baseline: {e}")));
                s.baseline = Baseline::Black;
                return;
            }
        }
    }
    if let Some((_, tex)) = &textures.baseline_preview {
        ui.add(egui::Image::new(tex).fit_to_exact_size(egui::vec2(56.0, 56.0)))
            .on_hover_text("the baseline x′");
    }
}
