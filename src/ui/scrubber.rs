//! The interpolation scrubber: a slider over the path's points showing the path image,
//! the gradient there and the attribution accumulated up to it, with plots of the score
//! along the path, each step's contribution and the completeness gap. Everything comes
//! from the recorded trace: moving the slider computes no model pass.

use candle_core::Tensor;
use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{Legend, Line, Plot, PlotPoints, VLine};
use image::RgbImage;

use crate::attribution::blur::gaussian_blur_zero_gemm;
use crate::attribution::catalog::Variant;
use crate::attribution::display::{reduce_channels, ChannelReduction};
use crate::attribution::method::{Explanation, MethodSpec, PathKind};
use crate::attribution::trace::TracePoint;
use crate::export::heatmap::{default_span, overlay};
use crate::model::Normalization;
use crate::render::colormap::Colormap;

use super::runtime::Runtime;
use super::state::StudioState;

#[derive(Default)]
pub struct Scrubber {
    pub step: usize,
    textures: Option<(usize, [TextureHandle; 3])>,
    cache: Option<TraceCache>,
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
    fn new(trace: &crate::attribution::trace::TraceRecorder, key: usize) -> Self {
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

    fn move_to(&mut self, trace: &crate::attribution::trace::TraceRecorder, step: usize) {
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

impl Scrubber {
    /// The label under the slider, e.g. "step 12 / 50 (α = 0.240)".
    pub fn label(&self, total: usize, alpha: f64) -> String {
        format!("step {} / {} (α = {alpha:.3})", self.step + 1, total)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        result: &Explanation,
        input: &Tensor,
        baseline: Option<&Tensor>,
        norm: &Normalization,
        photo: &RgbImage,
    ) {
        let Some(trace) = &result.trace else {
            ui.label("This method has no path to step through.");
            return;
        };
        let n = trace.steps.len();
        if n == 0 {
            return;
        }
        self.step = self.step.min(n - 1);
        let key = trace as *const _ as usize;
        if self.cache.as_ref().map(|c| c.key) != Some(key) {
            self.cache = Some(TraceCache::new(trace, key));
            self.textures = None;
        }
        let current = &trace.steps[self.step];
        ui.add(
            egui::Slider::new(&mut self.step, 0..=n - 1)
                .show_value(false)
                .text("interpolation point"),
        );
        ui.label(self.label(n, current.alpha));
        let current = &trace.steps[self.step];
        let (w, h) = photo.dimensions();
        let hw = (w * h) as usize;
        if !matches!(&self.textures, Some((s, _)) if *s == self.step) {
            // The path image at this step.
            let x = input.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default();
            let mut point: Vec<f32> = match (&current.point, baseline) {
                (TracePoint::Straight { alpha }, Some(b)) => {
                    let b = b.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default();
                    b.iter().zip(&x).map(|(b, x)| b + *alpha as f32 * (x - b)).collect()
                }
                (TracePoint::Values(v), _) if !v.is_empty() => v.iter().map(|v| v.to_f32()).collect(),
                (TracePoint::Blurred { sigma }, _) => {
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
        let (_, tex) = self.textures.as_ref().expect("textures just set");
        let size = ((ui.available_width() - 24.0) / 3.0).clamp(96.0, 320.0);
        ui.horizontal_top(|ui| {
            for (t, title) in tex.iter().zip(["path point", "gradient there", "attribution so far"]) {
                ui.vertical(|ui| {
                    ui.label(title);
                    ui.add(egui::Image::new(t).fit_to_exact_size(egui::vec2(size, size)));
                });
            }
        });
        let step_x = self.step as f64;
        let scores: PlotPoints = trace
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| [i as f64, s.score as f64])
            .collect();
        let cache = self.cache.as_ref().expect("cache built above");
        let contributions: PlotPoints = cache.totals.iter().enumerate().map(|(i, &t)| [i as f64, t]).collect();
        let cumulative: PlotPoints = cache
            .cumulative
            .iter()
            .enumerate()
            .map(|(i, &c)| [i as f64, c])
            .collect();
        let gap = result.score_input as f64 - result.score_baseline.unwrap_or(0.0) as f64;
        let plot_h = (ui.available_height() / 3.0 - 8.0).max(80.0);
        Plot::new("scores")
            .height(plot_h)
            .legend(Legend::default())
            .show(ui, |p| {
                p.line(Line::new("score along the path", scores));
                p.vline(VLine::new("current step", step_x));
            });
        Plot::new("contributions")
            .height(plot_h)
            .legend(Legend::default())
            .show(ui, |p| {
                p.line(Line::new("contribution of each step", contributions));
                p.vline(VLine::new("current step", step_x));
            });
        Plot::new("completeness")
            .height(plot_h)
            .legend(Legend::default())
            .show(ui, |p| {
                p.line(Line::new("attribution summed so far", cumulative));
                p.hline(egui_plot::HLine::new("f(input) - f(baseline)", gap));
                p.vline(VLine::new("current step", step_x));
            });
    }
}

/// The Interpolation scrubber tab: the vanilla panel's recorded path, if it has one.
pub fn view(ui: &mut egui::Ui, scrubber: &mut Scrubber, state: &StudioState, rt: &Runtime) {
    let Some(result) = state.results.get(&Variant::Vanilla).cloned() else {
        ui.label("Run a path method to step through its interpolation points.");
        return;
    };
    let (Some((input, _)), Some(norm), Some(image)) = (&rt.input, rt.normalization(), &state.image) else {
        return;
    };
    let baseline = match state.settings.spec_for(Variant::Vanilla) {
        Some(MethodSpec::PathIntegral {
            path: PathKind::Straight,
            baseline,
            ..
        }) => baseline.build(input, &norm, state.settings.seed).ok(),
        _ => None,
    };
    scrubber.show(ui, &result, input, baseline.as_ref(), &norm, &image.crop);
}
