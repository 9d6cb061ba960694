//! The one figure font, Liberation Sans (SIL OFL 1.1, `assets/fonts/`): the PNG writer
//! rasterises it, the PDF writer embeds it, the SVG writer names it (it is metric-compatible
//! with Arial and Helvetica, the fallbacks named after it). Every writer lays text out with
//! the advances measured here, so a title is centred the same in all three.
//!
//! Figure text is limited to the characters of PDF's WinAnsiEncoding (Latin-1 and a few
//! typographic marks): that lets the PDF use a simple TrueType font with the whole file
//! embedded, no subsetting. [`sanitize`] replaces the rest before layout, so all three
//! formats show the same string.

use std::sync::OnceLock;

use ab_glyph::{point, Font as _, FontRef, PxScale, ScaleFont as _};
use image::{Rgb, RgbImage};

pub const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");
/// The font's PostScript name (PDF `/BaseFont`).
pub const POSTSCRIPT_NAME: &str = "LiberationSans";
/// The CSS font stack of SVG figures: the font itself, then its metric twins.
pub const CSS_FAMILY: &str = "'Liberation Sans', Arial, Helvetica, sans-serif";

pub fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("the bundled font parses"))
}

fn units_per_em() -> f32 {
    font().units_per_em().unwrap_or(2048.0)
}

/// Width of `text` set at `size` points, in points (no kerning: PDF simple fonts have none).
pub fn text_width(text: &str, size: f32) -> f32 {
    let f = font();
    text.chars().map(|c| f.h_advance_unscaled(f.glyph_id(c))).sum::<f32>() * size / units_per_em()
}

/// Ascent and descent (negative) of the font at `size` points.
pub fn ascent_descent(size: f32) -> (f32, f32) {
    let f = font();
    let k = size / units_per_em();
    (f.ascent_unscaled() * k, f.descent_unscaled() * k)
}

/// WinAnsi codes 0x80–0x9f ('\0': undefined).
const WIN_ANSI_HIGH: [char; 32] = [
    '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0', '‘', '’', '“', '”', '•',
    '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

/// The WinAnsiEncoding code of `c`, if it has one.
pub fn win_ansi(c: char) -> Option<u8> {
    match c as u32 {
        0x20..=0x7e | 0xa0..=0xff => Some(c as u8),
        _ => WIN_ANSI_HIGH
            .iter()
            .position(|&h| h == c && h != '\0')
            .map(|i| 0x80 + i as u8),
    }
}

/// The Unicode character of WinAnsi code `b`, if defined.
pub fn win_ansi_char(b: u8) -> Option<char> {
    match b {
        0x20..=0x7e | 0xa0..=0xff => Some(b as char),
        0x80..=0x9f => Some(WIN_ANSI_HIGH[(b - 0x80) as usize]).filter(|&c| c != '\0'),
        _ => None,
    }
}

/// `text` with every character outside WinAnsiEncoding replaced by a readable stand-in.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if win_ansi(c).is_some() {
            out.push(c);
            continue;
        }
        out.push_str(match c {
            '−' => "-",
            '→' => "->",
            '≤' => "<=",
            '≥' => ">=",
            '²' => "^2",
            'α' => "alpha",
            'σ' => "sigma",
            '∇' => "grad ",
            '\n' | '\t' => " ",
            _ => "?",
        });
    }
    out
}

/// Text drawing direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    None,
    /// Read bottom to top (a y-axis label).
    Ccw90,
}

/// Draws `text` in `color` onto `img`, its baseline starting at (`x`, `y`) pixels, `px`
/// pixels per em, blending by glyph coverage. With [`Rotation::Ccw90`] the baseline runs
/// upwards from (`x`, `y`).
pub fn draw_text(img: &mut RgbImage, text: &str, x: f32, y: f32, px: f32, color: [u8; 3], rotation: Rotation) {
    let f = font();
    // ab_glyph's PxScale is the ascent-to-descent height, not the em: convert, so a glyph
    // advances exactly as `text_width` measures.
    let scale = PxScale::from(px * f.height_unscaled() / units_per_em());
    let scaled = f.as_scaled(scale);
    let mut pen = 0.0f32;
    for c in text.chars() {
        let id = f.glyph_id(c);
        let glyph = id.with_scale_and_position(scale, point(pen, 0.0));
        pen += scaled.h_advance(id);
        let Some(outline) = f.outline_glyph(glyph) else {
            continue;
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            // (u, v): glyph pixel relative to the pen origin, v down.
            let u = b.min.x + gx as f32;
            let v = b.min.y + gy as f32;
            let (px_x, px_y) = match rotation {
                Rotation::None => (x + u, y + v),
                Rotation::Ccw90 => (x + v, y - u - 1.0),
            };
            let (ix, iy) = (px_x.round() as i64, px_y.round() as i64);
            if ix < 0 || iy < 0 || ix >= img.width() as i64 || iy >= img.height() as i64 {
                return;
            }
            let a = coverage.clamp(0.0, 1.0);
            let p = img.get_pixel_mut(ix as u32, iy as u32);
            let blended: [u8; 3] =
                std::array::from_fn(|i| ((1.0 - a) * p.0[i] as f32 + a * color[i] as f32).round() as u8);
            *p = Rgb(blended);
        });
    }
}

