//! The Metrics tab: insertion and deletion curves of the computed maps (RISE,
//! algorithms.md §4.1), the perturbed image under the pointer, and the sanity-check plot.
//!
//! - The maps on offer are the current run's panels and the pinned rows, each as the 2-D
//!   map its panel shows (channel sum; its magnitude on the absolute panel). Pixels are
//!   moved in decreasing order of that map.
//! - "Score" queues one metrics job per ticked map on the engine's worker; the curves
//!   stream back as events and the UI never waits.
//! - The image at a point of a curve is rebuilt on the UI thread from the pixel order
//!   (copying pixels), so the ~450 images a map's curves score are never kept.
//! - "Run sanity check" queues a cascading-randomisation job for the current method
//!   (vanilla map) on the same worker; its stages, and the edge-detector control's, fill
//!   the sanity plot as they arrive.

use std::collections::HashSet;
use std::sync::Arc;

use eframe::egui::{self, Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{Corner, GridMark, Legend, Line, LineStyle, Plot, PlotPoints, Points, VLine};

use super::command::{Command, Commands};
use super::runtime::Runtime;
use super::state::StudioState;
use crate::attribution::catalog::Variant;
use crate::attribution::method::RunOptions;
use crate::engine::{Event, JobId, MetricsRequest, SanityDepths, SanityRequest};
use crate::metrics::insertion_deletion::{perturbed_image, pixel_order, rise_blur, Curve};
use crate::metrics::sanity::SanityStage;
use crate::metrics::scoring::{CurveParams, InsertionDeletion};
use crate::model::Architecture;

/// One colour per map (matplotlib's tab10), shared by its two curves.
const PALETTE: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

/// Side of the perturbed-image preview, in points.
const PREVIEW: f32 = 224.0;

/// Which curve of a scored map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CurveKind {
    Insertion,
    Deletion,
}

impl CurveKind {
    pub fn name(self) -> &'static str {
        match self {
            CurveKind::Insertion => "insertion",
            CurveKind::Deletion => "deletion",
        }
    }

    fn of(self, curves: &InsertionDeletion) -> &Curve {
        match self {
            CurveKind::Insertion => &curves.insertion,
            CurveKind::Deletion => &curves.deletion,
        }
    }
}

/// A point of a curve: which map (an index into [`MetricsView::entries`]), which curve,
/// and how many steps along it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurvePoint {
    pub entry: usize,
    pub kind: CurveKind,
    pub step: usize,
}

/// One map sent for scoring, and what came back.
pub struct ScoredMap {
    pub label: String,
    pub saliency: Arc<Vec<f32>>,
    /// The job while it is queued or running.
    pub job: Option<JobId>,
    pub curves: Option<Arc<InsertionDeletion>>,
    pub error: Option<String>,
    /// Pixel order of `saliency`, made on the first preview.
    order: Option<Arc<Vec<usize>>>,
}

/// What the sanity-check plot shows for one randomisation stage (stage 0: the original
/// model); every similarity compares the stage's map with the original map.
#[derive(Debug, Clone, PartialEq)]
pub struct SanityPoint {
    /// The block randomised last (the x tick label).
    pub label: String,
    /// How many blocks are randomised, counted from the top (the x position).
    pub depth: usize,
    pub spearman_abs: f64,
    pub spearman_signed: f64,
    pub ssim: f64,
    pub hog: f64,
}

impl From<&SanityStage> for SanityPoint {
    fn from(s: &SanityStage) -> Self {
        Self {
            label: s.label.clone(),
            depth: s.depth,
            spearman_abs: s.spearman_abs,
            spearman_signed: s.spearman_signed,
            ssim: s.ssim,
            hog: s.hog,
        }
    }
}

/// The two ends of the curves' sweeps for one input, kept for previews.
struct PreviewSources {
    input_key: String,
    /// The normalised input, flat [C, H, W].
    image: Vec<f32>,
    /// Its RISE blur (where insertion starts).
    blurred: Vec<f32>,
}

