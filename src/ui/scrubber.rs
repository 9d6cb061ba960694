//! The interpolation scrubber: steps through the path's points (buttons, arrow keys,
//! Home/End, a slider as wide as the panel, or a click in a plot) showing the path image,
//! the gradient there and the attribution accumulated up to it, the completeness gap as a
//! number, and plots of the score along the path, each step's contribution and the
//! attribution summed so far. The plots share one x-axis (the path position α) so the
//! current step's line is at the same screen x in each, and their legends are drawn above
//! them, never over the curves. Everything comes from the recorded trace: moving the step
//! computes no model pass.

use candle_core::Tensor;
use eframe::egui::{self, Color32, ColorImage, Key, Modifiers, Rect, Sense, Stroke, TextureHandle, TextureOptions};
use egui_plot::{HLine, Line, MarkerShape, Plot, PlotPoints, PlotResponse, PlotTransform, PlotUi, Points, VLine};
use image::RgbImage;

use crate::attribution::blur::gaussian_blur_zero_gemm;
use crate::attribution::catalog::Variant;
use crate::attribution::display::{reduce_channels, ChannelReduction};
use crate::attribution::method::{Explanation, MethodSpec, PathKind};
use crate::attribution::trace::{TracePoint, TraceRecorder};
use crate::export::heatmap::{default_span, overlay};
use crate::model::Normalization;
use crate::render::colormap::Colormap;

use super::runtime::Runtime;
use super::state::StudioState;

const SCORE_COLOUR: Color32 = Color32::from_rgb(31, 119, 180);
const CONTRIBUTION_COLOUR: Color32 = Color32::from_rgb(44, 160, 44);
const RUNNING_COLOUR: Color32 = Color32::from_rgb(148, 103, 189);
const TARGET_COLOUR: Color32 = Color32::from_rgb(255, 127, 14);
const CURSOR_COLOUR: Color32 = Color32::from_rgb(214, 39, 40);
/// Every plot keeps this much room for its y tick labels, so the three data areas start
/// at the same screen x (the labels are formatted short enough to fit, see [`tick`]).
const Y_AXIS_WIDTH: f32 = 64.0;
/// The x range all plots share: α from 0 to 1, with a margin so the current step's line
/// stays visible at either end.
const X_RANGE: (f64, f64) = (-0.02, 1.02);
/// The plots, in the order they are drawn (the index of [`Scrubber::plot_frame`]).
pub const PLOTS: [&str; 3] = ["score along the path", "contribution of each step", "completeness"];

/// Shown when the current maps come from a method without a path.
pub const NO_PATH: &str = "This method has no path to step through.";
/// Shown when the current maps are a path method's but no trace came with them (a
/// restored session keeps the maps, not the trace).
pub const NO_TRACE: &str = "No trace recorded for these maps — press Run to record one.";
/// Shown for methods that average many paths (ensembles of IG, many references, AGI).
pub const MANY_PATHS: &str = "This method averages many paths, so there is no single path to step through: \
     choose a path integral (IG, Blur IG or Guided IG) and press Run.";

#[derive(Default)]
pub struct Scrubber {
    pub step: usize,
    textures: Option<(usize, [TextureHandle; 3])>,
    cache: Option<TraceCache>,
    /// How each plot (in [`PLOTS`] order) was drawn last frame.
    plots: Vec<PlotTransform>,
}

/// What the plots and the running map need, computed once per trace: the per-step totals,
/// and the running attribution kept up to date incrementally as the slider moves (adding
/// or subtracting only the steps in between), so a frame never sums the whole trace.
struct TraceCache {
    /// Identity of the trace (its address), to notice a new result.
    key: usize,
    totals: Vec<f64>,
    cumulative: Vec<f64>,
    running: Vec<f32>,
    running_step: usize,
}

impl TraceCache {
    fn new(trace: &TraceRecorder, key: usize) -> Self {
        let totals: Vec<f64> = trace
            .steps
            .iter()
            .map(|s| s.contribution.iter().map(|c| c.to_f64()).sum())
            .collect();
        let cumulative = totals
            .iter()
            .scan(0.0, |acc, t| {
                *acc += t;
                Some(*acc)
            })
            .collect();
        Self {
            key,
            totals,
            cumulative,
            running: trace.running_attribution(0),
            running_step: 0,
        }
    }

