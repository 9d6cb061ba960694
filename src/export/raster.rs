//! The PNG writer: a [`Scene`] rasterised at its DPI. Map panels are coloured by
//! [`colorize_at`] at the panel's pixel size, the CPU twin of the studio's shader, so a
//! panel in the file is the panel on screen at that size; rectangles snap to whole pixels;
//! text is the figure font's outlines with coverage antialiasing.

use image::{Rgb, RgbImage};

use super::figure::{Anchor, Item, Rect, Scene, PT_PER_INCH};
use super::font::{self, Rotation};
use super::metadata::FigureMetadata;
use super::ExportError;
use crate::render::heatmap::colorize_at;

/// Largest raster the writer makes (about 24 000 × 16 000 pixels at 3 bytes each is 1.1 GB).
pub const MAX_PIXELS: u64 = 250_000_000;

/// Pixels per point at `dpi`.
pub fn scale(dpi: f32) -> f32 {
    dpi / PT_PER_INCH
}

/// The raster size of a scene.
pub fn raster_size(scene: &Scene) -> (u32, u32) {
    let k = scale(scene.dpi);
    (
        (scene.width * k).round().max(1.0) as u32,
        (scene.height * k).round().max(1.0) as u32,
    )
}

/// The whole pixels `rect` covers at `k` pixels per point: (x0, y0, x1, y1), ends exclusive.
pub fn pixel_rect(rect: Rect, k: f32) -> (u32, u32, u32, u32) {
    let r = |v: f32| (v * k).round().max(0.0) as u32;
    (r(rect.x), r(rect.y), r(rect.x + rect.w), r(rect.y + rect.h))
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: [u8; 3]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, Rgb(color));
        }
    }
}

/// Nearest-texel index along an axis of `n` texels for output pixel `i` of `out` (as the
/// shader samples).
fn texel(i: u32, out: u32, n: u32) -> u32 {
    (((i as f32 + 0.5) / out as f32 * n as f32).floor() as u32).min(n - 1)
}

