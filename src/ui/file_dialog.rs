//! File dialogs that always answer. A panel asks for a file with
//! [`Command::ChooseFile`]; [`FileDialogs`] runs the system dialog (rfd: the xdg desktop
//! portal, then zenity) on its own thread so the window keeps drawing, and turns the
//! chosen path into the panel's command. Where no system dialog exists, rfd answers "no
//! file" at once and says nothing; an answer that quick is no person cancelling, so the
//! in-app chooser (a path field over a clickable listing of the folder) opens instead,
//! with a notice saying why. The in-app chooser can also be asked for directly
//! ([`file_button`]'s right-click "Type a path…").
//!
//! Listing a folder and checking a typed path are plain functions ([`list_folder`],
//! [`folder_to_list`], [`validate`]).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use eframe::egui::{self, Color32};

use super::command::{Command, Commands};
pub use super::command::{FileRequest, Mode, Purpose};
use crate::engine::Waker;

fn accept_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Open => "Open",
        Mode::Save => "Save",
        Mode::Folder => "Choose folder",
    }
}

/// A system file dialog: the chosen path, `None` when it was closed without one, or why it
/// could not run.
pub type SystemDialog = fn(&FileRequest) -> Result<Option<PathBuf>, String>;

/// The system dialog through rfd (the xdg desktop portal, then zenity, on Linux).
pub fn rfd_dialog(request: &FileRequest) -> Result<Option<PathBuf>, String> {
    let mut dialog = rfd::FileDialog::new().set_title(request.title.as_str());
    if let Some((name, extensions)) = &request.filter {
        dialog = dialog.add_filter(name.as_str(), extensions);
    }
    if let Some(name) = &request.file_name {
        dialog = dialog.set_file_name(name.as_str());
    }
    if let Ok(dir) = std::env::current_dir() {
        dialog = dialog.set_directory(dir);
    }
    Ok(match request.mode {
        Mode::Open => dialog.pick_file(),
        Mode::Save => dialog.save_file(),
        Mode::Folder => dialog.pick_folder(),
    })
}

/// No person cancels a dialog faster than this: a "no file" this quick means no system
/// dialog was shown.
pub const TOO_QUICK: Duration = Duration::from_millis(500);

/// Said in the in-app chooser when it stands in for the system dialog.
pub const FALLBACK_NOTICE: &str = "no system file dialog (xdg desktop portal or zenity) answered; choose the file here";

/// A system dialog in flight: its answer and how long it took.
struct Pending {
    request: FileRequest,
    answer: Receiver<(Result<Option<PathBuf>, String>, Duration)>,
}

/// The in-app chooser's window.
struct Chooser {
    request: FileRequest,
    /// The typed path.
    path: String,
    /// Why the last "Open"/"Save" was refused.
    message: Option<String>,
    notice: Option<String>,
    /// The folder listed and its entries (listed again when the folder changes).
    listing: Option<(PathBuf, Result<Vec<Entry>, String>)>,
    focus: bool,
}

/// The studio's file dialogs: at most one system dialog in flight, at most one in-app
/// chooser open.
pub struct FileDialogs {
    system: Option<SystemDialog>,
    pending: Option<Pending>,
    chooser: Option<Chooser>,
    /// The system dialog failed once: later requests open the in-app chooser directly.
    system_failed: bool,
}

impl Default for FileDialogs {
    /// The system dialog, unless `PATHSCOPE_FILE_DIALOG=in-app` asks for the in-app one.
    fn default() -> Self {
        match std::env::var("PATHSCOPE_FILE_DIALOG").as_deref() {
            Ok("in-app") => Self::in_app_only(),
            _ => Self::with_system(rfd_dialog),
        }
    }
}

impl FileDialogs {
    /// Every request opens the in-app chooser.
    pub fn in_app_only() -> Self {
        Self {
            system: None,
            pending: None,
            chooser: None,
            system_failed: false,
        }
    }

    /// Requests try `system` first (tests pass one that answers at once).
    pub fn with_system(system: SystemDialog) -> Self {
        Self {
            system: Some(system),
            ..Self::in_app_only()
        }
    }

    /// Whether the in-app chooser is open.
    pub fn chooser_open(&self) -> bool {
        self.chooser.is_some()
    }

