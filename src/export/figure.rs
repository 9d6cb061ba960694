//! The figure composer: a grid of panels (the photo, or a map over it or alone), row labels,
//! column titles, colour bars with ticks and a caption, laid out once in points into a
//! [`Scene`] that the PNG, SVG and PDF writers draw. Layout, text metrics, ranges and ticks
//! are decided here, so the three files differ only in how they draw the same items.

use std::sync::Arc;

use image::RgbImage;
use serde::Serialize;

use super::font::{self, Rotation};
use super::ExportError;
use crate::attribution::display::{ClipRule, DisplayMode};
use crate::render::colormap::Colormap;
use crate::render::heatmap::HeatmapStyle;

pub const MM_PER_INCH: f32 = 25.4;
pub const PT_PER_INCH: f32 = 72.0;

/// Where colour bars go; it also says which panels share a colour range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColorbarPlacement {
    /// No bars; panels of one colour scale share one range.
    None,
    /// A bar under each map panel, each panel its own range.
    Panel,
    /// A bar under each column, shared by the column's panels.
    #[default]
    Column,
    /// One bar per colour scale under the grid, shared by all panels.
    Shared,
}

impl ColorbarPlacement {
    pub const ALL: [ColorbarPlacement; 4] = [Self::None, Self::Panel, Self::Column, Self::Shared];

    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Panel => "panel",
            Self::Column => "column",
            Self::Shared => "shared",
        }
    }
}

impl std::str::FromStr for ColorbarPlacement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("colour bar placement `{s}`: expected none, panel, column or shared"))
    }
}

/// Size, type and colour settings of a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureStyle {
    /// Figure width in millimetres (e.g. 180 for a two-column page, 85 for one column).
    pub width_mm: f32,
    /// Fixed height; `None` lets the panels' aspect decide.
    pub height_mm: Option<f32>,
    /// Raster resolution of the PNG writer (the vector writers embed maps at their own
    /// resolution).
    pub dpi: f32,
    /// Titles and labels, in points; tick labels are 85 % of it.
    pub font_pt: f32,
    /// Colour scale of unsigned maps (signed maps always use the diverging RdBu).
    pub sequential: Colormap,
    pub colorbar: ColorbarPlacement,
    pub clip: ClipRule,
    /// 1: the map blended over the grey photo (the studio's default); 0: the map alone.
    pub overlay: f32,
    /// A thin frame around each panel.
    pub frames: bool,
}

impl Default for FigureStyle {
    fn default() -> Self {
        Self {
            width_mm: 180.0,
            height_mm: None,
            dpi: 300.0,
            font_pt: 8.0,
            sequential: Colormap::Reds,
            colorbar: ColorbarPlacement::Column,
            clip: ClipRule::Percentile(99.0),
            overlay: 1.0,
            frames: true,
        }
    }
}

impl FigureStyle {
    /// The settings as JSON, for the files' metadata.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "width_mm": self.width_mm,
            "height_mm": self.height_mm,
            "dpi": self.dpi,
            "font_pt": self.font_pt,
            "sequential_colormap": self.sequential.name(),
            "diverging_colormap": Colormap::RdBu.name(),
            "colorbar": self.colorbar.name(),
            "range_rule": self.clip.to_string(),
            "overlay": self.overlay,
            "frames": self.frames,
        })
    }

    fn check(&self) -> Result<(), ExportError> {
        let bad =
            |what: &str, v: f32| ExportError::InvalidFigure(format!("{what} must be positive and finite, got {v}"));
        for (what, v) in [
            ("the width", self.width_mm),
            ("the DPI", self.dpi),
            ("the font size", self.font_pt),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(what, v));
            }
        }
        if let Some(h) = self.height_mm {
            if !(h.is_finite() && h > 0.0) {
                return Err(bad("the height", h));
            }
        }
        if self.width_mm > 2000.0 || self.dpi > 2400.0 {
            return Err(ExportError::InvalidFigure(format!(
                "{} mm at {} dpi is larger than any page; at most 2000 mm and 2400 dpi",
                self.width_mm, self.dpi
            )));
        }
        Ok(())
    }
}

/// What a panel shows.
#[derive(Debug, Clone)]
pub enum PanelContent {
    /// The photo alone.
    Photo(Arc<RgbImage>),
    /// A signed 2-D map (row-major `width` × `height`, channels already reduced) in a
    /// display mode, over `photo` when there is one.
    Map {
        map: Arc<Vec<f32>>,
        width: u32,
        height: u32,
        photo: Option<Arc<RgbImage>>,
        mode: DisplayMode,
    },
}