/// State of the Metrics tab.
pub struct MetricsView {
    /// RISE moves 224 pixels per step; more is coarser and faster.
    pub pixels_per_step: usize,
    pub batch: usize,
    /// Labels of the maps the user unticked.
    pub excluded: HashSet<String>,
    pub entries: Vec<ScoredMap>,
    /// The (model, input, target) the entries belong to; they are dropped when it changes.
    context: Option<(String, String, usize)>,
    /// Progress of the job running now: images scored, of how many.
    progress: (usize, usize),
    /// The point last hovered; its image stays shown when the pointer leaves.
    pub selected: Option<CurvePoint>,
    preview: Option<(CurvePoint, TextureHandle)>,
    images: Option<PreviewSources>,
    /// Where the curves were drawn last frame.
    pub plot_rect: Option<egui::Rect>,
    /// Sanity-check stages of the current method, in order of depth, as they arrive.
    pub sanity: Vec<SanityPoint>,
    /// The edge-detector control at the same depths (1 throughout).
    pub sanity_control: Vec<SanityPoint>,
    /// One stage per block; `None` until the user chooses: every block for SqueezeNet,
    /// [`MetricsView::sanity_depth_count`] evenly spaced depths for the bigger models.
    pub sanity_every_block: Option<bool>,
    /// How many depths (trained and fully randomised included) when not every block.
    pub sanity_depth_count: usize,
    /// Seeds the re-drawn parameters.
    pub sanity_seed: u64,
    /// What the plot shows (method, class, seed), set when the job is queued.
    pub sanity_about: Option<String>,
    /// Why the last sanity job ended without its stages ("cancelled" or the error).
    pub sanity_error: Option<String>,
    sanity_job: Option<JobId>,
    /// Stages done, of how many.
    sanity_progress: (usize, usize),
    /// The (model, input, target) the sanity stages belong to.
    sanity_context: Option<(String, String, usize)>,
}

impl Default for MetricsView {
    fn default() -> Self {
        Self {
            pixels_per_step: CurveParams::default().pixels_per_step,
            batch: CurveParams::default().batch,
            excluded: HashSet::new(),
            entries: Vec::new(),
            context: None,
            progress: (0, 0),
            selected: None,
            preview: None,
            images: None,
            plot_rect: None,
            sanity: Vec::new(),
            sanity_control: Vec::new(),
            sanity_every_block: None,
            sanity_depth_count: 6,
            sanity_seed: 0,
            sanity_about: None,
            sanity_error: None,
            sanity_job: None,
            sanity_progress: (0, 0),
            sanity_context: None,
        }
    }
}

impl MetricsView {
    /// True while metrics jobs are queued or running.
    pub fn running(&self) -> bool {
        self.entries.iter().any(|e| e.job.is_some())
    }

    /// Fraction of the queued maps scored, 0..=1.
    pub fn progress(&self) -> f32 {
        if self.entries.is_empty() {
            return 0.0;
        }
        let done = self.entries.iter().filter(|e| e.job.is_none()).count() as f32;
        let (d, t) = self.progress;
        let within = if self.running() && t > 0 {
            d as f32 / t as f32
        } else {
            0.0
        };
        ((done + within) / self.entries.len() as f32).min(1.0)
    }

    /// True while a sanity job is queued or running.
    pub fn sanity_running(&self) -> bool {
        self.sanity_job.is_some()
    }

    /// Stages of the sanity job done, of how many (0 of 0 before its first report).
    pub fn sanity_progress(&self) -> (usize, usize) {
        self.sanity_progress
    }