    /// Whether a system dialog is open.
    pub fn waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// Asks for a path; `waker` is called when the system dialog answers. While a dialog
    /// is already open, the request replaces nothing and is dropped.
    pub fn request(&mut self, request: FileRequest, waker: Option<Waker>) {
        if self.pending.is_some() || self.chooser.is_some() {
            return;
        }
        let system = match self.system {
            Some(system) if !request.in_app && !self.system_failed => system,
            _ => {
                self.open_chooser(request, None);
                return;
            }
        };
        let (tx, rx) = channel();
        let asked = request.clone();
        let spawned = std::thread::Builder::new()
            .name("pathscope-file-dialog".into())
            .spawn(move || {
                let start = Instant::now();
                let answer = std::panic::catch_unwind(|| system(&asked))
                    .unwrap_or_else(|_| Err("the system file dialog crashed".to_string()));
                let _ = tx.send((answer, start.elapsed()));
                if let Some(wake) = waker {
                    wake();
                }
            });
        match spawned {
            Ok(_) => self.pending = Some(Pending { request, answer: rx }),
            Err(e) => self.fall_back(request, &format!("could not start the system file dialog: {e}")),
        }
    }

    fn fall_back(&mut self, request: FileRequest, why: &str) {
        self.system_failed = true;
        let notice = if why.is_empty() {
            FALLBACK_NOTICE.to_string()
        } else {
            format!("{FALLBACK_NOTICE} ({why})")
        };
        self.open_chooser(request, Some(notice));
    }

    fn open_chooser(&mut self, request: FileRequest, notice: Option<String>) {
        let dir = std::env::current_dir().unwrap_or_default();
        let mut path = dir.display().to_string();
        if !path.ends_with(std::path::MAIN_SEPARATOR) {
            path.push(std::path::MAIN_SEPARATOR);
        }
        if let Some(name) = &request.file_name {
            path.push_str(name);
        }
        self.chooser = Some(Chooser {
            request,
            path,
            message: None,
            notice,
            listing: None,
            focus: true,
        });
    }

    /// Takes the system dialog's answer, if it has come (a path becomes its command; a
    /// "no file" too quick for a person opens the in-app chooser).
    fn poll(&mut self, ctx: &egui::Context, commands: &mut Commands) {
        let Some(pending) = &self.pending else {
            return;
        };
        let answer = match pending.answer.try_recv() {
            Ok(answer) => Some(answer),
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                // The waker repaints when it answers; this is in case none was given.
                ctx.request_repaint_after(Duration::from_millis(250));
                return;
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
        };
        let Some(pending) = self.pending.take() else {
            return;
        };
        match answer {
            Some((Ok(Some(path)), _)) => commands.push(pending.request.purpose.command(path)),
            Some((Ok(None), took)) if took < TOO_QUICK => self.fall_back(pending.request, ""),
            Some((Ok(None), _)) => {} // cancelled by the person
            Some((Err(e), _)) => self.fall_back(pending.request, &e),
            None => self.fall_back(pending.request, "the system file dialog stopped"),
        }
        ctx.request_repaint();
    }

    /// Takes the system dialog's answer and draws the in-app chooser, if open.
    pub fn show(&mut self, ctx: &egui::Context, commands: &mut Commands) {
        self.poll(ctx, commands);
        let Some(chooser) = &mut self.chooser else {
            return;
        };
        let mut open = true;
        let mut done = false;
        egui::Window::new(chooser.request.title.as_str())
            .id(egui::Id::unique("in-app file chooser"))
            .open(&mut open)
            .collapsible(false)
            .default_width(520.0)
            .max_width(ctx.content_rect().width() - 16.0)
            .show(ctx, |ui| done = chooser_contents(ui, chooser, commands));
        if !open || done {
            self.chooser = None;
        }
    }
}

