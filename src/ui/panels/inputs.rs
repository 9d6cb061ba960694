//! The left column's inputs: the photo (bundled samples, the crop the model sees) and the
//! model's predictions, with the class being explained.

use eframe::egui::{self, ColorImage, TextureHandle, TextureOptions};

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
        ui.add(egui::Image::new(&*tex).fit_to_exact_size(egui::vec2(112.0, 112.0)))
            .on_hover_text("the 224×224 crop the model sees");
    }
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