    /// Forgets every score and sanity stage (the model changed: its job ids start again).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.context = None;
        self.selected = None;
        self.preview = None;
        self.progress = (0, 0);
        self.sanity.clear();
        self.sanity_control.clear();
        self.sanity_about = None;
        self.sanity_error = None;
        self.sanity_job = None;
        self.sanity_progress = (0, 0);
        self.sanity_context = None;
    }

    fn on_sanity_event(&mut self, event: &Event, errors: &mut Vec<String>) {
        match event {
            Event::Progress { done, total, .. } => self.sanity_progress = (*done, *total),
            Event::SanityStage { stage, control, .. } => {
                self.sanity.retain(|p| p.depth != stage.depth);
                self.sanity.push(stage.into());
                self.sanity_control.retain(|p| p.depth != control.depth);
                self.sanity_control.push(control.into());
            }
            Event::SanityDone { stages, control, .. } => {
                self.sanity = stages.iter().map(SanityPoint::from).collect();
                self.sanity_control = control.iter().map(SanityPoint::from).collect();
                self.sanity_job = None;
            }
            Event::Cancelled { .. } => {
                self.sanity_job = None;
                self.sanity_error = Some("cancelled".into());
            }
            Event::Failed { message, .. } => {
                self.sanity_job = None;
                self.sanity_error = Some(message.clone());
                errors.push(message.clone());
            }
            Event::Notice { message, .. } => errors.push(message.clone()),
            Event::Partial { .. } | Event::Finished { .. } | Event::Scored { .. } | Event::Predicted { .. } => {}
        }
    }

    /// Takes the engine events of metrics and sanity jobs; returns false for any other
    /// job's event.
    pub fn on_event(&mut self, event: &Event, errors: &mut Vec<String>) -> bool {
        if self.sanity_job == Some(event.job()) {
            self.on_sanity_event(event, errors);
            return true;
        }
        let Some(entry) = self.entries.iter_mut().find(|e| e.job == Some(event.job())) else {
            return false;
        };
        match event {
            Event::Progress { done, total, .. } => self.progress = (*done, *total),
            Event::Scored { curves, .. } => {
                entry.curves = Some(curves.clone());
                entry.job = None;
                self.progress = (0, 0);
            }
            Event::Cancelled { .. } => {
                entry.job = None;
                entry.error = Some("cancelled".into());
            }
            Event::Failed { message, .. } => {
                entry.job = None;
                entry.error = Some(message.clone());
                errors.push(format!("metrics of {}: {message}", entry.label));
            }
            Event::Notice { message, .. } => errors.push(format!("metrics of {}: {message}", entry.label)),
            Event::Partial { .. }
            | Event::Finished { .. }
            | Event::Predicted { .. }
            | Event::SanityStage { .. }
            | Event::SanityDone { .. } => {}
        }
        true
    }

    fn scored(&self) -> impl Iterator<Item = (usize, &ScoredMap, &InsertionDeletion)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.curves.as_deref().map(|c| (i, e, c)))
    }

    /// The curve point nearest the plot coordinate (x: fraction, y: probability).
    fn nearest(&self, x: f64, y: f64) -> Option<CurvePoint> {
        let mut best: Option<(f64, CurvePoint)> = None;
        for (entry, _, curves) in self.scored() {
            for kind in [CurveKind::Insertion, CurveKind::Deletion] {
                let curve = kind.of(curves);
                let Some(step) = (0..curve.fractions.len()).min_by(|&a, &b| {
                    (curve.fractions[a] - x)
                        .abs()
                        .total_cmp(&(curve.fractions[b] - x).abs())
                }) else {
                    continue;
                };
                let d = (curve.scores[step] - y).abs();
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, CurvePoint { entry, kind, step }));
                }
            }
        }
        best.map(|(_, p)| p)
    }
}

fn colour(entry: usize) -> Color32 {
    PALETTE[entry % PALETTE.len()]
}

/// Short names of the panels, for legend entries.
fn variant_tag(v: Variant) -> &'static str {
    match v {
        Variant::Vanilla => "signed",
        Variant::Absolute => "abs",
        Variant::Recalibrated => "re-cal",
        Variant::Idgi => "IDGI",
    }
}

/// The maps that can be scored: the finished panels of the current run, then the pinned
/// rows, as (label, 2-D map as displayed).
pub fn metric_sources(state: &StudioState, rt: &Runtime) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    if !rt.running() {
        let method = state.settings.method_label();
        for v in Variant::ALL {
            let computed = match v {
                Variant::Absolute => state.results.contains_key(&Variant::Vanilla),
                _ => state.results.contains_key(&v),
            };
            if let Some(map) = computed.then(|| state.map_of(v, None)).flatten() {
                out.push((format!("{method} [{}]", variant_tag(v)), map));
            }
        }
    }
    for (r, row) in state.pinned.iter().enumerate() {
        for (v, map) in &row.maps {
            out.push((format!("#{r} {} [{}]", row.label, variant_tag(*v)), map.clone()));
        }
    }
    out
}