/// The chooser's contents; true when it is done (accepted or cancelled).
fn chooser_contents(ui: &mut egui::Ui, c: &mut Chooser, commands: &mut Commands) -> bool {
    if let Some(notice) = &c.notice {
        ui.add(egui::Label::new(egui::RichText::new(notice).color(Color32::from_rgb(230, 170, 60))).wrap());
    }
    let mut accept = false;
    ui.horizontal(|ui| {
        let label = ui.label("path");
        let edit = ui
            .add(egui::TextEdit::singleline(&mut c.path).desired_width(f32::INFINITY))
            .labelled_by(label.id);
        if c.focus {
            edit.request_focus();
            c.focus = false;
        }
        if edit.changed() {
            c.message = None;
        }
        accept |= edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    });
    if let Some((name, extensions)) = &c.request.filter {
        ui.weak(format!("{name}: .{}", extensions.join(", .")));
    }

    let dir = folder_to_list(&c.path);
    if c.listing.as_ref().map(|(d, _)| d != &dir).unwrap_or(true) {
        let folders_only = c.request.mode == Mode::Folder;
        let entries = list_folder(&dir, c.request.extensions(), folders_only);
        c.listing = Some((dir.clone(), entries));
    }
    let mut picked: Option<(PathBuf, bool, bool)> = None;
    egui::ScrollArea::vertical()
        .max_height(240.0)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            if let Some(parent) = dir.parent() {
                if ui.selectable_label(false, "../").clicked() {
                    picked = Some((parent.to_path_buf(), true, false));
                }
            }
            match c.listing.as_ref().map(|(_, l)| l) {
                Some(Ok(entries)) => {
                    for e in entries {
                        let text = if e.is_dir {
                            format!("{}/", e.name)
                        } else {
                            e.name.clone()
                        };
                        let r = ui.selectable_label(false, text);
                        if r.clicked() || r.double_clicked() {
                            picked = Some((e.path.clone(), e.is_dir, r.double_clicked()));
                        }
                    }
                }
                Some(Err(e)) => {
                    ui.colored_label(Color32::from_rgb(220, 80, 60), e);
                }
                None => {}
            }
        });
    if let Some((path, is_dir, twice)) = picked {
        let mut text = path.display().to_string();
        if is_dir {
            if !text.ends_with(std::path::MAIN_SEPARATOR) {
                text.push(std::path::MAIN_SEPARATOR);
            }
            // A save keeps the file name typed so far.
            if c.request.mode == Mode::Save {
                if let Some(name) = Path::new(c.path.trim()).file_name().filter(|_| !c.path.ends_with('/')) {
                    text.push_str(&name.to_string_lossy());
                }
            }
        }
        c.path = text;
        c.message = None;
        accept |= twice && !is_dir;
    }

    if let Some(m) = &c.message {
        ui.add(egui::Label::new(egui::RichText::new(m).color(Color32::from_rgb(220, 80, 60))).wrap());
    }
    let mut cancel = false;
    ui.horizontal(|ui| {
        accept |= ui.button(accept_label(c.request.mode)).clicked();
        cancel = ui.button("Cancel").clicked();
    });
    if cancel {
        return true;
    }
    if accept {
        match validate(c.request.mode, &c.path, c.request.extensions()) {
            Ok(path) => {
                commands.push(c.request.purpose.command(path));
                return true;
            }
            Err(m) => c.message = Some(m),
        }
    }
    false
}

/// One entry of a folder's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub is_dir: bool,
}

/// A folder's subfolders, then its files with one of `extensions` (any file when empty;
/// case does not matter), each sorted by name; hidden entries (a leading dot) left out.
pub fn list_folder(dir: &Path, extensions: &[String], folders_only: bool) -> Result<Vec<Entry>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut entries: Vec<Entry> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let path = e.path();
            // Follows links: a link to a folder lists as a folder.
            let is_dir = path.is_dir();
            let keep = is_dir || (!folders_only && has_extension(&path, extensions));
            keep.then_some(Entry { name, path, is_dir })
        })
        .collect();
    entries.sort_by(|a, b| {
        b.is_dir
            .cmp(&a.is_dir)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    Ok(entries)
}

fn has_extension(path: &Path, extensions: &[String]) -> bool {
    extensions.is_empty()
        || path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
            .unwrap_or(false)
}

/// A typed path as an absolute one: `~/` is the home folder, a relative path is taken
/// from the working folder.
fn expand(text: &str) -> PathBuf {
    let text = text.trim();
    let path = match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if text == "~" => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default(),
        _ => PathBuf::from(text),
    };
    std::path::absolute(&path).unwrap_or(path)
}

