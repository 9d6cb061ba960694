//! The Convergence tab: how each way of integrating the current straight path converges
//! (the library's convergence study, run on the engine's worker), plotted log–log against
//! gradient evaluations: the map's relative L2 error to a fine Gauss–Legendre reference and
//! the completeness error, one curve per rule, the tolerance mode round by round, and IDGI.
//!
//! - "Run study" queues one convergence job for the loaded image, target, baseline and
//!   objective; progress counts gradients; Cancel stops it within one model pass.
//! - The plots show one direction at a time (baseline → input, or the path reversed).
//! - Under the plots, the fewest gradients each scheme needed for a 1 % map error.
//! - "Save…" writes the rows as CSV, or a figure (PNG, SVG, PDF; the CSV beside it), the
//!   same files `pathscope converge` writes.

use std::path::Path;
use std::sync::Arc;

use eframe::egui::{self, Color32};
use egui_plot::{GridMark, Line, MarkerShape, Plot, PlotPoints, Points};

use super::command::{Command, Commands, FileRequest, Purpose};
use super::runtime::Runtime;
use super::state::StudioState;
use crate::attribution::convergence::{Direction, Scheme, Study, StudyConfig, StudyRow};
use crate::attribution::method::PathKind;
use crate::engine::{ConvergenceRequest, Event, JobId};

/// One colour per scheme (matplotlib's tab10, as the exported figure).
fn colour(k: usize) -> Color32 {
    let [r, g, b] = crate::export::chart::PALETTE[k % crate::export::chart::PALETTE.len()];
    Color32::from_rgb(r, g, b)
}

/// Accessible name of the tab's content.
pub const CONVERGENCE_VIEW: &str = "convergence view";
/// The plots' headings.
pub const MAP_PLOT: &str = "Map error against gradients";
pub const COMPLETENESS_PLOT: &str = "Completeness error against gradients";

/// The tab's settings and what its job sent back. Runtime only: a session does not keep
/// the study.
#[derive(Debug)]
pub struct ConvergenceView {
    /// Gauss–Legendre points of the reference.
    pub reference_steps: usize,
    /// The largest n of the fixed rules and IDGI (n = 4, 8, … up to it).
    pub largest_n: usize,
    /// The tolerance mode's tolerance (it refines until it meets it or 256 gradients).
    pub tolerance: f64,
    /// Also walk the path reversed (doubles the study's cost).
    pub both_directions: bool,
    /// The direction the plots show.
    pub shown: Direction,
    pub job: Option<JobId>,
    /// Gradients done, of how many.
    pub progress: (usize, usize),
    pub study: Option<Arc<Study>>,
    /// What the study measured, in words (settings at the time it was run).
    pub about: Option<String>,
    pub error: Option<String>,
    pub seconds: Option<f64>,
    /// The last file written, or why it was not.
    pub status: Option<String>,
}

impl Default for ConvergenceView {
    fn default() -> Self {
        Self {
            reference_steps: 512,
            largest_n: 128,
            tolerance: 0.005,
            both_directions: false,
            shown: Direction::ToInput,
            job: None,
            progress: (0, 0),
            study: None,
            about: None,
            error: None,
            seconds: None,
            status: None,
        }
    }
}

impl ConvergenceView {
    /// The study's configuration from the tab's settings.
    pub fn config(&self, batch_size: usize) -> StudyConfig {
        let steps = std::iter::successors(Some(4usize), |n| Some(n * 2))
            .take_while(|&n| n <= self.largest_n.max(4))
            .collect();
        StudyConfig {
            steps,
            tolerance: self.tolerance,
            reference_steps: self.reference_steps,
            directions: if self.both_directions {
                Direction::ALL.to_vec()
            } else {
                vec![Direction::ToInput]
            },
            batch_size,
            ..StudyConfig::default()
        }
    }

    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// Forgets the study (the model changed: its job ids start again).
    pub fn clear(&mut self) {
        *self = Self {
            reference_steps: self.reference_steps,
            largest_n: self.largest_n,
            tolerance: self.tolerance,
            both_directions: self.both_directions,
            ..Self::default()
        };
    }

