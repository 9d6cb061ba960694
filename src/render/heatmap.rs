//! Attribution maps on screen: `shaders/heatmap.wgsl` draws a map through an egui_wgpu paint
//! callback, and [`colorize`] is the CPU reference of the same arithmetic (nearest-texel view
//! transform, nearest LUT entry, the photo blend), so the studio, the exporters and the tests
//! agree pixel for pixel. With `overlay = 1` and `zoom = 1` it reproduces
//! [`crate::export::heatmap::overlay`] exactly for every finite value. NaN means "no value"
//! here (white, or the bare grey photo when overlaid); the exporter paints NaN black.
//!
//! GPU resources are made once: [`HeatmapRenderer::install`] puts the pipeline and one LUT
//! texture per [`Colormap`] into egui_wgpu's `callback_resources`; [`HeatmapRenderer::upload`]
//! sends a panel's map and photo when they change; each frame only the panel's 48-byte uniform
//! buffer is written (in `prepare`).

use image::{RgbImage, Rgba, RgbaImage};

use crate::render::colormap::Colormap;

/// How a map is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeatmapStyle {
    pub colormap: Colormap,
    /// The value mapped to the end of the scale: ±`range` on a diverging scale, [0, `range`]
    /// on a sequential one.
    pub range: f32,
    /// 0 = the colormap alone on white, 1 = the colour blended over the grey photo with an
    /// opacity growing with |value| (the exporter's look); in between, the two mixed.
    pub overlay: f32,
    /// Magnification, ≥ 1 (1 shows the whole map).
    pub zoom: f32,
    /// The view centre in [0, 1] map coordinates; panels that share it zoom and pan together.
    /// Clamped so the view never leaves the map.
    pub center: [f32; 2],
}

impl Default for HeatmapStyle {
    fn default() -> Self {
        Self {
            colormap: Colormap::RdBu,
            range: 1.0,
            overlay: 1.0,
            zoom: 1.0,
            center: [0.5, 0.5],
        }
    }
}

/// The shader's uniforms (`Params` in heatmap.wgsl). The CPU reference reads the same struct,
/// so both sides see identical, already-sanitised numbers.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    origin: [f32; 2],
    size: [f32; 2],
    center: [f32; 2],
    zoom: f32,
    range: f32,
    overlay: f32,
    diverging: u32,
    _pad: [u32; 2],
}

impl Params {
    /// `origin`/`size`: the output rectangle in target pixels.
    fn new(style: &HeatmapStyle, origin: [f32; 2], size: [f32; 2]) -> Self {
        let zoom = if style.zoom.is_finite() {
            style.zoom.max(1.0)
        } else {
            1.0
        };
        let half = 0.5 / zoom;
        let center = style
            .center
            .map(|c| if c.is_finite() { c.clamp(half, 1.0 - half) } else { 0.5 });
        Self {
            origin,
            size,
            center,
            zoom,
            // As the exporter: a zero or NaN range becomes the smallest normal float, never a
            // division by zero; an infinite one the largest finite.
            range: if style.range.is_nan() {
                f32::MIN_POSITIVE
            } else {
                style.range.clamp(f32::MIN_POSITIVE, f32::MAX)
            },
            overlay: if style.overlay.is_finite() {
                style.overlay.clamp(0.0, 1.0)
            } else {
                1.0
            },
            diverging: style.colormap.is_diverging() as u32,
            _pad: [0; 2],
        }
    }
}

/// Nearest texel of map coordinate `m` along an axis of `n` texels (the shader's `texel`).
fn texel(m: f32, n: u32) -> u32 {
    ((m * n as f32).floor() as i32).clamp(0, n as i32 - 1) as u32
}

/// The colour of value `v` over photo colour `rgb` (the shader's fragment body).
fn shade(p: &Params, lut: &[[u8; 3]], v: f32, rgb: [u8; 3]) -> [u8; 3] {
    let grey = 0.299 * rgb[0] as f32 + 0.587 * rgb[1] as f32 + 0.114 * rgb[2] as f32;
    let (map_only, overlaid) = if v.is_nan() {
        ([255.0; 3], [grey; 3])
    } else {
        let t = if v.abs() >= p.range { v.signum() } else { v / p.range };
        let s = if p.diverging != 0 { 0.5 + 0.5 * t } else { t.max(0.0) };
        let c = Colormap::sample(lut, s).map(f32::from);
        let a = 0.15 + 0.8 * t.abs().sqrt();
        (c, c.map(|c| (1.0 - a) * grey + a * c))
    };
    std::array::from_fn(|i| {
        let out = (1.0 - p.overlay) * map_only[i] + p.overlay * overlaid[i];
        out.round().clamp(0.0, 255.0) as u8
    })
}

/// The CPU reference: `map` (row-major `width` × `height`) drawn at its own size.
pub fn colorize(map: &[f32], width: u32, height: u32, photo: Option<&RgbImage>, style: &HeatmapStyle) -> RgbaImage {
    colorize_at(map, width, height, photo, style, width, height)
}