/// The folder the chooser lists for a typed path: the path itself when it is a folder
/// (or ends with `/`), else the folder it is in; the nearest existing one above.
pub fn folder_to_list(text: &str) -> PathBuf {
    let path = expand(text);
    let mut dir = if text.trim().is_empty() || text.ends_with('/') || path.is_dir() {
        path
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or(path)
    };
    while !dir.is_dir() {
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => break,
        }
    }
    dir
}

/// The typed path, checked for `mode`: an existing file to open, a file in an existing
/// folder to save (the filter's first extension added when it has none), an existing
/// folder. Otherwise the one-line reason.
pub fn validate(mode: Mode, text: &str, extensions: &[String]) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        return Err("type a path".into());
    }
    let mut path = expand(text);
    match mode {
        Mode::Open if path.is_dir() => Err(format!("{} is a folder; choose a file in it", path.display())),
        Mode::Open if !path.is_file() => Err(format!("no such file: {}", path.display())),
        Mode::Open => Ok(path),
        Mode::Folder if !path.is_dir() => Err(format!("no such folder: {}", path.display())),
        Mode::Folder => Ok(path),
        Mode::Save => {
            if path.is_dir() || text.trim_end().ends_with('/') {
                return Err(format!("{} is a folder; add a file name", path.display()));
            }
            let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
            if !parent.is_dir() {
                return Err(format!("no such folder: {}", parent.display()));
            }
            if path.extension().is_none() {
                if let Some(first) = extensions.first() {
                    path.set_extension(first);
                }
            }
            Ok(path)
        }
    }
}