    fn move_to(&mut self, trace: &TraceRecorder, step: usize) {
        let (range, sign) = if step > self.running_step {
            (self.running_step + 1..=step, 1.0)
        } else {
            (step + 1..=self.running_step, -1.0)
        };
        for s in range {
            for (a, c) in self.running.iter_mut().zip(&trace.steps[s].contribution) {
                *a += sign * c.to_f32();
            }
        }
        self.running_step = step;
    }
}

/// Pixel planes of the model's channels as RGB (grey repeated, BGR swapped back).
fn to_rgb(pixels: &[f32], norm: &Normalization, w: u32, h: u32) -> RgbImage {
    let rgb = norm.pixels_to_rgb8(pixels, (w * h) as usize);
    RgbImage::from_raw(w, h, rgb).unwrap_or_else(|| RgbImage::new(w, h))
}

fn texture(ui: &egui::Ui, name: &str, img: &RgbImage) -> TextureHandle {
    let ci = ColorImage::from_rgb([img.width() as usize, img.height() as usize], img.as_raw());
    ui.ctx().load_texture(name, ci, TextureOptions::NEAREST)
}

/// The interpolation point whose α is nearest to `x` (the first of equally near ones; 0
/// for an empty path or an `x` that is not a number).
pub fn nearest_step(alphas: &[f64], x: f64) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, &a) in alphas.iter().enumerate() {
        let d = (a - x).abs();
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// A y tick label short enough for [`Y_AXIS_WIDTH`] (at most about 7 characters).
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.chars().take(7).collect::<String>().trim_end_matches('.').to_string()
    }
}

/// The completeness check at one step: the attribution summed over the steps so far
/// against the score difference the whole path has to account for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Completeness {
    /// Σ of the attribution over steps 0..=step; at the last step the final map's sum.
    pub sum_so_far: f64,
    /// f(x) − f(x'), when the start's score was recorded.
    pub score_difference: Option<f64>,
    /// Whether this is the last step (the sum is then the final map's).
    pub last: bool,
    /// The trace kept the per-element data of one step in `stride` only (1: all): the
    /// sum before the last step then misses the others.
    pub stride: usize,
}

impl Completeness {
    /// At `step` of a path whose per-step running sums (from the trace) are `cumulative`.
    pub fn at(result: &Explanation, cumulative: &[f64], step: usize, stride: usize) -> Self {
        let last = step + 1 >= cumulative.len();
        Self {
            sum_so_far: if last {
                result.attribution_sum
            } else {
                cumulative.get(step).copied().unwrap_or(0.0)
            },
            score_difference: result.score_baseline.map(|b| result.score_input as f64 - b as f64),
            last,
            stride,
        }
    }

    /// Σ so far − (f(x) − f(x')): at the last step, the method's convergence delta.
    pub fn gap(&self) -> Option<f64> {
        Some(self.sum_so_far - self.score_difference?)
    }

    /// The line under the controls, e.g. "completeness: Σ attribution so far = 1.2340,
    /// f(x) − f(x') = 1.3000, gap = −0.0660 (−5.1 %)".
    pub fn text(&self) -> String {
        let what = if self.last {
            "Σ attribution of the final map"
        } else {
            "Σ attribution so far"
        };
        let mut text = format!("completeness: {what} = {}", signed(self.sum_so_far));
        match (self.score_difference, self.gap()) {
            (Some(d), Some(gap)) => {
                text += &format!(", f(x) − f(x') = {}, gap = {}", signed(d), signed(gap));
                if d != 0.0 {
                    text += &format!(" ({:+.1} %)", 100.0 * gap / d.abs()).replace('-', "−");
                }
            }
            _ => text += " (the start's score was not recorded)",
        }
        if !self.last && self.stride > 1 {
            text += &format!("; partial: the trace kept one step in {} (memory bound)", self.stride);
        }
        text
    }
}

/// `v` with 4 decimals and a true minus sign.
fn signed(v: f64) -> String {
    format!("{v:.4}").replace('-', "−")
}

/// What the tab says when the current maps have no trace: [`NO_TRACE`] for a single path
/// (it has a convergence delta), [`MANY_PATHS`] when the settings name a method that
/// averages paths, else [`NO_PATH`].
pub fn missing_trace_message(result: &Explanation, spec: Option<&MethodSpec>) -> &'static str {
    if result.convergence_delta.is_some() {
        return NO_TRACE;
    }
    match spec {
        Some(MethodSpec::Ensemble { base, .. }) if base.is_path_integral() => MANY_PATHS,
        Some(MethodSpec::MultiReference(_) | MethodSpec::Agi(_)) => MANY_PATHS,
        _ => NO_PATH,
    }
}

