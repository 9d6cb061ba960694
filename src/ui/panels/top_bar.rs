//! The top bar (model, files, export, sessions), the crash-recovery banner and the
//! message panel (errors and notices).

use std::path::Path;

use eframe::egui::{self, Color32, RichText};

use crate::ui::command::{Command, Commands};
use crate::ui::file_dialog::{file_button, FileRequest, Purpose};
use crate::ui::runtime::{ModelSlot, Runtime};
use crate::ui::state::StudioState;

pub fn show(ui: &mut egui::Ui, state: &StudioState, rt: &Runtime, commands: &mut Commands) {
    egui::Panel::top("top").show(ui, |ui| {
        // Wraps: at a small window every button stays on screen.
        ui.horizontal_wrapped(|ui| {
            ui.heading("Pathscope");
            ui.separator();
            match (&rt.model, &rt.model_info) {
                (ModelSlot::Ready { name, .. }, Some((arch, device, summary))) => {
                    // Whole words move to the next row; a label is not split in two.
                    ui.add(egui::Label::new(format!("{arch} on {device}")).extend())
                        .on_hover_text(name.as_str());
                    ui.add(egui::Label::new(RichText::new(summary.as_str()).weak()).extend());
                }
                (ModelSlot::Loading(_), _) => {
                    ui.spinner();
                    ui.label("loading model…");
                }
                _ => {
                    ui.colored_label(Color32::LIGHT_RED, "no model");
                }
            }
            let model = FileRequest::open(
                Purpose::OpenModel,
                "Open model",
                "models",
                crate::model::MODEL_EXTENSIONS,
            );
            file_button(ui, true, "Open model…", model, commands);
            if ui.button("Default model").clicked() {
                commands.push(Command::OpenModel(None));
            }
            let image = FileRequest::open(Purpose::OpenImage, "Open image", "images", IMAGE_EXTENSIONS);
            file_button(ui, true, "Open image…", image, commands);
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

/// The photo formats the studio opens.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp"];

fn session_menu(ui: &mut egui::Ui, rt: &Runtime, commands: &mut Commands) {
    ui.menu_button("Session", |ui| {
        let name = rt
            .session_file
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "session.pathscope".into());
        let ext = [crate::session::EXTENSION];
        let save = FileRequest::save(Purpose::SaveSession, "Save session", "Pathscope session", &ext, &name);
        let open = FileRequest::open(Purpose::OpenSession, "Open session", "Pathscope session", &ext);
        if ui.button("Save session…").clicked() {
            commands.push(Command::ChooseFile(save.clone()));
        }
        if ui.button("Open session…").clicked() {
            commands.push(Command::ChooseFile(open.clone()));
        }
        // Menus have no right-click: the in-app chooser is offered here as items.
        if ui.button("Save session to a typed path…").clicked() {
            commands.push(Command::ChooseFile(save.in_app()));
        }
        if ui.button("Open session from a typed path…").clicked() {
            commands.push(Command::ChooseFile(open.in_app()));
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

/// The notice (what was just done, e.g. where a session was saved) and the last four
/// messages, each with a button to dismiss it. Long messages wrap at the window's edge.
pub fn errors(ui: &mut egui::Ui, rt: &Runtime, commands: &mut Commands) {
    if rt.errors.is_empty() && rt.notice.is_none() {
        return;
    }
    egui::Panel::bottom("errors").show(ui, |ui| {
        if let Some(notice) = &rt.notice {
            ui.horizontal_top(|ui| {
                if ui.small_button("dismiss").clicked() {
                    commands.push(Command::DismissNotice);
                }
                ui.add(egui::Label::new(RichText::new(notice).color(NOTICE)).wrap());
            });
        }
        let n = rt.errors.len();
        for (i, e) in rt.errors.iter().enumerate().skip(n.saturating_sub(4)) {
            ui.horizontal_top(|ui| {
                if ui.small_button("dismiss").clicked() {
                    commands.push(Command::DismissError(i));
                }
                ui.add(egui::Label::new(RichText::new(e).color(ERROR)).wrap());
            });
        }
    });
}

/// The colours of messages: errors red, notices green.
pub const ERROR: Color32 = Color32::from_rgb(220, 80, 60);
pub const NOTICE: Color32 = Color32::from_rgb(110, 200, 120);
