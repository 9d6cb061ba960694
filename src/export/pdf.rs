//! The PDF writer (pdf-writer, typst's low-level PDF serializer): one page the figure's
//! size; text in the embedded figure font (a simple TrueType font, WinAnsiEncoding, the
//! whole font file compressed), colour bars, ticks and frames as vector paths, the photo
//! and map panels as images at the map's resolution with interpolation off.

use miniz_oxide::deflate::compress_to_vec_zlib;
use pdf_writer::types::FontFlags;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect as PdfRect, Ref, Str, TextStr};

use super::figure::{Anchor, Item, Scene};
use super::font::{self, Rotation};
use super::metadata::{software, FigureMetadata};
use super::svg::item_image;
use super::ExportError;

const FONT_NAME: Name = Name(b"F1");

fn rgb(c: [u8; 3]) -> (f32, f32, f32) {
    (c[0] as f32 / 255.0, c[1] as f32 / 255.0, c[2] as f32 / 255.0)
}

pub fn pdf_bytes(scene: &Scene, meta: &FigureMetadata) -> Result<Vec<u8>, ExportError> {
    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut id = || {
        next += 1;
        Ref::new(next - 1)
    };
    let (catalog, pages, page, content_id, font_id, descriptor, font_file, info) =
        (id(), id(), id(), id(), id(), id(), id(), id());
    let (w, h) = (scene.width, scene.height);

    // Images first: the page's resources list them.
    let mut images = Vec::new();
    let mut content = Content::new();
    for item in &scene.items {
        if let Some((r, img)) = item_image(item) {
            let name = format!("Im{}", images.len() + 1);
            let image_id = id();
            let data = compress_to_vec_zlib(img.as_raw(), 6);
            let mut x = pdf.image_xobject(image_id, &data);
            x.filter(Filter::FlateDecode);
            x.width(img.width() as i32);
            x.height(img.height() as i32);
            x.color_space().device_rgb();
            x.bits_per_component(8);
            x.interpolate(false);
            x.finish();
            content.save_state();
            content.transform([r.w, 0.0, 0.0, r.h, r.x, h - r.y - r.h]);
            content.x_object(Name(name.as_bytes()));
            content.restore_state();
            images.push((name, image_id));
            continue;
        }
        match item {
            Item::Fill { rect, color } => {
                let (r, g, b) = rgb(*color);
                content.set_fill_rgb(r, g, b);
                content.rect(rect.x, h - rect.y - rect.h, rect.w, rect.h);
                content.fill_nonzero();
            }
            Item::Frame { rect, width, color } => {
                let (r, g, b) = rgb(*color);
                content.set_stroke_rgb(r, g, b);
                content.set_line_width(*width);
                content.rect(
                    rect.x - width / 2.0,
                    h - rect.y - rect.h - width / 2.0,
                    rect.w + width,
                    rect.h + width,
                );
                content.stroke();
            }
            Item::Line { from, to, width, color } => {
                let (r, g, b) = rgb(*color);
                content.set_stroke_rgb(r, g, b);
                content.set_line_width(*width);
                content.move_to(from[0], h - from[1]);
                content.line_to(to[0], h - to[1]);
                content.stroke();
            }
            Item::Polyline { points, width, color } => {
                if let Some((first, rest)) = points.split_first() {
                    let (r, g, b) = rgb(*color);
                    content.set_stroke_rgb(r, g, b);
                    content.set_line_width(*width);
                    content.move_to(first[0], h - first[1]);
                    for p in rest {
                        content.line_to(p[0], h - p[1]);
                    }
                    content.stroke();
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
                let width = font::text_width(text, *size);
                let offset = match anchor {
                    Anchor::Start => 0.0,
                    Anchor::Middle => width / 2.0,
                    Anchor::End => width,
                };
                let (r, g, b) = rgb(*color);
                let matrix = match rotation {
                    Rotation::None => [1.0, 0.0, 0.0, 1.0, x - offset, h - y],
                    Rotation::Ccw90 => [0.0, 1.0, -1.0, 0.0, *x, h - y - offset],
                };
                let bytes: Vec<u8> = text.chars().filter_map(font::win_ansi).collect();
                content.set_fill_rgb(r, g, b);
                content.begin_text();
                content.set_font(FONT_NAME, *size);
                content.set_text_matrix(matrix);
                content.show(Str(&bytes));
                content.end_text();
            }
            Item::Photo { .. } | Item::Heatmap { .. } => {}
        }
    }

    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(PdfRect::new(0.0, 0.0, w, h));
    p.parent(pages);
    p.contents(content_id);
    {
        let mut resources = p.resources();
        resources.fonts().pair(FONT_NAME, font_id);
        let mut xobjects = resources.x_objects();
        for (name, image_id) in &images {
            xobjects.pair(Name(name.as_bytes()), *image_id);
        }
    }
    p.finish();
    pdf.stream(content_id, &content.finish());

    // A simple TrueType font: codes 32–255 in WinAnsiEncoding, the font file embedded.
    {
        let mut f = pdf.indirect(font_id).dict();
        f.pair(Name(b"Type"), Name(b"Font"));
        f.pair(Name(b"Subtype"), Name(b"TrueType"));
        f.pair(Name(b"BaseFont"), Name(font::POSTSCRIPT_NAME.as_bytes()));
        f.pair(Name(b"FirstChar"), 32);
        f.pair(Name(b"LastChar"), 255);
        f.pair(Name(b"Encoding"), Name(b"WinAnsiEncoding"));
        f.pair(Name(b"FontDescriptor"), descriptor);
        f.insert(Name(b"Widths")).array().items(font::pdf_widths());
    }
    let m = font::pdf_metrics();
    pdf.font_descriptor(descriptor)
        .name(Name(font::POSTSCRIPT_NAME.as_bytes()))
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(PdfRect::new(m.bbox[0], m.bbox[1], m.bbox[2], m.bbox[3]))
        .italic_angle(0.0)
        .ascent(m.ascent)
        .descent(m.descent)
        .cap_height(m.cap_height)
        .stem_v(80.0)
        .font_file2(font_file);
    let packed = compress_to_vec_zlib(font::FONT_BYTES, 6);
    pdf.stream(font_file, &packed)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), font::FONT_BYTES.len() as i32);

    let software = software();
    let settings = meta.settings.to_string();
    pdf.document_info(info)
        .title(TextStr(&meta.title))
        .creator(TextStr(&software))
        .producer(TextStr(&software))
        .subject(TextStr(&meta.command))
        .keywords(TextStr("saliency map, attribution, pathscope"))
        .pair(Name(b"PathscopeSettings"), TextStr(&settings));
    Ok(pdf.finish())
}