fn context(state: &StudioState, rt: &Runtime) -> Option<(String, String, usize)> {
    match (&rt.model, &rt.input, state.target) {
        (super::runtime::ModelSlot::Ready { name, .. }, Some((_, key)), Some(t)) => {
            Some((name.clone(), key.clone(), t))
        }
        _ => None,
    }
}

/// Drops the scores and sanity stages when the model, image or target changed since they
/// were made (cancelling their jobs).
pub fn sync_context(m: &mut MetricsView, state: &StudioState, rt: &mut Runtime) {
    let now = context(state, rt);
    let stale = |c: &Option<(String, String, usize)>| c.is_some() && *c != now;
    if stale(&m.context) || stale(&m.sanity_context) {
        if let Some(engine) = rt.engine_mut() {
            for job in m.entries.iter().filter_map(|e| e.job) {
                engine.cancel(job);
            }
            if let Some(job) = m.sanity_job {
                engine.cancel(job);
            }
        }
        m.clear();
    }
}

/// Whether the sanity check computes every depth: the user's choice, else every block for
/// SqueezeNet (10 blocks) and evenly spaced depths for the bigger models.
pub fn sanity_every_block(m: &MetricsView, rt: &Runtime) -> bool {
    m.sanity_every_block.unwrap_or_else(|| match rt.engine() {
        Some(engine) => matches!(
            engine.model().architecture(),
            Architecture::SqueezeNet1_0 | Architecture::SqueezeNet1_1
        ),
        None => true,
    })
}

/// Queues the cascading randomisation of the current method (its vanilla map) with the
/// edge control; a sanity job already running is cancelled.
pub fn start_sanity(m: &mut MetricsView, state: &StudioState, rt: &mut Runtime) {
    sync_context(m, state, rt);
    let (Some(context), Some((input, _))) = (context(state, rt), rt.input.clone()) else {
        rt.errors.push("load a model and an image first".into());
        return;
    };
    let Some(spec) = state.settings.spec_for(Variant::Vanilla) else {
        rt.errors.push("the current method has no map to check".into());
        return;
    };
    let depths = if sanity_every_block(m, rt) {
        SanityDepths::Every
    } else {
        SanityDepths::Evenly(m.sanity_depth_count.max(2))
    };
    let seed = m.sanity_seed;
    let about = format!(
        "{}, explaining {}, randomisation seed {seed}",
        state.settings.method_label(),
        rt.label_of(state.target).unwrap_or_default()
    );
    let request = SanityRequest {
        checkpoint: rt.model_source.clone(),
        input,
        target: context.2,
        objective: state.settings.objective,
        spec,
        options: RunOptions {
            batch_size: state.settings.batch_size,
            seed: state.settings.seed,
            ..RunOptions::default()
        },
        depths,
        seed,
    };
    let Some(engine) = rt.engine_mut() else {
        return;
    };
    if let Some(job) = m.sanity_job.take() {
        engine.cancel(job);
    }
    m.sanity_job = Some(engine.submit_sanity(request));
    m.sanity.clear();
    m.sanity_control.clear();
    m.sanity_progress = (0, 0);
    m.sanity_error = None;
    m.sanity_about = Some(about);
    m.sanity_context = Some(context);
}

pub fn cancel_sanity(m: &MetricsView, rt: &mut Runtime) {
    if let (Some(engine), Some(job)) = (rt.engine_mut(), m.sanity_job) {
        engine.cancel(job);
    }
}

