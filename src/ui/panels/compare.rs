//! The comparison grid: the current run's panels side by side on one colour scale, the
//! pinned rows below, synced zoom and pan, and the pixel probe.

use std::collections::HashMap;

use eframe::egui::{self, Color32};

use crate::attribution::catalog::Variant;
use crate::ui::command::{Command, Commands};
use crate::ui::runtime::{Runtime, Textures};
use crate::ui::state::StudioState;
use crate::ui::view::MapPanel;

/// The maps of one row of the grid, in panel order (None: still computing).
type RowMaps = Vec<(Variant, Option<Vec<f32>>)>;

pub fn show(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    rt: &Runtime,
    textures: &mut Textures,
    commands: &mut Commands,
) {
    state.view.controls(ui);
    ui.horizontal(|ui| {
        ui.label("panels:");
        for v in Variant::ALL {
            let mut on = !state.hidden.contains(&v);
            if ui.checkbox(&mut on, format!("show {}", v.title())).changed() {
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
            let queued = rt.run.jobs.iter().any(|(_, j)| *j == v);
            ((map.is_some() || queued) && !state.hidden.contains(&v)).then_some((v, map))
        })
        .collect();
    if maps.is_empty() && state.pinned.is_empty() {
        ui.label("Press Run to compute the maps.");
        return;
    }
    // One scale over every panel on screen, pinned rows included.
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
        .max(state.pinned.iter().map(|r| r.maps.len()).max().unwrap_or(0))
        .max(1) as f32;
    // The panel's visible width: a wide row above must not widen the grid off screen.
    let width = ui.clip_rect().width().min(ui.available_width());
    let size = ((width - 12.0 * columns) / columns).clamp(96.0, 448.0);
    let mut hover = None;
    let current_label = state.settings.method_label();
    let can_pin = !rt.running() && !state.results.is_empty();
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
            ui.horizontal(|ui| {
                ui.strong(format!("current: {current_label}"));
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
                ui.horizontal(|ui| {
                    ui.strong(format!("pinned {r}: {}", pinned[r].0));
                    if ui.small_button("remove").clicked() {
                        commands.push(Command::RemovePinned(r));
                    }
                });
            }
            ui.horizontal_top(|ui| {
                for (variant, map) in row_maps.iter() {
                    ui.vertical(|ui| {
                        ui.label(variant.title());
                        match map {
                            Some(m) => {
                                let range = if view.shared_scale {
                                    shared_range
                                } else {
                                    view.range_of(m)
                                };
                                let panel: &mut MapPanel = panels.entry(*variant).or_default();
                                let id = row_id * 8 + *variant as u64;
                                if let Some(p) =
                                    panel.show(ui, gpu, id, m, &crop, variant.is_signed(), range, view, size)
                                {
                                    hover = Some(p);
                                }
                            }
                            None => {
                                let (rect, _) = ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
                                ui.painter().rect_filled(rect, 2.0, Color32::from_gray(40));
                                ui.put(rect, egui::Spinner::new());
                            }
                        }
                    });
                }
            });
        }
    });
    state.view.probe = hover;
    if let Some((x, y)) = hover {
        let w = crop.width() as usize;
        let values: Vec<String> = maps
            .iter()
            .filter_map(|(v, m)| m.as_ref().map(|m| format!("{}: {:+.3e}", v.title(), m[y * w + x])))
            .collect();
        ui.label(format!("pixel ({x}, {y})   {}", values.join("   ")));
    }
}