/// A legend item drawn as a small swatch before its words.
#[derive(Clone, Copy)]
enum Swatch {
    Line(Color32),
    Dot(Color32),
    Vertical(Color32),
}

/// A plot's title and legend as one row above it, so the legend never covers the curves
/// (least of all their ends near α = 1, where convergence shows).
fn legend_row(ui: &mut egui::Ui, title: &str, items: &[(Swatch, &str)]) {
    ui.horizontal_wrapped(|ui| {
        ui.strong(title);
        for &(swatch, words) in items {
            ui.add_space(8.0);
            let (rect, _) = ui.allocate_exact_size(egui::vec2(18.0, 12.0), Sense::hover());
            let p = ui.painter();
            match swatch {
                Swatch::Line(c) => {
                    p.line_segment([rect.left_center(), rect.right_center()], Stroke::new(2.0, c));
                }
                Swatch::Dot(c) => {
                    p.circle_filled(rect.center(), 4.0, c);
                }
                Swatch::Vertical(c) => {
                    p.line_segment([rect.center_top(), rect.center_bottom()], Stroke::new(2.0, c));
                }
            }
            ui.label(words);
        }
    });
}

/// One of the three plots, all with the same x range and y-axis width and linked x axes,
/// fixed in place (a click or drag seeks, it does not pan or zoom). `include_y`: a value
/// the y range must show (a horizontal line's, which does not widen the bounds itself).
fn aligned_plot<'a>(
    ui: &mut egui::Ui,
    id: &str,
    height: f32,
    x_label: bool,
    include_y: Option<f64>,
    build: impl FnOnce(&mut PlotUi<'a>) + 'a,
) -> PlotResponse<()> {
    let mut plot = Plot::new(("scrubber", id))
        .height(height)
        .link_axis(egui::Id::unique("scrubber-alpha-axis"), [true, false])
        .default_x_bounds(X_RANGE.0, X_RANGE.1)
        // Room above and below the curves, so a line at the top (f(x) − f(x')) stays clear.
        .set_margin_fraction(egui::vec2(0.0, 0.12))
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .y_axis_min_width(Y_AXIS_WIDTH)
        .y_axis_formatter(|mark, _| tick(mark.value));
    if let Some(y) = include_y.filter(|y| y.is_finite()) {
        plot = plot.include_y(y);
    }
    if x_label {
        plot = plot.x_axis_label("path position α (0: the start x', 1: the input x)");
    }
    plot.show(ui, build)
}

impl Scrubber {
    /// The label next to the buttons, e.g. "step 12 / 50 (α = 0.240)".
    pub fn label(&self, total: usize, alpha: f64) -> String {
        format!("step {} / {} (α = {alpha:.3})", self.step + 1, total)
    }

    /// The data area of plot `i` ([`PLOTS`] order) as last drawn.
    pub fn plot_frame(&self, i: usize) -> Option<Rect> {
        self.plots.get(i).map(|t| *t.frame())
    }

    /// The screen x of path position `alpha` in plot `i` as last drawn.
    pub fn screen_x(&self, i: usize, alpha: f64) -> Option<f32> {
        self.plots.get(i).map(|t| t.position_from_point_x(alpha))
    }

    /// Left/Right step, Home/End go to the ends, unless a text field has the keyboard.
    /// The keys are consumed, so a focused slider does not step a second time.
    fn keys(&mut self, ctx: &egui::Context, n: usize) {
        if ctx.text_edit_focused() {
            return;
        }
        let (left, right, home, end) = ctx.input_mut(|i| {
            (
                i.count_and_consume_key(Modifiers::NONE, Key::ArrowLeft),
                i.count_and_consume_key(Modifiers::NONE, Key::ArrowRight),
                i.consume_key(Modifiers::NONE, Key::Home),
                i.consume_key(Modifiers::NONE, Key::End),
            )
        });
        self.step = (self.step + right).saturating_sub(left).min(n - 1);
        if home {
            self.step = 0;
        }
        if end {
            self.step = n - 1;
        }
    }