    /// Takes the engine events of the convergence job; false for any other job's.
    pub fn on_event(&mut self, event: &Event, errors: &mut Vec<String>) -> bool {
        if self.job != Some(event.job()) {
            return false;
        }
        match event {
            Event::Progress { done, total, .. } => self.progress = (*done, *total),
            Event::Converged { study, seconds, .. } => {
                self.study = Some(study.clone());
                self.seconds = Some(*seconds);
                self.job = None;
                if !study.rows.iter().any(|r| r.direction == self.shown) {
                    self.shown = Direction::ToInput;
                }
            }
            Event::Cancelled { .. } => {
                self.job = None;
                self.error = Some("cancelled".into());
            }
            Event::Failed { message, .. } => {
                self.job = None;
                self.error = Some(message.clone());
                errors.push(message.clone());
            }
            Event::Notice { message, .. } => errors.push(message.clone()),
            _ => {}
        }
        true
    }
}

/// Queues the study of the current image's straight path.
pub fn start(view: &mut ConvergenceView, state: &StudioState, rt: &mut Runtime) {
    let (Some((input, _)), Some(target)) = (rt.input.clone(), state.target) else {
        rt.errors.push("load a model and an image first".into());
        return;
    };
    let settings = &state.settings;
    let request = ConvergenceRequest {
        input,
        baseline: settings.baseline.clone(),
        target,
        objective: settings.objective,
        config: view.config(settings.batch_size),
        seed: settings.seed,
    };
    view.about = Some(format!(
        "straight path from the {} baseline, explaining {}; errors against {} Gauss–Legendre points",
        settings.baseline.label(),
        rt.label_of(Some(target)).unwrap_or_default(),
        view.reference_steps
    ));
    view.progress = (0, request.config.gradient_count());
    view.error = None;
    view.status = None;
    let Some(engine) = rt.engine_mut() else {
        return;
    };
    if let Some(job) = view.job.take() {
        engine.cancel(job);
    }
    view.job = Some(engine.submit_convergence(request));
}

pub fn cancel(view: &ConvergenceView, rt: &mut Runtime) {
    if let (Some(job), Some(engine)) = (view.job, rt.engine_mut()) {
        engine.cancel(job);
    }
}

/// Writes the study: CSV for a `.csv` path; otherwise a figure in the format the extension
/// names, with the CSV beside it.
pub fn save(view: &ConvergenceView, path: &Path) -> Result<(), String> {
    use crate::export::{chart, convergence_figure, FigureFormat};
    let study = view.study.as_ref().ok_or("run the study first")?;
    let csv = path.with_extension("csv");
    crate::export::atomic::write_atomic(&csv, study.to_csv().as_bytes())
        .map_err(|e| format!("writing {}: {e}", csv.display()))?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        return Ok(());
    }
    let format = FigureFormat::from_path(path).ok_or("name the file .csv, .png, .svg or .pdf")?;
    let charts = convergence_figure::convergence_charts(study, view.tolerance);
    let scene = chart::chart_scene(&charts, 2, view.about.as_deref(), 200.0).map_err(|e| e.to_string())?;
    let meta = crate::export::metadata::FigureMetadata {
        title: "Convergence study".into(),
        command: format!(
            "pathscope converge --reference-steps {} --tolerance {} --steps {}",
            view.reference_steps,
            view.tolerance,
            view.config(16)
                .steps
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        settings: serde_json::json!({
            "reference_steps": view.reference_steps,
            "tolerance": view.tolerance,
            "about": view.about,
        }),
    };
    crate::export::write_figure(path, &scene, format, &meta).map_err(|e| e.to_string())
}

/// The rows of `scheme` in `direction`, as (log10 gradients, log10 value) points.
fn curve(study: &Study, scheme: Scheme, direction: Direction, value: fn(&StudyRow) -> f64) -> Vec<[f64; 2]> {
    study
        .rows
        .iter()
        .filter(|r| r.scheme == scheme && r.direction == direction)
        .map(|r| [(r.gradient_points as f64).log10(), value(r).max(FLOOR).log10()])
        .collect()
}

pub use crate::export::convergence_figure::FLOOR;

/// A legend's sample of a curve: a short line (dashed for the criteria).
fn swatch(ui: &mut egui::Ui, colour: Color32, dashed: bool) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(22.0, 12.0), egui::Sense::hover());
    let y = rect.center().y;
    let stroke = egui::Stroke::new(2.0, colour);
    if dashed {
        for i in 0..3 {
            let x = rect.left() + i as f32 * 8.0;
            ui.painter()
                .line_segment([egui::pos2(x, y), egui::pos2(x + 5.0, y)], stroke);
        }
    } else {
        ui.painter()
            .line_segment([egui::pos2(rect.left(), y), egui::pos2(rect.right(), y)], stroke);
        ui.painter().circle_filled(rect.center(), 2.5, colour);
    }
}

