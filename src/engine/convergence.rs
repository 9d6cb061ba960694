//! Convergence-study jobs: [`crate::attribution::convergence::convergence_study`] on the
//! worker, its progress counting gradient evaluations, its study returned whole.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Tensor;

use crate::attribution::convergence::{convergence_study, Study, StudyConfig};
use crate::attribution::{AttributionError, Baseline, ModelOracle, Monitor, Objective};

use super::{Event, JobId, Worker};

/// What a convergence job studies: the straight path from `baseline` to `input`.
#[derive(Debug, Clone)]
pub struct ConvergenceRequest {
    /// The normalised input [C, H, W].
    pub input: Arc<Tensor>,
    pub baseline: Baseline,
    pub target: usize,
    pub objective: Objective,
    pub config: StudyConfig,
    /// Seeds a random baseline.
    pub seed: u64,
}

impl Worker {
    pub(super) fn convergence(&mut self, job: JobId, request: &ConvergenceRequest, cancel: &AtomicBool) {
        let started = Instant::now();
        let events = self.events.clone();
        let mut on_progress = |done: usize, total: usize| events.progress(job, done, total, started);
        let mut monitor = Monitor {
            on_progress: Some(&mut on_progress),
            cancel: Some(cancel),
        };
        let norm = self.model.normalization();
        let oracle = ModelOracle::new(&self.model, request.objective);
        let result = request
            .baseline
            .build(&request.input, &norm, request.seed)
            .and_then(|baseline| {
                convergence_study(
                    &oracle,
                    &request.input,
                    &baseline,
                    request.target,
                    &request.config,
                    &mut monitor,
                )
            });
        let event = match result {
            Ok(study) => Event::Converged {
                job,
                study: Arc::new(study),
                seconds: started.elapsed().as_secs_f64(),
            },
            Err(AttributionError::Cancelled) => Event::Cancelled { job },
            Err(e) => Event::Failed {
                job,
                message: format!("convergence study: {e}"),
            },
        };
        self.events.send(event);
    }
}

/// The study a [`Event::Converged`] carries.
pub type StudyResult = Arc<Study>;
