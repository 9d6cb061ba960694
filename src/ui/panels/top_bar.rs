//! The top bar (model, files, export, sessions), the crash-recovery banner and the error
//! panel.

use std::path::Path;

use eframe::egui::{self, Color32};

use crate::ui::command::{Command, Commands};
use crate::ui::runtime::{ModelSlot, Runtime};
use crate::ui::state::StudioState;

pub fn show(ui: &mut egui::Ui, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    egui::Panel::top("top").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.heading("Pathscope");
            ui.separator();
            match (&rt.model, &rt.model_info) {
                (ModelSlot::Ready { name, .. }, Some((arch, device, summary))) => {
                    ui.label(format!("{arch} on {device}")).on_hover_text(name.as_str());
                    ui.weak(summary.as_str());
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
                    commands.push(Command::OpenModel(Some(p)));
                }
            }
            if ui.button("Default model").clicked() {
                commands.push(Command::OpenModel(None));
            }
            if ui.button("Open image…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("images", &["png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp"])
                    .pick_file()
                {
                    commands.push(Command::OpenImage(p));
                }
            }
            if ui
                .add_enabled(!state.results.is_empty(), egui::Button::new("Export figure…"))
                .on_disabled_hover_text("run a method first")
                .clicked()
            {
                commands.push(Command::OpenExportDialog);
            }
            session_menu(ui, rt, commands);
        });
    });
    recovery_banner(ui, rt, commands);
}

fn session_menu(ui: &mut egui::Ui, rt: &Runtime, commands: &mut Commands) {
    ui.menu_button("Session", |ui| {
        if ui.button("Save session…").clicked() {
            let name = rt
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
                commands.push(Command::SaveSession(p));
            }
        }
        if ui.button("Open session…").clicked() {
            if let Some(p) = rfd::FileDialog::new()
                .add_filter("Pathscope session", &[crate::session::EXTENSION])
                .pick_file()
            {
                commands.push(Command::OpenSession(p));
            }
        }
        if let Some(last) = last_session(rt) {
            if ui
                .button("Reopen last session")
                .on_hover_text(last.display().to_string())
                .clicked()
            {
                commands.push(Command::OpenSession(last));
            }
        }
    });
}

/// The session a cleanly closed studio left, if any.
pub fn last_session(rt: &Runtime) -> Option<std::path::PathBuf> {
    let path = crate::session::last_session_path(rt.autosave_path.as_deref()?);
    Path::new(&path).exists().then_some(path)
}

/// After a crash: the autosaved session, offered until restored or dismissed.
fn recovery_banner(ui: &mut egui::Ui, rt: &Runtime, commands: &mut Commands) {
    let Some(path) = &rt.recovery else {
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
                commands.push(Command::RecoverSession);
            }
            if ui.button("Dismiss").clicked() {
                commands.push(Command::DismissRecovery);
            }
        });
    });
}

/// The last four messages, each with a button to dismiss it.
pub fn errors(ui: &mut egui::Ui, rt: &Runtime, commands: &mut Commands) {
    if rt.errors.is_empty() {
        return;
    }
    egui::Panel::bottom("errors").show(ui, |ui| {
        let n = rt.errors.len();
        for (i, e) in rt.errors.iter().enumerate().skip(n.saturating_sub(4)) {
            ui.horizontal(|ui| {
                if ui.small_button("dismiss").clicked() {
                    commands.push(Command::DismissError(i));
                }
                ui.colored_label(Color32::from_rgb(220, 80, 60), e);
            });
        }
    });
}
