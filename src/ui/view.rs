//! One heatmap panel of the comparison grid, and the view state all panels share (so
//! zoom, pan and the probe stay in sync).
//!
//! On wgpu a panel's map and photo are uploaded once and the WGSL shader applies colour
//! map, range, photo blend, zoom and pan every frame, so a display change costs nothing.
//! Colours come from `render::colormap`, the single definition the exporters use.

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};
use eframe::egui_wgpu;
use image::RgbImage;

use crate::attribution::display::ClipRule;
use crate::render::colormap::Colormap;
use crate::render::heatmap::{colorize, HeatmapRenderer, HeatmapStyle};

/// Display settings shared by every panel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ViewState {
    /// One colour range over every panel; off by default, since IDGI and re-calibrated
    /// maps are far fainter than the vanilla map and would look blank under its range.
    pub shared_scale: bool,
    /// How the colour range is read from the values.
    pub clip: ClipRule,
    /// The scale of unsigned maps (absolute, re-calibrated); signed maps use RdBu.
    pub sequential: Colormap,
    /// 0: the map alone; 1: the map blended over the grey photo.
    pub overlay: f32,
    pub zoom: f32,
    /// Centre of the view in [0, 1] map coordinates.
    pub center: [f32; 2],
    pub probe: Option<(usize, usize)>,
}

impl Default for ViewState {
    fn default() -> Self {
        Self {
            shared_scale: false,
            clip: ClipRule::Percentile(99.0),
            sequential: Colormap::Reds,
            overlay: 1.0,
            zoom: 1.0,
            center: [0.5, 0.5],
            probe: None,
        }
    }
}

impl ViewState {
    pub fn controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut self.shared_scale, "shared colour scale")
                .on_hover_text("off: each panel has its own range, shown under it");
            let label = ui.label("Range:");
            egui::ComboBox::from_id_salt("view-range")
                .selected_text(clip_name(self.clip))
                .show_ui(ui, |ui| {
                    for c in [
                        ClipRule::Percentile(99.0),
                        ClipRule::MaxAbs,
                        ClipRule::CaptumOutlierMass(2.0),
                    ] {
                        ui.selectable_value(&mut self.clip, c, clip_name(c));
                    }
                })
                .response
                .labelled_by(label.id);
            let label = ui.label("Unsigned maps:");
            egui::ComboBox::from_id_salt("view-sequential")
                .selected_text(self.sequential.name())
                .show_ui(ui, |ui| {
                    for c in [Colormap::Reds, Colormap::Viridis, Colormap::Inferno] {
                        ui.selectable_value(&mut self.sequential, c, c.name());
                    }
                })
                .response
                .labelled_by(label.id);
            let label = ui.label("Photo:");
            ui.add(egui::Slider::new(&mut self.overlay, 0.0..=1.0))
                .labelled_by(label.id);
            ui.label(format!("zoom {:.1}×", self.zoom));
            if ui.button("reset view").clicked() {
                self.zoom = 1.0;
                self.center = [0.5, 0.5];
            }
            ui.label("(?)")
                .on_hover_text("scroll to zoom, drag to pan, hover to probe; all panels follow");
        });
    }

    /// The value mapped to the end of the colour scale for `map`.
    pub fn range_of(&self, map: &[f32]) -> f32 {
        self.clip.range(map)
    }

    /// The visible part of the map, as a UV rectangle.
    pub fn uv(&self) -> egui::Rect {
        let half = 0.5 / self.zoom.max(1.0);
        let cx = self.center[0].clamp(half, 1.0 - half);
        let cy = self.center[1].clamp(half, 1.0 - half);
        egui::Rect::from_min_max(egui::pos2(cx - half, cy - half), egui::pos2(cx + half, cy + half))
    }
}

/// The colour bar under a panel: the scale from −range (signed maps) or 0 to +range, its
/// numbers at the ends, and an accessible label with the range (what a test reads).
pub fn colour_bar(ui: &mut egui::Ui, view: &ViewState, signed: bool, range: f32, width: f32, shared: bool) {
    let colormap = if signed { Colormap::RdBu } else { view.sequential };
    let lut = colormap.lut();
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, 24.0), egui::Sense::hover());
    let bar = egui::Rect::from_min_size(rect.min, egui::vec2(width, 9.0));
    let n = 64;
    for i in 0..n {
        let t = (i as f32 + 0.5) / n as f32;
        let [r, g, b] = Colormap::sample(&lut, t);
        let x0 = bar.min.x + bar.width() * i as f32 / n as f32;
        let x1 = bar.min.x + bar.width() * (i + 1) as f32 / n as f32 + 0.5;
        ui.painter().rect_filled(
            egui::Rect::from_min_max(egui::pos2(x0, bar.min.y), egui::pos2(x1, bar.max.y)),
            0.0,
            egui::Color32::from_rgb(r, g, b),
        );
    }
    let low = if signed {
        format!("{:.2e}", -range)
    } else {
        "0".to_string()
    };
    let high = format!("{range:.2e}");
    let font = egui::FontId::proportional(11.0);
    let colour = ui.visuals().text_color();
    let y = bar.max.y + 1.0;
    let painter = ui.painter();
    painter.text(
        egui::pos2(bar.min.x, y),
        egui::Align2::LEFT_TOP,
        &low,
        font.clone(),
        colour,
    );
    if signed {
        painter.text(
            egui::pos2(bar.center().x, y),
            egui::Align2::CENTER_TOP,
            "0",
            font.clone(),
            colour,
        );
    }
    painter.text(egui::pos2(bar.max.x, y), egui::Align2::RIGHT_TOP, &high, font, colour);
    let which = if shared { "shared" } else { "own" };
    let text = format!("colour scale {low} to {high} ({which} range)");
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, text.clone()));
}

