//! Writing results: raw arrays ([`npy`], [`raw`]), the quick-look heatmap PNG
//! ([`heatmap`]) and publication figures ([`figure`] lays a grid of panels out once;
//! [`raster`], [`svg`] and [`pdf`] draw it). Every file is written atomically (temporary
//! file, then rename), so a crash never leaves a half-written result behind.

pub mod atomic;
pub mod chart;
pub mod convergence_figure;
pub mod figure;
pub mod font;
pub mod heatmap;
pub mod metadata;
pub mod npy;
pub mod pdf;
pub mod raster;
pub mod raw;
pub mod svg;
pub mod text_table;

use std::path::{Path, PathBuf};

use figure::Scene;
use metadata::FigureMetadata;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid figure: {0}")]
    InvalidFigure(String),
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("metadata: {0}")]
    Metadata(String),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// A figure file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FigureFormat {
    #[default]
    Png,
    Svg,
    Pdf,
}

impl FigureFormat {
    pub const ALL: [FigureFormat; 3] = [FigureFormat::Png, FigureFormat::Svg, FigureFormat::Pdf];

    pub fn extension(self) -> &'static str {
        match self {
            FigureFormat::Png => "png",
            FigureFormat::Svg => "svg",
            FigureFormat::Pdf => "pdf",
        }
    }

    /// The format a file name's extension names.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Self::ALL.into_iter().find(|f| f.extension() == ext)
    }
}

impl std::str::FromStr for FigureFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.extension().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("figure format `{s}`: expected png, svg or pdf"))
    }
}

/// The file contents of `scene` in `format`, `meta` embedded.
pub fn figure_bytes(scene: &Scene, format: FigureFormat, meta: &FigureMetadata) -> Result<Vec<u8>, ExportError> {
    match format {
        FigureFormat::Png => raster::png_bytes(scene, meta),
        FigureFormat::Svg => Ok(svg::svg_string(scene, meta)?.into_bytes()),
        FigureFormat::Pdf => pdf::pdf_bytes(scene, meta),
    }
}

/// Writes `scene` to `path` atomically.
pub fn write_figure(
    path: &Path,
    scene: &Scene,
    format: FigureFormat,
    meta: &FigureMetadata,
) -> Result<(), ExportError> {
    let bytes = figure_bytes(scene, format, meta)?;
    atomic::write_atomic(path, &bytes).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })
}
