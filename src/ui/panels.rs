//! The panels of the studio window: top bar, errors, image, predictions, method, the
//! comparison grid and the scrubber tab.

use eframe::egui::{self, Color32, ColorImage, TextureOptions};

use super::app::{MethodChoice, ModelSlot, PathscopeApp, Variant};
use crate::attribution::method::{MethodSpec, PathKind};
use crate::attribution::recalibration::Recalibration;
use crate::attribution::{Baseline, IntegrationRule, Objective};

/// The maps of one row of the grid, in panel order (None: still computing).
type RowMaps = Vec<(Variant, Option<Vec<f32>>)>;
/// A row's panels, by variant.
type Panels = std::collections::HashMap<Variant, super::view::MapPanel>;

impl PathscopeApp {
    pub(crate) fn top_bar(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("top").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("Pathscope");
                ui.separator();
                match (&self.model, &self.model_info) {
                    (ModelSlot::Ready { name, .. }, Some((arch, device))) => {
                        ui.label(format!("{arch} on {device}")).on_hover_text(name.as_str());
                    }
                    (ModelSlot::Loading(_), _) => {
                        ui.spinner();
                        ui.label("loading model…");
                    }
                    _ => {
                        ui.colored_label(Color32::LIGHT_RED, "no model");
                    }
                }
                if ui.button("Open model…").clicked() {
                    if let Some(p) = rfd::FileDialog::new()
                        .add_filter("models", crate::model::MODEL_EXTENSIONS)
                        .pick_file()
                    {
                        self.open_model(Some(p));
                    }
                }
                if ui.button("Default model").clicked() {
                    self.open_model(None);
                }
                if ui.button("Open image…").clicked() {
                    if let Some(p) = rfd::FileDialog::new()
                        .add_filter("images", &["png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp"])
                        .pick_file()
                    {
                        self.set_image_file(&p);
                    }
                }
                self.export_button(ui);
                self.session_menu(ui);
            });
        });
        self.recovery_banner(ui);
    }

    fn session_menu(&mut self, ui: &mut egui::Ui) {
        ui.menu_button("Session", |ui| {
            if ui.button("Save session…").clicked() {
                let name = self
                    .session_file
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "session.pathscope".into());
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("Pathscope session", &[crate::session::EXTENSION])
                    .set_file_name(name)
                    .save_file()
                {
                    self.save_session(&p);
                }
            }
            if ui.button("Open session…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("Pathscope session", &[crate::session::EXTENSION])
                    .pick_file()
                {
                    self.open_session(&p);
                }
            }
            if let Some(last) = self.last_session() {
                if ui
                    .button("Reopen last session")
                    .on_hover_text(last.display().to_string())
                    .clicked()
                {
                    self.open_session(&last);
                }
            }
        });
    }

    /// After a crash: the autosaved session, offered until restored or dismissed.
    fn recovery_banner(&mut self, ui: &mut egui::Ui) {
        let Some(path) = self.recovery.clone() else {
            return;
        };
        egui::Panel::top("recovery").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.colored_label(
                    Color32::from_rgb(230, 170, 60),
                    "Pathscope did not close properly last time. Restore its autosaved session?",
                )
                .on_hover_text(path.display().to_string());
                if ui.button("Restore").clicked() {
                    self.recover();
                }
                if ui.button("Dismiss").clicked() {
                    self.dismiss_recovery();
                }
            });
        });
    }

    pub(crate) fn error_panel(&mut self, ui: &mut egui::Ui) {
        if self.errors.is_empty() {
            return;
        }
        egui::Panel::bottom("errors").show(ui, |ui| {
            let mut dismiss = None;
            let n = self.errors.len();
            for (i, e) in self.errors.iter().enumerate().skip(n.saturating_sub(4)) {
                ui.horizontal(|ui| {
                    if ui.small_button("dismiss").clicked() {
                        dismiss = Some(i);
                    }
                    ui.colored_label(Color32::from_rgb(220, 80, 60), e);
                });
            }
            if let Some(i) = dismiss {
                self.errors.remove(i);
            }
        });
    }

    pub(crate) fn image_section(&mut self, ui: &mut egui::Ui) {
        ui.strong("Image");
        let mut chosen = None;
        ui.horizontal_wrapped(|ui| {
            for s in crate::assets::SAMPLE_IMAGES {
                if ui.button(s.name).on_hover_text(s.credit).clicked() {
                    chosen = Some(s);
                }
            }
        });
        if let Some(s) = chosen {
            self.set_image_bytes(s.name, s.bytes);
        }
        if let Some(img) = &mut self.image {
            ui.label(&img.name);
            let tex = img.texture.get_or_insert_with(|| {
                let ci = ColorImage::from_rgb(
                    [img.crop.width() as usize, img.crop.height() as usize],
                    img.crop.as_raw(),
                );
                ui.ctx().load_texture("crop", ci, TextureOptions::NEAREST)
            });
            ui.add(egui::Image::new(&*tex).fit_to_exact_size(egui::vec2(112.0, 112.0)))
                .on_hover_text("the 224×224 crop the model sees");
        }
    }

    /// A thumbnail of the current baseline, rebuilt only when the baseline, image or seed
    /// change.
    fn baseline_preview(&mut self, ui: &mut egui::Ui) {
        let (Some((input, key)), ModelSlot::Ready { engine, .. }) = (&self.input, &self.model) else {
            return;
        };
        let want = format!("{key}|{}|{}", self.settings.baseline, self.settings.seed);
        if self.baseline_preview.as_ref().map(|(k, _)| k != &want).unwrap_or(true) {
            let norm = engine.model().normalization();
            match self.settings.baseline.build(input, &norm, self.settings.seed) {
                Ok(b) => {
                    let (_, h, w) = b.dims3().unwrap_or((3, 224, 224));
                    let mut px = b.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default();
                    norm.denormalize(&mut px, h * w);
                    let rgb: Vec<u8> = (0..h * w)
                        .flat_map(|i| (0..3).map(move |c| (c, i)))
                        .map(|(c, i)| {
                            (px.get(c * h * w + i).copied().unwrap_or(0.0).clamp(0.0, 1.0) * 255.0).round() as u8
                        })
                        .collect();
                    let tex =
                        ui.ctx()
                            .load_texture("baseline", ColorImage::from_rgb([w, h], &rgb), TextureOptions::NEAREST);
                    self.baseline_preview = Some((want, tex));
                }
                Err(e) => {
                    self.errors.push(format!("baseline: {e}"));
                    self.settings.baseline = Baseline::Black;
                    return;
                }
            }
        }
        if let Some((_, tex)) = &self.baseline_preview {
            ui.add(egui::Image::new(tex).fit_to_exact_size(egui::vec2(56.0, 56.0)))
                .on_hover_text("the baseline x′");
        }
    }

    pub(crate) fn model_section(&mut self, ui: &mut egui::Ui) {
        ui.strong("Predictions");
        let mut chosen = None;
        for &(class, p) in &self.predictions {
            let label = format!("{:5.1} %  {}", p * 100.0, self.labels.name(class));
            if ui.selectable_label(self.target == Some(class), label).clicked() {
                chosen = Some(class);
            }
        }
        ui.horizontal(|ui| {
            ui.label("Target");
            ui.text_edit_singleline(&mut self.target_query)
                .on_hover_text("search a class by name");
        });
        if !self.target_query.trim().is_empty() {
            for class in self.labels.search(self.target_query.trim()).into_iter().take(6) {
                if ui
                    .small_button(format!("{class}: {}", self.labels.name(class)))
                    .clicked()
                {
                    chosen = Some(class);
                }
            }
        }
        if let Some(t) = self.target_label() {
            ui.label(format!("explaining: {t}"));
        }
        if let Some(c) = chosen {
            self.target = Some(c);
            self.target_query.clear();
        }
    }

    pub(crate) fn method_section(&mut self, ui: &mut egui::Ui) {
        ui.strong("Method");
        let s = &mut self.settings;
        egui::ComboBox::from_label("method")
            .selected_text(s.method.label())
            .show_ui(ui, |ui| {
                for m in MethodChoice::ALL {
                    ui.selectable_value(&mut s.method, m, m.label());
                }
            });
        if s.method == MethodChoice::PathIntegral {
            ui.horizontal(|ui| {
                ui.label("Path");
                for (p, name) in [
                    (PathKind::Straight, "straight"),
                    (PathKind::Blur, "blur"),
                    (PathKind::Guided, "guided"),
                ] {
                    if ui.selectable_value(&mut s.path, p, name).clicked() {
                        s.steps = p.default_steps();
                    }
                }
            });
            if s.path != PathKind::Blur {
                ui.horizontal(|ui| {
                    egui::ComboBox::from_label("baseline")
                        .selected_text(s.baseline.to_string())
                        .show_ui(ui, |ui| {
                            for b in [
                                Baseline::Black,
                                Baseline::White,
                                Baseline::Zero,
                                Baseline::Blur { sigma: 20.0 },
                                Baseline::Uniform,
                                Baseline::Gaussian { fraction: 0.15 },
                            ] {
                                let name = b.to_string();
                                ui.selectable_value(&mut s.baseline, b, name);
                            }
                        });
                });
            }
            ui.add(egui::Slider::new(&mut s.steps, 1..=400).text("steps"));
            if s.path == PathKind::Straight {
                egui::ComboBox::from_label("rule")
                    .selected_text(s.rule.name())
                    .show_ui(ui, |ui| {
                        for r in IntegrationRule::ALL {
                            ui.selectable_value(&mut s.rule, r, r.name());
                        }
                    });
            }
            ui.checkbox(&mut s.idgi, "IDGI panel");
        }
        if !matches!(s.method, MethodChoice::Gradient | MethodChoice::InputXGradient) && !s.method.is_ensemble() {
            egui::ComboBox::from_label("re-calibration")
                .selected_text(format!("{:?}", s.recalibration))
                .show_ui(ui, |ui| {
                    for r in [Recalibration::ValidIp, Recalibration::ValidRef, Recalibration::Vanilla] {
                        ui.selectable_value(&mut s.recalibration, r, format!("{r:?}"));
                    }
                });
            ui.add(egui::Slider::new(&mut s.references, 1..=50).text("references"));
        }
        egui::ComboBox::from_label("objective")
            .selected_text(format!("{:?}", s.objective))
            .show_ui(ui, |ui| {
                for o in [Objective::Logit, Objective::Probability, Objective::LogProbability] {
                    ui.selectable_value(&mut s.objective, o, format!("{o:?}"));
                }
            });
        ui.add(egui::Slider::new(&mut s.batch_size, 1..=64).text("batch"));
        if self.settings.method.is_ensemble() {
            ui.add(egui::Slider::new(&mut self.settings.samples, 1..=100).text("samples"));
            ui.add(egui::Slider::new(&mut self.settings.noise, 0.0..=0.5).text("noise (× range)"));
        }
        if self.settings.method == MethodChoice::PathIntegral && self.settings.path != PathKind::Blur {
            ui.horizontal(|ui| {
                ui.label("baseline preview");
                self.baseline_preview(ui);
            });
        }
        ui.separator();
        ui.horizontal(|ui| {
            let can_run = self.input.is_some() && self.target.is_some() && !self.running();
            if ui.add_enabled(can_run, egui::Button::new("Run")).clicked() {
                self.start_run();
            }
            if ui.add_enabled(self.running(), egui::Button::new("Cancel")).clicked() {
                self.cancel_run();
            }
        });
        if !self.run.jobs.is_empty() {
            ui.add(egui::ProgressBar::new(self.progress()).show_percentage());
            if self.running() {
                ui.label(format!("{:.1} steps/s", self.run.rate));
            } else {
                ui.label(format!("done: {} maps", self.results.len()));
            }
        }
    }

    pub(crate) fn compare_view(&mut self, ui: &mut egui::Ui) {
        self.view.controls(ui);
        ui.horizontal(|ui| {
            ui.label("panels:");
            for v in Variant::ALL {
                let mut on = !self.hidden.contains(&v);
                if ui.checkbox(&mut on, format!("show {}", v.title())).changed() {
                    if on {
                        self.hidden.remove(&v);
                    } else {
                        self.hidden.insert(v);
                    }
                }
            }
        });
        let vanilla = self.map_of(Variant::Vanilla);
        let maps: Vec<(Variant, Option<Vec<f32>>)> = Variant::ALL
            .into_iter()
            .filter_map(|v| {
                let map = if v == Variant::Absolute {
                    vanilla.as_ref().map(|m| m.iter().map(|x| x.abs()).collect())
                } else {
                    self.map_of(v)
                };
                let queued = self.run.jobs.iter().any(|(_, j)| *j == v);
                ((map.is_some() || queued) && !self.hidden.contains(&v)).then_some((v, map))
            })
            .collect();
        if maps.is_empty() && self.pinned.is_empty() {
            ui.label("Press Run to compute the maps.");
            return;
        }
        // One scale over every panel on screen, pinned rows included.
        let shared_range = maps
            .iter()
            .filter_map(|(_, m)| m.as_ref())
            .chain(self.pinned.iter().flat_map(|r| r.maps.iter().map(|(_, m)| m)))
            .map(|m| self.view.range_of(m))
            .fold(0f32, f32::max);
        let Some(image) = &self.image else { return };
        let crop = image.crop.clone();
        let columns = maps
            .len()
            .max(self.pinned.iter().map(|r| r.maps.len()).max().unwrap_or(0))
            .max(1) as f32;
        // The panel's visible width: a wide row above must not widen the grid off screen.
        let width = ui.clip_rect().width().min(ui.available_width());
        let size = ((width - 12.0 * columns) / columns).clamp(96.0, 448.0);
        let mut hover = None;
        let mut remove = None;
        let mut pin = false;
        let current_label = self.method_label();
        let can_pin = !self.running() && !self.results.is_empty();
        let labels: Vec<String> = self.pinned.iter().map(|r| r.label.clone()).collect();
        egui::ScrollArea::vertical().show(ui, |ui| {
            if !maps.is_empty() {
                ui.horizontal(|ui| {
                    ui.strong(format!("current: {current_label}"));
                    if can_pin && ui.button("Pin as a row").clicked() {
                        pin = true;
                    }
                });
            }
            let (view, gpu) = (&mut self.view, self.gpu.as_ref());
            let rows = std::iter::once((0u64, &maps, &mut self.panels)).filter(|(_, m, _)| !m.is_empty());
            let pinned_maps: Vec<RowMaps> = self
                .pinned
                .iter()
                .map(|r| {
                    r.maps
                        .iter()
                        .filter(|(v, _)| !self.hidden.contains(v))
                        .map(|(v, m)| (*v, Some(m.clone())))
                        .collect()
                })
                .collect();
            let mut all_rows: Vec<(u64, &RowMaps, &mut Panels)> = rows.collect();
            for (r, (row, m)) in self.pinned.iter_mut().zip(&pinned_maps).enumerate() {
                all_rows.push((r as u64 + 1, m, &mut row.panels));
            }
            for (row_id, row_maps, panels) in all_rows {
                if row_id > 0 {
                    let r = row_id as usize - 1;
                    ui.horizontal(|ui| {
                        ui.strong(format!("pinned {r}: {}", labels[r]));
                        if ui.small_button("remove").clicked() {
                            remove = Some(r);
                        }
                    });
                }
                ui.horizontal_top(|ui| {
                    for (variant, map) in row_maps.iter() {
                        ui.vertical(|ui| {
                            ui.label(variant.title());
                            match map {
                                Some(m) => {
                                    let signed = Self::variant_is_signed(*variant);
                                    let range = if view.shared_scale {
                                        shared_range
                                    } else {
                                        view.range_of(m)
                                    };
                                    let panel = panels.entry(*variant).or_default();
                                    let id = row_id * 8 + *variant as u64;
                                    if let Some(p) = panel.show(ui, gpu, id, m, &crop, signed, range, view, size) {
                                        hover = Some(p);
                                    }
                                }
                                None => {
                                    let (rect, _) =
                                        ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
                                    ui.painter().rect_filled(rect, 2.0, Color32::from_gray(40));
                                    ui.put(rect, egui::Spinner::new());
                                }
                            }
                        });
                    }
                });
            }
        });
        if pin {
            self.pin_current();
        }
        if let Some(r) = remove {
            self.pinned.remove(r);
        }
        self.view.probe = hover;
        if let Some((x, y)) = hover {
            let w = crop.width() as usize;
            let values: Vec<String> = maps
                .iter()
                .filter_map(|(v, m)| m.as_ref().map(|m| format!("{}: {:+.3e}", v.title(), m[y * w + x])))
                .collect();
            ui.label(format!("pixel ({x}, {y})   {}", values.join("   ")));
        }
    }

    pub(crate) fn scrubber_view(&mut self, ui: &mut egui::Ui) {
        let Some(result) = self.results.get(&Variant::Vanilla).cloned() else {
            ui.label("Run a path method to step through its interpolation points.");
            return;
        };
        let (Some((input, _)), ModelSlot::Ready { engine, .. }, Some(image)) = (&self.input, &self.model, &self.image)
        else {
            return;
        };
        let norm = engine.model().normalization();
        let baseline = match self.spec_for(Variant::Vanilla) {
            Some(MethodSpec::PathIntegral {
                path: PathKind::Straight,
                baseline,
                ..
            }) => baseline.build(input, &norm, self.settings.seed).ok(),
            _ => None,
        };
        let input = input.clone();
        let crop = image.crop.clone();
        self.scrubber.show(ui, &result, &input, baseline.as_ref(), &norm, &crop);
    }
}