/// [`colorize`] into an `out_w` × `out_h` image (what a panel of that many pixels shows).
/// The photo may have any size; it is sampled at the same map coordinate. Without a photo
/// the background is white.
pub fn colorize_at(
    map: &[f32],
    width: u32,
    height: u32,
    photo: Option<&RgbImage>,
    style: &HeatmapStyle,
    out_w: u32,
    out_h: u32,
) -> RgbaImage {
    assert_eq!(map.len(), width as usize * height as usize, "map is not width × height");
    assert!(width > 0 && height > 0, "empty map");
    let p = Params::new(style, [0.0; 2], [out_w as f32, out_h as f32]);
    let lut = style.colormap.lut();
    RgbaImage::from_fn(out_w, out_h, |x, y| {
        // Same operations, in the same order, as the shader.
        let uv = [(x as f32 + 0.5) / p.size[0], (y as f32 + 0.5) / p.size[1]];
        let m = [
            p.center[0] + (uv[0] - 0.5) / p.zoom,
            p.center[1] + (uv[1] - 0.5) / p.zoom,
        ];
        let v = map[(texel(m[1], height) * width + texel(m[0], width)) as usize];
        let rgb = photo.map_or([255; 3], |ph| {
            ph.get_pixel(texel(m[0], ph.width()), texel(m[1], ph.height())).0
        });
        let [r, g, b] = shade(&p, &lut, v, rgb);
        Rgba([r, g, b, 255])
    })
}

/// The wgpu pipeline (the studio's renderer and the off-screen renderer of the tests):
/// only in builds with the `studio` feature.
#[cfg(feature = "studio")]
mod gpu;
#[cfg(feature = "studio")]
pub use gpu::{render_offscreen, HeatmapRenderer};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::heatmap::overlay;

    /// A signed map with values past ±range, exact ±0 and exactly ±range, and a photo.
    fn fixture(w: u32, h: u32) -> (Vec<f32>, RgbImage) {
        let map = (0..w * h)
            .map(|i| match i % 23 {
                0 => 0.0,
                1 => -0.0,
                2 => 1.0,
                3 => -1.0,
                _ => (i as f32 * 0.7371).sin() * 1.6 + (i as f32 * 0.1913).cos() * 0.3,
            })
            .collect();
        let photo = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 13 + y * 7) as u8, (x * 3 + y * 29) as u8, (x * y) as u8])
        });
        (map, photo)
    }

    #[test]
    fn colorize_with_overlay_1_zoom_1_is_the_exporters_overlay() {
        let (w, h) = (29, 17);
        let (map, photo) = fixture(w, h);
        for colormap in Colormap::ALL {
            // Sequential maps are usually non-negative; the signed fixture also checks that
            // negatives are handled as the exporter does.
            for range in [1.0, 0.37] {
                let style = HeatmapStyle {
                    colormap,
                    range,
                    ..Default::default()
                };
                let ours = colorize(&map, w, h, Some(&photo), &style);
                let theirs = overlay(&photo, &map, range, colormap);
                for (x, y, px) in theirs.enumerate_pixels() {
                    let o = ours.get_pixel(x, y).0;
                    assert_eq!(
                        [o[0], o[1], o[2], o[3]],
                        [px[0], px[1], px[2], 255],
                        "{colormap:?} range {range} at ({x},{y})"
                    );
                }
            }
        }
    }

    #[test]
    fn overlay_0_is_the_bare_colormap_and_nan_is_white_or_photo() {
        let lut = Colormap::Viridis.lut();
        let map = [0.0, 0.5, 2.0, f32::NAN];
        let photo = RgbImage::from_pixel(4, 1, image::Rgb([10, 200, 30]));
        let bare = HeatmapStyle {
            colormap: Colormap::Viridis,
            overlay: 0.0,
            ..Default::default()
        };
        let img = colorize(&map, 4, 1, Some(&photo), &bare);
        for (i, t) in [0.0, 0.5, 1.0].into_iter().enumerate() {
            let [r, g, b] = Colormap::sample(&lut, t);
            assert_eq!(img.get_pixel(i as u32, 0).0, [r, g, b, 255]);
        }
        assert_eq!(img.get_pixel(3, 0).0, [255, 255, 255, 255]);
        let over = colorize(&map, 4, 1, Some(&photo), &HeatmapStyle { overlay: 1.0, ..bare });
        let grey = (0.299f32 * 10.0 + 0.587 * 200.0 + 0.114 * 30.0).round() as u8;
        assert_eq!(over.get_pixel(3, 0).0, [grey, grey, grey, 255]);
    }

    #[test]
    fn zoom_and_center_select_the_texels_in_view() {
        // Texel value = its index; zoom 2 centred on the top-left quadrant of a 4×4 map
        // shows texels (0,0) (1,0) / (0,1) (1,1), each over 2×2 pixels.
        let map: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let style = HeatmapStyle {
            colormap: Colormap::Reds,
            range: 15.0,
            overlay: 0.0,
            zoom: 2.0,
            center: [0.25, 0.25],
        };
        let img = colorize(&map, 4, 4, None, &style);
        let unzoomed = colorize(&map, 4, 4, None, &HeatmapStyle { zoom: 1.0, ..style });
        for (x, y, px) in img.enumerate_pixels() {
            assert_eq!(px, unzoomed.get_pixel(x / 2, y / 2), "({x},{y})");
        }
        // A centre off the map is pulled back so the view stays on it.
        let far = colorize(
            &map,
            4,
            4,
            None,
            &HeatmapStyle {
                center: [-3.0, 0.25],
                ..style
            },
        );
        assert_eq!(far, img);
    }
}
