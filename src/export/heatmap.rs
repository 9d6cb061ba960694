//! A signed attribution map drawn over its photo: the quick-look PNG of `explain`.

use image::{Rgb, RgbImage};

use crate::attribution::display::percentile;
use crate::render::colormap::Colormap;

/// Percentile of |map| that maps to the ends of the colour scale.
pub const CLIP_PERCENTILE: f64 = 99.0;

/// Draws a 2-D signed map (row-major, the photo's size) over a grey version of the photo:
/// the diverging colour is blended in with an opacity that grows with |value|, so the
/// photo stays readable where attribution is near zero.
pub fn signed_overlay(photo: &RgbImage, map: &[f32]) -> RgbImage {
    let (w, h) = photo.dimensions();
    assert_eq!(map.len(), (w * h) as usize, "map and photo sizes differ");
    let abs: Vec<f32> = map.iter().map(|v| v.abs()).collect();
    let span = percentile(&abs, CLIP_PERCENTILE).max(f32::MIN_POSITIVE);
    let lut = Colormap::RdBu.lut();
    RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        let p = photo.get_pixel(x, y).0;
        let grey = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
        let t = (map[i] / span).clamp(-1.0, 1.0);
        let c = Colormap::sample(&lut, 0.5 + 0.5 * t);
        let a = 0.15 + 0.8 * t.abs().sqrt();
        let mix = |ch: usize| ((1.0 - a) * grey + a * c[ch] as f32).round().clamp(0.0, 255.0) as u8;
        Rgb([mix(0), mix(1), mix(2)])
    })
}