#[derive(Debug, Clone)]
pub struct Panel {
    /// Shown above the panel (besides the column title, if any).
    pub title: Option<String>,
    pub content: PanelContent,
}

/// A grid of panels and its text.
#[derive(Debug, Clone)]
pub struct Figure {
    pub rows: usize,
    pub cols: usize,
    /// Row-major, `rows × cols`; `None` leaves a cell empty.
    pub panels: Vec<Option<Panel>>,
    /// One per row, or empty.
    pub row_labels: Vec<String>,
    /// One per column, or empty.
    pub col_titles: Vec<String>,
    pub caption: Option<String>,
    pub style: FigureStyle,
}

/// A rectangle in points, from the top-left corner of the page, y down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// One thing to draw. Coordinates in points, y down.
#[derive(Debug, Clone)]
pub enum Item {
    Photo {
        rect: Rect,
        photo: Arc<RgbImage>,
    },
    /// A map drawn as the studio draws it: [`crate::render::heatmap::colorize_at`] with
    /// this style (zoom 1) at the size the output gives the rectangle.
    Heatmap {
        rect: Rect,
        /// Display mode applied.
        map: Arc<Vec<f32>>,
        width: u32,
        height: u32,
        photo: Option<Arc<RgbImage>>,
        style: HeatmapStyle,
    },
    Fill {
        rect: Rect,
        color: [u8; 3],
    },
    /// A frame of `width` drawn just outside `rect`, so it never covers the rectangle.
    Frame {
        rect: Rect,
        width: f32,
        color: [u8; 3],
    },
    /// An axis-aligned line (ticks), `width` thick, centred on the segment.
    Line {
        from: [f32; 2],
        to: [f32; 2],
        width: f32,
        color: [u8; 3],
    },
    /// A line through `points` in any direction (a chart's curve), `width` thick.
    Polyline {
        points: Vec<[f32; 2]>,
        width: f32,
        color: [u8; 3],
    },
    /// Text whose baseline starts, centres or ends at (`x`, `y`).
    Text {
        x: f32,
        y: f32,
        size: f32,
        anchor: Anchor,
        rotation: Rotation,
        text: String,
        color: [u8; 3],
    },
}

/// A laid-out figure: a page of `width` × `height` points and what is drawn on it, in order.
#[derive(Debug, Clone)]
pub struct Scene {
    pub width: f32,
    pub height: f32,
    pub dpi: f32,
    pub items: Vec<Item>,
}

const TEXT: [u8; 3] = [0, 0, 0];
const FRAME: [u8; 3] = [64, 64, 64];

/// Ticks for [lo, hi]: multiples of a 1-2-5 step, at most `max_ticks`, and the exponent
/// of the shared factor the labels are written with (0 for plain numbers).
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, i32) {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return (vec![lo], 0);
    }
    let span = hi - lo;
    let raw = span / max_ticks.max(2) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let count = |s: f64| ((hi / s + 1e-9).floor() - (lo / s - 1e-9).ceil()) as usize + 1;
    let step = [1.0, 2.0, 2.5, 5.0, 10.0, 20.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| count(s) <= max_ticks)
        .unwrap_or(20.0 * mag);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks: Vec<f64> = (first..=last).map(|k| k as f64 * step).collect();
    let big = ticks.iter().fold(0f64, |m, t| m.max(t.abs()));
    let exp = if big > 0.0 && !(1e-2..1e4).contains(&big) {
        big.log10().floor() as i32
    } else {
        0
    };
    (ticks, exp)
}

/// Tick labels written with the shared factor 10^`exp`, with as many decimals as the step needs.
pub fn tick_labels(ticks: &[f64], exp: i32) -> Vec<String> {
    let scale = 10f64.powi(exp);
    let step = ticks.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min) / scale;
    // The fewest decimals that write the step exactly (2.5 needs one more than 2 or 5).
    let decimals = if step.is_finite() && step > 0.0 {
        (0..=12)
            .find(|&d| {
                let v = step * 10f64.powi(d);
                (v - v.round()).abs() < 1e-6 * v.max(1.0)
            })
            .unwrap_or(12) as usize
    } else {
        2
    };
    ticks
        .iter()
        .map(|t| {
            let s = format!("{:.*}", decimals, t / scale);
            if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
                "0".into()
            } else {
                s
            }
        })
        .collect()
}

