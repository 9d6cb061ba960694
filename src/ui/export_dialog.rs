//! The Export dialog: the current run's maps as a figure (a row per map, a column per
//! display mode), previewed as the PNG writer draws it, saved as PNG, SVG or PDF through
//! the system file dialog; the raw maps and the path's trace as safetensors / .npy. Every
//! figure carries the `pathscope figure` command that makes it again from the command line.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};

use super::command::Commands;
use super::file_dialog::{file_button, FileRequest, Purpose};
use super::runtime::Runtime;
use super::state::StudioState;
use crate::attribution::catalog::{MethodId, Variant};
use crate::export::figure::{ColorbarPlacement, Column, Figure, FigureStyle, Layout, MapRow, Scene, MM_PER_INCH};
use crate::export::metadata::{shell_command, software, FigureMetadata};
use crate::export::{atomic::write_atomic, npy::npy_f32_bytes, raw, write_figure, FigureFormat};
use crate::render::colormap::Colormap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeUnit {
    Mm,
    Inch,
}

/// The dialog's settings (kept between openings).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// Photo, signed, absolute, positive, negative (in [`Column::ALL`] order).
    pub columns: [bool; 5],
    pub transposed: bool,
    /// Width in `unit`s.
    pub width: f32,
    pub unit: SizeUnit,
    pub dpi: f32,
    pub font_pt: f32,
    pub sequential: Colormap,
    pub colorbar: ColorbarPlacement,
    pub format: FigureFormat,
    pub caption: bool,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            columns: [true, true, true, false, false],
            transposed: false,
            width: 180.0,
            unit: SizeUnit::Mm,
            dpi: 300.0,
            font_pt: 8.0,
            sequential: Colormap::Reds,
            // Each panel its own range and bar, as on screen: under a shared or per-column
            // range the faint IDGI and re-calibrated rows would look blank.
            colorbar: ColorbarPlacement::Panel,
            format: FigureFormat::Pdf,
            caption: false,
        }
    }
}

impl ExportSettings {
    pub fn width_mm(&self) -> f32 {
        match self.unit {
            SizeUnit::Mm => self.width,
            SizeUnit::Inch => self.width * MM_PER_INCH,
        }
    }

    pub fn chosen_columns(&self) -> Vec<Column> {
        Column::ALL
            .into_iter()
            .zip(self.columns)
            .filter_map(|(c, on)| on.then_some(c))
            .collect()
    }
}

#[derive(Default)]
pub struct ExportDialog {
    pub open: bool,
    pub settings: ExportSettings,
    /// What the preview was drawn from, and the texture.
    preview: Option<(String, TextureHandle, [usize; 2])>,
    /// The last save's outcome, shown in the dialog.
    pub status: Option<String>,
}

/// The panels a figure shows as rows (the absolute panel is a display mode there).
const FIGURE_VARIANTS: [Variant; 3] = [Variant::Vanilla, Variant::Recalibrated, Variant::Idgi];

/// The computed panels of the current run and the methods they show.
fn computed_methods(state: &StudioState) -> Vec<(Variant, MethodId)> {
    FIGURE_VARIANTS
        .into_iter()
        .filter(|v| state.results.contains_key(v))
        .filter_map(|v| Some((v, state.computed_settings().panel_method(v)?)))
        .collect()
}

/// The maps of the current run, a row each, with the method each shows.
pub fn export_rows(state: &StudioState) -> Vec<(MapRow, MethodId)> {
    let Some(image) = &state.image else {
        return Vec::new();
    };
    let photo = Arc::new(image.crop.clone());
    computed_methods(state)
        .into_iter()
        .filter_map(|(v, method)| {
            let map = state.map_of(v, None)?;
            Some((
                MapRow {
                    // The panel's heading on screen and the command line's row label.
                    label: state.panel_title(v),
                    map: Arc::new(map),
                    width: photo.width(),
                    height: photo.height(),
                    photo: photo.clone(),
                },
                method,
            ))
        })
        .collect()
}

fn figure_style(state: &StudioState, s: &ExportSettings) -> FigureStyle {
    FigureStyle {
        width_mm: s.width_mm(),
        height_mm: None,
        dpi: s.dpi,
        font_pt: s.font_pt,
        sequential: s.sequential,
        colorbar: s.colorbar,
        clip: state.view.clip,
        overlay: state.view.overlay,
        frames: true,
    }
}

