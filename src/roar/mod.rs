//! ROAR (RemOve And Retrain, Hooker et al., NeurIPS 2019) and its keep-and-retrain twin:
//! rank every training and test image's pixels by a map, replace the top t % (or all but
//! the top t %), retrain a small network from scratch on what is left and measure how far
//! test accuracy falls. A map that finds what the model needs makes it fall faster than a
//! random ranking.
//!
//! | module | owns |
//! | --- | --- |
//! | `dataset.rs` | images with labels: the shipped 8×8 digits, folders of class subfolders; the train/test split |
//! | `network.rs` | the small CNN (candle-nn), seeded training, accuracy, and its gradient oracle |
//! | `estimator.rs` | what ranks pixels: the catalog's methods, ensembles around IG, `random`, `sobel`; maps to rankings |
//! | `removal.rs` | a ranking at a fraction applied to an image: removal (ROAR) or keeping (KAR), by mean or ROAD imputation |
//! | `experiment.rs` | the grid of cells (estimator × fraction × retrain), shards, the run with resumable rows |
//! | `table.rs` | result rows as CSV, merging shards, the summary (mean ± std per estimator and fraction) |
//! | `figure.rs` | accuracy against fraction removed, one line per estimator with its spread |

pub mod dataset;
pub mod estimator;
pub mod experiment;
pub mod figure;
pub mod network;
pub mod removal;
pub mod table;

use std::path::PathBuf;

/// What can go wrong in a ROAR run; every message names the file or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum RoarError {
    #[error("{path}: {message}")]
    Dataset { path: PathBuf, message: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("training the network: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Attribution(#[from] crate::attribution::AttributionError),
    #[error(transparent)]
    Metric(#[from] crate::metrics::MetricError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stopped")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, RoarError>;
