//! Line charts (the convergence study's error against points) laid out as a [`Scene`], so
//! the PNG, SVG and PDF writers draw them as they draw any figure.

use super::figure::{nice_ticks, tick_labels, Anchor, Item, Rect, Scene};
use super::font::{self, Rotation};
use super::ExportError;

/// Colours of successive series (Tableau 10, as matplotlib's default cycle).
pub const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// One curve: points (x, y) joined in order, each marked.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<[f64; 2]>,
    pub color: [u8; 3],
    /// Per point, the low and high ends of an error bar (e.g. mean ± std); empty: none.
    pub spread: Vec<[f64; 2]>,
}

/// A horizontal line across a chart (a tolerance), with its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Guide {
    pub y: f64,
    pub label: String,
}

/// One set of axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub guides: Vec<Guide>,
}

const TEXT: [u8; 3] = [0, 0, 0];
const AXIS: [u8; 3] = [64, 64, 64];
const GRID: [u8; 3] = [225, 225, 225];
const PLOT_W: f32 = 300.0;
const PLOT_H: f32 = 210.0;
const MARGIN_L: f32 = 52.0;
const MARGIN_R: f32 = 14.0;
const MARGIN_T: f32 = 24.0;
const MARGIN_B: f32 = 40.0;
const FONT: f32 = 8.5;

/// One axis: the data range mapped to [0, 1], its ticks and their labels.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    labels: Vec<String>,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, extra: &[f64], log: bool) -> Self {
        let usable = |v: &f64| v.is_finite() && (!log || *v > 0.0);
        let vals: Vec<f64> = values.chain(extra.iter().copied()).filter(usable).collect();
        let (mut lo, mut hi) = vals
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if !lo.is_finite() {
            (lo, hi) = if log { (0.1, 10.0) } else { (0.0, 1.0) };
        }
        if log {
            let (a, b) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0));
            let decades = (a as i32..=b as i32).map(|e| 10f64.powi(e));
            let mut ticks: Vec<f64> = Vec::new();
            for d in decades {
                ticks.push(d);
                if b - a <= 2.0 {
                    ticks.extend([2.0 * d, 5.0 * d]);
                }
            }
            let (lo, hi) = (10f64.powf(a), 10f64.powf(b));
            ticks.retain(|t| *t >= lo * 0.999 && *t <= hi * 1.001);
            let labels = ticks.iter().map(|&t| log_label(t)).collect();
            Self {
                log,
                lo: lo.log10(),
                hi: hi.log10(),
                ticks,
                labels,
            }
        } else {
            if hi - lo < 1e-12 {
                (lo, hi) = (lo - 0.5, hi + 0.5);
            }
            let (ticks, _) = nice_ticks(lo, hi, 6);
            let step = ticks.windows(2).map(|w| w[1] - w[0]).next().unwrap_or(1.0);
            let lo = lo
                .min(ticks.first().copied().unwrap_or(lo))
                .min((lo / step).floor() * step);
            let hi = hi
                .max(ticks.last().copied().unwrap_or(hi))
                .max((hi / step).ceil() * step);
            let (ticks, exp) = nice_ticks(lo, hi, 6);
            let labels = tick_labels(&ticks, exp);
            Self {
                log,
                lo,
                hi,
                ticks,
                labels,
            }
        }
    }

    /// Where `v` falls on the axis, 0 at its start and 1 at its end; `None` off a log axis.
    fn place(&self, v: f64) -> Option<f32> {
        let t = if self.log {
            if v <= 0.0 || !v.is_finite() {
                return None;
            }
            v.log10()
        } else {
            v
        };
        Some(((t - self.lo) / (self.hi - self.lo)).clamp(-0.02, 1.02) as f32)
    }
}

