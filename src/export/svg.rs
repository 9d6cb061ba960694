//! The SVG writer: text, colour bars, ticks and frames as SVG elements; the photo and the
//! map panels as embedded PNG images at the map's own resolution, drawn without smoothing
//! (`image-rendering: pixelated`) so a viewer shows the same nearest-texel panels as the
//! studio at any zoom.

use std::fmt::Write as _;

use super::figure::{Anchor, Item, Rect, Scene};
use super::font::{Rotation, CSS_FAMILY};
use super::metadata::{software, xml_escape, FigureMetadata, SVG_NS};
use super::ExportError;
use crate::render::heatmap::colorize;

/// Standard base64 with padding (RFC 4648 §4), for `data:` URLs.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A number for an attribute: three decimals, no trailing zeros.
fn num(v: f32) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

pub(crate) fn png_of(img: &image::RgbImage) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| ExportError::Encode(format!("PNG: {e}")))?;
    Ok(out)
}

/// The native-resolution image of a photo or map item (what the vector writers embed).
pub(crate) fn item_image(item: &Item) -> Option<(Rect, image::RgbImage)> {
    match item {
        Item::Photo { rect, photo } => Some((*rect, (**photo).clone())),
        Item::Heatmap {
            rect,
            map,
            width,
            height,
            photo,
            style,
        } => {
            let rgba = colorize(map, *width, *height, photo.as_deref(), style);
            Some((*rect, image::DynamicImage::ImageRgba8(rgba).to_rgb8()))
        }
        _ => None,
    }
}

pub fn svg_string(scene: &Scene, meta: &FigureMetadata) -> Result<String, ExportError> {
    let (w, h) = (num(scene.width), num(scene.height));
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" width="{w}pt" height="{h}pt" viewBox="0 0 {w} {h}">"#
    );
    let _ = writeln!(s, "<title>{}</title>", xml_escape(&meta.title));
    let _ = writeln!(
        s,
        "<metadata><pathscope:figure xmlns:pathscope=\"{SVG_NS}\"><pathscope:software>{}</pathscope:software><pathscope:command>{}</pathscope:command><pathscope:settings>{}</pathscope:settings></pathscope:figure></metadata>",
        xml_escape(&software()),
        xml_escape(&meta.command),
        xml_escape(&meta.settings.to_string())
    );
    let _ = writeln!(s, r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<g font-family="{}" style="font-kerning:none">"#,
        xml_escape(CSS_FAMILY)
    );
    for item in &scene.items {
        if let Some((r, img)) = item_image(item) {
            let _ = writeln!(
                s,
                r#"<image x="{}" y="{}" width="{}" height="{}" preserveAspectRatio="none" image-rendering="optimizeSpeed" style="image-rendering:pixelated" xlink:href="data:image/png;base64,{}"/>"#,
                num(r.x),
                num(r.y),
                num(r.w),
                num(r.h),
                base64(&png_of(&img)?)
            );
            continue;
        }
        match item {
            Item::Fill { rect, color } => {
                let _ = writeln!(
                    s,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#,
                    num(rect.x),
                    num(rect.y),
                    num(rect.w),
                    num(rect.h),
                    hex(*color)
                );
            }
            Item::Frame { rect, width, color } => {
                let _ = writeln!(
                    s,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{}" stroke-width="{}"/>"#,
                    num(rect.x - width / 2.0),
                    num(rect.y - width / 2.0),
                    num(rect.w + width),
                    num(rect.h + width),
                    hex(*color),
                    num(*width)
                );
            }
            Item::Line { from, to, width, color } => {
                let _ = writeln!(
                    s,
                    r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"/>"#,
                    num(from[0]),
                    num(from[1]),
                    num(to[0]),
                    num(to[1]),
                    hex(*color),
                    num(*width)
                );
            }
            Item::Polyline { points, width, color } => {
                let coords: Vec<String> = points.iter().map(|p| format!("{},{}", num(p[0]), num(p[1]))).collect();
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round"/>"#,
                    coords.join(" "),
                    hex(*color),
                    num(*width)
                );
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
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let transform = match rotation {
                    Rotation::None => String::new(),
                    Rotation::Ccw90 => format!(r#" transform="rotate(-90 {} {})""#, num(*x), num(*y)),
                };
                let _ = writeln!(
                    s,
                    r#"<text x="{}" y="{}" font-size="{}" text-anchor="{anchor}" fill="{}"{transform}>{}</text>"#,
                    num(*x),
                    num(*y),
                    num(*size),
                    hex(*color),
                    xml_escape(text)
                );
            }
            Item::Photo { .. } | Item::Heatmap { .. } => {}
        }
    }
    s.push_str("</g>\n</svg>\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.25), "1.25");
        assert_eq!(num(-0.0001), "0");
    }
}
