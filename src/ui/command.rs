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
    ChooseFile(super::file_dialog::FileRequest),
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