/// Accessible name of the legend above the plots.
pub const LEGEND: &str = "legend of the convergence plots";

/// Grid marks at decades (and 2, 5 between them) of a log10 axis.
fn log_marks(input: egui_plot::GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let mut marks = Vec::new();
    for e in (lo.floor() as i32 - 1)..=(hi.ceil() as i32) {
        for (m, step) in [(1.0f64, 1.0), (2.0, 0.1), (5.0, 0.1)] {
            let v = (m * 10f64.powi(e)).log10();
            if v >= lo && v <= hi {
                marks.push(GridMark {
                    value: v,
                    step_size: step,
                });
            }
        }
    }
    marks
}

fn plot(
    ui: &mut egui::Ui,
    id: &str,
    study: &Study,
    direction: Direction,
    value: fn(&StudyRow) -> f64,
    guide: Option<f64>,
    height: f32,
) {
    let schemes = study.schemes();
    Plot::new(id)
        .height(height)
        .x_grid_spacer(log_marks)
        .y_grid_spacer(log_marks)
        .x_axis_formatter(|m, _| crate::export::chart::log_label(10f64.powf(m.value)))
        .y_axis_formatter(|m, _| crate::export::chart::log_label(10f64.powf(m.value)))
        .x_axis_label("gradient evaluations")
        .label_formatter(|pos| match pos {
            egui_plot::HoverPosition::NearDataPoint {
                plot_name, position, ..
            } => Some(format!(
                "{plot_name}\n{} gradients: {:.3e}",
                10f64.powf(position.x).round(),
                10f64.powf(position.y)
            )),
            egui_plot::HoverPosition::Elsewhere { .. } => None,
        })
        .allow_scroll(false)
        .show(ui, |plot_ui| {
            for (k, &scheme) in schemes.iter().enumerate() {
                let points = curve(study, scheme, direction, value);
                plot_ui.line(
                    Line::new(scheme.label(), PlotPoints::from(points.clone()))
                        .color(colour(k))
                        .width(1.5),
                );
                plot_ui.points(
                    Points::new(scheme.label(), PlotPoints::from(points))
                        .color(colour(k))
                        .shape(MarkerShape::Circle)
                        .radius(2.5),
                );
            }
            if let Some(y) = guide.filter(|g| *g > 0.0) {
                plot_ui.hline(
                    egui_plot::HLine::new("", y.log10())
                        .color(Color32::GRAY)
                        .style(egui_plot::LineStyle::dashed_loose()),
                );
            }
        });
}