/// Queues a metrics job for every ticked map; maps already scored with the same parameters
/// keep their curves.
pub fn score_maps(m: &mut MetricsView, state: &StudioState, rt: &mut Runtime) {
    sync_context(m, state, rt);
    let (Some(context), Some((input, _))) = (context(state, rt), rt.input.clone()) else {
        rt.errors.push("load a model and an image first".into());
        return;
    };
    let params = CurveParams {
        pixels_per_step: m.pixels_per_step.max(1),
        batch: m.batch.max(1),
    };
    let sources: Vec<(String, Vec<f32>)> = metric_sources(state, rt)
        .into_iter()
        .filter(|(label, _)| !m.excluded.contains(label))
        .collect();
    if sources.is_empty() {
        rt.errors.push("no computed maps to score: press Run first".into());
        return;
    }
    let Some(engine) = rt.engine_mut() else {
        return;
    };
    let mut old = std::mem::take(&mut m.entries);
    for job in old.iter().filter_map(|e| e.job) {
        engine.cancel(job);
    }
    for (label, map) in sources {
        let reuse = old.iter().position(|e| {
            e.label == label && *e.saliency == map && e.curves.as_ref().is_some_and(|c| c.params == params)
        });
        let entry = match reuse {
            Some(i) => old.swap_remove(i),
            None => {
                let saliency = Arc::new(map);
                let job = engine.submit_metrics(MetricsRequest {
                    input: input.clone(),
                    saliency: saliency.clone(),
                    target: context.2,
                    params,
                });
                ScoredMap {
                    label,
                    saliency,
                    job: Some(job),
                    curves: None,
                    error: None,
                    order: None,
                }
            }
        };
        m.entries.push(entry);
    }
    m.context = Some(context);
    m.selected = None;
    m.preview = None;
    m.progress = (0, 0);
}

pub fn cancel_scoring(m: &MetricsView, rt: &mut Runtime) {
    if let Some(engine) = rt.engine_mut() {
        for job in m.entries.iter().filter_map(|e| e.job) {
            engine.cancel(job);
        }
    }
}

/// The Metrics tab.
pub fn show(ui: &mut egui::Ui, m: &mut MetricsView, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        controls(ui, m, state, rt, commands);
        ui.separator();
        if m.entries.is_empty() {
            ui.label("Tick the maps to score and press Score.");
        } else {
            ui.horizontal_top(|ui| {
                let width = (ui.available_width() - PREVIEW - 24.0).max(320.0);
                ui.vertical(|ui| curves_plot(ui, m, width));
                ui.vertical(|ui| preview_panel(ui, m, rt));
            });
            auc_table(ui, m);
        }
        ui.separator();
        sanity_section(ui, m, state, rt, commands);
    });
}

fn controls(ui: &mut egui::Ui, m: &mut MetricsView, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    ui.strong("Insertion / deletion (RISE)");
    let target = rt.label_of(state.target).unwrap_or_else(|| "the target".into());
    ui.label(format!(
        "y: softmax probability of {target}. Insertion adds the most salient pixels to a blurred copy; \
         deletion replaces them with the mean colour. Pixels are ranked by each panel's map as shown \
         (channel sum; its magnitude on the absolute panel). Higher insertion and lower deletion AUC are better."
    ));
    let sources = metric_sources(state, rt);
    if sources.is_empty() {
        ui.label("No computed maps yet: run a method (and pin rows to compare methods).");
    }
    ui.horizontal_wrapped(|ui| {
        for (label, _) in &sources {
            let mut on = !m.excluded.contains(label);
            if ui.checkbox(&mut on, label.as_str()).changed() {
                if on {
                    m.excluded.remove(label);
                } else {
                    m.excluded.insert(label.clone());
                }
            }
        }
    });
    let running = m.running();
    ui.horizontal(|ui| {
        ui.label("pixels per step");
        ui.add_enabled(
            !running,
            egui::DragValue::new(&mut m.pixels_per_step).range(1..=224 * 224),
        )
        .on_hover_text("RISE moves 224 pixels per step (225 images per curve); more is faster and coarser");
        let ticked = sources.iter().any(|(l, _)| !m.excluded.contains(l));
        let can_score = ticked && !running && rt.input.is_some() && rt.model_ready();
        if ui.add_enabled(can_score, egui::Button::new("Score")).clicked() {
            commands.push(Command::ScoreMaps);
        }
        if ui.add_enabled(running, egui::Button::new("Cancel scoring")).clicked() {
            commands.push(Command::CancelScoring);
        }
        if !m.entries.is_empty() {
            let bar = egui::ProgressBar::new(m.progress()).desired_width(200.0);
            ui.add(bar.show_percentage());
            let scored = m.scored().count();
            ui.label(format!("{scored} / {} maps scored", m.entries.len()));
        }
    });
}

