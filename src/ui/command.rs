//! What panels ask the studio to do. A panel edits its settings in place (a slider moves
//! a value), but anything that starts work, opens or writes a file, or changes what is
//! loaded is a [`Command`]: panels push them during the frame, and
//! [`super::app::PathscopeApp::execute`] carries them out, one place for every action.

use std::path::PathBuf;

/// An action a panel asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Load a model file; `None`: the embedded default.
    OpenModel(Option<PathBuf>),
    /// Preprocessing over the model's own: the model loads again with it.
    SetPreprocessing(crate::model::conventions::Overrides),
    OpenImage(PathBuf),
    /// One of the bundled photos, by index.
    OpenSample(usize),
    SetTarget(usize),
    /// Compute the current method's panels.
    Run,
    CancelRun,
    /// Keep the current maps as a row of the grid.
    Pin,
    RemovePinned(usize),
    DismissError(usize),
    /// Show a message in the error panel.
    ReportError(String),
    SaveSession(PathBuf),
    OpenSession(PathBuf),
    /// Restore the crashed studio's autosave offered at start-up.
    RecoverSession,
    DismissRecovery,
    ScoreMaps,
    CancelScoring,
    StartSanity,
    CancelSanity,
    /// The Convergence tab's study of the current image.
    StartConvergence,
    CancelConvergence,
    /// The study as CSV, or a figure with the CSV beside it.
    ExportConvergence(PathBuf),
    OpenExportDialog,
    ExportFigure(PathBuf),
    /// The current maps as one safetensors file, or one .npy each into a folder.
    ExportMaps {
        path: PathBuf,
        npy: bool,
    },
    ExportTrace(PathBuf),
    /// Ask for a path (system dialog or the in-app chooser); the answer becomes the
    /// request's command.
    ChooseFile(FileRequest),
    /// Hide the notice (e.g. where a session was saved).
    DismissNotice,
}

/// The commands of one frame, in the order they were asked for.
#[derive(Debug, Default)]
pub struct Commands(Vec<Command>);

impl Commands {
    pub fn push(&mut self, command: Command) {
        self.0.push(command);
    }

    pub fn take(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.0)
    }
}

/// What the chosen path is for: the command it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    OpenModel,
    OpenImage,
    OpenSession,
    SaveSession,
    ExportFigure,
    ExportMaps,
    /// A folder for one .npy per map.
    ExportNpy,
    ExportTrace,
    ExportConvergence,
}

impl Purpose {
    pub fn command(self, path: PathBuf) -> Command {
        match self {
            Purpose::OpenModel => Command::OpenModel(Some(path)),
            Purpose::OpenImage => Command::OpenImage(path),
            Purpose::OpenSession => Command::OpenSession(path),
            Purpose::SaveSession => Command::SaveSession(path),
            Purpose::ExportFigure => Command::ExportFigure(path),
            Purpose::ExportMaps => Command::ExportMaps { path, npy: false },
            Purpose::ExportNpy => Command::ExportMaps { path, npy: true },
            Purpose::ExportTrace => Command::ExportTrace(path),
            Purpose::ExportConvergence => Command::ExportConvergence(path),
        }
    }
}

/// Whether an existing file, a new file or a folder is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    Save,
    Folder,
}

/// One request for a path.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRequest {
    pub purpose: Purpose,
    pub mode: Mode,
    /// The dialog's title.
    pub title: String,
    /// The filter's name ("images") and its extensions, without dots; none: every file.
    pub filter: Option<(String, Vec<String>)>,
    /// The file name a save dialog proposes.
    pub file_name: Option<String>,
    /// Go straight to the in-app chooser.
    pub in_app: bool,
}

impl FileRequest {
    pub fn open(purpose: Purpose, title: &str, filter: &str, extensions: &[&str]) -> Self {
        Self::new(purpose, Mode::Open, title, filter, extensions)
    }

    pub fn save(purpose: Purpose, title: &str, filter: &str, extensions: &[&str], file_name: &str) -> Self {
        Self {
            file_name: Some(file_name.to_string()),
            ..Self::new(purpose, Mode::Save, title, filter, extensions)
        }
    }

    pub fn folder(purpose: Purpose, title: &str) -> Self {
        Self::new(purpose, Mode::Folder, title, "", &[])
    }

    fn new(purpose: Purpose, mode: Mode, title: &str, filter: &str, extensions: &[&str]) -> Self {
        Self {
            purpose,
            mode,
            title: title.to_string(),
            filter: (!extensions.is_empty())
                .then(|| (filter.to_string(), extensions.iter().map(|e| e.to_string()).collect())),
            file_name: None,
            in_app: false,
        }
    }

    /// The same request, for the in-app chooser.
    pub fn in_app(self) -> Self {
        Self { in_app: true, ..self }
    }

    /// The filter's extensions (none: every file).
    pub fn extensions(&self) -> &[String] {
        self.filter.as_ref().map(|(_, e)| e.as_slice()).unwrap_or(&[])
    }
}