/// Rasterises `scene` at its DPI.
pub fn render(scene: &Scene) -> Result<RgbImage, ExportError> {
    let (w, h) = raster_size(scene);
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(ExportError::InvalidFigure(format!(
            "{w} × {h} pixels is too large a PNG (at most {MAX_PIXELS} pixels); lower the DPI or the size"
        )));
    }
    let k = scale(scene.dpi);
    let mut img = RgbImage::from_pixel(w, h, Rgb([255; 3]));
    for item in &scene.items {
        match item {
            Item::Photo { rect, photo } => {
                let (x0, y0, x1, y1) = pixel_rect(*rect, k);
                let (ow, oh) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
                if ow == 0 || oh == 0 || photo.width() == 0 || photo.height() == 0 {
                    continue;
                }
                for y in 0..oh {
                    for x in 0..ow {
                        let p = photo.get_pixel(texel(x, ow, photo.width()), texel(y, oh, photo.height()));
                        if x0 + x < w && y0 + y < h {
                            img.put_pixel(x0 + x, y0 + y, *p);
                        }
                    }
                }
            }
            Item::Heatmap {
                rect,
                map,
                width,
                height,
                photo,
                style,
            } => {
                let (x0, y0, x1, y1) = pixel_rect(*rect, k);
                let (ow, oh) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
                if ow == 0 || oh == 0 {
                    continue;
                }
                let panel = colorize_at(map, *width, *height, photo.as_deref(), style, ow, oh);
                for (x, y, p) in panel.enumerate_pixels() {
                    if x0 + x < w && y0 + y < h {
                        img.put_pixel(x0 + x, y0 + y, Rgb([p.0[0], p.0[1], p.0[2]]));
                    }
                }
            }
            Item::Fill { rect, color } => {
                let (x0, y0, x1, y1) = pixel_rect(*rect, k);
                fill(&mut img, x0 as i64, y0 as i64, x1 as i64, y1 as i64, *color);
            }
            Item::Frame { rect, width, color } => {
                let (x0, y0, x1, y1) = pixel_rect(*rect, k);
                let (x0, y0, x1, y1) = (x0 as i64, y0 as i64, x1 as i64, y1 as i64);
                let t = (width * k).round().max(1.0) as i64;
                fill(&mut img, x0 - t, y0 - t, x1 + t, y0, *color);
                fill(&mut img, x0 - t, y1, x1 + t, y1 + t, *color);
                fill(&mut img, x0 - t, y0, x0, y1, *color);
                fill(&mut img, x1, y0, x1 + t, y1, *color);
            }
            Item::Line { from, to, width, color } => {
                let t = (width * k).round().max(1.0);
                let (ax, ay, bx, by) = (from[0] * k, from[1] * k, to[0] * k, to[1] * k);
                let (x0, x1) = (ax.min(bx), ax.max(bx));
                let (y0, y1) = (ay.min(by), ay.max(by));
                // Widen the thin direction to `t` pixels centred on the line.
                let grow = |lo: f32, hi: f32| {
                    if hi - lo < t {
                        let c = (lo + hi) / 2.0;
                        let s = (c - t / 2.0).round();
                        (s as i64, (s + t) as i64)
                    } else {
                        (lo.round() as i64, hi.round() as i64)
                    }
                };
                let (px0, px1) = grow(x0, x1);
                let (py0, py1) = grow(y0, y1);
                fill(&mut img, px0, py0, px1, py1, *color);
            }
            Item::Polyline { points, width, color } => {
                // Stamp a square of the line's width every half pixel along each segment.
                let t = (width * k).max(1.0);
                for seg in points.windows(2) {
                    let (ax, ay, bx, by) = (seg[0][0] * k, seg[0][1] * k, seg[1][0] * k, seg[1][1] * k);
                    let stamps = ((bx - ax).hypot(by - ay) * 2.0).ceil().clamp(1.0, 1e5) as usize;
                    for i in 0..=stamps {
                        let f = i as f32 / stamps as f32;
                        let (cx, cy) = (ax + (bx - ax) * f, ay + (by - ay) * f);
                        let (x0, y0) = ((cx - t / 2.0).round() as i64, (cy - t / 2.0).round() as i64);
                        let side = t.round().max(1.0) as i64;
                        fill(&mut img, x0, y0, x0 + side, y0 + side, *color);
                    }
                }
            }
            Item::Text {
                x,
                y,
                size,
                anchor,
                rotation,
                text,
                color,
            } => {
                let px = size * k;
                let width = font::text_width(text, *size) * k;
                let offset = match anchor {
                    Anchor::Start => 0.0,
                    Anchor::Middle => width / 2.0,
                    Anchor::End => width,
                };
                let (sx, sy) = match rotation {
                    Rotation::None => (x * k - offset, y * k),
                    Rotation::Ccw90 => (x * k, y * k + offset),
                };
                font::draw_text(&mut img, text, sx, sy, px, *color, *rotation);
            }
        }
    }
    Ok(img)
}

/// The scene as a PNG: physical size (pHYs) from the DPI, the metadata as text chunks.
pub fn png_bytes(scene: &Scene, meta: &FigureMetadata) -> Result<Vec<u8>, ExportError> {
    let img = render(scene)?;
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, img.width(), img.height());
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let ppm = (scene.dpi / 0.0254).round() as u32;
    enc.set_pixel_dims(Some(png::PixelDimensions {
        xppu: ppm,
        yppu: ppm,
        unit: png::Unit::Meter,
    }));
    let png_err = |e: png::EncodingError| ExportError::Encode(format!("PNG: {e}"));
    for (key, value) in meta.entries() {
        enc.add_itxt_chunk(key.to_string(), value).map_err(png_err)?;
    }
    let mut writer = enc.write_header().map_err(png_err)?;
    writer.write_image_data(img.as_raw()).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(out)
}
