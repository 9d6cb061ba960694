//! What can go wrong loading a model; each error names the file and what is wrong.

use std::path::{Path, PathBuf};

/// Errors while loading a model. Each names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: unknown architecture: {hint}", path.display())]
    UnknownArchitecture { path: PathBuf, hint: String },
    #[error("{}: tensor `{name}` has shape {found:?}, expected {expected:?}", path.display())]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{}: not a valid {architecture} checkpoint: {}", path.display(), describe_mismatch(missing, unexpected))]
    TensorMismatch {
        path: PathBuf,
        architecture: String,
        missing: Vec<String>,
        unexpected: Vec<String>,
    },
    #[error("{}: tensor `{name}` contains NaN or infinite values", path.display())]
    NonFinite { path: PathBuf, name: String },
    #[error("{}: {message}", path.display())]
    Compute { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Conventions {
        path: PathBuf,
        #[source]
        source: super::conventions::ConventionsError,
    },
}

impl ModelError {
    pub(crate) fn candle(path: &Path, e: candle_core::Error) -> Self {
        ModelError::Compute {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Up to six names in backquotes, and how many more.
pub(crate) fn list_names(names: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

fn describe_mismatch(missing: &[String], unexpected: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing tensor(s): {}", missing.len(), list_names(missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} unexpected tensor(s): {}",
            unexpected.len(),
            list_names(unexpected)
        ));
    }
    parts.join("; ")
}