/// The name of a range rule in the view controls.
pub fn clip_name(c: ClipRule) -> String {
    match c {
        ClipRule::Percentile(p) => format!("{p}th percentile of |A| (PAIR)"),
        ClipRule::MaxAbs => "max |A|".into(),
        ClipRule::CaptumOutlierMass(p) => format!("clip the top {p} % of mass (Captum)"),
    }
}

/// What a panel's uploaded data (GPU) or texture (CPU) was made from.
#[derive(Debug, Clone, PartialEq)]
struct Drawn {
    /// Only the CPU texture bakes the style in.
    style: Option<(f32, f32, bool, Colormap)>,
    len: usize,
    checksum: f64,
}

/// One panel: on the GPU (the WGSL heatmap shader) when egui runs on wgpu, else a CPU
/// texture coloured by the same maths (`render::heatmap::colorize`).
#[derive(Default)]
pub struct MapPanel {
    drawn: Option<Drawn>,
    texture: Option<TextureHandle>,
}

impl MapPanel {
    /// Draws the panel at `size` points; returns the map pixel under the cursor.
    #[allow(clippy::too_many_arguments)]
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        gpu: Option<&egui_wgpu::RenderState>,
        id: u64,
        map: &[f32],
        photo: &RgbImage,
        signed: bool,
        range: f32,
        view: &mut ViewState,
        size: f32,
    ) -> Option<(usize, usize)> {
        let (w, h) = photo.dimensions();
        let colormap = if signed { Colormap::RdBu } else { view.sequential };
        let style = HeatmapStyle {
            colormap,
            range,
            overlay: view.overlay,
            zoom: view.zoom,
            center: view.center,
        };
        let drawn = Drawn {
            style: gpu.is_none().then_some((range, view.overlay, signed, colormap)),
            len: map.len(),
            checksum: map.iter().step_by(97).map(|&v| v as f64).sum(),
        };
        let stale = self.drawn.as_ref() != Some(&drawn);
        let response = match gpu {
            Some(rs) => {
                if stale {
                    HeatmapRenderer::upload(rs, id, map, w, h, Some(photo));
                }
                let (rect, response) = ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::click_and_drag());
                HeatmapRenderer::paint(ui, rect, id, style);
                response
            }
            None => {
                if stale || self.texture.is_none() {
                    let full = HeatmapStyle {
                        zoom: 1.0,
                        center: [0.5, 0.5],
                        ..style
                    };
                    let img = colorize(map, w, h, Some(photo), &full);
                    let ci =
                        ColorImage::from_rgba_unmultiplied([img.width() as usize, img.height() as usize], img.as_raw());
                    self.texture = Some(
                        ui.ctx()
                            .load_texture(format!("panel-{id}"), ci, TextureOptions::NEAREST),
                    );
                }
                let tex = self.texture.as_ref().expect("texture just set");
                ui.add(
                    egui::Image::new(tex)
                        .uv(view.uv())
                        .fit_to_exact_size(egui::vec2(size, size))
                        .sense(egui::Sense::click_and_drag()),
                )
            }
        };
        self.drawn = Some(drawn);
        let rect = response.rect;
        let uv = view.uv();
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                view.zoom = (view.zoom * (1.0 + scroll * 0.002)).clamp(1.0, 32.0);
            }
        }
        if response.dragged() {
            let d = response.drag_delta();
            let scale = uv.width() / rect.width();
            view.center[0] -= d.x * scale;
            view.center[1] -= d.y * scale;
        }
        let pos = response.hover_pos()?;
        let u = uv.min.x + (pos.x - rect.min.x) / rect.width() * uv.width();
        let v = uv.min.y + (pos.y - rect.min.y) / rect.height() * uv.height();
        let x = ((u * w as f32) as usize).min(w as usize - 1);
        let y = ((v * h as f32) as usize).min(h as usize - 1);
        Some((x, y))
    }
}