/// `path` made absolute (from the studio's working folder), so the figure's command
/// works from any folder.
fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The photo's file for the figure command: its own file, absolute; a bundled sample's
/// copy in the source tree it was built from, absolute, or its repository path when that
/// tree is gone.
fn figure_image_path(photo: &super::state::Photo) -> String {
    if let Some(source) = &photo.source {
        return absolute(source);
    }
    if crate::assets::SAMPLE_IMAGES.iter().any(|x| x.name == photo.name) {
        let built = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/images")
            .join(&photo.name);
        return if built.exists() {
            built.display().to_string()
        } else {
            format!("assets/images/{}", photo.name)
        };
    }
    absolute(Path::new(&photo.name))
}

/// The `pathscope figure` command that makes this figure from the command line.
pub fn export_command(
    e: &ExportSettings,
    state: &StudioState,
    rt: &Runtime,
    methods: &[MethodId],
    out: &Path,
) -> String {
    let s = state.computed_settings();
    let image = state.image.as_ref().map(figure_image_path).unwrap_or_default();
    let mut a: Vec<String> = vec!["pathscope".into(), "figure".into()];
    let mut push = |k: &str, v: String| {
        a.push(k.into());
        a.push(v);
    };
    if let Some(model) = rt.model_file() {
        push("--model", absolute(Path::new(&model)));
    }
    push("--images", image);
    push(
        "--methods",
        methods.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(","),
    );
    push(
        "--modes",
        e.chosen_columns()
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(","),
    );
    push("--layout", if e.transposed { "transposed" } else { "auto" }.into());
    push("--width", format!("{}mm", e.width_mm()));
    push("--dpi", format!("{}", e.dpi));
    push("--font-size", format!("{}", e.font_pt));
    push("--colormap", e.sequential.name().into());
    push("--colorbar", e.colorbar.name().into());
    push("--clip", state.view.clip.to_string());
    push("--overlay", format!("{}", state.view.overlay));
    if let Some(t) = state.target {
        push("--target", t.to_string());
    }
    push("--objective", s.objective.to_string());
    push("--baseline", s.baseline.to_string());
    push("--steps", s.steps.to_string());
    push("--rule", s.rule.to_string());
    push("--references", s.references.to_string());
    push("--samples", s.samples.to_string());
    push("--noise", format!("{}", s.noise));
    push("--batch-size", s.batch_size.to_string());
    push("--seed", s.seed.to_string());
    push("--out", absolute(out));
    if e.caption {
        a.push("--caption".into());
    }
    shell_command(&a)
}

/// The figure of the current maps at `dpi` (the preview's or the file's), with the
/// metadata naming `out`.
pub fn export_scene(
    e: &ExportSettings,
    state: &StudioState,
    rt: &Runtime,
    dpi: f32,
    out: &Path,
) -> Result<(Scene, FigureMetadata), String> {
    let rows = export_rows(state);
    if rows.is_empty() {
        return Err("run a method first: there are no maps to export".into());
    }
    let columns = e.chosen_columns();
    if columns.is_empty() {
        return Err("choose at least one column".into());
    }
    let mut style = figure_style(state, e);
    style.dpi = dpi;
    let methods: Vec<MethodId> = rows.iter().map(|(_, m)| *m).collect();
    let method_label = state.computed_settings().method_label();
    let target_label = rt.label_of(state.target);
    let caption = e.caption.then(|| {
        format!(
            "{}, target {}; {}; colour range: {}.",
            rt.model_info.as_ref().map(|m| m.0.as_str()).unwrap_or("model"),
            target_label.clone().unwrap_or_default(),
            method_label,
            crate::ui::view::clip_name(state.view.clip)
        )
    });
    let map_rows: Vec<MapRow> = rows.into_iter().map(|(r, _)| r).collect();
    let layout = if e.transposed { Layout::Transposed } else { Layout::Auto };
    let figure = Figure::method_grid(&map_rows, &columns, layout, style.clone(), caption).map_err(|e| e.to_string())?;
    let scene = figure.layout().map_err(|e| e.to_string())?;
    let mut file_style = style;
    file_style.dpi = e.dpi;
    let settings = serde_json::json!({
        "software": software(),
        "source": "studio",
        "images": [{
            "image": state.image.as_ref().map(|i| i.name.clone()),
            "target": state.target,
            "label": target_label,
        }],
        "methods": methods.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "modes": columns.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "layout": layout.name(),
        "format": e.format.extension(),
        "style": file_style.to_json(),
        "method": method_label,
    });
    let meta = FigureMetadata {
        title: format!("Pathscope: {method_label}"),
        command: export_command(e, state, rt, &methods, out),
        settings,
    };
    Ok((scene, meta))
}