    /// The scrubber over `result`'s trace. `baseline` gives the straight path's start
    /// (asked only when a new step's images are made).
    #[allow(clippy::too_many_arguments)]
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        result: &Explanation,
        input: &Tensor,
        baseline: impl FnOnce() -> Option<Tensor>,
        norm: &Normalization,
        photo: &RgbImage,
    ) {
        let Some(trace) = &result.trace else {
            ui.label(missing_trace_message(result, None));
            return;
        };
        let n = trace.steps.len();
        if n == 0 {
            ui.label("The recorded path has no steps.");
            return;
        }
        self.step = self.step.min(n - 1);
        let key = trace as *const _ as usize;
        if self.cache.as_ref().map(|c| c.key) != Some(key) {
            self.cache = Some(TraceCache::new(trace, key));
            self.textures = None;
        }
        self.keys(ui.ctx(), n);

        // Controls: they wrap on a narrow window rather than overflow it.
        ui.horizontal_wrapped(|ui| {
            let previous = ui
                .add_enabled(self.step > 0, egui::Button::new("‹ previous"))
                .on_hover_text("the previous interpolation point (Left arrow key; Home: the first)");
            if previous.clicked() {
                self.step -= 1;
            }
            let next = ui
                .add_enabled(self.step + 1 < n, egui::Button::new("next ›"))
                .on_hover_text("the next interpolation point (Right arrow key; End: the last)");
            if next.clicked() {
                self.step += 1;
            }
            ui.label(self.label(n, trace.steps[self.step].alpha));
            ui.weak("Left / Right arrow keys step · Home / End · click a plot to jump there");
        });
        ui.horizontal(|ui| {
            let label = ui.label("interpolation point");
            ui.spacing_mut().slider_width = (ui.available_width() - ui.spacing().item_spacing.x).max(40.0);
            ui.add(egui::Slider::new(&mut self.step, 0..=n - 1).show_value(false))
                .labelled_by(label.id);
        });
        let cache = self.cache.as_ref().expect("cache built above");
        let completeness = Completeness::at(result, &cache.cumulative, self.step, trace.stride());
        ui.label(completeness.text()).on_hover_text(
            "gap = Σ attribution − (f(x) − f(x')); at the last step it is the method's convergence delta, \
             zero for an exact path integral",
        );

        let current = &trace.steps[self.step];
        let (w, h) = photo.dimensions();
        let hw = (w * h) as usize;
        if !matches!(&self.textures, Some((s, _)) if *s == self.step) {
            // The path image at this step.
            let x = input.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default();
            let mut point: Vec<f32> = match &current.point {
                TracePoint::Straight { alpha } => match baseline() {
                    Some(b) => {
                        let b = b.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default();
                        b.iter().zip(&x).map(|(b, x)| b + *alpha as f32 * (x - b)).collect()
                    }
                    None => x.clone(),
                },
                TracePoint::Values(v) if !v.is_empty() => v.iter().map(|v| v.to_f32()).collect(),
                TracePoint::Blurred { sigma } => {
                    let mut px = x.clone();
                    norm.denormalize(&mut px, hw);
                    let c = px.len() / hw.max(1);
                    let mut b = gaussian_blur_zero_gemm(&px, c, h as usize, w as usize, *sigma);
                    norm.normalize_pixels(&mut b, hw);
                    b
                }
                _ => x.clone(),
            };
            norm.denormalize(&mut point, hw);
            let path_img = to_rgb(&point, norm, w, h);
            let grad: Vec<f32> = current.gradient.iter().map(|v| v.to_f32()).collect();
            let channels = x.len() / hw.max(1);
            let grad_map = if grad.len() == channels * hw && channels > 0 {
                reduce_channels(&grad, channels, hw, ChannelReduction::Sum)
            } else {
                vec![0.0; hw]
            };
            let white = RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
            let grad_img = overlay(&white, &grad_map, default_span(&grad_map), Colormap::RdBu);
            let cache = self.cache.as_mut().expect("cache built above");
            cache.move_to(trace, self.step);
            let run_map = reduce_channels(&cache.running, 3, hw, ChannelReduction::Sum);
            let run_img = overlay(photo, &run_map, default_span(&run_map), Colormap::RdBu);
            self.textures = Some((
                self.step,
                [
                    texture(ui, "scrub-path", &path_img),
                    texture(ui, "scrub-grad", &grad_img),
                    texture(ui, "scrub-running", &run_img),
                ],
            ));
        }

        // The curves, all against α.
        let alphas: Vec<f64> = trace.steps.iter().map(|s| s.alpha).collect();
        let cache = self.cache.as_ref().expect("cache built above");
        let scores: Vec<[f64; 2]> = trace.steps.iter().map(|s| [s.alpha, s.score as f64]).collect();
        // Steps whose per-element data was not kept contribute nothing to draw.
        let kept = |i: &usize| !trace.steps[*i].contribution.is_empty();
        let contributions: Vec<[f64; 2]> = (0..n).filter(kept).map(|i| [alphas[i], cache.totals[i]]).collect();
        let cumulative: Vec<[f64; 2]> = (0..n).filter(kept).map(|i| [alphas[i], cache.cumulative[i]]).collect();
        let ends: Vec<[f64; 2]> = result
            .score_baseline
            .map(|b| vec![[0.0, b as f64], [1.0, result.score_input as f64]])
            .unwrap_or_default();
        let target = completeness.score_difference;
        let cursor = current.alpha;

        let (_, tex) = self.textures.as_ref().expect("textures just set");
        let tex = tex.clone();
        let avail_h = ui.available_height();
        let spacing = ui.spacing().item_spacing;
        let mut seek = None;
        let mut transforms = Vec::with_capacity(3);
        egui::ScrollArea::vertical()
            .id_salt("scrubber-scroll")
            .auto_shrink(false)
            .show(ui, |ui| {
                let width = ui.available_width();
                let size = ((width - 2.0 * spacing.x) / 3.0)
                    .min(320.0)
                    .min((avail_h * 0.3 - 24.0).max(64.0))
                    .max(48.0);
                ui.horizontal_top(|ui| {
                    for (t, title) in tex.iter().zip(["path point", "gradient there", "attribution so far"]) {
                        ui.vertical(|ui| {
                            ui.label(title);
                            ui.add(egui::Image::new(t).fit_to_exact_size(egui::vec2(size, size)));
                        });
                    }
                });
                let legend_h = ui.text_style_height(&egui::TextStyle::Body) + spacing.y;
                let plot_h = ((avail_h - size - 40.0) / 3.0 - legend_h - 2.0 * spacing.y - 8.0).max(90.0);
                let cursor_line = || VLine::new("current step", cursor).color(CURSOR_COLOUR).width(1.5);

                legend_row(
                    ui,
                    "Score along the path",
                    &[
                        (Swatch::Line(SCORE_COLOUR), "f at each point"),
                        (Swatch::Dot(TARGET_COLOUR), "f(x') at the start, f(x) at the input"),
                        (Swatch::Vertical(CURSOR_COLOUR), "current step"),
                    ],
                );
                transforms.push(aligned_plot(ui, "scores", plot_h, false, None, move |p| {
                    p.line(Line::new("f at each point", PlotPoints::from(scores)).color(SCORE_COLOUR));
                    if !ends.is_empty() {
                        p.points(
                            Points::new("f(x'), f(x)", PlotPoints::from(ends))
                                .color(TARGET_COLOUR)
                                .shape(MarkerShape::Circle)
                                .radius(4.0),
                        );
                    }
                    p.vline(cursor_line());
                }));

                legend_row(
                    ui,
                    "Contribution of each step",
                    &[
                        (Swatch::Line(CONTRIBUTION_COLOUR), "Σ of the step's attribution"),
                        (Swatch::Vertical(CURSOR_COLOUR), "current step"),
                    ],
                );
                transforms.push(aligned_plot(ui, "contributions", plot_h, false, None, move |p| {
                    p.line(
                        Line::new("Σ of the step's attribution", PlotPoints::from(contributions))
                            .color(CONTRIBUTION_COLOUR),
                    );
                    p.vline(cursor_line());
                }));

                legend_row(
                    ui,
                    "Completeness",
                    &[
                        (Swatch::Line(RUNNING_COLOUR), "Σ attribution so far"),
                        (Swatch::Line(TARGET_COLOUR), "f(x) − f(x')"),
                        (Swatch::Vertical(CURSOR_COLOUR), "current step"),
                    ],
                );
                transforms.push(aligned_plot(ui, "completeness", plot_h, true, target, move |p| {
                    p.line(Line::new("Σ attribution so far", PlotPoints::from(cumulative)).color(RUNNING_COLOUR));
                    if let Some(t) = target {
                        p.hline(HLine::new("f(x) − f(x')", t).color(TARGET_COLOUR));
                    }
                    p.vline(cursor_line());
                }));
                for r in &transforms {
                    if r.response.clicked() || r.response.dragged() {
                        if let Some(pos) = r.response.interact_pointer_pos() {
                            seek = Some(nearest_step(&alphas, r.transform.value_from_position(pos).x));
                        }
                    }
                }
            });
        self.plots = transforms.into_iter().map(|r| r.transform).collect();
        if let Some(step) = seek {
            self.step = step;
            ui.ctx().request_repaint();
        }
    }
}

