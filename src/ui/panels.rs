//! The panels of the studio window: top bar, errors, image, predictions, method, the
//! comparison grid and the scrubber tab.

use eframe::egui::{self, Color32, ColorImage, TextureOptions};

use super::app::{MethodChoice, ModelSlot, PathscopeApp, Variant};
use crate::attribution::method::{MethodSpec, PathKind};
use crate::attribution::recalibration::Recalibration;
use crate::attribution::{Baseline, IntegrationRule, Objective};
use crate::export::heatmap::default_span;

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
                        .add_filter("weights", &["safetensors", "pth", "pt", "bin", "ckpt"])
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
        if s.method != MethodChoice::Gradient && s.method != MethodChoice::InputXGradient {
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
                (map.is_some() || queued).then_some((v, map))
            })
            .collect();
        if maps.is_empty() {
            ui.label("Press Run to compute the maps.");
            return;
        }
        let shared_range = maps
            .iter()
            .filter_map(|(_, m)| m.as_ref().map(|m| default_span(m)))
            .fold(0f32, f32::max);
        let Some(image) = &self.image else { return };
        let crop = image.crop.clone();
        let n = maps.len() as f32;
        let size = ((ui.available_width() - 12.0 * n) / n).clamp(96.0, 448.0);
        let mut hover = None;
        ui.horizontal_top(|ui| {
            for (variant, map) in &maps {
                ui.vertical(|ui| {
                    ui.label(variant.title());
                    match map {
                        Some(m) => {
                            let signed = Self::variant_is_signed(*variant);
                            let range = if self.view.shared_scale {
                                shared_range
                            } else {
                                default_span(m)
                            };
                            let panel = self.panels.entry(*variant).or_default();
                            let gpu = self.gpu.as_ref();
                            if let Some(p) =
                                panel.show(ui, gpu, *variant as u64, m, &crop, signed, range, &mut self.view, size)
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