/// Writes the figure to `path` in the dialog's format at its DPI.
pub fn export_figure(e: &ExportSettings, state: &StudioState, rt: &Runtime, path: &Path) -> Result<(), String> {
    let (scene, meta) = export_scene(e, state, rt, e.dpi, path)?;
    write_figure(path, &scene, e.format, &meta).map_err(|e| e.to_string())
}

/// The current maps ([C, H, W] each) as one safetensors file, or one .npy each into `dir`;
/// each named by its method's text form.
pub fn export_maps(state: &StudioState, path: &Path, npy: bool) -> Result<usize, String> {
    let maps: Vec<(String, Vec<usize>, Vec<f32>)> = computed_methods(state)
        .into_iter()
        .filter_map(|(v, method)| {
            let r = state.results.get(&v)?;
            let values = r.attribution.flatten_all().ok()?.to_vec1::<f32>().ok()?;
            Some((method.to_string(), r.attribution.dims().to_vec(), values))
        })
        .collect();
    if maps.is_empty() {
        return Err("no maps to export yet".into());
    }
    let meta = HashMap::from([
        ("software".to_string(), software()),
        ("method".to_string(), state.computed_settings().method_label()),
        (
            "target".to_string(),
            state.target.map(|t| t.to_string()).unwrap_or_default(),
        ),
    ]);
    if npy {
        std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for (name, shape, values) in &maps {
            let file = path.join(format!("{}.npy", name.replace(':', "-")));
            write_atomic(&file, &npy_f32_bytes(values, shape)).map_err(|e| format!("{}: {e}", file.display()))?;
        }
    } else {
        let views: Vec<(String, Vec<usize>, &[f32])> = maps
            .iter()
            .map(|(n, s, v)| (n.clone(), s.clone(), v.as_slice()))
            .collect();
        let bytes = raw::maps_safetensors(&views, &meta).map_err(|e| e.to_string())?;
        write_atomic(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(maps.len())
}

/// The vanilla run's per-step trace as safetensors.
pub fn export_trace(state: &StudioState, path: &Path) -> Result<(), String> {
    let r = state.results.get(&Variant::Vanilla).ok_or("no run yet")?;
    let trace = r
        .trace
        .as_ref()
        .ok_or("this method records no per-step trace (path methods do)")?;
    let meta = HashMap::from([
        ("software".to_string(), software()),
        ("method".to_string(), state.computed_settings().method_label()),
    ]);
    let bytes = raw::trace_safetensors(trace, r.attribution.dims(), &meta).map_err(|e| e.to_string())?;
    write_atomic(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The dialog window, when open.
pub fn show(
    ctx: &egui::Context,
    dialog: &mut ExportDialog,
    state: &StudioState,
    rt: &Runtime,
    commands: &mut Commands,
) {
    if !dialog.open {
        return;
    }
    let mut open = true;
    egui::Window::new("Export figure")
        .open(&mut open)
        .default_width(640.0)
        .show(ctx, |ui| contents(ui, dialog, state, rt, commands));
    dialog.open &= open;
}

fn contents(ui: &mut egui::Ui, dialog: &mut ExportDialog, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    let e = &mut dialog.settings;
    ui.horizontal_wrapped(|ui| {
        ui.label("columns:");
        for (i, c) in Column::ALL.into_iter().enumerate() {
            ui.checkbox(&mut e.columns[i], c.name());
        }
        ui.checkbox(&mut e.transposed, "swap rows and columns");
    });
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("width");
        let max = if e.unit == SizeUnit::Mm { 600.0 } else { 24.0 };
        ui.add(egui::DragValue::new(&mut e.width).range(10.0..=max).speed(1.0))
            .labelled_by(label.id);
        let before = e.unit;
        ui.selectable_value(&mut e.unit, SizeUnit::Mm, "mm");
        ui.selectable_value(&mut e.unit, SizeUnit::Inch, "in");
        if before != e.unit {
            e.width = match e.unit {
                SizeUnit::Mm => (e.width * MM_PER_INCH).round(),
                SizeUnit::Inch => (e.width / MM_PER_INCH * 10.0).round() / 10.0,
            };
        }
        let label = ui.label("DPI");
        ui.add(egui::DragValue::new(&mut e.dpi).range(72.0..=1200.0).speed(10.0))
            .labelled_by(label.id);
        let label = ui.label("font pt");
        ui.add(egui::DragValue::new(&mut e.font_pt).range(4.0..=24.0).speed(0.25))
            .labelled_by(label.id);
    });
    ui.horizontal_wrapped(|ui| {
        egui::ComboBox::from_label("unsigned colormap")
            .selected_text(e.sequential.name())
            .show_ui(ui, |ui| {
                for c in [Colormap::Reds, Colormap::Viridis, Colormap::Inferno] {
                    ui.selectable_value(&mut e.sequential, c, c.name());
                }
            });
        egui::ComboBox::from_label("colour bars")
            .selected_text(e.colorbar.name())
            .show_ui(ui, |ui| {
                for p in ColorbarPlacement::ALL {
                    ui.selectable_value(&mut e.colorbar, p, p.name());
                }
            });
        ui.checkbox(&mut e.caption, "caption");
    });
    ui.horizontal(|ui| {
        ui.label("format");
        for f in FigureFormat::ALL {
            ui.selectable_value(&mut e.format, f, f.extension());
        }
    });
    preview(ui, dialog, state, rt);
    ui.horizontal(|ui| {
        let format = dialog.settings.format;
        let (ext, upper) = (format.extension(), format.extension().to_uppercase());
        let figure = FileRequest::save(
            Purpose::ExportFigure,
            "Save figure",
            ext,
            &[ext],
            &format!("figure.{ext}"),
        );
        file_button(ui, true, &format!("Save {upper}…"), figure, commands);
        let st = ["safetensors"];
        let maps = FileRequest::save(
            Purpose::ExportMaps,
            "Save maps",
            "safetensors",
            &st,
            "attributions.safetensors",
        );
        file_button(ui, true, "Maps as .safetensors…", maps, commands);
        let npy = FileRequest::folder(Purpose::ExportNpy, "Folder for the .npy maps");
        file_button(ui, true, "Maps as .npy…", npy, commands);
        let trace = FileRequest::save(
            Purpose::ExportTrace,
            "Save trace",
            "safetensors",
            &st,
            "trace.safetensors",
        );
        file_button(ui, true, "Trace as .safetensors…", trace, commands);
    });
    if let Some(s) = &dialog.status {
        ui.label(s);
    }
}

/// The figure drawn by the PNG writer at a DPI that fits the dialog, redrawn only when
/// the settings or the maps change.
fn preview(ui: &mut egui::Ui, dialog: &mut ExportDialog, state: &StudioState, rt: &Runtime) {
    let e = dialog.settings.clone();
    let avail = ui.available_width().clamp(200.0, 900.0);
    let dpi = (avail / (e.width_mm() / MM_PER_INCH)).clamp(10.0, 300.0);
    let rows = export_rows(state);
    let checksum: f64 = rows
        .iter()
        .map(|(r, _)| r.map.iter().step_by(97).map(|&v| v as f64).sum::<f64>())
        .sum();
    let key = format!(
        "{e:?}|{dpi:.0}|{checksum}|{:?}|{}|{:?}",
        state.view.clip, state.view.overlay, state.target
    );
    if dialog.preview.as_ref().map(|p| p.0 != key).unwrap_or(true) {
        match export_scene(&e, state, rt, dpi, Path::new("figure"))
            .and_then(|(scene, _)| crate::export::raster::render(&scene).map_err(|e| e.to_string()))
        {
            Ok(img) => {
                let size = [img.width() as usize, img.height() as usize];
                let tex = ui.ctx().load_texture(
                    "export-preview",
                    ColorImage::from_rgb(size, img.as_raw()),
                    TextureOptions::LINEAR,
                );
                dialog.preview = Some((key, tex, size));
                dialog.status = None;
            }
            Err(err) => {
                dialog.preview = None;
                ui.colored_label(egui::Color32::from_rgb(220, 80, 60), err);
                return;
            }
        }
    }
    if let Some((_, tex, size)) = &dialog.preview {
        let w = size[0] as f32;
        let h = size[1] as f32;
        let scale = (avail / w).min(1.0);
        ui.label(format!(
            "preview: {:.0} × {:.0} mm, {} px wide at {:.0} dpi",
            e.width_mm(),
            h / dpi * MM_PER_INCH,
            (e.width_mm() / MM_PER_INCH * e.dpi).round(),
            e.dpi
        ));
        egui::ScrollArea::vertical().max_height(520.0).show(ui, |ui| {
            ui.add(egui::Image::new(tex).fit_to_exact_size(egui::vec2(w * scale, h * scale)));
        });
    }
}