/// One colour scale and the panels on it.
struct Scale {
    colormap: Colormap,
    range: f32,
    /// Panel indices.
    members: Vec<usize>,
}

fn mode_label(mode: DisplayMode) -> &'static str {
    match mode {
        DisplayMode::Signed => "attribution",
        DisplayMode::Absolute => "|attribution|",
        DisplayMode::PositiveOnly => "positive attribution",
        DisplayMode::NegativeOnly => "negative attribution",
    }
}

/// Words of `text` broken into lines no wider than `width` points.
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if font::text_width(&candidate, size) > width && !line.is_empty() {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

impl Figure {
    fn check(&self) -> Result<(), ExportError> {
        self.style.check()?;
        if self.rows == 0 || self.cols == 0 || self.panels.len() != self.rows * self.cols {
            return Err(ExportError::InvalidFigure(format!(
                "a {}×{} grid needs {} cells, got {}",
                self.rows,
                self.cols,
                self.rows * self.cols,
                self.panels.len()
            )));
        }
        if self.rows * self.cols > 400 {
            return Err(ExportError::InvalidFigure(format!(
                "{} panels is more than a figure can show (at most 400)",
                self.rows * self.cols
            )));
        }
        for p in self.panels.iter().flatten() {
            if let PanelContent::Map { map, width, height, .. } = &p.content {
                if *width == 0 || *height == 0 || map.len() != *width as usize * *height as usize {
                    return Err(ExportError::InvalidFigure(format!(
                        "a map of {} values is not {width} × {height}",
                        map.len()
                    )));
                }
            }
        }
        Ok(())
    }

    fn colormap_of(&self, mode: DisplayMode) -> Colormap {
        if mode.is_signed() {
            Colormap::RdBu
        } else {
            self.style.sequential
        }
    }

    /// Groups the map panels into colour scales as the placement says and reads each
    /// scale's range from its panels' values.
    fn scales(&self, shown: &[Option<Vec<f32>>]) -> Vec<Scale> {
        let mut scales: Vec<(String, Scale)> = Vec::new();
        for (i, p) in self.panels.iter().enumerate() {
            let Some(Panel {
                content: PanelContent::Map { mode, .. },
                ..
            }) = p
            else {
                continue;
            };
            let colormap = self.colormap_of(*mode);
            let key = match self.style.colorbar {
                ColorbarPlacement::Panel => format!("{i}"),
                ColorbarPlacement::Column => format!("{}:{}", i % self.cols, colormap.name()),
                ColorbarPlacement::Shared | ColorbarPlacement::None => colormap.name().to_string(),
            };
            let range = shown[i].as_ref().map_or(0.0, |m| self.style.clip.range(m));
            match scales.iter_mut().find(|(k, _)| *k == key) {
                Some((_, s)) => {
                    s.range = s.range.max(range);
                    s.members.push(i);
                }
                None => scales.push((
                    key,
                    Scale {
                        colormap,
                        range,
                        members: vec![i],
                    },
                )),
            }
        }
        scales.into_iter().map(|(_, s)| s).collect()
    }

    /// Lays the figure out.
    pub fn layout(&self) -> Result<Scene, ExportError> {
        self.check()?;
        let st = &self.style;
        let f = st.font_pt;
        let tick_f = 0.85 * f;
        let margin = 0.6 * f;
        let gap = 0.5 * f;
        let title_h = 1.3 * f;
        let width = st.width_mm / MM_PER_INCH * PT_PER_INCH;
        let (rows, cols) = (self.rows, self.cols);

        // Every map in its display mode, once.
        let shown: Vec<Option<Vec<f32>>> = self
            .panels
            .iter()
            .map(|p| match p {
                Some(Panel {
                    content: PanelContent::Map { map, mode, .. },
                    ..
                }) => Some(mode.apply(map)),
                _ => None,
            })
            .collect();
        let scales = self.scales(&shown);
        let scale_of = |i: usize| scales.iter().find(|s| s.members.contains(&i));

        // A colour bar block: gap, bar, ticks, tick labels, the scale's label.
        let bar_h = 0.7 * f;
        let tick_len = 0.3 * f;
        let cb_h = 0.4 * f + bar_h + tick_len + 2.0 * 1.2 * tick_f;

        let row_label_w = if self.row_labels.iter().any(|l| !l.is_empty()) {
            1.4 * f
        } else {
            0.0
        };
        let col_title_h = if self.col_titles.iter().any(|t| !t.is_empty()) {
            title_h
        } else {
            0.0
        };
        let row_has_title: Vec<bool> = (0..rows)
            .map(|r| (0..cols).any(|c| matches!(&self.panels[r * cols + c], Some(Panel { title: Some(_), .. }))))
            .collect();
        let row_has_bar: Vec<bool> = (0..rows)
            .map(|r| st.colorbar == ColorbarPlacement::Panel && (0..cols).any(|c| shown[r * cols + c].is_some()))
            .collect();
        // Under the grid: per column, as many bars as the column has scales; shared, one row.
        let bars_per_col: Vec<Vec<&Scale>> = (0..cols)
            .map(|c| {
                if st.colorbar != ColorbarPlacement::Column {
                    return Vec::new();
                }
                scales
                    .iter()
                    .filter(|s| s.members.first().is_some_and(|&i| i % cols == c))
                    .collect()
            })
            .collect();
        let under_grid_h = match st.colorbar {
            ColorbarPlacement::Column => bars_per_col.iter().map(Vec::len).max().unwrap_or(0) as f32 * cb_h,
            ColorbarPlacement::Shared if !scales.is_empty() => cb_h,
            _ => 0.0,
        };

        // Panel width from the page width (and height, when fixed); all panels share it.
        let aspect = self
            .panels
            .iter()
            .flatten()
            .map(|p| match &p.content {
                PanelContent::Photo(img) => img.height() as f32 / img.width().max(1) as f32,
                PanelContent::Map { width, height, .. } => *height as f32 / *width as f32,
            })
            .next()
            .unwrap_or(1.0);
        let fixed_w = 2.0 * margin + row_label_w + (cols - 1) as f32 * gap;
        let mut pw = (width - fixed_w) / cols as f32;
        let caption_lines = self
            .caption
            .as_deref()
            .map(|c| wrap(&font::sanitize(c), f, width - 2.0 * margin))
            .unwrap_or_default();
        let caption_h = if caption_lines.is_empty() {
            0.0
        } else {
            0.6 * f + caption_lines.len() as f32 * 1.25 * f
        };
        let fixed_h = 2.0 * margin
            + col_title_h
            + row_has_title.iter().filter(|&&t| t).count() as f32 * title_h
            + row_has_bar.iter().filter(|&&b| b).count() as f32 * cb_h
            + (rows - 1) as f32 * gap
            + under_grid_h
            + caption_h;
        let height = match st.height_mm {
            Some(h) => {
                let h = h / MM_PER_INCH * PT_PER_INCH;
                pw = pw.min((h - fixed_h) / (rows as f32 * aspect));
                h
            }
            None => fixed_h + rows as f32 * pw * aspect,
        };
        if pw.is_nan() || pw < 2.0 {
            return Err(ExportError::InvalidFigure(format!(
                "{:.0} mm × {} leaves no room for {rows}×{cols} panels at {} pt text; make the figure larger or the text smaller",
                st.width_mm,
                st.height_mm.map_or("auto".to_string(), |h| format!("{h:.0} mm")),
                f
            )));
        }
        let ph = pw * aspect;
        let grid_w = cols as f32 * pw + (cols - 1) as f32 * gap;
        let x0 = margin + row_label_w + ((width - fixed_w - cols as f32 * pw).max(0.0)) / 2.0;

        let mut items = Vec::new();
        let text = |x: f32, y: f32, size: f32, anchor: Anchor, s: &str| Item::Text {
            x,
            y,
            size,
            anchor,
            rotation: Rotation::None,
            text: font::sanitize(s),
            color: TEXT,
        };
        let mut y = margin;
        if col_title_h > 0.0 {
            for (c, t) in self.col_titles.iter().enumerate().take(cols) {
                let cx = x0 + c as f32 * (pw + gap) + pw / 2.0;
                items.push(text(cx, y + 0.95 * f, f, Anchor::Middle, t));
            }
            y += col_title_h;
        }
        let mut bar_items = Vec::new();
        for r in 0..rows {
            if row_has_title[r] {
                for c in 0..cols {
                    if let Some(Panel { title: Some(t), .. }) = &self.panels[r * cols + c] {
                        let cx = x0 + c as f32 * (pw + gap) + pw / 2.0;
                        items.push(text(cx, y + 0.95 * f, f, Anchor::Middle, t));
                    }
                }
                y += title_h;
            }
            if let Some(label) = self.row_labels.get(r).filter(|l| !l.is_empty()) {
                let (_, desc) = font::ascent_descent(f);
                items.push(Item::Text {
                    x: x0 - gap * 0.5 + desc,
                    y: y + ph / 2.0,
                    size: f,
                    anchor: Anchor::Middle,
                    rotation: Rotation::Ccw90,
                    text: font::sanitize(label),
                    color: TEXT,
                });
            }
            for c in 0..cols {
                let i = r * cols + c;
                let rect = Rect {
                    x: x0 + c as f32 * (pw + gap),
                    y,
                    w: pw,
                    h: ph,
                };
                let Some(panel) = &self.panels[i] else { continue };
                match &panel.content {
                    PanelContent::Photo(img) => items.push(Item::Photo {
                        rect,
                        photo: img.clone(),
                    }),
                    PanelContent::Map {
                        width, height, photo, ..
                    } => {
                        let scale = scale_of(i).expect("every map panel has a scale");
                        items.push(Item::Heatmap {
                            rect,
                            map: Arc::new(shown[i].clone().expect("map panels have values")),
                            width: *width,
                            height: *height,
                            photo: photo.clone(),
                            style: HeatmapStyle {
                                colormap: scale.colormap,
                                range: scale.range,
                                overlay: st.overlay,
                                zoom: 1.0,
                                center: [0.5, 0.5],
                            },
                        });
                        if row_has_bar[r] {
                            let bar = Rect {
                                x: rect.x,
                                y: y + ph + 0.4 * f,
                                w: pw,
                                h: bar_h,
                            };
                            let label = match &panel.content {
                                PanelContent::Map { mode, .. } => mode_label(*mode),
                                _ => "",
                            };
                            colorbar(&mut bar_items, bar, scale, label, tick_len, tick_f);
                        }
                    }
                }
                if st.frames {
                    items.push(Item::Frame {
                        rect,
                        width: 0.4,
                        color: FRAME,
                    });
                }
            }
            y += ph;
            if row_has_bar[r] {
                y += cb_h;
            }
            if r + 1 < rows {
                y += gap;
            }
        }
        items.append(&mut bar_items);
        // The label of a shared bar names the display modes on it.
        let scale_label = |s: &Scale| {
            let mut modes: Vec<&str> = Vec::new();
            for &i in &s.members {
                if let Some(Panel {
                    content: PanelContent::Map { mode, .. },
                    ..
                }) = &self.panels[i]
                {
                    let l = mode_label(*mode);
                    if !modes.contains(&l) {
                        modes.push(l);
                    }
                }
            }
            modes.join(", ")
        };
        match st.colorbar {
            ColorbarPlacement::Column => {
                for (c, bars) in bars_per_col.iter().enumerate() {
                    for (k, s) in bars.iter().enumerate() {
                        let bar = Rect {
                            x: x0 + c as f32 * (pw + gap),
                            y: y + k as f32 * cb_h + 0.4 * f,
                            w: pw,
                            h: bar_h,
                        };
                        colorbar(&mut items, bar, s, &scale_label(s), tick_len, tick_f);
                    }
                }
            }
            ColorbarPlacement::Shared if !scales.is_empty() => {
                let n = scales.len() as f32;
                let bw = ((grid_w - (n - 1.0) * 2.0 * gap) / n).min(2.0 * pw);
                let total = n * bw + (n - 1.0) * 2.0 * gap;
                for (k, s) in scales.iter().enumerate() {
                    let bar = Rect {
                        x: x0 + (grid_w - total) / 2.0 + k as f32 * (bw + 2.0 * gap),
                        y: y + 0.4 * f,
                        w: bw,
                        h: bar_h,
                    };
                    colorbar(&mut items, bar, s, &scale_label(s), tick_len, tick_f);
                }
            }
            _ => {}
        }
        y += under_grid_h;
        if !caption_lines.is_empty() {
            y += 0.6 * f;
            for line in caption_lines {
                items.push(text(margin, y + 0.95 * f, f, Anchor::Start, &line));
                y += 1.25 * f;
            }
        }
        Ok(Scene {
            width,
            height,
            dpi: st.dpi,
            items,
        })
    }
}

/// A horizontal colour bar in `bar`: one rectangle per LUT entry, entry k centred on the
/// value the renderer maps to it, so the bar shows exactly the colours the panels use.
fn colorbar(items: &mut Vec<Item>, bar: Rect, scale: &Scale, label: &str, tick_len: f32, tick_f: f32) {
    let lut = scale.colormap.lut();
    let n = lut.len();
    // Entry k covers t ∈ [(k − ½)/255, (k + ½)/255] (nearest-entry sampling). Each rectangle
    // runs to the bar's end and the next one covers it, so no hairline seams show when a
    // viewer antialiases the edges.
    for (k, c) in lut.iter().enumerate() {
        let t0 = ((k as f32 - 0.5) / (n - 1) as f32).max(0.0);
        items.push(Item::Fill {
            rect: Rect {
                x: bar.x + t0 * bar.w,
                y: bar.y,
                w: bar.w * (1.0 - t0),
                h: bar.h,
            },
            color: *c,
        });
    }
    items.push(Item::Frame {
        rect: bar,
        width: 0.4,
        color: FRAME,
    });
    let range = scale.range.max(f32::MIN_POSITIVE) as f64;
    let lo = if scale.colormap.is_diverging() { -range } else { 0.0 };
    let max_ticks = if bar.w > 12.0 * tick_f { 5 } else { 3 };
    let (mut ticks, mut exp) = nice_ticks(lo, range, max_ticks);
    let mut labels = tick_labels(&ticks, exp);
    // Fewer ticks until their labels fit side by side.
    let fits = |ticks: &[f64], labels: &[String]| {
        let widest = labels.iter().map(|l| font::text_width(l, tick_f)).fold(0f32, f32::max);
        ticks.len() < 2 || (widest + 0.6 * tick_f) * ticks.len() as f32 <= bar.w * 1.05
    };
    let mut m = max_ticks;
    while !fits(&ticks, &labels) && m > 2 {
        m -= 1;
        (ticks, exp) = nice_ticks(lo, range, m);
        labels = tick_labels(&ticks, exp);
    }
    let ty = bar.y + bar.h;
    for (t, l) in ticks.iter().zip(&labels) {
        let x = bar.x + ((t - lo) / (range - lo)) as f32 * bar.w;
        // A label sticking out past the bar's end would run into the next bar's.
        let half = font::text_width(l, tick_f) / 2.0;
        if x - half < bar.x - 0.45 * tick_f || x + half > bar.x + bar.w + 0.45 * tick_f {
            continue;
        }
        items.push(Item::Line {
            from: [x, ty],
            to: [x, ty + tick_len],
            width: 0.4,
            color: FRAME,
        });
        items.push(Item::Text {
            x,
            y: ty + tick_len + 0.95 * tick_f,
            size: tick_f,
            anchor: Anchor::Middle,
            rotation: Rotation::None,
            text: l.clone(),
            color: TEXT,
        });
    }
    let factor = if exp != 0 {
        format!(" (×1e{exp})")
    } else {
        String::new()
    };
    items.push(Item::Text {
        x: bar.x + bar.w / 2.0,
        y: ty + tick_len + 2.15 * tick_f,
        size: tick_f,
        anchor: Anchor::Middle,
        rotation: Rotation::None,
        text: font::sanitize(&format!("{label}{factor}")),
        color: TEXT,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_are_round_and_inside_the_range() {
        let (t, e) = nice_ticks(-0.0123, 0.0123, 5);
        assert_eq!(e, 0);
        assert_eq!(tick_labels(&t, e), ["-0.010", "-0.005", "0", "0.005", "0.010"]);
        let (t, e) = nice_ticks(0.0, 3.7e-4, 5);
        assert_eq!(e, -4);
        assert_eq!(tick_labels(&t, e), ["0", "1", "2", "3"]);
        let (t, e) = nice_ticks(-2.0, 2.0, 3);
        assert_eq!(tick_labels(&t, e), ["-2", "0", "2"]);
        for (lo, hi) in [(-7.3, 7.3), (0.0, 0.91), (-1e-6, 1e-6), (0.0, 123456.0)] {
            let (t, _) = nice_ticks(lo, hi, 5);
            assert!(t.len() >= 2 && t.len() <= 5, "{lo}..{hi}: {t:?}");
            assert!(t.iter().all(|&v| v >= lo - 1e-12 && v <= hi + 1e-12), "{t:?}");
        }
    }

    fn map_panel(mode: DisplayMode, scale: f32) -> Option<Panel> {
        let map: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) * scale).collect();
        Some(Panel {
            title: None,
            content: PanelContent::Map {
                map: Arc::new(map),
                width: 4,
                height: 4,
                photo: None,
                mode,
            },
        })
    }

    #[test]
    fn placement_decides_which_panels_share_a_range() {
        let mut fig = Figure {
            rows: 2,
            cols: 2,
            panels: vec![
                map_panel(DisplayMode::Signed, 1.0),
                map_panel(DisplayMode::Absolute, 1.0),
                map_panel(DisplayMode::Signed, 10.0),
                map_panel(DisplayMode::Absolute, 10.0),
            ],
            row_labels: vec!["a".into(), "b".into()],
            col_titles: vec!["signed".into(), "absolute".into()],
            caption: Some("a caption long enough to wrap onto a second line in a narrow figure".into()),
            style: FigureStyle {
                width_mm: 60.0,
                clip: ClipRule::MaxAbs,
                ..FigureStyle::default()
            },
        };
        let ranges = |fig: &Figure| -> Vec<f32> {
            fig.layout()
                .unwrap()
                .items
                .iter()
                .filter_map(|i| match i {
                    Item::Heatmap { style, .. } => Some(style.range),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(ranges(&fig), [75.0, 75.0, 75.0, 75.0]);
        fig.style.colorbar = ColorbarPlacement::Panel;
        assert_eq!(ranges(&fig), [7.5, 7.5, 75.0, 75.0]);
        let scene = fig.layout().unwrap();
        let bars = scene.items.iter().filter(|i| matches!(i, Item::Fill { .. })).count();
        assert_eq!(bars, 4 * 256, "a 256-entry bar under each panel");
        // Everything lies on the page.
        for item in &scene.items {
            if let Item::Heatmap { rect, .. } | Item::Fill { rect, .. } = item {
                assert!(rect.x >= 0.0 && rect.x + rect.w <= scene.width + 1e-3);
                assert!(rect.y >= 0.0 && rect.y + rect.h <= scene.height + 1e-3);
            }
        }
        fig.style.width_mm = 1.0;
        assert!(matches!(fig.layout(), Err(ExportError::InvalidFigure(_))));
        fig.style.width_mm = f32::NAN;
        assert!(fig.layout().is_err());
    }
}

/// A column kind of a method grid: the photo, or the maps in one display mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Photo,
    Mode(DisplayMode),
}

impl Column {
    pub const ALL: [Column; 5] = [
        Column::Photo,
        Column::Mode(DisplayMode::Signed),
        Column::Mode(DisplayMode::Absolute),
        Column::Mode(DisplayMode::PositiveOnly),
        Column::Mode(DisplayMode::NegativeOnly),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Photo => "photo",
            Column::Mode(DisplayMode::Signed) => "signed",
            Column::Mode(DisplayMode::Absolute) => "absolute",
            Column::Mode(DisplayMode::PositiveOnly) => "positive",
            Column::Mode(DisplayMode::NegativeOnly) => "negative",
        }
    }
}

impl std::str::FromStr for Column {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Column::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("mode `{s}`: expected photo, signed, absolute, positive or negative"))
    }
}

