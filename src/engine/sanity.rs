//! Sanity-check jobs: cascading model randomisation (Adebayo et al. 2018; algorithms.md
//! §4.5) on the engine's worker.
//!
//! The engine holds the model as a [`crate::model::Classifier`], whose BatchNorm is already
//! folded away; randomisation needs the raw tensors, so the job reopens the checkpoint
//! ([`CheckpointSource`]) on the worker. Each stage computes the method's map and the Sobel
//! edge-detector control (which ignores the model, so its similarity stays 1) and is reported
//! as it finishes; the cancel flag is checked before every stage and within each map.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use candle_core::Tensor;

use super::{Event, JobId, Worker};
use crate::attribution::method::{explain, MethodSpec, RunOptions};
use crate::attribution::{AttributionError, ModelOracle, Monitor, Objective};
use crate::metrics::sanity::{
    cascading_randomization_multi, evenly_spaced_depths, sobel_edge_map, MapShape, SanityError, SanityOptions,
    SanityStage,
};
use crate::model::randomize::Checkpoint;
use crate::model::ModelError;

/// Where a sanity job reads the raw tensors of the model it randomises: the file the
/// engine's model was loaded from, or the embedded default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointSource {
    Embedded,
    File(PathBuf),
}

impl CheckpointSource {
    /// `None` names the embedded default model, as everywhere else.
    pub fn from_path(path: Option<PathBuf>) -> Self {
        path.map_or(CheckpointSource::Embedded, CheckpointSource::File)
    }

    pub fn open(&self) -> Result<Checkpoint, ModelError> {
        match self {
            CheckpointSource::Embedded => crate::assets::default_checkpoint(),
            CheckpointSource::File(p) => Checkpoint::open(p),
        }
    }
}

/// Which randomisation depths (numbers of top blocks randomised) a cascade computes. The
/// number of blocks is known only once the checkpoint is open, so the choice is resolved
/// there ([`SanityDepths::resolve`]). Depth 0, the trained model, is always included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanityDepths {
    /// Every depth from 0 to all blocks: fine for small models (SqueezeNet has 10 blocks).
    Every,
    /// `n` depths from 0 to all blocks, evenly spaced ([`evenly_spaced_depths`]).
    Evenly(usize),
}

impl SanityDepths {
    /// The depths for a model with `blocks` randomisation blocks, ascending.
    pub fn resolve(&self, blocks: usize) -> Vec<usize> {
        match self {
            SanityDepths::Every => (0..=blocks).collect(),
            SanityDepths::Evenly(n) => evenly_spaced_depths(blocks, *n),
        }
    }
}

/// `all` or a number of depths (≥ 2: the trained model and the fully randomised one).
impl FromStr for SanityDepths {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(SanityDepths::Every);
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 2 => Ok(SanityDepths::Evenly(n)),
            _ => Err(format!(
                "`{s}` is not a depth count: write `all` or a number of depths >= 2 (the trained model and the fully randomised one included)"
            )),
        }
    }
}

/// A cascading-randomisation job. Not cached: the UI keeps the stages it asked for.
#[derive(Debug, Clone)]
pub struct SanityRequest {
    /// The checkpoint of the engine's model (its raw tensors are randomised).
    pub checkpoint: CheckpointSource,
    /// The normalised input [C, H, W]; H and W ≥ 48 (the HOG similarity needs 3×3 cells of 16 px).
    pub input: Arc<Tensor>,
    /// The class explained at every stage (the trained model's, typically its top-1).
    pub target: usize,
    pub objective: Objective,
    pub spec: MethodSpec,
    pub options: RunOptions,
    pub depths: SanityDepths,
    /// Seeds the re-drawn parameters.
    pub seed: u64,
}

impl Worker {
    pub(super) fn sanity(&mut self, job: JobId, request: &SanityRequest, cancel: &AtomicBool) {
        let started = Instant::now();
        let event = match self.cascade(job, request, cancel, started) {
            Ok((stages, control)) => Event::SanityDone {
                job,
                stages,
                control,
                seconds: started.elapsed().as_secs_f64(),
            },
            Err(SanityError::Attribution(AttributionError::Cancelled)) => Event::Cancelled { job },
            Err(e) => Event::Failed {
                job,
                message: format!("sanity check: {e}"),
            },
        };
        self.events.send(event);
    }

    /// Runs the cascade; returns (the method's stages, the edge control's stages).
    fn cascade(
        &self,
        job: JobId,
        request: &SanityRequest,
        cancel: &AtomicBool,
        started: Instant,
    ) -> Result<(Vec<SanityStage>, Vec<SanityStage>), SanityError> {
        let checkpoint = request.checkpoint.open()?;
        if checkpoint.architecture != self.model.architecture() {
            return Err(SanityError::InvalidOptions(format!(
                "{} holds a {}, but the loaded model is a {}; reload the model",
                checkpoint.source.display(),
                checkpoint.architecture,
                self.model.architecture()
            )));
        }
        let blocks = checkpoint.blocks()?;
        let (c, h, w) = request.input.dims3().map_err(AttributionError::from)?;
        let shape = MapShape::new(c, h, w);
        let norm = self.model.normalization();
        let mut pixels = request
            .input
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(AttributionError::from)?;
        norm.denormalize(&mut pixels, h * w);
        let edge = sobel_edge_map(&pixels, shape)?;
        let options = SanityOptions {
            seed: request.seed,
            depths: Some(request.depths.resolve(blocks.len())),
            shape,
        };
        let device = self.model.device().clone();
        let events = self.events.clone();
        let result = cascading_randomization_multi(
            &checkpoint.tensors,
            &blocks,
            &device,
            &options,
            |model| {
                if cancel.load(Ordering::Relaxed) {
                    return Err(AttributionError::Cancelled);
                }
                let oracle = ModelOracle::new(model, request.objective);
                let mut monitor = Monitor {
                    on_progress: None,
                    cancel: Some(cancel),
                };
                let e = explain(
                    &oracle,
                    &request.input,
                    &norm,
                    request.target,
                    &request.spec,
                    &request.options,
                    &mut monitor,
                )?;
                Ok(vec![e.attribution.flatten_all()?.to_vec1::<f32>()?, edge.clone()])
            },
            |done, total, row| {
                events.progress(job, done, total, started);
                events.send(Event::SanityStage {
                    job,
                    stage: row[0].clone(),
                    control: row[1].clone(),
                });
            },
        )?;
        let mut it = result.into_iter();
        Ok((it.next().unwrap_or_default(), it.next().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_choices_parse_and_resolve() {
        assert_eq!("all".parse::<SanityDepths>(), Ok(SanityDepths::Every));
        assert_eq!(" 3 ".parse::<SanityDepths>(), Ok(SanityDepths::Evenly(3)));
        for bad in ["1", "0", "-2", "six", ""] {
            assert!(bad.parse::<SanityDepths>().is_err(), "{bad}");
        }
        assert_eq!(SanityDepths::Every.resolve(3), [0, 1, 2, 3]);
        assert_eq!(SanityDepths::Evenly(3).resolve(10), [0, 5, 10]);
        assert_eq!(SanityDepths::Evenly(6).resolve(19), [0, 4, 8, 11, 15, 19]);
    }
}
