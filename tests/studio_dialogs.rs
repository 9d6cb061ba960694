//! File dialogs without a system dialog, and the studio at a small window (issue 21,
//! points 5 and 10). The system dialog here is a stand-in that answers "no file" at once,
//! as rfd does where neither an xdg desktop portal nor zenity exists: the in-app chooser
//! must open with its notice, list the folder, refuse a missing file with a message, and
//! open the typed photo. At 800×500 every top-bar button stays on screen and a long error
//! wraps; saving a session says where it went.
#![cfg(feature = "studio")]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use pathscope::ui::file_dialog::{FileDialogs, FileRequest, FALLBACK_NOTICE};
use pathscope::ui::{PathscopeApp, StudioOptions};

use common::studio::{harness, wait_for};

const TIMEOUT: Duration = Duration::from_secs(120);

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dialogs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What rfd does without a portal or zenity: "no file", at once.
fn no_system_dialog(_: &FileRequest) -> Result<Option<PathBuf>, String> {
    Ok(None)
}

fn ready(size: Option<egui::Vec2>) -> Harness<'static, PathscopeApp> {
    let mut h = harness(StudioOptions::default());
    if let Some(size) = size {
        h.set_size(size);
    }
    wait_for(&mut h, "the model", TIMEOUT, |a| {
        a.model_ready() && a.state.target.is_some()
    });
    h.state_mut().files = FileDialogs::with_system(no_system_dialog);
    h
}

/// Replaces the chooser's path field with `text`.
fn type_path(h: &mut Harness<'static, PathscopeApp>, text: &str) {
    // A new window is laid out unseen in its first frame.
    h.run_steps(2);
    h.get_by_label("path").focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_by_label("path").type_text(text);
    h.step();
    assert_eq!(h.get_by_label("path").value().as_deref(), Some(text));
}

#[test]
fn open_image_falls_back_to_the_in_app_chooser() {
    let dir = scratch("open");
    let photo = dir.join("green.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([30, 200, 60]))
        .save(&photo)
        .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a photo").unwrap();
    std::fs::create_dir_all(dir.join("more")).unwrap();
    let mut h = ready(None);
    let before = h.state().state.image.as_ref().map(|i| i.name.clone());

    h.get_by_label("Open image…").click();
    wait_for(&mut h, "the in-app chooser", TIMEOUT, |a| a.files.chooser_open());
    h.run_steps(2);
    h.get_by_label(FALLBACK_NOTICE);
    // Pre-filled with the working folder.
    let cwd = std::env::current_dir().unwrap().display().to_string();
    let prefilled = h.get_by_label("path").value().unwrap_or_default();
    assert!(prefilled.starts_with(&cwd), "{prefilled:?} is not in {cwd}");

    // The listing follows the typed folder: the subfolder and the photo, not the text file.
    type_path(&mut h, &format!("{}/", dir.display()));
    h.run_steps(2);
    h.get_by_label("more/");
    h.get_by_label("green.png");
    assert!(
        h.query_by_label("notes.txt").is_none(),
        "filtered out by the images filter"
    );

    // A missing file: a message in the window, which stays open; the photo does not change.
    let missing = dir.join("missing.png");
    type_path(&mut h, &missing.display().to_string());
    h.get_by_label("Open").click();
    h.run_steps(2);
    h.get_by_label(&format!("no such file: {}", missing.display()));
    assert!(h.state().files.chooser_open());
    assert_eq!(h.state().state.image.as_ref().map(|i| i.name.clone()), before);

    // The photo's path and Enter: it opens.
    type_path(&mut h, &photo.display().to_string());
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the typed photo", TIMEOUT, |a| {
        a.state.image.as_ref().and_then(|i| i.source.as_deref()) == Some(photo.as_path())
    });
    assert!(
        !h.state().files.chooser_open(),
        "the chooser closes once the path is accepted"
    );
    assert_eq!(
        h.state().state.image.as_ref().map(|i| i.name.as_str()),
        Some(photo.display().to_string().as_str())
    );
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    h.get_by_label(&photo.display().to_string());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn save_session_through_a_typed_path_says_where() {
    let dir = scratch("save");
    let mut h = ready(None);
    h.get_by_label("Session").click();
    h.run_steps(2);
    h.get_by_label("Save session to a typed path…").click();
    h.run_steps(2);
    assert!(h.state().files.chooser_open(), "the in-app chooser on request");
    assert!(h.query_by_label(FALLBACK_NOTICE).is_none(), "asked for, not a fallback");

    let nowhere = dir.join("no/such/folder/s.pathscope");
    type_path(&mut h, &nowhere.display().to_string());
    h.key_press(egui::Key::Enter);
    h.run_steps(2);
    h.get_by_label(&format!("no such folder: {}", dir.join("no/such/folder").display()));

    // No extension typed: the session's is added.
    type_path(&mut h, &dir.join("mine").display().to_string());
    h.get_by_label("Save").click();
    h.run_steps(3);
    let saved = dir.join("mine.pathscope");
    assert!(saved.is_file(), "no session at {}", saved.display());
    assert!(!h.state().files.chooser_open());
    h.get_by_label(&format!("saved session to {}", saved.display()));
    h.get_by_label("dismiss").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("saved session to").is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

fn inside(rect: egui::Rect, size: egui::Vec2, what: &str) {
    assert!(
        rect.min.x >= 0.0 && rect.min.y >= 0.0 && rect.max.x <= size.x && rect.max.y <= size.y,
        "{what} at {rect:?} is outside the {size:?} window"
    );
}

#[test]
fn a_small_window_keeps_the_top_bar_and_wraps_messages() {
    let size = egui::vec2(800.0, 500.0);
    let mut h = ready(Some(size));
    let long = format!(
        "could not open /a/very/long/path/{}: the file is not a photo this studio can read",
        "deeply/nested/folder/".repeat(11)
    );
    assert!(long.len() >= 300, "{}", long.len());
    h.state_mut().runtime.errors.push(long.clone());
    h.run_steps(3);
    for button in ["Open model…", "Open image…", "Export figure…", "Session"] {
        inside(h.get_by_label(button).rect(), size, button);
    }
    let message = h.get_by_label(&long).rect();
    inside(message, size, "the long error");
    let line = h.get_by_label("Open image…").rect().height();
    assert!(
        message.height() > 2.0 * line,
        "the error is {} px high, one line is about {line}: not wrapped",
        message.height()
    );
    h.snapshot("small_window_wrapped");
}
