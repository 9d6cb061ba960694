//! Attribution methods: baselines, gradient oracles, integration rules and path methods.
//!
//! Everything here is pure computation on candle tensors: no UI, no files. A method takes
//! a [`GradientOracle`] (anything that returns the explained score and its input gradient
//! for a batch of points), so the same code runs on a real classifier and on the analytic
//! functions the unit tests integrate exactly.

pub mod adaptive;
pub mod agi;
pub mod baseline;
pub mod blur;
pub mod blur_ig;
pub mod catalog;
pub mod convergence;
pub mod display;
pub mod ensemble;
pub mod gradient;
pub mod guided_ig;
pub mod integrated_gradients;
pub mod key;
pub mod memory;
pub mod method;
pub mod multi_reference;
pub mod oracle;
pub mod path;
pub mod quadrature;
pub mod recalibration;
#[cfg(test)]
pub mod testing;
pub mod trace;

pub use baseline::Baseline;
pub use catalog::{Family, MethodId, Variant};
pub use integrated_gradients::{integrated_gradients, straight_path, IgConfig, IgResult};
pub use oracle::{GradientOracle, ModelOracle, Objective};
pub use quadrature::IntegrationRule;

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("cancelled")]
    Cancelled,
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, AttributionError>;

/// Progress reporting and cancellation for long computations. A method calls
/// [`Monitor::step`] after each batch of gradient evaluations; it returns `Cancelled` as
/// soon as the flag is raised, so a UI can stop a job between batches.
#[derive(Default)]
pub struct Monitor<'a> {
    pub on_progress: Option<&'a mut dyn FnMut(usize, usize)>,
    pub cancel: Option<&'a AtomicBool>,
}

impl<'a> Monitor<'a> {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn step(&mut self, done: usize, total: usize) -> Result<()> {
        if let Some(f) = self.on_progress.as_mut() {
            f(done, total);
        }
        self.check_cancel()
    }

    pub fn check_cancel(&self) -> Result<()> {
        match self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(AttributionError::Cancelled),
            _ => Ok(()),
        }
    }
}
