//! One heatmap panel of the comparison grid, and the view state all panels share (so
//! zoom, pan and the probe stay in sync).
//!
//! A panel's colours are recomputed only when its data or display settings change; zoom
//! and pan only move the texture's UV window. Colours come from `render::colormap`, the
//! single definition the exporters use.

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};
use image::RgbImage;

use crate::export::heatmap::overlay;
use crate::render::colormap::Colormap;

/// Display settings shared by every panel.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewState {
    pub shared_scale: bool,
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
            shared_scale: true,
            overlay: 1.0,
            zoom: 1.0,
            center: [0.5, 0.5],
            probe: None,
        }
    }
}

impl ViewState {
    pub fn controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.shared_scale, "shared colour scale");
            ui.add(egui::Slider::new(&mut self.overlay, 0.0..=1.0).text("photo"));
            ui.label(format!("zoom {:.1}×", self.zoom));
            if ui.button("reset view").clicked() {
                self.zoom = 1.0;
                self.center = [0.5, 0.5];
            }
            ui.label("(scroll to zoom, drag to pan, hover to probe)");
        });
    }

    /// The visible part of the map, as a UV rectangle.
    pub fn uv(&self) -> egui::Rect {
        let half = 0.5 / self.zoom.max(1.0);
        let cx = self.center[0].clamp(half, 1.0 - half);
        let cy = self.center[1].clamp(half, 1.0 - half);
        egui::Rect::from_min_max(egui::pos2(cx - half, cy - half), egui::pos2(cx + half, cy + half))
    }
}

/// The key of what a texture shows.
#[derive(Debug, Clone, PartialEq)]
struct Drawn {
    range: f32,
    overlay: f32,
    signed: bool,
    len: usize,
    checksum: f64,
}

#[derive(Default)]
pub struct MapPanel {
    texture: Option<(TextureHandle, Drawn)>,
}

/// Colours a 2-D map over the photo: the photo's weight is `photo_weight` (0 = on white).
pub fn colorize(map: &[f32], photo: &RgbImage, signed: bool, range: f32, photo_weight: f32) -> RgbImage {
    let cmap = if signed { Colormap::RdBu } else { Colormap::Reds };
    let over = overlay(photo, map, range, cmap);
    if photo_weight >= 1.0 {
        return over;
    }
    let white = RgbImage::from_pixel(photo.width(), photo.height(), image::Rgb([255, 255, 255]));
    let bare = overlay(&white, map, range, cmap);
    RgbImage::from_fn(photo.width(), photo.height(), |x, y| {
        let a = over.get_pixel(x, y).0;
        let b = bare.get_pixel(x, y).0;
        let mix = |i: usize| (photo_weight * a[i] as f32 + (1.0 - photo_weight) * b[i] as f32).round() as u8;
        image::Rgb([mix(0), mix(1), mix(2)])
    })
}

impl MapPanel {
    /// Draws the panel at `size` points; returns the map pixel under the cursor.
    #[allow(clippy::too_many_arguments)]
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        id: u64,
        map: &[f32],
        photo: &RgbImage,
        signed: bool,
        range: f32,
        view: &mut ViewState,
        size: f32,
    ) -> Option<(usize, usize)> {
        let drawn = Drawn {
            range,
            overlay: view.overlay,
            signed,
            len: map.len(),
            checksum: map.iter().step_by(97).map(|&v| v as f64).sum(),
        };
        let stale = !matches!(&self.texture, Some((_, d)) if *d == drawn);
        if stale {
            let img = colorize(map, photo, signed, range, view.overlay);
            let ci = ColorImage::from_rgb([img.width() as usize, img.height() as usize], img.as_raw());
            let tex = ui
                .ctx()
                .load_texture(format!("panel-{id}"), ci, TextureOptions::NEAREST);
            self.texture = Some((tex, drawn));
        }
        let (tex, _) = self.texture.as_ref().expect("texture just set");
        let uv = view.uv();
        let response = ui.add(
            egui::Image::new(tex)
                .uv(uv)
                .fit_to_exact_size(egui::vec2(size, size))
                .sense(egui::Sense::click_and_drag()),
        );
        let rect = response.rect;
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
        let (w, h) = photo.dimensions();
        let x = ((u * w as f32) as usize).min(w as usize - 1);
        let y = ((v * h as f32) as usize).min(h as usize - 1);
        Some((x, y))
    }
}