/// A button that asks for a path: a click tries the system dialog, a right-click offers
/// "Type a path…" (the in-app chooser).
pub fn file_button(
    ui: &mut egui::Ui,
    enabled: bool,
    text: &str,
    request: FileRequest,
    commands: &mut Commands,
) -> egui::Response {
    let r = ui
        .add_enabled(enabled, egui::Button::new(text))
        .on_hover_text("right-click: type a path instead");
    if r.clicked() {
        commands.push(Command::ChooseFile(request.clone()));
    }
    r.context_menu(|ui| {
        if ui.button("Type a path…").clicked() {
            commands.push(Command::ChooseFile(request.in_app()));
            ui.close();
        }
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pathscope-file-dialog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("Zeta")).unwrap();
        std::fs::create_dir_all(dir.join("alpha")).unwrap();
        std::fs::create_dir_all(dir.join(".hidden")).unwrap();
        for f in ["b.PNG", "a.jpg", "notes.txt", ".secret.png"] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        dir
    }

    fn exts(e: &[&str]) -> Vec<String> {
        e.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn folders_first_then_filtered_files_by_name() {
        let dir = scratch("list");
        let names = |l: Vec<Entry>| l.into_iter().map(|e| e.name).collect::<Vec<_>>();
        let images = list_folder(&dir, &exts(&["png", "jpg"]), false).unwrap();
        assert!(images[0].is_dir && images[1].is_dir && !images[2].is_dir);
        assert_eq!(names(images), ["alpha", "Zeta", "a.jpg", "b.PNG"]);
        assert_eq!(
            names(list_folder(&dir, &[], false).unwrap()),
            ["alpha", "Zeta", "a.jpg", "b.PNG", "notes.txt"]
        );
        assert_eq!(names(list_folder(&dir, &[], true).unwrap()), ["alpha", "Zeta"]);
        let missing = list_folder(&dir.join("nope"), &[], false).unwrap_err();
        assert!(
            missing.starts_with("cannot list ") && !missing.contains('\n'),
            "{missing}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn typed_paths_are_checked_for_open_save_and_folder() {
        let dir = scratch("validate");
        let s = |p: &Path| p.display().to_string();
        assert_eq!(validate(Mode::Open, &s(&dir.join("a.jpg")), &[]), Ok(dir.join("a.jpg")));
        let e = validate(Mode::Open, &s(&dir.join("missing.png")), &[]).unwrap_err();
        assert_eq!(e, format!("no such file: {}", dir.join("missing.png").display()));
        assert!(validate(Mode::Open, &s(&dir), &[]).unwrap_err().contains("is a folder"));
        assert_eq!(validate(Mode::Open, "  ", &[]).unwrap_err(), "type a path");

        // Save: the folder must exist; the filter's extension is added when none is typed.
        let png = exts(&["png"]);
        assert_eq!(
            validate(Mode::Save, &s(&dir.join("fig")), &png),
            Ok(dir.join("fig.png"))
        );
        assert_eq!(
            validate(Mode::Save, &s(&dir.join("fig.pdf")), &png),
            Ok(dir.join("fig.pdf"))
        );
        let e = validate(Mode::Save, &s(&dir.join("no/such/fig.png")), &png).unwrap_err();
        assert_eq!(e, format!("no such folder: {}", dir.join("no/such").display()));
        assert!(validate(Mode::Save, &format!("{}/", s(&dir)), &png)
            .unwrap_err()
            .contains("add a file name"));

        assert_eq!(
            validate(Mode::Folder, &s(&dir.join("alpha")), &[]),
            Ok(dir.join("alpha"))
        );
        assert!(validate(Mode::Folder, &s(&dir.join("a.jpg")), &[]).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_listed_folder_follows_the_typed_path() {
        let dir = scratch("follow");
        let s = |p: &Path| p.display().to_string();
        assert_eq!(folder_to_list(&s(&dir.join("alpha"))), dir.join("alpha"));
        assert_eq!(folder_to_list(&s(&dir.join("a.jpg"))), dir);
        assert_eq!(folder_to_list(&s(&dir.join("half-typed"))), dir);
        assert_eq!(folder_to_list(&s(&dir.join("gone/deeper/x.png"))), dir);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn purposes_become_the_panels_commands() {
        let p = PathBuf::from("/x/y");
        assert_eq!(Purpose::OpenImage.command(p.clone()), Command::OpenImage(p.clone()));
        assert_eq!(
            Purpose::OpenModel.command(p.clone()),
            Command::OpenModel(Some(p.clone()))
        );
        assert_eq!(
            Purpose::ExportNpy.command(p.clone()),
            Command::ExportMaps { path: p, npy: true }
        );
    }

    fn answers_nothing(_: &FileRequest) -> Result<Option<PathBuf>, String> {
        Ok(None)
    }

    fn answers_slowly(_: &FileRequest) -> Result<Option<PathBuf>, String> {
        std::thread::sleep(TOO_QUICK + Duration::from_millis(100));
        Ok(None)
    }

    fn answers_a_path(_: &FileRequest) -> Result<Option<PathBuf>, String> {
        Ok(Some(PathBuf::from("/photos/cat.png")))
    }

    fn settle(d: &mut FileDialogs, ctx: &egui::Context, commands: &mut Commands) {
        let start = Instant::now();
        while d.waiting() && start.elapsed() < Duration::from_secs(5) {
            d.poll(ctx, commands);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_quick_no_answer_opens_the_in_app_chooser_a_slow_one_is_a_cancel() {
        let ctx = egui::Context::default();
        let request = FileRequest::open(Purpose::OpenImage, "Open image", "images", &["png"]);

        let mut commands = Commands::default();
        let mut d = FileDialogs::with_system(answers_nothing);
        d.request(request.clone(), None);
        settle(&mut d, &ctx, &mut commands);
        assert!(d.chooser_open());
        assert_eq!(
            d.chooser.as_ref().and_then(|c| c.notice.as_deref()),
            Some(FALLBACK_NOTICE)
        );
        assert!(commands.take().is_empty());
        // Once failed, the next request goes straight to the chooser, without the notice.
        d.chooser = None;
        d.request(request.clone(), None);
        assert!(!d.waiting() && d.chooser_open());
        assert_eq!(d.chooser.as_ref().and_then(|c| c.notice.as_deref()), None);

        let mut d = FileDialogs::with_system(answers_slowly);
        d.request(request.clone(), None);
        settle(&mut d, &ctx, &mut commands);
        assert!(!d.chooser_open(), "a person cancelled");

        let mut d = FileDialogs::with_system(answers_a_path);
        d.request(request.clone(), None);
        settle(&mut d, &ctx, &mut commands);
        assert_eq!(commands.take(), [Command::OpenImage(PathBuf::from("/photos/cat.png"))]);

        let mut d = FileDialogs::with_system(answers_a_path);
        d.request(request.in_app(), None);
        assert!(d.chooser_open() && !d.waiting());
    }
}