/// The tab.
pub fn show(ui: &mut egui::Ui, view: &mut ConvergenceView, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    let builder = egui::UiBuilder::new().accessibility_label(CONVERGENCE_VIEW);
    ui.scope_builder(builder, |ui| {
        if state.settings.path != PathKind::Straight {
            ui.label(
                "The study walks the straight path from the chosen baseline (the Method panel's path is not straight).",
            );
        }
        ui.horizontal_wrapped(|ui| {
            if view.running() {
                if ui.button("Cancel study").clicked() {
                    commands.push(Command::CancelConvergence);
                }
            } else {
                let ready = rt.input.is_some() && state.target.is_some();
                if ui.add_enabled(ready, egui::Button::new("Run study")).clicked() {
                    commands.push(Command::StartConvergence);
                }
            }
            let label = ui.label("Reference points");
            ui.add(
                egui::DragValue::new(&mut view.reference_steps)
                    .range(64..=4096)
                    .speed(16),
            )
            .labelled_by(label.id);
            let label = ui.label("n up to");
            egui::ComboBox::from_id_salt("convergence-largest-n")
                .selected_text(view.largest_n.to_string())
                .show_ui(ui, |ui| {
                    for n in [32, 64, 128, 256] {
                        ui.selectable_value(&mut view.largest_n, n, n.to_string());
                    }
                })
                .response
                .labelled_by(label.id);
            let label = ui.label("Tolerance");
            ui.add(
                egui::Slider::new(&mut view.tolerance, 0.001..=0.05)
                    .logarithmic(true)
                    .show_value(false),
            )
            .labelled_by(label.id);
            ui.label(format!("{:.2} %", view.tolerance * 100.0));
            ui.checkbox(&mut view.both_directions, "Also the reversed path");
        });
        if view.running() {
            let (done, total) = view.progress;
            let fraction = if total > 0 { done as f32 / total as f32 } else { 0.0 };
            ui.add(egui::ProgressBar::new(fraction).text(format!("{done} of {total} gradients")));
        }
        if let Some(error) = &view.error {
            ui.colored_label(Color32::from_rgb(200, 60, 60), format!("Study: {error}"));
        }
        let Some(study) = view.study.clone() else {
            if !view.running() {
                ui.label(
                    "Run the study to see how each quadrature rule, the tolerance mode and IDGI converge \
                         on this image as gradients are added.",
                );
            }
            return;
        };
        if let Some(about) = &view.about {
            ui.label(format!(
                "{about} (their completeness error {:.1e}); {} rows in {:.1} s.",
                study.reference_completeness_error,
                study.rows.len(),
                view.seconds.unwrap_or(0.0)
            ));
        }
        // The legend, outside the plots so it never covers a curve; the dashed lines are the
        // tolerance mode's criteria.
        ui.scope_builder(egui::UiBuilder::new().accessibility_label(LEGEND), |ui| {
            ui.horizontal_wrapped(|ui| {
                for (k, scheme) in study.schemes().into_iter().enumerate() {
                    swatch(ui, colour(k), false);
                    ui.add(egui::Label::new(scheme.label()).wrap_mode(egui::TextWrapMode::Extend));
                    ui.add_space(8.0);
                }
                swatch(ui, Color32::GRAY, true);
                ui.label(format!(
                    "tolerance mode's criteria (map {:.1} %, completeness {:.1} %); values below {FLOOR:.0e} drawn at {FLOOR:.0e}",
                    100.0 * crate::attribution::adaptive::MAP_TOLERANCE_FACTOR * view.tolerance,
                    100.0 * view.tolerance
                ));
            });
        });
        let directions = study.directions();
        if directions.len() > 1 {
            ui.horizontal(|ui| {
                for d in directions {
                    ui.selectable_value(&mut view.shown, d, d.label());
                }
            });
        }
        let two = ui.available_width() > 860.0;
        let height = if two {
            ui.available_height() - 100.0
        } else {
            (ui.available_height() - 160.0) / 2.0
        }
        .clamp(160.0, 520.0);
        let map_guide = crate::attribution::adaptive::MAP_TOLERANCE_FACTOR * view.tolerance;
        let both = |ui: &mut egui::Ui, w: f32| {
            ui.vertical(|ui| {
                ui.set_width(w);
                ui.strong(MAP_PLOT);
                plot(
                    ui,
                    "convergence-map",
                    &study,
                    view.shown,
                    |r| r.map_error,
                    Some(map_guide),
                    height,
                );
            });
            ui.vertical(|ui| {
                ui.set_width(w);
                ui.strong(COMPLETENESS_PLOT);
                plot(
                    ui,
                    "convergence-completeness",
                    &study,
                    view.shown,
                    |r| r.completeness_error,
                    Some(view.tolerance),
                    height,
                );
            });
        };
        if two {
            let w = (ui.available_width() - 12.0) / 2.0;
            ui.horizontal_top(|ui| both(ui, w));
        } else {
            let w = ui.available_width();
            both(ui, w);
        }
        ui.horizontal_wrapped(|ui| {
            ui.label("Gradients to a 1 % map error:");
            for scheme in study.schemes() {
                let n = study.points_to_reach(scheme, view.shown, f64::INFINITY, 0.01);
                ui.label(format!(
                    "{} {};",
                    scheme.label(),
                    n.map_or_else(|| "not reached".to_string(), |n| n.to_string())
                ));
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Save…").clicked() {
                commands.push(Command::ChooseFile(FileRequest::save(
                    Purpose::ExportConvergence,
                    "Save the convergence study",
                    "CSV or figure",
                    &["csv", "png", "svg", "pdf"],
                    "convergence.png",
                )));
            }
            if let Some(status) = &view.status {
                ui.label(status);
            }
        });
    });
}
