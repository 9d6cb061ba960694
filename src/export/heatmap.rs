//! A signed attribution map drawn over its photo: the quick-look PNG of `explain`.

use image::{Rgb, RgbImage};

use crate::attribution::display::percentile;
use crate::render::colormap::Colormap;

/// Percentile of |map| that maps to the ends of the colour scale.
pub const CLIP_PERCENTILE: f64 = 99.0;

/// The default colour range of a map: the 99th percentile of |value|.
pub fn default_span(map: &[f32]) -> f32 {
    let abs: Vec<f32> = map.iter().map(|v| v.abs()).collect();
    percentile(&abs, CLIP_PERCENTILE)
}

/// Draws a 2-D signed map (row-major, the photo's size) over a grey version of the photo
/// with its own 99th-percentile range.
pub fn signed_overlay(photo: &RgbImage, map: &[f32]) -> RgbImage {
    overlay(photo, map, default_span(map), Colormap::RdBu)
}

/// Draws a 2-D map over a grey version of the photo: ±`span` maps to the ends of a
/// diverging colormap (0 in the middle), [0, `span`] to a sequential one. The colour is
/// blended in with an opacity that grows with |value|, so the photo stays readable where
/// the attribution is near zero.
pub fn overlay(photo: &RgbImage, map: &[f32], span: f32, colormap: Colormap) -> RgbImage {
    let (w, h) = photo.dimensions();
    assert_eq!(map.len(), (w * h) as usize, "map and photo sizes differ");
    let span = span.max(f32::MIN_POSITIVE);
    let lut = colormap.lut();
    RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        let p = photo.get_pixel(x, y).0;
        let grey = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
        let t = (map[i] / span).clamp(-1.0, 1.0);
        let c = if colormap.is_diverging() {
            Colormap::sample(&lut, 0.5 + 0.5 * t)
        } else {
            Colormap::sample(&lut, t.max(0.0))
        };
        let a = 0.15 + 0.8 * t.abs().sqrt();
        let mix = |ch: usize| ((1.0 - a) * grey + a * c[ch] as f32).round().clamp(0.0, 255.0) as u8;
        Rgb([mix(0), mix(1), mix(2)])
    })
}

/// Panels side by side with `gap` white pixels between them.
pub fn side_by_side(panels: &[RgbImage], gap: u32) -> RgbImage {
    let h = panels.iter().map(|p| p.height()).max().unwrap_or(0);
    let w = panels.iter().map(|p| p.width()).sum::<u32>() + gap * panels.len().saturating_sub(1) as u32;
    let mut out = RgbImage::from_pixel(w.max(1), h.max(1), Rgb([255, 255, 255]));
    let mut x = 0;
    for p in panels {
        image::imageops::overlay(&mut out, p, x as i64, 0);
        x += p.width() + gap;
    }
    out
}

/// A horizontal colour bar of `width` × `height` for `colormap`.
pub fn colorbar(colormap: Colormap, width: u32, height: u32) -> RgbImage {
    let lut = colormap.lut();
    RgbImage::from_fn(width, height, |x, _| {
        Rgb(Colormap::sample(&lut, x as f32 / (width.max(2) - 1) as f32))
    })
}
