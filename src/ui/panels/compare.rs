//! The comparison grid: the current run's panels side by side, each with its colour bar
//! and numeric range, the pinned rows below, synced zoom and pan, and the pixel probe.
//!
//! Each panel has its own colour range by default: IDGI and re-calibrated maps are often
//! two orders of magnitude fainter than the vanilla map, and under one shared range they
//! look blank. With the shared scale on, a panel far fainter than the shared clip says so.

use std::collections::HashMap;

use eframe::egui::{self, Color32};

use crate::attribution::catalog::Variant;
use crate::ui::command::{Command, Commands};
use crate::ui::runtime::{Runtime, Textures};
use crate::ui::state::StudioState;
use crate::ui::view::{colour_bar, MapPanel};

/// The maps of one row of the grid, in panel order (None: still computing).
type RowMaps = Vec<(Variant, Option<Vec<f32>>)>;

/// Below this share of the shared range a panel is flagged as faint.
pub const FAINT_SHARE: f32 = 0.1;

/// The smallest panel edge, in points, before panels wrap onto another line.
const MIN_PANEL: f32 = 150.0;
const GAP: f32 = 12.0;

/// How many panels fit side by side in `width`, and their edge: as wide as the row
/// allows, but no taller than `height` (a large window shows large maps, not empty space).
pub fn grid_geometry(width: f32, height: f32, panels: usize) -> (usize, f32) {
    let panels = panels.max(1);
    let fit = ((width / (MIN_PANEL + GAP)).floor() as usize).clamp(1, panels);
    let tallest = height.max(MIN_PANEL);
    let size = ((width - GAP * fit as f32) / fit as f32).clamp(64.0, tallest);
    (fit, size)
}

/// The faint-panel warning for a panel of own range `own` under a shared range `shared`.
pub fn faint_warning(own: f32, shared: f32) -> Option<String> {
    (shared > 0.0 && own.is_finite() && own < FAINT_SHARE * shared).then(|| {
        let times = if own > 0.0 { shared / own } else { f32::INFINITY };
        format!("faint under the shared scale: own range {own:.2e}, {times:.0}× below")
    })
}