fn curves_plot(ui: &mut egui::Ui, m: &mut MetricsView, width: f32) {
    let mut lines = Vec::new();
    for (i, e, curves) in m.scored() {
        for kind in [CurveKind::Insertion, CurveKind::Deletion] {
            let curve = kind.of(curves);
            let points: Vec<[f64; 2]> = curve
                .fractions
                .iter()
                .zip(&curve.scores)
                .map(|(&x, &y)| [x, y])
                .collect();
            let style = match kind {
                CurveKind::Insertion => LineStyle::Solid,
                CurveKind::Deletion => LineStyle::dashed_dense(),
            };
            let name = format!("{} {} AUC {:.3}", e.label, kind.name(), curve.auc);
            lines.push(
                Line::new(name, PlotPoints::new(points))
                    .color(colour(i))
                    .style(style)
                    .width(2.0),
            );
        }
    }
    let marker = m.selected.and_then(|p| {
        let curves = m.entries.get(p.entry)?.curves.as_deref()?;
        let curve = p.kind.of(curves);
        Some((curve.fractions[p.step], curve.scores[p.step], colour(p.entry)))
    });
    let response = Plot::new("metrics_curves")
        .width(width)
        .height(380.0)
        .legend(
            Legend::default()
                .position(Corner::RightTop)
                .follow_insertion_order(true),
        )
        .include_x(0.0)
        .include_x(1.0)
        .include_y(0.0)
        .include_y(1.0)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .x_axis_label("fraction of pixels inserted / deleted")
        .y_axis_label("probability")
        .show(ui, |plot| {
            for line in lines {
                plot.line(line);
            }
            if let Some((x, y, c)) = marker {
                plot.add(VLine::new("", x).color(Color32::from_gray(140)).width(1.0));
                plot.add(Points::new("", vec![[x, y]]).color(c).radius(5.0));
            }
            plot.pointer_coordinate()
        });
    m.plot_rect = Some(response.response.rect);
    if response.response.hovered() {
        if let Some(p) = response.inner {
            if let Some(point) = m.nearest(p.x, p.y) {
                m.selected = Some(point);
            }
        }
    }
    ui.label("solid: insertion, dashed: deletion; hover a curve to see its image");
}

/// The image at the selected point, rebuilt only when the point changes.
fn preview_panel(ui: &mut egui::Ui, m: &mut MetricsView, rt: &Runtime) {
    ui.strong("Perturbed image");
    let Some(point) = m.selected else {
        ui.label("hover a curve");
        return;
    };
    let Some(entry) = m.entries.get(point.entry) else {
        return;
    };
    let Some(curves) = entry.curves.clone() else {
        return;
    };
    let curve = point.kind.of(&curves);
    let label = entry.label.clone();
    if m.preview.as_ref().map(|(p, _)| *p) != Some(point) {
        match perturbed_rgb(m, rt, point, curves.params.pixels_per_step) {
            Some(image) => {
                let tex = ui.ctx().load_texture("metrics-preview", image, TextureOptions::NEAREST);
                m.preview = Some((point, tex));
            }
            None => m.preview = None,
        }
    }
    if let Some((_, tex)) = &m.preview {
        ui.add(egui::Image::new(tex).fit_to_exact_size(egui::vec2(PREVIEW, PREVIEW)));
    }
    let verb = match point.kind {
        CurveKind::Insertion => "inserted",
        CurveKind::Deletion => "deleted",
    };
    ui.colored_label(colour(point.entry), label);
    ui.label(format!(
        "{}: {:.1} % of pixels {verb}, p = {:.3}",
        point.kind.name(),
        curve.fractions[point.step] * 100.0,
        curve.scores[point.step]
    ));
}

