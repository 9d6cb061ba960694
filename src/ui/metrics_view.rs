//! The Metrics tab: insertion and deletion curves of the computed maps (RISE,
//! algorithms.md §4.1), the perturbed image under the pointer, and the sanity-check plot.
//!
//! - The maps on offer are the current run's panels and the pinned rows, each as the 2-D
//!   map its panel shows (channel sum; its magnitude on the absolute panel). Pixels are
//!   moved in decreasing order of that map. A map is named as the comparison grid names its
//!   panel, keeps one colour wherever the tab shows it, and the legend sits outside the
//!   plot; the method's long description is written once, as a caption.
//! - The x axis is the fraction of pixels moved. Deletion usually destroys the class within
//!   the first few percent, so by default the axis is logarithmic near 0 ([`XScale`]).
//! - Side by side when the tab is wide, the curves and the sanity plot take their height
//!   from the window, so both are in view without scrolling at 1280×800.
//! - "Score" queues one metrics job per ticked map on the engine's worker; the curves
//!   stream back as events and the UI never waits.
//! - The image at a point of a curve is rebuilt on the UI thread from the pixel order
//!   (copying pixels), so the ~450 images a map's curves score are never kept.
//! - With "ROAD" ticked, the same job also computes the map's ROAD curves (Rong et al.,
//!   ICML 2022: pixels removed most- or least-relevant first and filled by noisy linear
//!   imputation or the mean colour, [`crate::metrics::road`]), drawn below the AUC table
//!   against the fraction removed on a linear axis (ROAD samples 10..90 %).
//! - "Run sanity check" queues a cascading-randomisation job for the current method
//!   (vanilla map) on the same worker; its stages, and the edge-detector control's, fill
//!   the sanity plot as they arrive.

use std::collections::HashSet;
use std::sync::Arc;

use eframe::egui::{self, Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{
    AxisHints, GridInput, GridMark, HoverPosition, Line, LineStyle, MarkerShape, Plot, PlotPoints, Points, VLine,
};

use super::command::{Command, Commands};
use super::runtime::Runtime;
use super::state::StudioState;
use crate::attribution::catalog::Variant;
use crate::attribution::method::RunOptions;
use crate::engine::{Event, JobId, MetricsRequest, SanityDepths, SanityRequest};
use crate::metrics::imputation::Imputation;
use crate::metrics::insertion_deletion::{perturbed_image, pixel_order, rise_blur, Curve};
use crate::metrics::road::{Road, RoadOrder, RoadParams};
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

/// The sanity plot's measures: colours apart from the maps' (colorbrewer's Dark2), so a
/// measure is never mistaken for a map.
const MEASURE_COLOURS: [Color32; 4] = [
    Color32::from_rgb(27, 158, 119),
    Color32::from_rgb(217, 95, 2),
    Color32::from_rgb(117, 112, 179),
    Color32::from_rgb(231, 41, 138),
];

/// The edge-detector control's line in the sanity plot.
const CONTROL_COLOUR: Color32 = Color32::from_gray(150);

/// Side of the perturbed-image preview, in points: full size in one column, smaller beside
/// the sanity section.
const PREVIEW: f32 = 224.0;
const PREVIEW_BESIDE: f32 = 150.0;

/// Below this width of the tab the two sections are stacked.
const TWO_COLUMNS: f32 = 860.0;

/// Heights a plot may take.
const PLOT_MIN: f32 = 180.0;
const PLOT_MAX: f32 = 440.0;

/// Accessible names of the legends, for tests and screen readers.
pub const CURVES_LEGEND: &str = "legend of the curves";
pub const SANITY_LEGEND: &str = "legend of the sanity plot";
pub const ROAD_LEGEND: &str = "legend of the ROAD curves";
/// The heading above the ROAD curves.
pub const ROAD_HEADING: &str = "ROAD (remove and debias)";
/// Accessible name of the whole tab's content.
pub const METRICS_VIEW: &str = "metrics view";
/// The heading above the sanity plot.
pub const SANITY_HEADING: &str = "Sanity check (cascading model randomisation)";

/// How the fraction of pixels moved is laid along the x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XScale {
    /// Position = fraction.
    Linear,
    /// Logarithmic away from 0, linear near it: the first percent takes 15 % of the width
    /// (see [`x_position`]). Deletion curves, which fall within the first few percent,
    /// are readable.
    #[default]
    Log,
}

impl XScale {
    pub const ALL: [XScale; 2] = [XScale::Linear, XScale::Log];

    pub fn name(self) -> &'static str {
        match self {
            XScale::Linear => "linear",
            XScale::Log => "log (first % widened)",
        }
    }
}

/// Where [`XScale::Log`] turns from linear to logarithmic: 1 % of the pixels.
const LOG_KNEE: f64 = 0.01;

/// Position on the x axis (0 ..= 1) of a fraction of pixels moved (0 ..= 1). The log scale
/// is ln(1 + f/k) / ln(1 + 1/k) with k = 1 %: 0 and 1 stay in place, 1 % lands at 0.150,
/// 5 % at 0.388, 50 % at 0.852.
pub fn x_position(scale: XScale, fraction: f64) -> f64 {
    match scale {
        XScale::Linear => fraction,
        XScale::Log => (fraction.max(0.0) / LOG_KNEE).ln_1p() / (1.0 / LOG_KNEE).ln_1p(),
    }
}