pub fn show(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    rt: &Runtime,
    textures: &mut Textures,
    commands: &mut Commands,
) {
    state.view.controls(ui);
    ui.horizontal_wrapped(|ui| {
        ui.label("Panels:");
        for v in Variant::ALL {
            let mut on = !state.hidden.contains(&v);
            if ui.checkbox(&mut on, v.title()).changed() {
                if on {
                    state.hidden.remove(&v);
                } else {
                    state.hidden.insert(v);
                }
            }
        }
    });
    let partial = rt.partial.as_deref();
    let vanilla = state.map_of(Variant::Vanilla, partial);
    let maps: RowMaps = Variant::ALL
        .into_iter()
        .filter_map(|v| {
            let map = if v == Variant::Absolute {
                vanilla.as_ref().map(|m| m.iter().map(|x| x.abs()).collect())
            } else {
                state.map_of(v, partial)
            };
            let queued = rt
                .run
                .jobs
                .iter()
                .any(|(_, j)| *j == v || (v == Variant::Absolute && *j == Variant::Vanilla));
            let failed = rt.panel_errors.contains_key(&v);
            ((map.is_some() || queued || failed) && !state.hidden.contains(&v)).then_some((v, map))
        })
        .collect();
    if maps.is_empty() && state.pinned.is_empty() {
        ui.label("Press Run to compute the maps.");
        return;
    }
    // The shared scale spans every panel on screen, pinned rows included.
    let shared_range = maps
        .iter()
        .filter_map(|(_, m)| m.as_ref())
        .chain(state.pinned.iter().flat_map(|r| r.maps.iter().map(|(_, m)| m)))
        .map(|m| state.view.range_of(m))
        .fold(0f32, f32::max);
    let Some(image) = &state.image else { return };
    let crop = image.crop.clone();
    let columns = maps
        .len()
        .max(state.pinned.iter().map(|r| r.maps.len()).max().unwrap_or(0));
    // The panel's visible width: a wide row above must not widen the grid off screen.
    let width = ui.clip_rect().width().min(ui.available_width());
    // Room under the row's title and colour bar.
    let (per_line, size) = grid_geometry(width, ui.available_height() - 90.0, columns);
    let mut hover = None;
    let current_label = state.computed_settings().method_label();
    let changed = state.settings_changed();
    let can_pin = !rt.running() && !state.results.is_empty();
    let titles: HashMap<Variant, String> = Variant::ALL.into_iter().map(|v| (v, state.panel_title(v))).collect();
    let pinned: Vec<(String, RowMaps)> = state
        .pinned
        .iter()
        .map(|r| {
            let maps = r
                .maps
                .iter()
                .filter(|(v, _)| !state.hidden.contains(v))
                .map(|(v, m)| (*v, Some(m.clone())))
                .collect();
            (r.label.clone(), maps)
        })
        .collect();
    textures.pinned.resize_with(pinned.len(), HashMap::new);
    let view = &mut state.view;
    let gpu = rt.gpu.as_ref();
    egui::ScrollArea::vertical().show(ui, |ui| {
        if !maps.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.strong(format!("Maps: {current_label}"));
                if changed {
                    ui.colored_label(Color32::from_rgb(230, 170, 60), "settings changed — Run to update");
                }
                if can_pin && ui.button("Pin as a row").clicked() {
                    commands.push(Command::Pin);
                }
            });
        }
        let current = std::iter::once((0u64, &maps, &mut textures.panels)).filter(|(_, m, _)| !m.is_empty());
        let rows = current.chain(
            pinned
                .iter()
                .zip(textures.pinned.iter_mut())
                .enumerate()
                .map(|(r, ((_, m), panels))| (r as u64 + 1, m, panels)),
        );
        for (row_id, row_maps, panels) in rows {
            if row_id > 0 {
                let r = row_id as usize - 1;
                ui.horizontal_wrapped(|ui| {
                    ui.strong(format!("pinned {r}: {}", pinned[r].0));
                    if ui.small_button("remove").clicked() {
                        commands.push(Command::RemovePinned(r));
                    }
                });
            }
            for line in row_maps.chunks(per_line) {
                ui.horizontal_top(|ui| {
                    for (variant, map) in line {
                        ui.vertical(|ui| {
                            ui.set_width(size);
                            // The map's name (as in figures), then the panel's role.
                            ui.horizontal_wrapped(|ui| {
                                if row_id == 0 {
                                    ui.strong(titles[variant].as_str());
                                }
                                ui.weak(variant.title());
                            });
                            match map {
                                Some(m) => {
                                    let own = view.range_of(m);
                                    let range = if view.shared_scale { shared_range } else { own };
                                    let panel: &mut MapPanel = panels.entry(*variant).or_default();
                                    let id = row_id * 8 + *variant as u64;
                                    if let Some(p) =
                                        panel.show(ui, gpu, id, m, &crop, variant.is_signed(), range, view, size)
                                    {
                                        hover = Some(p);
                                    }
                                    colour_bar(ui, view, variant.is_signed(), range, size, view.shared_scale);
                                    if view.shared_scale {
                                        if let Some(w) = faint_warning(own, shared_range) {
                                            ui.add(
                                                egui::Label::new(
                                                    egui::RichText::new(w).color(Color32::from_rgb(230, 170, 60)),
                                                )
                                                .wrap(),
                                            );
                                        }
                                    }
                                }
                                None => {
                                    let (rect, _) =
                                        ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
                                    ui.painter().rect_filled(rect, 2.0, Color32::from_gray(40));
                                    match rt.panel_errors.get(variant).filter(|_| row_id == 0) {
                                        Some(message) => {
                                            ui.put(
                                                rect.shrink(8.0),
                                                egui::Label::new(
                                                    egui::RichText::new(message)
                                                        .color(Color32::from_rgb(230, 120, 100)),
                                                )
                                                .wrap(),
                                            );
                                        }
                                        None => {
                                            ui.put(rect, egui::Spinner::new());
                                        }
                                    }
                                }
                            }
                        });
                    }
                });
            }
        }
    });
    state.view.probe = hover;
    if let Some((x, y)) = hover {
        let w = crop.width() as usize;
        let values: Vec<String> = maps
            .iter()
            .filter_map(|(v, m)| m.as_ref().map(|m| format!("{}: {:+.3e}", v.title(), m[y * w + x])))
            .collect();
        ui.add(egui::Label::new(format!("pixel ({x}, {y})   {}", values.join("   "))).wrap());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_wrap_when_they_would_be_too_small() {
        // 1100 points hold four panels side by side; 480 hold two of at least MIN_PANEL.
        let (n, size) = grid_geometry(1100.0, 700.0, 4);
        assert_eq!(n, 4);
        assert!((size - (1100.0 - 48.0) / 4.0).abs() < 1e-3);
        let (n, size) = grid_geometry(480.0, 700.0, 4);
        assert_eq!(n, 2);
        assert!(size >= MIN_PANEL);
        assert_eq!(grid_geometry(100.0, 700.0, 4).0, 1);
        // A short window limits the edge; a tall one does not cap it at a fixed size.
        assert_eq!(grid_geometry(2000.0, 300.0, 4).1, 300.0);
        assert!(grid_geometry(2400.0, 1300.0, 4).1 > 560.0);
    }

    #[test]
    fn a_panel_65_times_fainter_is_flagged() {
        let w = faint_warning(9.8e-4, 6.4e-2).expect("flagged");
        assert!(w.contains("65×"), "{w}");
        assert!(faint_warning(3.8e-2, 6.4e-2).is_none());
    }
}
