//! Class labels: ImageNet-1k by default (torchvision's names, BSD-3-Clause), or a
//! user-supplied text file with one label per line.

use std::path::Path;

/// torchvision's ImageNet-1k category names, one per line, in class-index order.
pub const IMAGENET_CLASSES: &str = include_str!("../../assets/imagenet_classes.txt");

#[derive(Debug, Clone)]
pub struct Labels {
    names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: line {line} is empty; a label file needs one non-empty label per line")]
    EmptyLine { path: String, line: usize },
    #[error("{path}: no labels found")]
    Empty { path: String },
    #[error("{origin}: label {index} is empty")]
    EmptyLabel { origin: String, index: usize },
}

impl Labels {
    pub fn imagenet() -> Self {
        Self {
            names: IMAGENET_CLASSES.lines().map(|l| l.trim().to_string()).collect(),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, LabelsError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LabelsError::Io {
            path: p.clone(),
            source,
        })?;
        let text = text.trim_end_matches(['\n', '\r']);
        let mut names = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() {
                return Err(LabelsError::EmptyLine { path: p, line: i + 1 });
            }
            names.push(l.to_string());
        }
        if names.is_empty() {
            return Err(LabelsError::Empty { path: p });
        }
        Ok(Self { names })
    }

    /// Labels given as a list (a sidecar's or the metadata's); `origin` names it in errors.
    pub fn from_names(names: &[String], origin: &str) -> Result<Self, LabelsError> {
        let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
        if names.is_empty() {
            return Err(LabelsError::Empty { path: origin.into() });
        }
        if let Some(i) = names.iter().position(|n| n.is_empty()) {
            return Err(LabelsError::EmptyLabel {
                origin: origin.into(),
                index: i,
            });
        }
        Ok(Self { names })
    }

    /// No names: every class shows as `class N`.
    pub fn numbered() -> Self {
        Self { names: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The label of class `index`, or `class {index}` beyond the list.
    pub fn name(&self, index: usize) -> String {
        self.names
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("class {index}"))
    }

    /// Indices of labels containing `query` (case-insensitive).
    pub fn search(&self, query: &str) -> Vec<usize> {
        let q = query.to_lowercase();
        (0..self.names.len())
            .filter(|&i| self.names[i].to_lowercase().contains(&q))
            .collect()
    }
}