/// How the (map × column) panels of a method grid are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One row per map, one column per mode.
    #[default]
    Auto,
    /// One row per mode, one column per map.
    Transposed,
    /// `rows × cols` cells: the map × mode grid when it has that shape (or its transpose),
    /// else the panels in reading order, each with its own title.
    Grid { rows: usize, cols: usize },
}

impl Layout {
    pub fn name(self) -> String {
        match self {
            Layout::Auto => "auto".into(),
            Layout::Transposed => "transposed".into(),
            Layout::Grid { rows, cols } => format!("{rows}x{cols}"),
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Layout::Auto),
            "transposed" => Ok(Layout::Transposed),
            _ => {
                let bad = || format!("layout `{s}`: expected auto, transposed or ROWSxCOLS (e.g. 3x4)");
                let (r, c) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
                let rows: usize = r.trim().parse().map_err(|_| bad())?;
                let cols: usize = c.trim().parse().map_err(|_| bad())?;
                if rows == 0 || cols == 0 {
                    return Err(bad());
                }
                Ok(Layout::Grid { rows, cols })
            }
        }
    }
}

/// One computed map and its photo: a row of a method grid.
#[derive(Debug, Clone)]
pub struct MapRow {
    pub label: String,
    /// The signed, channel-reduced map, row-major `width` × `height`.
    pub map: Arc<Vec<f32>>,
    pub width: u32,
    pub height: u32,
    pub photo: Arc<RgbImage>,
}