/// The image a curve scored at `point`, as displayable RGB.
fn perturbed_rgb(m: &mut MetricsView, rt: &Runtime, point: CurvePoint, pixels_per_step: usize) -> Option<ColorImage> {
    let (input, key) = rt.input.as_ref()?;
    let norm = rt.normalization()?;
    let (c, h, w) = input.dims3().ok()?;
    if m.images.as_ref().is_none_or(|p| &p.input_key != key) {
        let image = input.flatten_all().ok()?.to_vec1::<f32>().ok()?;
        let blurred = rise_blur(&image, c, h, w);
        m.images = Some(PreviewSources {
            input_key: key.clone(),
            image,
            blurred,
        });
    }
    let PreviewSources { image, blurred, .. } = m.images.as_ref()?;
    let entry = m.entries.get_mut(point.entry)?;
    let order = entry
        .order
        .get_or_insert_with(|| Arc::new(pixel_order(&entry.saliency)))
        .clone();
    if order.len() != h * w {
        return None;
    }
    let zeros;
    let (start, finish): (&[f32], &[f32]) = match point.kind {
        CurveKind::Insertion => (blurred, image),
        CurveKind::Deletion => {
            zeros = vec![0f32; image.len()];
            (image, &zeros)
        }
    };
    let mut px = perturbed_image(start, finish, &order, c, pixels_per_step, point.step);
    norm.denormalize(&mut px, h * w);
    let rgb = norm.pixels_to_rgb8(&px, h * w);
    Some(ColorImage::from_rgb([w, h], &rgb))
}

fn auc_table(ui: &mut egui::Ui, m: &MetricsView) {
    ui.add_space(6.0);
    egui::Grid::new("auc_table").striped(true).show(ui, |ui| {
        ui.strong("map");
        ui.strong("insertion AUC (higher is better)");
        ui.strong("deletion AUC (lower is better)");
        ui.end_row();
        for (i, e) in m.entries.iter().enumerate() {
            ui.colored_label(colour(i), e.label.as_str());
            match (&e.curves, &e.error, e.job) {
                (Some(c), _, _) => {
                    ui.label(format!("{:.3}", c.insertion.auc));
                    ui.label(format!("{:.3}", c.deletion.auc));
                }
                (None, Some(err), _) => {
                    ui.colored_label(Color32::from_rgb(220, 80, 60), err.as_str());
                    ui.label("");
                }
                (None, None, Some(_)) => {
                    ui.spinner();
                    ui.label("queued");
                }
                (None, None, None) => {
                    ui.label("-");
                    ui.label("-");
                }
            }
            ui.end_row();
        }
    });
}

fn sanity_section(ui: &mut egui::Ui, m: &mut MetricsView, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    ui.strong("Sanity check (cascading model randomisation)");
    ui.label(
        "The model's blocks are re-drawn at random from the logits down (x: the block randomised last) and \
         the current method's map is recomputed at each depth; each line is its similarity to the trained \
         model's map. A map that explains the model should lose similarity as layers are randomised; the \
         dashed edge-detector control ignores the model and stays at 1.",
    );
    let running = m.sanity_running();
    let mut every = sanity_every_block(m, rt);
    ui.horizontal(|ui| {
        let toggle = ui
            .add_enabled(!running, egui::Checkbox::new(&mut every, "every block"))
            .on_hover_text("one stage per block; for big models (EfficientNet: 19 blocks) untick and choose N");
        if toggle.changed() {
            m.sanity_every_block = Some(every);
        }
        ui.add_enabled_ui(!running && !every, |ui| {
            ui.label("depths");
            ui.add(egui::DragValue::new(&mut m.sanity_depth_count).range(2..=64))
                .on_hover_text("evenly spaced, the trained and the fully randomised model included");
        });
        ui.add_enabled_ui(!running, |ui| {
            ui.label("seed");
            ui.add(egui::DragValue::new(&mut m.sanity_seed))
                .on_hover_text("seeds the re-drawn parameters");
        });
        let can_run = !running && rt.input.is_some() && state.target.is_some() && rt.model_ready();
        let method = state.settings.method_label();
        if ui
            .add_enabled(can_run, egui::Button::new("Run sanity check"))
            .on_hover_text(format!(
                "randomise the model block by block and recompute {method} each time"
            ))
            .clicked()
        {
            commands.push(Command::StartSanity);
        }
        if ui
            .add_enabled(running, egui::Button::new("Cancel sanity check"))
            .clicked()
        {
            commands.push(Command::CancelSanity);
        }
        let (done, total) = m.sanity_progress;
        if running || total > 0 {
            let fraction = if total > 0 { done as f32 / total as f32 } else { 0.0 };
            ui.add(egui::ProgressBar::new(fraction).desired_width(160.0));
            if total > 0 {
                ui.label(format!("{done} / {total} stages"));
            } else {
                ui.spinner();
            }
        }
    });
    if let Some(err) = &m.sanity_error {
        ui.colored_label(Color32::from_rgb(220, 80, 60), format!("sanity check: {err}"));
    }
    if !m.sanity.is_empty() {
        if let Some(about) = &m.sanity_about {
            ui.label(about.as_str());
        }
        sanity_plot_with_control(ui, "sanity_plot", &m.sanity, &m.sanity_control, 260.0);
    }
}