/// A big-endian integer at `off` in `data`.
fn be(data: &[u8], off: usize, n: usize) -> Option<i64> {
    let b = data.get(off..off + n)?;
    let v = b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64);
    Some(if n == 2 { v as u16 as i16 as i64 } else { v as i64 })
}

/// The byte offset of a TrueType table.
fn table(data: &[u8], tag: &[u8; 4]) -> Option<usize> {
    let n = be(data, 4, 2)? as usize;
    (0..n).find_map(|i| {
        let rec = 12 + 16 * i;
        (data.get(rec..rec + 4)? == tag).then(|| be(data, rec + 8, 4).map(|o| o as usize))?
    })
}

/// What a PDF font descriptor needs, in 1/1000 em.
#[derive(Debug, Clone, Copy)]
pub struct PdfMetrics {
    pub bbox: [f32; 4],
    pub ascent: f32,
    pub descent: f32,
    pub cap_height: f32,
}

pub fn pdf_metrics() -> PdfMetrics {
    let k = 1000.0 / units_per_em();
    let head = table(FONT_BYTES, b"head").unwrap_or(0);
    let bbox = [36, 38, 40, 42].map(|o| be(FONT_BYTES, head + o, 2).unwrap_or(0) as f32 * k);
    let os2 = table(FONT_BYTES, b"OS/2");
    let cap = os2.and_then(|o| be(FONT_BYTES, o + 88, 2)).unwrap_or(1409) as f32 * k;
    let f = font();
    PdfMetrics {
        bbox,
        ascent: f.ascent_unscaled() * k,
        descent: f.descent_unscaled() * k,
        cap_height: cap,
    }
}

/// Advance widths of WinAnsi codes 32..=255 in 1/1000 em (PDF `/Widths`).
pub fn pdf_widths() -> Vec<f32> {
    let f = font();
    let k = 1000.0 / units_per_em();
    (32..=255u8)
        .map(|b| win_ansi_char(b).map_or(0.0, |c| f.h_advance_unscaled(f.glyph_id(c)) * k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_round_trips_and_sanitize_keeps_only_encodable_text() {
        for c in ['A', '~', '×', 'é', '–', '€', '·'] {
            let b = win_ansi(c).unwrap();
            assert_eq!(win_ansi_char(b), Some(c));
        }
        assert_eq!(win_ansi('−'), None);
        let s = sanitize("−0.5 → α×σ ∞");
        assert_eq!(s, "-0.5 -> alpha×sigma ?");
        assert!(s.chars().all(|c| win_ansi(c).is_some()));
    }

    #[test]
    fn metrics_are_the_fonts() {
        // Liberation Sans is metric-compatible with Helvetica: "0" is 556/1000 em wide.
        assert!(
            (text_width("0", 1000.0) - 556.0).abs() < 1.0,
            "{}",
            text_width("0", 1000.0)
        );
        let w = pdf_widths();
        assert_eq!(w.len(), 224);
        assert!((w[(b'0' - 32) as usize] - 556.0).abs() < 1.0);
        let m = pdf_metrics();
        assert!(m.bbox[0] < 0.0 && m.bbox[3] > 900.0 && m.cap_height > 600.0, "{m:?}");
    }

    #[test]
    fn text_is_drawn_where_asked() {
        let mut img = RgbImage::from_pixel(60, 20, Rgb([255; 3]));
        draw_text(&mut img, "Hi", 2.0, 15.0, 14.0, [0, 0, 0], Rotation::None);
        let dark = |x0: u32, x1: u32| (x0..x1).any(|x| (0..20).any(|y| img.get_pixel(x, y).0[0] < 100));
        assert!(dark(2, 20));
        assert!(!dark(30, 60), "nothing beyond the text's width");
        // The ink spans what the layout measured (to the side bearings).
        let mut img = RgbImage::from_pixel(400, 40, Rgb([255; 3]));
        let text = "MMMMMMMMMM";
        draw_text(&mut img, text, 0.0, 30.0, 20.0, [0, 0, 0], Rotation::None);
        let last = (0..400)
            .rev()
            .find(|&x| (0..40).any(|y| img.get_pixel(x, y).0[0] < 128))
            .unwrap();
        let measured = text_width(text, 20.0);
        assert!(
            (last as f32 - measured).abs() < 4.0,
            "ink ends at {last}, measured {measured}"
        );
    }
}
