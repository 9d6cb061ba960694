//! The Method panel: the family and its settings, a thumbnail of the baseline, Run and
//! Cancel, and the run's progress.

use eframe::egui::{self, ColorImage, TextureOptions};

use crate::attribution::catalog::Family;
use crate::attribution::method::PathKind;
use crate::attribution::recalibration::Recalibration;
use crate::attribution::{Baseline, IntegrationRule, Objective};
use crate::ui::command::{Command, Commands};
use crate::ui::runtime::{Runtime, Textures};
use crate::ui::state::{family_label, StudioState, STUDIO_FAMILIES};

pub fn show(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    rt: &Runtime,
    textures: &mut Textures,
    commands: &mut Commands,
) {
    ui.strong("Method");
    let s = &mut state.settings;
    egui::ComboBox::from_label("method")
        .selected_text(family_label(s.method))
        .show_ui(ui, |ui| {
            for (family, label) in STUDIO_FAMILIES {
                ui.selectable_value(&mut s.method, family, label);
            }
        });
    if s.method == Family::Ig {
        ui.horizontal(|ui| {
            ui.label("Path");
            for p in PathKind::ALL {
                if ui.selectable_value(&mut s.path, p, p.to_string()).clicked() {
                    s.steps = p.default_steps();
                }
            }
        });
        if s.path != PathKind::Blur {
            ui.horizontal(|ui| {
                egui::ComboBox::from_label("baseline")
                    .selected_text(s.baseline.to_string())
                    .show_ui(ui, |ui| {
                        for b in [
                            Baseline::Black,
                            Baseline::White,
                            Baseline::Zero,
                            Baseline::Blur { sigma: 20.0 },
                            Baseline::Uniform,
                            Baseline::Gaussian { fraction: 0.15 },
                        ] {
                            let name = b.to_string();
                            ui.selectable_value(&mut s.baseline, b, name);
                        }
                    });
            });
        }
        ui.add(egui::Slider::new(&mut s.steps, 1..=400).text("steps"));
        if s.path == PathKind::Straight {
            egui::ComboBox::from_label("rule")
                .selected_text(s.rule.name())
                .show_ui(ui, |ui| {
                    for r in IntegrationRule::ALL {
                        ui.selectable_value(&mut s.rule, r, r.name());
                    }
                });
        }
        ui.checkbox(&mut s.idgi, "IDGI panel");
    }
    if !matches!(s.method, Family::Gradient | Family::InputXGradient) && !s.method.is_ensemble() {
        egui::ComboBox::from_label("re-calibration")
            .selected_text(s.recalibration.name())
            .show_ui(ui, |ui| {
                for r in [Recalibration::ValidIp, Recalibration::ValidRef, Recalibration::Vanilla] {
                    ui.selectable_value(&mut s.recalibration, r, r.name());
                }
            });
        ui.add(egui::Slider::new(&mut s.references, 1..=50).text("references"));
    }
    egui::ComboBox::from_label("objective")
        .selected_text(s.objective.name())
        .show_ui(ui, |ui| {
            for o in Objective::ALL {
                ui.selectable_value(&mut s.objective, o, o.name());
            }
        });
    ui.add(egui::Slider::new(&mut s.batch_size, 1..=64).text("batch"));
    if s.method.is_ensemble() {
        ui.add(egui::Slider::new(&mut s.samples, 1..=100).text("samples"));
        ui.add(egui::Slider::new(&mut s.noise, 0.0..=0.5).text("noise (× range)"));
    }
    if s.method == Family::Ig && s.path != PathKind::Blur {
        ui.horizontal(|ui| {
            ui.label("baseline preview");
            baseline_preview(ui, state, rt, textures, commands);
        });
    }
    ui.separator();
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
        ui.add(egui::ProgressBar::new(progress(state, rt)).show_percentage());
        if rt.running() {
            ui.label(format!("{:.1} steps/s", rt.run.rate));
        } else {
            ui.label(format!("done: {} maps", state.results.len()));
        }
    }
}

/// Fraction of the run's jobs that have finished, 0..=1.
pub fn progress(state: &StudioState, rt: &Runtime) -> f32 {
    if rt.run.jobs.is_empty() {
        return 0.0;
    }
    if rt.run.finished {
        return 1.0;
    }
    let finished = rt
        .run
        .jobs
        .iter()
        .filter(|(_, v)| state.results.contains_key(v))
        .count();
    let within = if rt.run.total > 0 {
        rt.run.done as f32 / rt.run.total as f32
    } else {
        0.0
    };
    ((finished as f32 + within) / rt.run.jobs.len() as f32).min(0.99)
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