/// Similarity (y) against randomisation depth (x, ticks named by block), one line per
/// measure. Stage 0 is the original model, where every similarity is 1. The legend sits in
/// empty room right of the last stage.
pub fn sanity_plot(ui: &mut egui::Ui, id: &str, points: &[SanityPoint], height: f32) -> egui::Response {
    sanity_plot_with_control(ui, id, points, &[], height)
}

/// The name of the control's line in the sanity plot's legend.
pub const EDGE_CONTROL_LEGEND: &str = "edge control (Sobel)";

/// [`sanity_plot`] with a dashed grey reference line: the edge-detector control's lowest
/// similarity of the four at each depth (it ignores the model, so it stays at 1).
pub fn sanity_plot_with_control(
    ui: &mut egui::Ui,
    id: &str,
    points: &[SanityPoint],
    control: &[SanityPoint],
    height: f32,
) -> egui::Response {
    type Measure = (&'static str, fn(&SanityPoint) -> f64, Color32);
    const MEASURES: [Measure; 4] = [
        ("Spearman (abs)", |p| p.spearman_abs, PALETTE[0]),
        ("Spearman (signed)", |p| p.spearman_signed, PALETTE[1]),
        ("SSIM", |p| p.ssim, PALETTE[2]),
        ("HOG", |p| p.hog, PALETTE[3]),
    ];
    let mut sorted: Vec<&SanityPoint> = points.iter().collect();
    sorted.sort_by_key(|p| p.depth);
    let mut control: Vec<[f64; 2]> = control
        .iter()
        .map(|p| {
            let lowest = [p.spearman_abs, p.spearman_signed, p.ssim, p.hog]
                .into_iter()
                .fold(f64::INFINITY, f64::min);
            [p.depth as f64, lowest]
        })
        .collect();
    control.sort_by(|a, b| a[0].total_cmp(&b[0]));
    // Room right of the last stage for the legend, so it never hides a line.
    let legend_room = sorted.last().map_or(1.0, |p| p.depth.max(1) as f64 * 1.3);
    let ticks: Vec<(f64, String)> = sorted.iter().map(|p| (p.depth as f64, p.label.clone())).collect();
    let marks: Vec<GridMark> = ticks
        .iter()
        .map(|(x, _)| GridMark {
            value: *x,
            step_size: 1.0,
        })
        .collect();
    Plot::new(id)
        .height(height)
        .legend(
            Legend::default()
                .position(Corner::RightTop)
                .follow_insertion_order(true),
        )
        .include_y(0.0)
        .include_y(1.0)
        .include_x(legend_room)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .x_grid_spacer(move |_| marks.clone())
        .x_axis_formatter(move |mark, _| {
            ticks
                .iter()
                .find(|(x, _)| (x - mark.value).abs() < 1e-6)
                .map(|(_, l)| l.clone())
                .unwrap_or_default()
        })
        .x_axis_label("randomised up to block")
        .y_axis_label("similarity to the original map")
        .show(ui, |plot| {
            for (name, value, c) in MEASURES {
                let pts: Vec<[f64; 2]> = sorted.iter().map(|p| [p.depth as f64, value(p)]).collect();
                plot.line(Line::new(name, PlotPoints::new(pts.clone())).color(c).width(2.0));
                plot.add(Points::new(name, pts).color(c).radius(3.5));
            }
            if !control.is_empty() {
                plot.line(
                    Line::new(EDGE_CONTROL_LEGEND, PlotPoints::new(control))
                        .color(Color32::from_gray(170))
                        .style(LineStyle::dashed_loose())
                        .width(2.0),
                );
            }
        })
        .response
}