/// A power of ten as people write it on a log axis: 0.01, 1, 1000, 1e-5, 2e+06.
pub fn log_label(v: f64) -> String {
    if (1e-3..=1e4).contains(&v) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// `charts` in rows of `cols`, with `caption` under them, at `dpi` for raster output.
pub fn chart_scene(charts: &[Chart], cols: usize, caption: Option<&str>, dpi: f32) -> Result<Scene, ExportError> {
    if charts.is_empty() {
        return Err(ExportError::InvalidFigure(
            "a chart figure needs at least one chart".into(),
        ));
    }
    let cell_w = MARGIN_L + PLOT_W + MARGIN_R;
    let cell_h = MARGIN_T + PLOT_H + MARGIN_B;
    let caption_h = if caption.is_some() { 18.0 } else { 0.0 };
    let cols = cols.clamp(1, charts.len());
    let rows = charts.len().div_ceil(cols);
    let width = cell_w * cols as f32;
    // One legend for the whole figure, under the charts (a curve keeps its colour in every
    // chart), so no legend covers a curve.
    let mut entries: Vec<(&str, [u8; 3])> = Vec::new();
    for s in charts.iter().flat_map(|c| &c.series) {
        if !s.label.is_empty() && !entries.iter().any(|(l, _)| *l == s.label) {
            entries.push((&s.label, s.color));
        }
    }
    let legend_top = rows as f32 * cell_h;
    let mut legend_items = Vec::new();
    let (mut x, mut y) = (MARGIN_L, legend_top + 4.0);
    for (label, color) in &entries {
        let w = 20.0 + font::text_width(label, FONT) + 14.0;
        if x + w > width && x > MARGIN_L {
            x = MARGIN_L;
            y += FONT + 6.0;
        }
        legend_items.push(Item::Line {
            from: [x, y],
            to: [x + 16.0, y],
            width: 1.4,
            color: *color,
        });
        legend_items.push(text(x + 20.0, y + 3.0, Anchor::Start, Rotation::None, label));
        x += w;
    }
    let legend_h = if entries.is_empty() {
        0.0
    } else {
        y - legend_top + FONT + 4.0
    };
    let mut items = Vec::new();
    for (i, chart) in charts.iter().enumerate() {
        let plot = Rect {
            x: (i % cols) as f32 * cell_w + MARGIN_L,
            y: (i / cols) as f32 * cell_h + MARGIN_T,
            w: PLOT_W,
            h: PLOT_H,
        };
        draw_chart(&mut items, chart, plot);
    }
    items.extend(legend_items);
    if let Some(caption) = caption {
        items.push(Item::Text {
            x: 6.0,
            y: legend_top + legend_h + 12.0,
            size: FONT,
            anchor: Anchor::Start,
            rotation: Rotation::None,
            text: caption.to_string(),
            color: TEXT,
        });
    }
    Ok(Scene {
        width,
        height: legend_top + legend_h + caption_h,
        dpi,
        items,
    })
}

fn text(x: f32, y: f32, anchor: Anchor, rotation: Rotation, text: &str) -> Item {
    Item::Text {
        x,
        y,
        size: FONT,
        anchor,
        rotation,
        text: text.to_string(),
        color: TEXT,
    }
}

fn draw_chart(items: &mut Vec<Item>, chart: &Chart, plot: Rect) {
    let xs = chart.series.iter().flat_map(|s| s.points.iter().map(|p| p[0]));
    let ys = chart.series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p[1])
            .chain(s.spread.iter().flat_map(|b| b.iter().copied()))
    });
    let guides: Vec<f64> = chart.guides.iter().map(|g| g.y).collect();
    let x_axis = Axis::new(xs, &[], chart.log_x);
    let y_axis = Axis::new(ys, &guides, chart.log_y);
    let px = |v: f64| x_axis.place(v).map(|f| plot.x + f * plot.w);
    let py = |v: f64| y_axis.place(v).map(|f| plot.y + (1.0 - f) * plot.h);
    let (left, right, top, bottom) = (plot.x, plot.x + plot.w, plot.y, plot.y + plot.h);

    // Grid and ticks.
    for (t, label) in x_axis.ticks.iter().zip(&x_axis.labels) {
        let Some(x) = px(*t) else { continue };
        items.push(Item::Line {
            from: [x, top],
            to: [x, bottom],
            width: 0.5,
            color: GRID,
        });
        items.push(Item::Line {
            from: [x, bottom],
            to: [x, bottom + 3.0],
            width: 0.7,
            color: AXIS,
        });
        items.push(text(x, bottom + 12.0, Anchor::Middle, Rotation::None, label));
    }
    for (t, label) in y_axis.ticks.iter().zip(&y_axis.labels) {
        let Some(y) = py(*t) else { continue };
        items.push(Item::Line {
            from: [left, y],
            to: [right, y],
            width: 0.5,
            color: GRID,
        });
        items.push(Item::Line {
            from: [left - 3.0, y],
            to: [left, y],
            width: 0.7,
            color: AXIS,
        });
        items.push(text(left - 5.0, y + 3.0, Anchor::End, Rotation::None, label));
    }
    items.push(Item::Frame {
        rect: plot,
        width: 0.7,
        color: AXIS,
    });
    items.push(text(
        (left + right) / 2.0,
        top - 8.0,
        Anchor::Middle,
        Rotation::None,
        &chart.title,
    ));
    items.push(text(
        (left + right) / 2.0,
        bottom + 26.0,
        Anchor::Middle,
        Rotation::None,
        &chart.x_label,
    ));
    items.push(text(
        left - 38.0,
        (top + bottom) / 2.0,
        Anchor::Middle,
        Rotation::Ccw90,
        &chart.y_label,
    ));

    // Guides, dashed.
    for guide in &chart.guides {
        let Some(y) = py(guide.y) else { continue };
        let mut x = left;
        while x < right {
            let to = (x + 5.0).min(right);
            items.push(Item::Line {
                from: [x, y],
                to: [to, y],
                width: 0.8,
                color: AXIS,
            });
            x += 9.0;
        }
        items.push(text(right - 3.0, y - 3.0, Anchor::End, Rotation::None, &guide.label));
    }

    // Curves and markers.
    for series in &chart.series {
        let points: Vec<[f32; 2]> = series
            .points
            .iter()
            .filter_map(|p| Some([px(p[0])?, py(p[1])?]))
            .collect();
        for (p, bar) in series.points.iter().zip(&series.spread) {
            if let (Some(x), Some(lo), Some(hi)) = (px(p[0]), py(bar[0]), py(bar[1])) {
                for (from, to) in [
                    ([x, lo], [x, hi]),
                    ([x - 2.0, lo], [x + 2.0, lo]),
                    ([x - 2.0, hi], [x + 2.0, hi]),
                ] {
                    items.push(Item::Line {
                        from,
                        to,
                        width: 0.7,
                        color: series.color,
                    });
                }
            }
        }
        if points.len() > 1 {
            items.push(Item::Polyline {
                points: points.clone(),
                width: 1.2,
                color: series.color,
            });
        }
        for p in &points {
            items.push(Item::Fill {
                rect: Rect {
                    x: p[0] - 1.8,
                    y: p[1] - 1.8,
                    w: 3.6,
                    h: 3.6,
                },
                color: series.color,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log: bool) -> Chart {
        Chart {
            title: "map error".into(),
            x_label: "gradients".into(),
            y_label: "relative L2 error".into(),
            log_x: log,
            log_y: log,
            series: vec![Series {
                label: "Gauss–Legendre".into(),
                points: vec![[4.0, 0.3], [8.0, 0.1], [16.0, 0.04], [32.0, 0.011], [0.0, 0.0]],
                color: PALETTE[0],
                spread: Vec::new(),
            }],
            guides: vec![Guide {
                y: 0.01,
                label: "1 %".into(),
            }],
        }
    }

    /// Log axes get decades (and 2, 5 between them when the range is short); a point a log
    /// axis cannot place is left out, not drawn at an edge.
    #[test]
    fn log_axes_place_decades_and_drop_zeros() {
        let a = Axis::new([0.011, 0.3].into_iter(), &[0.01], true);
        assert_eq!(a.labels, ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]);
        assert_eq!(a.place(0.1), Some(0.5));
        assert_eq!(a.place(0.0), None);
        let scene = chart_scene(&[chart(true)], 2, Some("caption"), 100.0).unwrap();
        let line = scene.items.iter().find_map(|i| match i {
            Item::Polyline { points, .. } => Some(points.len()),
            _ => None,
        });
        assert_eq!(line, Some(4));
        assert_eq!(log_label(1e-5), "1e-5");
    }

    /// The curve falls from the top left to the bottom right: the raster has the series
    /// colour in the plot's upper left and lower right quarters, and the figure is written
    /// in all three formats.
    #[test]
    fn a_falling_curve_is_drawn_where_it_falls() {
        let scene = chart_scene(&[chart(true), chart(false)], 2, None, 100.0).unwrap();
        let img = crate::export::raster::render(&scene).unwrap();
        let k = 100.0 / 72.0;
        let count = |x0: f32, y0: f32, x1: f32, y1: f32| {
            let mut n = 0;
            for y in (y0 * k) as u32..(y1 * k) as u32 {
                for x in (x0 * k) as u32..(x1 * k) as u32 {
                    if img.get_pixel(x, y).0 == PALETTE[0] {
                        n += 1;
                    }
                }
            }
            n
        };
        let (l, t) = (MARGIN_L, MARGIN_T);
        assert!(count(l, t + 20.0, l + PLOT_W / 3.0, t + PLOT_H / 2.0) > 20);
        assert!(count(l + PLOT_W * 2.0 / 3.0, t + PLOT_H / 2.0, l + PLOT_W, t + PLOT_H) > 20);
        assert_eq!(count(l + PLOT_W * 2.0 / 3.0, t + 30.0, l + PLOT_W, t + PLOT_H / 3.0), 0);
        let meta = crate::export::metadata::FigureMetadata {
            title: "t".into(),
            command: "c".into(),
            settings: serde_json::json!({}),
        };
        for f in crate::export::FigureFormat::ALL {
            let bytes = crate::export::figure_bytes(&scene, f, &meta).unwrap();
            assert!(bytes.len() > 500);
        }
        let svg = crate::export::svg::svg_string(&scene, &meta).unwrap();
        assert!(svg.contains("<polyline"));
    }
}