/// The inverse of [`x_position`]: the fraction of pixels at an x position.
pub fn x_fraction(scale: XScale, position: f64) -> f64 {
    match scale {
        XScale::Linear => position,
        XScale::Log => LOG_KNEE * (position * (1.0 / LOG_KNEE).ln_1p()).exp_m1(),
    }
}

/// The fractions the log axis marks.
const LOG_TICKS: [f64; 9] = [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

/// Grid marks of the x axis, at positions. A log mark's step is its distance to the
/// nearer neighbour, so egui_plot hides the labels that would overlap.
fn x_marks(scale: XScale, input: GridInput) -> Vec<GridMark> {
    match scale {
        XScale::Linear => egui_plot::log_grid_spacer(10)(input),
        XScale::Log => {
            let at: Vec<f64> = LOG_TICKS.iter().map(|&f| x_position(scale, f)).collect();
            (0..at.len())
                .map(|i| {
                    let left = i.checked_sub(1).map_or(f64::INFINITY, |j| at[i] - at[j]);
                    let right = at.get(i + 1).map_or(f64::INFINITY, |next| next - at[i]);
                    GridMark {
                        value: at[i],
                        step_size: left.min(right),
                    }
                })
                .collect()
        }
    }
}

/// Grid marks at the sanity stages' depths, as a ruler: every stage has the smallest gap
/// as its step, every 2nd twice that, every 4th four times, so where the block names do
/// not fit egui_plot keeps every 2nd or 4th of them rather than none.
fn depth_marks(depths: &[f64]) -> Vec<GridMark> {
    let gap = depths
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let gap = if gap.is_finite() { gap } else { 1.0 };
    let top = depths.len().next_power_of_two().max(1) as f64;
    depths
        .iter()
        .enumerate()
        .map(|(i, &value)| GridMark {
            value,
            step_size: gap
                * if i == 0 {
                    top
                } else {
                    (1usize << i.trailing_zeros()) as f64
                },
        })
        .collect()
}

/// The x axis of both plots: tick labels shown down to 24 points apart (egui_plot's
/// default, 60, hides them all on a half-width plot). Labels that would overlap are still
/// hidden, as each mark's step is its distance to its neighbours.
fn x_axis<'a>(
    label: &str,
    formatter: impl Fn(GridMark, &std::ops::RangeInclusive<f64>) -> String + 'a,
) -> AxisHints<'a> {
    AxisHints::new_x()
        .label(label)
        .formatter(formatter)
        .label_spacing(24.0..=40.0)
}

/// The y axis of both plots: a label every 0.1 down to 14 points apart, so a short plot
/// keeps them.
fn y_axis(label: &str) -> AxisHints<'static> {
    AxisHints::new_y().label(label).label_spacing(14.0..=24.0)
}

/// Width of `text` on one line in the body font.
fn text_width(ui: &egui::Ui, text: &str) -> f32 {
    egui::WidgetText::from(text)
        .into_galley(
            ui,
            Some(egui::TextWrapMode::Extend),
            f32::INFINITY,
            egui::TextStyle::Body,
        )
        .size()
        .x
}

/// In a wrapping row: starts a new row unless `width` more points fit in this one, so a
/// legend's sample and its name, or a number and its unit, stay together.
fn keep_together(ui: &mut egui::Ui, width: f32) {
    let row_started = ui.cursor().left() > ui.max_rect().left() + 1.0;
    if row_started && width > ui.available_size_before_wrap().x {
        ui.end_row();
    }
}

