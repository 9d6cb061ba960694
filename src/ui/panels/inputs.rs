//! The left column's inputs: the photo (bundled samples, the crop the model sees) and the
//! model's predictions, with the class being explained.

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};

use crate::model::conventions::{Overrides, PRESETS};
use crate::model::preprocess::{ChannelOrder, Interpolation};
use crate::ui::command::{Command, Commands};
use crate::ui::runtime::Runtime;
use crate::ui::state::StudioState;

pub fn image_section(
    ui: &mut egui::Ui,
    state: &StudioState,
    texture: &mut Option<TextureHandle>,
    commands: &mut Commands,
) {
    ui.strong("Image");
    ui.horizontal_wrapped(|ui| {
        for (i, s) in crate::assets::SAMPLE_IMAGES.iter().enumerate() {
            if ui.button(s.name).on_hover_text(s.credit).clicked() {
                commands.push(Command::OpenSample(i));
            }
        }
    });
    if let Some(img) = &state.image {
        ui.label(&img.name);
        let tex = texture.get_or_insert_with(|| {
            let ci = ColorImage::from_rgb(
                [img.crop.width() as usize, img.crop.height() as usize],
                img.crop.as_raw(),
            );
            ui.ctx().load_texture("crop", ci, TextureOptions::NEAREST)
        });
        let (w, h) = img.crop.dimensions();
        let side = 112.0 / w.max(h).max(1) as f32;
        let hover = match &img.original {
            Some(o) => format!(
                "the {w}×{h} crop the model sees, from the {}×{} photo",
                o.width(),
                o.height()
            ),
            None => format!("the {w}×{h} crop the model sees"),
        };
        ui.add(egui::Image::new(&*tex).fit_to_exact_size(egui::vec2(w as f32 * side, h as f32 * side)))
            .on_hover_text(hover);
    }
}

/// The preprocessing in force, where it came from, and controls that override it (the
/// model loads again with them).
pub fn preprocessing_section(ui: &mut egui::Ui, rt: &Runtime, commands: &mut Commands) {
    let Some(engine) = rt.engine() else {
        return;
    };
    let model = engine.model();
    let c = model.conventions();
    let pre = model.preprocessing();
    egui::CollapsingHeader::new("Preprocessing")
        .id_salt("preprocessing")
        .default_open(false)
        .show(ui, |ui| {
            ui.label(egui::RichText::new(pre.describe()).small());
            ui.label(
                egui::RichText::new(format!("from {}", c.preprocessing_source))
                    .small()
                    .weak(),
            );
            ui.label(
                egui::RichText::new(format!("labels: {}", c.labels_source))
                    .small()
                    .weak(),
            );
            let mut o = rt.overrides.clone();
            let before = o.clone();
            egui::ComboBox::from_label("preset")
                .selected_text(o.preset.clone().unwrap_or_else(|| "model's own".into()))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut o.preset, None, "model's own");
                    for p in PRESETS {
                        ui.selectable_value(&mut o.preset, Some(p.0.to_string()), p.0);
                    }
                });
            let mut interpolation = o.interpolation.unwrap_or(pre.interpolation);
            egui::ComboBox::from_label("interpolation")
                .selected_text(interpolation.name())
                .show_ui(ui, |ui| {
                    for i in Interpolation::ALL {
                        ui.selectable_value(&mut interpolation, i, i.name());
                    }
                });
            if interpolation != pre.interpolation {
                o.interpolation = Some(interpolation);
            }
            if model.input_channels() == 3 {
                let mut order = o.channels.unwrap_or(pre.normalization.channels);
                egui::ComboBox::from_label("channels")
                    .selected_text(order.name())
                    .show_ui(ui, |ui| {
                        for c in [ChannelOrder::Rgb, ChannelOrder::Bgr] {
                            ui.selectable_value(&mut order, c, c.name());
                        }
                    });
                if order != pre.normalization.channels {
                    o.channels = Some(order);
                }
            }
            if !rt.overrides.is_empty() && ui.small_button("use the model's own").clicked() {
                o = Overrides::default();
            }
            if o != before {
                commands.push(Command::SetPreprocessing(o));
            }
        });
}

pub fn predictions(ui: &mut egui::Ui, state: &StudioState, rt: &mut Runtime, commands: &mut Commands) {
    ui.strong("Predictions");
    for &(class, p) in &rt.predictions {
        let label = format!("{:5.1} %  {}", p * 100.0, rt.labels.name(class));
        if ui.selectable_label(state.target == Some(class), label).clicked() {
            commands.push(Command::SetTarget(class));
        }
    }
    ui.horizontal(|ui| {
        ui.label("Target");
        ui.text_edit_singleline(&mut rt.target_query)
            .on_hover_text("search a class by name");
    });
    if !rt.target_query.trim().is_empty() {
        for class in rt.labels.search(rt.target_query.trim()).into_iter().take(6) {
            if ui.small_button(format!("{class}: {}", rt.labels.name(class))).clicked() {
                commands.push(Command::SetTarget(class));
            }
        }
    }
    if let Some(t) = rt.label_of(state.target) {
        ui.label(format!("explaining: {t}"));
    }
}