impl Figure {
    /// The grid of `rows` (maps) × `columns` (photo or display modes), arranged by `layout`.
    pub fn method_grid(
        rows: &[MapRow],
        columns: &[Column],
        layout: Layout,
        style: FigureStyle,
        caption: Option<String>,
    ) -> Result<Figure, ExportError> {
        if rows.is_empty() || columns.is_empty() {
            return Err(ExportError::InvalidFigure(
                "a figure needs at least one map and one mode".into(),
            ));
        }
        let panel = |r: &MapRow, c: Column, title: Option<String>| Panel {
            title,
            content: match c {
                Column::Photo => PanelContent::Photo(r.photo.clone()),
                Column::Mode(mode) => PanelContent::Map {
                    map: r.map.clone(),
                    width: r.width,
                    height: r.height,
                    photo: (style.overlay > 0.0).then(|| r.photo.clone()),
                    mode,
                },
            },
        };
        let (m, k) = (rows.len(), columns.len());
        let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
        let titles: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
        let transposed = match layout {
            Layout::Auto => false,
            Layout::Transposed => true,
            Layout::Grid { rows: gr, cols: gc } if (gr, gc) == (m, k) => false,
            Layout::Grid { rows: gr, cols: gc } if (gr, gc) == (k, m) => true,
            Layout::Grid { rows: gr, cols: gc } => {
                if gr * gc < m * k {
                    return Err(ExportError::InvalidFigure(format!(
                        "layout {gr}x{gc} has {} cells for {m} maps × {k} modes = {} panels",
                        gr * gc,
                        m * k
                    )));
                }
                let mut panels: Vec<Option<Panel>> = rows
                    .iter()
                    .flat_map(|r| {
                        columns
                            .iter()
                            .map(move |&c| Some(panel(r, c, Some(format!("{} · {}", r.label, c.name())))))
                    })
                    .collect();
                panels.resize(gr * gc, None);
                return Ok(Figure {
                    rows: gr,
                    cols: gc,
                    panels,
                    row_labels: Vec::new(),
                    col_titles: Vec::new(),
                    caption,
                    style,
                });
            }
        };
        let (panels, row_labels, col_titles, gr, gc) = if transposed {
            let panels = columns
                .iter()
                .flat_map(|&c| rows.iter().map(move |r| Some(panel(r, c, None))))
                .collect();
            (panels, titles, labels, k, m)
        } else {
            let panels = rows
                .iter()
                .flat_map(|r| columns.iter().map(move |&c| Some(panel(r, c, None))))
                .collect();
            (panels, labels, titles, m, k)
        };
        Ok(Figure {
            rows: gr,
            cols: gc,
            panels,
            row_labels,
            col_titles,
            caption,
            style,
        })
    }
}