/// The Interpolation scrubber tab: the vanilla panel's recorded path, if it has one.
pub fn view(ui: &mut egui::Ui, scrubber: &mut Scrubber, state: &StudioState, rt: &Runtime) {
    let Some(result) = state.results.get(&Variant::Vanilla).cloned() else {
        ui.label(if rt.running() {
            "The path is being walked; its points appear here when the vanilla map is done."
        } else {
            "Run a path method to step through its interpolation points."
        });
        return;
    };
    let spec = state.computed_settings().spec_for(Variant::Vanilla);
    if result.trace.is_none() {
        ui.label(missing_trace_message(&result, spec.as_ref()));
        return;
    }
    let (Some((input, _)), Some(norm), Some(image)) = (&rt.input, rt.normalization(), &state.image) else {
        ui.label("Load a model and a photo to step through the path.");
        return;
    };
    let seed = state.computed_settings().seed;
    let baseline = || match spec {
        Some(MethodSpec::PathIntegral {
            path: PathKind::Straight,
            baseline,
            ..
        }) => baseline.build(input, &norm, seed).ok(),
        _ => None,
    };
    scrubber.show(ui, &result, input, baseline, &norm, &image.crop);
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn explanation(delta: Option<f64>) -> Explanation {
        Explanation {
            attribution: Tensor::zeros((1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
            score_input: 3.0,
            score_baseline: delta.map(|_| 1.0),
            attribution_sum: 1.5,
            convergence_delta: delta,
            trace: None,
            quadrature: None,
        }
    }

    #[test]
    fn nearest_step_picks_the_closest_alpha() {
        let alphas = [0.0625, 0.1875, 0.3125, 0.4375, 0.5625, 0.6875, 0.8125, 0.9375];
        assert_eq!(nearest_step(&alphas, -1.0), 0);
        assert_eq!(nearest_step(&alphas, 0.0), 0);
        assert_eq!(nearest_step(&alphas, 0.3), 2);
        assert_eq!(nearest_step(&alphas, 0.25), 1, "a tie goes to the earlier step");
        assert_eq!(nearest_step(&alphas, 0.95), 7);
        assert_eq!(nearest_step(&alphas, 2.0), 7);
        assert_eq!(nearest_step(&[], 0.5), 0);
        assert_eq!(nearest_step(&alphas, f64::NAN), 0);
    }

    #[test]
    fn completeness_at_the_last_step_is_the_final_maps() {
        let e = explanation(Some(-0.5));
        let mid = Completeness::at(&e, &[0.5, 1.0, 1.4], 1, 1);
        assert_eq!(mid.sum_so_far, 1.0);
        assert_eq!(mid.gap(), Some(-1.0));
        assert_eq!(
            mid.text(),
            "completeness: Σ attribution so far = 1.0000, f(x) − f(x') = 2.0000, gap = −1.0000 (−50.0 %)"
        );
        // At the last step the exact sum of the final map, not the f16 trace's.
        let last = Completeness::at(&e, &[0.5, 1.0, 1.4], 2, 1);
        assert_eq!(last.sum_so_far, e.attribution_sum);
        assert_eq!(last.gap(), e.convergence_delta);
        assert!(last
            .text()
            .starts_with("completeness: Σ attribution of the final map = 1.5000"));
        let coarse = Completeness::at(&e, &[0.5, 1.0, 1.4], 0, 4);
        assert!(coarse
            .text()
            .ends_with("partial: the trace kept one step in 4 (memory bound)"));
    }

    #[test]
    fn the_missing_trace_is_named_for_what_it_is() {
        assert_eq!(missing_trace_message(&explanation(Some(0.1)), None), NO_TRACE);
        assert_eq!(
            missing_trace_message(&explanation(None), Some(&MethodSpec::Gradient)),
            NO_PATH
        );
        assert_eq!(missing_trace_message(&explanation(None), None), NO_PATH);
    }

    #[test]
    fn tick_labels_stay_short() {
        for v in [0.0, 1.0, -12.345678, 0.000123, -98765.4, 0.5, 1234.5678, -0.0012] {
            let t = tick(v);
            assert!(t.chars().count() <= 8, "{v}: {t}");
        }
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(-12.345678), "-12.345");
    }
}