/// A fraction of pixels as the axis and the hover label write it.
fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 0.0 || p >= 10.0 || (p - p.round()).abs() < 1e-9 {
        format!("{p:.0} %")
    } else {
        format!("{p:.1} %")
    }
}

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
    /// The panel's name (see [`metric_sources`]).
    pub label: String,
    /// Index into the palette: the map's position among the maps on offer, so its colour
    /// stays when others are unticked.
    pub colour: usize,
    pub saliency: Arc<Vec<f32>>,
    /// The job while it is queued or running.
    pub job: Option<JobId>,
    pub curves: Option<Arc<InsertionDeletion>>,
    /// The ROAD curves, when they were asked for.
    pub road: Option<Arc<Road>>,
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
    /// How the x axis of the curves is laid out.
    pub x_scale: XScale,
    /// Whether scoring also computes the ROAD curves.
    pub road: bool,
    /// How ROAD fills the removed pixels.
    pub road_imputation: Imputation,
    /// Where the ROAD curves were drawn last frame.
    pub road_plot_rect: Option<egui::Rect>,
    /// What the maps are (the method's description, and each pinned row's), written once
    /// as a caption; set when they are scored.
    pub captions: Vec<String>,
    /// Where the curves were drawn last frame.
    pub plot_rect: Option<egui::Rect>,
    /// Where the sanity plot was drawn last frame.
    pub sanity_plot_rect: Option<egui::Rect>,
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
    /// The method part of `sanity_about`: not written twice when the curves' caption
    /// already names it.
    sanity_method: Option<String>,
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
            x_scale: XScale::default(),
            road: true,
            road_imputation: Imputation::default(),
            road_plot_rect: None,
            captions: Vec::new(),
            plot_rect: None,
            sanity_plot_rect: None,
            sanity: Vec::new(),
            sanity_control: Vec::new(),
            sanity_every_block: None,
            sanity_depth_count: 6,
            sanity_seed: 0,
            sanity_about: None,
            sanity_method: None,
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
        self.sanity_method = None;
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
            Event::Partial { .. }
            | Event::Finished { .. }
            | Event::Scored { .. }
            | Event::Predicted { .. }
            | Event::Converged { .. } => {}
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
            Event::Scored { curves, road, .. } => {
                entry.curves = Some(curves.clone());
                entry.road = road.clone();
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
            | Event::SanityDone { .. }
            | Event::Converged { .. } => {}
        }
        true
    }

    fn scored(&self) -> impl Iterator<Item = (usize, &ScoredMap, &InsertionDeletion)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.curves.as_deref().map(|c| (i, e, c)))
    }

    /// The curve point nearest the plot coordinate (x: position on the axis, see
    /// [`x_position`]; y: probability).
    fn nearest(&self, x: f64, y: f64) -> Option<CurvePoint> {
        let mut best: Option<(f64, CurvePoint)> = None;
        let at = |f: f64| (x_position(self.x_scale, f) - x).abs();
        for (entry, _, curves) in self.scored() {
            for kind in [CurveKind::Insertion, CurveKind::Deletion] {
                let curve = kind.of(curves);
                let Some(step) = (0..curve.fractions.len())
                    .min_by(|&a, &b| at(curve.fractions[a]).total_cmp(&at(curve.fractions[b])))
                else {
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

/// The colour of a map, by its [`ScoredMap::colour`] index.
fn colour(index: usize) -> Color32 {
    PALETTE[index % PALETTE.len()]
}

/// The finished panels of the current run (none while a run is going).
fn current_maps(state: &StudioState, rt: &Runtime) -> Vec<(Variant, Vec<f32>)> {
    if rt.running() {
        return Vec::new();
    }
    Variant::ALL
        .into_iter()
        .filter(|&v| match v {
            Variant::Absolute => state.results.contains_key(&Variant::Vanilla),
            _ => state.results.contains_key(&v),
        })
        .filter_map(|v| state.map_of(v, None).map(|m| (v, m)))
        .collect()
}

/// The maps that can be scored: the finished panels of the current run, then the pinned
/// rows, as (name, 2-D map as displayed). A map is named as the comparison grid names its
/// panel: the current run's by the map's name ([`StudioState::panel_title`]: "IG",
/// "|IG|", "IG + IDGI"), as on screen and in figures; a pinned
/// row's as "pinned k: <its label>" when it is the row's one map, else "pinned k: <panel>"
/// with the row's label in the caption ([`map_captions`]).
pub fn metric_sources(state: &StudioState, rt: &Runtime) -> Vec<(String, Vec<f32>)> {
    let mut out: Vec<(String, Vec<f32>)> = current_maps(state, rt)
        .into_iter()
        .map(|(v, map)| (state.panel_title(v), map))
        .collect();
    for (r, row) in state.pinned.iter().enumerate() {
        for (v, map) in &row.maps {
            let name = if row.maps.len() == 1 {
                format!("pinned {r}: {}", row.label)
            } else {
                format!("pinned {r}: {}", v.title())
            };
            out.push((name, map.clone()));
        }
    }
    out
}

/// What the maps of [`metric_sources`] are, once each: the current method's description,
/// and the label of every pinned row whose maps are named by panel.
pub fn map_captions(state: &StudioState, rt: &Runtime) -> Vec<String> {
    let mut out = Vec::new();
    if !current_maps(state, rt).is_empty() {
        let what = if state.pinned.is_empty() { "maps" } else { "current run" };
        out.push(format!("{what}: {}", state.computed_settings().method_label()));
    }
    for (r, row) in state.pinned.iter().enumerate() {
        if row.maps.len() > 1 {
            out.push(format!("pinned {r}: {}", row.label));
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
    let method = state.settings.method_label();
    let about = format!(
        "{method}, explaining {}, randomisation seed {seed}",
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
    m.sanity_method = Some(method);
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
    let road = m.road.then(|| RoadParams {
        imputation: m.road_imputation,
        batch: m.batch.max(1),
        ..RoadParams::default()
    });
    let sources: Vec<(usize, String, Vec<f32>)> = metric_sources(state, rt)
        .into_iter()
        .enumerate()
        .filter(|(_, (label, _))| !m.excluded.contains(label))
        .map(|(i, (label, map))| (i, label, map))
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
    for (colour, label, map) in sources {
        let reuse = old.iter().position(|e| {
            e.label == label
                && *e.saliency == map
                && e.curves.as_ref().is_some_and(|c| c.params == params)
                && e.road.as_ref().map(|r| &r.params) == road.as_ref()
        });
        let entry = match reuse {
            Some(i) => ScoredMap {
                colour,
                ..old.swap_remove(i)
            },
            None => {
                let saliency = Arc::new(map);
                let job = engine.submit_metrics(MetricsRequest {
                    input: input.clone(),
                    saliency: saliency.clone(),
                    target: context.2,
                    params,
                    road: road.clone(),
                });
                ScoredMap {
                    label,
                    colour,
                    saliency,
                    job: Some(job),
                    curves: None,
                    road: None,
                    error: None,
                    order: None,
                }
            }
        };
        m.entries.push(entry);
    }
    m.captions = map_captions(state, rt);
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

/// Height left in the window below the cursor, counted from the top of the scrolled
/// content, so it does not change as the content scrolls.
#[derive(Clone, Copy)]
struct Fit {
    top: f32,
    view_height: f32,
}

impl Fit {
    fn left(self, ui: &egui::Ui) -> f32 {
        self.view_height - (ui.cursor().top() - self.top)
    }

    /// A plot's height: what is left above `below` points of content, within bounds.
    fn plot_height(self, ui: &egui::Ui, below: f32) -> f32 {
        (self.left(ui) - below).clamp(PLOT_MIN, PLOT_MAX)
    }
}

/// The Metrics tab: insertion/deletion beside the sanity check when the tab is wide,
/// stacked (and scrolled) when it is narrow.
pub fn show(ui: &mut egui::Ui, m: &mut MetricsView, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    let view_height = ui.available_height();
    let wide = ui.available_width() >= TWO_COLUMNS;
    egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
        let builder = egui::UiBuilder::new().accessibility_label(METRICS_VIEW);
        ui.scope_builder(builder, |ui| {
            let fit = Fit {
                top: ui.cursor().top(),
                view_height,
            };
            if wide {
                ui.columns(2, |cols| {
                    let [left, right] = cols else { return };
                    curves_section(left, m, state, rt, commands, fit, PREVIEW_BESIDE);
                    sanity_section(right, m, state, rt, commands, fit);
                });
            } else {
                curves_section(ui, m, state, rt, commands, fit, PREVIEW);
                ui.separator();
                sanity_section(ui, m, state, rt, commands, fit);
            }
        });
    });
}

fn curves_section(
    ui: &mut egui::Ui,
    m: &mut MetricsView,
    state: &StudioState,
    rt: &Runtime,
    commands: &mut Commands,
    fit: Fit,
    preview: f32,
) {
    controls(ui, m, state, rt, commands);
    if m.entries.is_empty() {
        ui.label("Tick the maps to score and press Score.");
        return;
    }
    for caption in &m.captions {
        ui.weak(caption.as_str());
    }
    curves_legend(ui, m);
    // Below the plot: its hint line, then the preview and the AUC table.
    let height = fit.plot_height(ui, preview + 90.0);
    curves_plot(ui, m, height);
    ui.weak("hover a curve to see its image");
    if ui.available_width() >= preview + 280.0 {
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| preview_panel(ui, m, rt, preview));
            ui.vertical(|ui| auc_table(ui, m));
        });
    } else {
        auc_table(ui, m);
        preview_panel(ui, m, rt, preview);
    }
    if m.entries.iter().any(|e| e.road.is_some()) {
        ui.separator();
        road_section(ui, m, state, rt);
    }
}

/// The ROAD curves of the scored maps: MoRF solid, LeRF dashed, each map in its colour.
fn road_section(ui: &mut egui::Ui, m: &mut MetricsView, state: &StudioState, rt: &Runtime) {
    ui.strong(ROAD_HEADING);
    let target = rt.label_of(state.target).unwrap_or_else(|| "the target".into());
    let fill = m
        .entries
        .iter()
        .find_map(|e| e.road.as_ref())
        .map(|r| r.params.imputation.label())
        .unwrap_or_default();
    ui.label(format!(
        "y: probability of {target} as a fraction of the pixels is removed and filled in ({fill}), the most \
         relevant first (MoRF, lower is better) or the least relevant first (LeRF, higher is better)."
    ));
    let grey = Color32::from_gray(140);
    let entries = [
        (grey, Swatch::Line, RoadOrder::Morf.label().to_string()),
        (grey, Swatch::Dashed, RoadOrder::Lerf.label().to_string()),
    ];
    legend_row(ui, ROAD_LEGEND, &entries);
    let mut lines = Vec::new();
    for e in &m.entries {
        let Some(road) = &e.road else { continue };
        for order in RoadOrder::ALL {
            let curve = road.curve(order);
            let points: Vec<[f64; 2]> = curve
                .fractions
                .iter()
                .zip(&curve.scores)
                .map(|(&x, &y)| [x, y])
                .collect();
            let style = match order {
                RoadOrder::Morf => LineStyle::Solid,
                RoadOrder::Lerf => LineStyle::dashed_dense(),
            };
            let name = format!("{}, ROAD {}", e.label, order.label());
            lines.push(
                Line::new(name, PlotPoints::new(points))
                    .color(colour(e.colour))
                    .style(style)
                    .width(2.0),
            );
        }
    }
    let response = Plot::new("road_curves")
        .height(PLOT_MIN)
        .include_x(0.0)
        .include_x(1.0)
        .include_y(0.0)
        .include_y(1.0)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .custom_x_axes(vec![x_axis("pixels removed", |mark, _| {
            if (-1e-9..=1.0 + 1e-9).contains(&mark.value) {
                percent(mark.value.clamp(0.0, 1.0))
            } else {
                String::new()
            }
        })])
        .label_formatter(|pos| match pos {
            HoverPosition::NearDataPoint {
                plot_name, position, ..
            } if !plot_name.is_empty() => Some(format!(
                "{plot_name}\n{} removed, p = {:.3}",
                percent(position.x.clamp(0.0, 1.0)),
                position.y
            )),
            _ => None,
        })
        .custom_y_axes(vec![y_axis("probability")])
        .show(ui, |plot| {
            for line in lines {
                plot.line(line);
            }
        });
    m.road_plot_rect = Some(response.response.rect);
}

fn controls(ui: &mut egui::Ui, m: &mut MetricsView, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    ui.strong("Insertion / deletion (RISE)");
    let target = rt.label_of(state.target).unwrap_or_else(|| "the target".into());
    ui.label(format!(
        "y: probability of {target} as the most salient pixels are inserted into a blurred copy \
         (insertion, higher is better) or replaced by the mean colour (deletion, lower is better)."
    ))
    .on_hover_text(
        "Pixels are ranked by each panel's map as shown (channel sum; its magnitude on the absolute panel).",
    );
    let sources = metric_sources(state, rt);
    if sources.is_empty() {
        ui.label("No computed maps yet: run a method (and pin rows to compare methods).");
    } else {
        ui.horizontal_wrapped(|ui| {
            ui.label("maps to score:");
            for (i, (label, _)) in sources.iter().enumerate() {
                let spacing = ui.spacing();
                let extra = SWATCH_WIDTH + spacing.icon_width + spacing.icon_spacing + 2.0 * spacing.item_spacing.x;
                keep_together(ui, extra + text_width(ui, label));
                swatch(ui, colour(i), Swatch::Line);
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
    }
    let running = m.running();
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("pixels per step");
        ui.add_enabled(
            !running,
            egui::DragValue::new(&mut m.pixels_per_step).range(1..=224 * 224),
        )
        .labelled_by(label.id)
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
            let bar = egui::ProgressBar::new(m.progress()).desired_width(120.0);
            ui.add(bar.show_percentage());
            let scored = format!("{} / {} maps scored", m.scored().count(), m.entries.len());
            keep_together(ui, text_width(ui, &scored));
            ui.label(scored);
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.label("x axis");
        for scale in XScale::ALL {
            ui.selectable_value(&mut m.x_scale, scale, scale.name());
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.add_enabled(!running, egui::Checkbox::new(&mut m.road, "ROAD"))
            .on_hover_text(
                "also remove pixels most and least relevant first, filled in, 10 to 90 % \
                 (Rong et al., ICML 2022); 18 more images per map",
            );
        ui.add_enabled_ui(!running && m.road, |ui| {
            // Each button names itself, as the x axis's do.
            ui.label("fill");
            for imputation in Imputation::ALL {
                ui.selectable_value(&mut m.road_imputation, imputation, imputation.label());
            }
        });
    });
}

/// How a legend entry's sample is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    Line,
    Dashed,
    /// A line through a marker, as the sanity plot draws a measure.
    Marked(MarkerShape),
}

/// Width of a legend sample, in points.
const SWATCH_WIDTH: f32 = 22.0;

/// A short sample of a line, drawn before a legend entry's name.
fn swatch(ui: &mut egui::Ui, colour: Color32, kind: Swatch) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(SWATCH_WIDTH, 12.0), egui::Sense::hover());
    let painter = ui.painter();
    let y = rect.center().y;
    let stroke = egui::Stroke::new(2.5, colour);
    match kind {
        Swatch::Dashed => {
            for i in 0..3 {
                let x = rect.left() + i as f32 * 8.0;
                painter.line_segment([egui::pos2(x, y), egui::pos2(x + 5.0, y)], stroke);
            }
        }
        Swatch::Line | Swatch::Marked(_) => {
            painter.line_segment([egui::pos2(rect.left(), y), egui::pos2(rect.right(), y)], stroke);
        }
    }
    if let Swatch::Marked(shape) = kind {
        let c = rect.center();
        match shape {
            MarkerShape::Square => {
                painter.rect_filled(egui::Rect::from_center_size(c, egui::vec2(7.0, 7.0)), 0.0, colour);
            }
            MarkerShape::Diamond => {
                let pts = vec![
                    c + egui::vec2(0.0, -5.0),
                    c + egui::vec2(5.0, 0.0),
                    c + egui::vec2(0.0, 5.0),
                    c + egui::vec2(-5.0, 0.0),
                ];
                painter.add(egui::Shape::convex_polygon(pts, colour, egui::Stroke::NONE));
            }
            MarkerShape::Up => {
                let pts = vec![
                    c + egui::vec2(0.0, -5.0),
                    c + egui::vec2(5.0, 4.0),
                    c + egui::vec2(-5.0, 4.0),
                ];
                painter.add(egui::Shape::convex_polygon(pts, colour, egui::Stroke::NONE));
            }
            _ => {
                painter.circle_filled(c, 4.0, colour);
            }
        }
    }
}

/// A row of legend entries (sample, then name), wrapped, in a group named `name`.
fn legend_row(ui: &mut egui::Ui, name: &str, entries: &[(Color32, Swatch, String)]) {
    let builder = egui::UiBuilder::new().accessibility_label(name);
    ui.scope_builder(builder, |ui| {
        ui.horizontal_wrapped(|ui| {
            for (c, kind, label) in entries {
                keep_together(ui, SWATCH_WIDTH + ui.spacing().item_spacing.x + text_width(ui, label));
                swatch(ui, *c, *kind);
                ui.label(label.as_str());
                ui.add_space(6.0);
            }
        });
    });
}

/// The maps by colour, then the two line styles.
fn curves_legend(ui: &mut egui::Ui, m: &MetricsView) {
    let mut entries: Vec<(Color32, Swatch, String)> = m
        .entries
        .iter()
        .map(|e| (colour(e.colour), Swatch::Line, e.label.clone()))
        .collect();
    let grey = Color32::from_gray(140);
    entries.push((grey, Swatch::Line, CurveKind::Insertion.name().into()));
    entries.push((grey, Swatch::Dashed, CurveKind::Deletion.name().into()));
    legend_row(ui, CURVES_LEGEND, &entries);
}

fn curves_plot(ui: &mut egui::Ui, m: &mut MetricsView, height: f32) {
    let scale = m.x_scale;
    let mut lines = Vec::new();
    for (_, e, curves) in m.scored() {
        for kind in [CurveKind::Insertion, CurveKind::Deletion] {
            let curve = kind.of(curves);
            let points: Vec<[f64; 2]> = curve
                .fractions
                .iter()
                .zip(&curve.scores)
                .map(|(&x, &y)| [x_position(scale, x), y])
                .collect();
            let style = match kind {
                CurveKind::Insertion => LineStyle::Solid,
                CurveKind::Deletion => LineStyle::dashed_dense(),
            };
            let name = format!("{}, {}", e.label, kind.name());
            lines.push(
                Line::new(name, PlotPoints::new(points))
                    .color(colour(e.colour))
                    .style(style)
                    .width(2.0),
            );
        }
    }
    let marker = m.selected.and_then(|p| {
        let e = m.entries.get(p.entry)?;
        let curve = p.kind.of(e.curves.as_deref()?);
        let x = x_position(scale, curve.fractions[p.step]);
        Some((x, curve.scores[p.step], colour(e.colour)))
    });
    let x_label = match scale {
        XScale::Linear => "pixels inserted / deleted",
        XScale::Log => "pixels inserted / deleted (log scale past 1 %)",
    };
    let response = Plot::new("metrics_curves")
        .height(height)
        .include_x(0.0)
        .include_x(1.0)
        .include_y(0.0)
        .include_y(1.0)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .x_grid_spacer(move |input| x_marks(scale, input))
        .custom_x_axes(vec![x_axis(x_label, move |mark, _| {
            let f = x_fraction(scale, mark.value);
            if (-1e-9..=1.0 + 1e-9).contains(&f) {
                percent(f.clamp(0.0, 1.0))
            } else {
                String::new()
            }
        })])
        .label_formatter(move |pos| match pos {
            HoverPosition::NearDataPoint {
                plot_name, position, ..
            } if !plot_name.is_empty() => Some(format!(
                "{plot_name}\n{} of pixels, p = {:.3}",
                percent(x_fraction(scale, position.x)),
                position.y
            )),
            _ => None,
        })
        .custom_y_axes(vec![y_axis("probability")])
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
}

/// The image at the selected point, rebuilt only when the point changes.
fn preview_panel(ui: &mut egui::Ui, m: &mut MetricsView, rt: &Runtime, side: f32) {
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
    let (label, c) = (entry.label.clone(), colour(entry.colour));
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
        ui.add(egui::Image::new(tex).fit_to_exact_size(egui::vec2(side, side)));
    }
    let verb = match point.kind {
        CurveKind::Insertion => "inserted",
        CurveKind::Deletion => "deleted",
    };
    ui.colored_label(c, format!("{label}, {}", point.kind.name()));
    ui.label(format!(
        "{:.1} % of pixels {verb}, p = {:.3}",
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
    egui::Grid::new("auc_table").striped(true).show(ui, |ui| {
        ui.strong("map");
        ui.strong("insertion AUC");
        ui.strong("deletion AUC");
        let road = m.entries.iter().any(|e| e.road.is_some());
        if road {
            ui.strong("ROAD MoRF AUC");
            ui.strong("ROAD LeRF AUC");
        }
        ui.end_row();
        for e in &m.entries {
            ui.colored_label(colour(e.colour), e.label.as_str());
            match (&e.curves, &e.error, e.job) {
                (Some(c), _, _) => {
                    ui.label(format!("{:.3}", c.insertion.auc));
                    ui.label(format!("{:.3}", c.deletion.auc));
                    if let Some(r) = e.road.as_ref().filter(|_| road) {
                        ui.label(format!("{:.3}", r.morf.auc));
                        ui.label(format!("{:.3}", r.lerf.auc));
                    }
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
    ui.weak("higher insertion and lower deletion AUC are better (ROAD: lower MoRF, higher LeRF)");
}

fn sanity_section(
    ui: &mut egui::Ui,
    m: &mut MetricsView,
    state: &StudioState,
    rt: &Runtime,
    commands: &mut Commands,
    fit: Fit,
) {
    ui.strong(SANITY_HEADING);
    ui.label(
        "The model's blocks are re-drawn at random from the logits down (x: the block randomised last) and \
         the current method's map is recomputed at each depth; each line is its similarity to the trained \
         model's map. A map that explains the model should lose similarity as layers are randomised; the \
         dashed edge-detector control ignores the model and stays at 1.",
    );
    let running = m.sanity_running();
    let mut every = sanity_every_block(m, rt);
    ui.horizontal_wrapped(|ui| {
        let toggle = ui
            .add_enabled(!running, egui::Checkbox::new(&mut every, "every block"))
            .on_hover_text("one stage per block; for big models (EfficientNet: 19 blocks) untick and choose N");
        if toggle.changed() {
            m.sanity_every_block = Some(every);
        }
        ui.add_enabled_ui(!running && !every, |ui| {
            let label = ui.label("depths");
            ui.add(egui::DragValue::new(&mut m.sanity_depth_count).range(2..=64))
                .labelled_by(label.id)
                .on_hover_text("evenly spaced, the trained and the fully randomised model included");
        });
        ui.add_enabled_ui(!running, |ui| {
            let label = ui.label("randomisation seed");
            ui.add(egui::DragValue::new(&mut m.sanity_seed))
                .labelled_by(label.id)
                .on_hover_text("seeds the re-drawn parameters");
        });
        let can_run = !running && rt.input.is_some() && state.target.is_some() && rt.model_ready();
        if ui
            .add_enabled(can_run, egui::Button::new("Run sanity check"))
            .on_hover_text("randomise the model block by block and recompute the current method's map each time")
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
            ui.add(egui::ProgressBar::new(fraction).desired_width(120.0));
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
    if m.sanity.is_empty() {
        m.sanity_plot_rect = None;
        return;
    }
    if let Some(about) = &m.sanity_about {
        // The curves' caption already names the method: say so rather than repeat it.
        let shared = m.sanity_method.as_deref().and_then(|method| {
            let named = !m.entries.is_empty() && m.captions.iter().any(|c| c.ends_with(&format!(": {method}")));
            named.then(|| about.strip_prefix(method)).flatten()
        });
        match shared {
            Some(rest) => ui.weak(format!("the curves' method{rest}")),
            None => ui.weak(about.as_str()),
        };
    }
    // The legend row is drawn by the plot function; keep room for it and a margin.
    let height = fit.plot_height(ui, 36.0);
    let response = sanity_plot_with_control(ui, "sanity_plot", &m.sanity, &m.sanity_control, height);
    m.sanity_plot_rect = Some(response.rect);
}

/// Similarity (y) against randomisation depth (x, ticks named by block), one line per
/// measure, with its legend as a row above. Stage 0 is the original model, where every
/// similarity is 1.
pub fn sanity_plot(ui: &mut egui::Ui, id: &str, points: &[SanityPoint], height: f32) -> egui::Response {
    sanity_plot_with_control(ui, id, points, &[], height)
}

/// The name of the control's line in the sanity plot's legend.
pub const EDGE_CONTROL_LEGEND: &str = "edge control (Sobel)";

/// [`sanity_plot`] with a dashed grey reference line: the edge-detector control's lowest
/// similarity of the four at each depth (it ignores the model, so it stays at 1). The
/// height is the plot's, the legend row above it not included.
pub fn sanity_plot_with_control(
    ui: &mut egui::Ui,
    id: &str,
    points: &[SanityPoint],
    control: &[SanityPoint],
    height: f32,
) -> egui::Response {
    type Measure = (&'static str, fn(&SanityPoint) -> f64, Color32, MarkerShape);
    const MEASURES: [Measure; 4] = [
        (
            "Spearman (abs)",
            |p| p.spearman_abs,
            MEASURE_COLOURS[0],
            MarkerShape::Circle,
        ),
        (
            "Spearman (signed)",
            |p| p.spearman_signed,
            MEASURE_COLOURS[1],
            MarkerShape::Square,
        ),
        ("SSIM", |p| p.ssim, MEASURE_COLOURS[2], MarkerShape::Diamond),
        ("HOG", |p| p.hog, MEASURE_COLOURS[3], MarkerShape::Up),
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
    let mut legend: Vec<(Color32, Swatch, String)> = MEASURES
        .iter()
        .map(|(name, _, c, shape)| (*c, Swatch::Marked(*shape), name.to_string()))
        .collect();
    if !control.is_empty() {
        legend.push((CONTROL_COLOUR, Swatch::Dashed, EDGE_CONTROL_LEGEND.into()));
    }
    legend_row(ui, SANITY_LEGEND, &legend);
    let ticks: Vec<(f64, String)> = sorted.iter().map(|p| (p.depth as f64, p.label.clone())).collect();
    let depths: Vec<f64> = ticks.iter().map(|(x, _)| *x).collect();
    let marks = depth_marks(&depths);
    let last = sorted.last().map_or(1.0, |p| p.depth.max(1) as f64);
    Plot::new(id)
        .height(height)
        .include_y(0.0)
        .include_y(1.0)
        .include_x(0.0)
        .include_x(last)
        // Room for the outer block names, centred on the first and last stage.
        .set_margin_fraction(egui::vec2(0.1, 0.05))
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .x_grid_spacer(move |_| marks.clone())
        .custom_x_axes(vec![x_axis("randomised up to block", move |mark, _| {
            ticks
                .iter()
                .find(|(x, _)| (x - mark.value).abs() < 1e-6)
                .map(|(_, l)| l.clone())
                .unwrap_or_default()
        })])
        .custom_y_axes(vec![y_axis("similarity to the original map")])
        .show(ui, |plot| {
            for (name, value, c, shape) in MEASURES {
                let pts: Vec<[f64; 2]> = sorted.iter().map(|p| [p.depth as f64, value(p)]).collect();
                plot.line(Line::new(name, PlotPoints::new(pts.clone())).color(c).width(2.0));
                plot.add(Points::new(name, pts).color(c).shape(shape).radius(4.0).filled(true));
            }
            if !control.is_empty() {
                plot.line(
                    Line::new(EDGE_CONTROL_LEGEND, PlotPoints::new(control))
                        .color(CONTROL_COLOUR)
                        .style(LineStyle::dashed_loose())
                        .width(2.0),
                );
            }
        })
        .response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linear_axis_is_the_fraction() {
        for f in [0.0, 0.004, 0.25, 1.0] {
            assert_eq!(x_position(XScale::Linear, f), f);
            assert_eq!(x_fraction(XScale::Linear, f), f);
        }
    }

    /// The log axis keeps 0 and 1 in place and gives the first percent 15 % of the width,
    /// the first 3 % (where SqueezeNet's deletion curves fall) 30 % instead of 3 %.
    #[test]
    fn the_log_axis_widens_the_first_percent() {
        let at = |f| x_position(XScale::Log, f);
        assert_eq!(at(0.0), 0.0);
        assert!((at(1.0) - 1.0).abs() < 1e-12);
        assert!((at(0.01) - 2f64.ln() / 101f64.ln()).abs() < 1e-12);
        assert!((at(0.01) - 0.150).abs() < 1e-3, "{}", at(0.01));
        assert!((at(0.03) - 0.300).abs() < 1e-3, "{}", at(0.03));
        assert!((at(0.05) - 0.388).abs() < 1e-3, "{}", at(0.05));
        assert!((at(0.5) - 0.852).abs() < 1e-3, "{}", at(0.5));
        // One row of a 224 × 224 image, RISE's step, is 7 % of the width, not 0.4 %.
        assert!(at(1.0 / 224.0) > 0.07, "{}", at(1.0 / 224.0));
        let mut last = -1.0;
        for i in 0..=1000 {
            let f = i as f64 / 1000.0;
            let x = at(f);
            assert!(x > last, "increasing at {f}");
            last = x;
            assert!((x_fraction(XScale::Log, x) - f).abs() < 1e-12, "inverse at {f}");
        }
    }

    #[test]
    fn log_marks_are_the_ticks_and_close_ones_get_small_steps() {
        let input = GridInput {
            bounds: (0.0, 1.0),
            base_step_size: 0.01,
        };
        let marks = x_marks(XScale::Log, input);
        let fractions: Vec<String> = marks
            .iter()
            .map(|m| percent(x_fraction(XScale::Log, m.value)))
            .collect();
        assert_eq!(
            fractions,
            ["0 %", "0.5 %", "1 %", "2 %", "5 %", "10 %", "20 %", "50 %", "100 %"]
        );
        // 0.5 % sits between 0 and 1 %: its step is the smaller of the two gaps.
        let half = marks[1];
        assert!((half.step_size - (marks[2].value - marks[1].value).min(marks[1].value)).abs() < 1e-12);
    }

    #[test]
    fn depth_marks_are_a_ruler() {
        let marks = depth_marks(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let steps: Vec<f64> = marks.iter().map(|m| m.step_size).collect();
        assert_eq!(steps, [8.0, 1.0, 2.0, 1.0, 4.0, 1.0]);
        let marks = depth_marks(&[0.0, 5.0, 10.0]);
        let steps: Vec<f64> = marks.iter().map(|m| m.step_size).collect();
        assert_eq!(steps, [20.0, 5.0, 10.0]);
        assert_eq!(depth_marks(&[0.0])[0].step_size, 1.0);
    }

    #[test]
    fn percentages_read_as_people_write_them() {
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(0.005), "0.5 %");
        assert_eq!(percent(0.0357), "3.6 %");
        assert_eq!(percent(0.25), "25 %");
        assert_eq!(percent(1.0), "100 %");
    }
}