#[cfg(test)]
mod grid_tests {
    use super::*;

    fn row(label: &str) -> MapRow {
        MapRow {
            label: label.into(),
            map: Arc::new(vec![1.0, -1.0, 0.5, 0.0]),
            width: 2,
            height: 2,
            photo: Arc::new(RgbImage::new(2, 2)),
        }
    }

    #[test]
    fn layouts_arrange_maps_and_modes() {
        let rows = [row("IG"), row("Blur IG"), row("Guided IG")];
        let cols: Vec<Column> = ["photo", "signed", "absolute", "positive", "negative"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let st = FigureStyle::default;
        let f = Figure::method_grid(&rows, &cols, "3x5".parse().unwrap(), st(), None).unwrap();
        assert_eq!((f.rows, f.cols), (3, 5));
        assert_eq!(f.row_labels, ["IG", "Blur IG", "Guided IG"]);
        assert_eq!(f.col_titles[1], "signed");
        let t = Figure::method_grid(&rows, &cols, "5x3".parse().unwrap(), st(), None).unwrap();
        assert_eq!((t.rows, t.cols), (5, 3));
        assert_eq!(t.col_titles, ["IG", "Blur IG", "Guided IG"]);
        assert!(matches!(t.panels[0].as_ref().unwrap().content, PanelContent::Photo(_)));
        let free = Figure::method_grid(&rows, &cols, "4x4".parse().unwrap(), st(), None).unwrap();
        assert_eq!(free.panels.iter().flatten().count(), 15);
        assert_eq!(free.panels[0].as_ref().unwrap().title.as_deref(), Some("IG · photo"));
        assert!(Figure::method_grid(&rows, &cols, "2x2".parse().unwrap(), st(), None).is_err());
        assert!("3by4".parse::<Layout>().is_err());
        assert!("0x4".parse::<Layout>().is_err());
        assert!(free.layout().is_ok());
    }
}
