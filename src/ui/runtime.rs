//! The studio's runtime: the engine and the model loading behind it, jobs in flight, what
//! arrives from them, messages, and the GPU textures panels draw with. Nothing here is
//! saved; a session is [`super::state::StudioState`] alone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Tensor;
use eframe::egui::TextureHandle;

use crate::attribution::catalog::Variant;
use crate::engine::{CheckpointSource, Engine, JobId, Waker};
use crate::model::conventions::Overrides;
use crate::model::labels::Labels;
use crate::model::{Classifier, Normalization};

use super::view::MapPanel;

/// What the model-loading thread sends back: the model and the name it is shown by.
pub type ModelLoad = Result<(Arc<Classifier>, String), String>;

pub enum ModelSlot {
    Loading(Receiver<ModelLoad>),
    Ready { engine: Engine, name: String },
    Failed,
}

/// The jobs of the current run, one per panel that computes.
#[derive(Default)]
pub struct RunState {
    pub jobs: Vec<(JobId, Variant)>,
    /// Progress of the job running now.
    pub done: usize,
    pub total: usize,
    /// Steps per second so far.
    pub rate: f64,
    pub started: Option<Instant>,
    pub finished: bool,
}

/// Runtime handles and what has arrived from them.
pub struct Runtime {
    pub model: ModelSlot,
    /// Where the model's raw tensors are read again for the sanity check.
    pub model_source: CheckpointSource,
    /// Architecture and device of the loaded model, for the top bar.
    /// The loaded model's architecture, device, and parameters and input size.
    pub model_info: Option<(String, String, String)>,
    pub labels: Labels,
    /// The preprocessing and labels the studio's controls (or the command line) set over
    /// the model's own; applied when a model loads.
    pub overrides: Overrides,
    /// The normalised input, and a key that changes whenever its pixels or the model do.
    pub input: Option<(Arc<Tensor>, String)>,
    /// Top-5 (class, probability) of the current image.
    pub predictions: Vec<(usize, f32)>,
    /// The prediction job whose answer is awaited (older answers are stale).
    pub prediction_job: Option<JobId>,
    /// A restored session's target, applied once the model has predicted.
    pub restored_target: Option<usize>,
    pub run: RunState,
    /// The vanilla job's attribution so far (flat, input-shaped), while it runs.
    pub partial: Option<Vec<f32>>,
    pub errors: Vec<String>,
    /// What was just done that a person should know of (e.g. where a session was saved).
    pub notice: Option<String>,
    /// An image to open once the model is ready.
    pub pending_image: Option<PathBuf>,
    pub run_on_start: bool,
    /// egui's wgpu state, when the heatmaps can be drawn by the shader.
    pub gpu: Option<eframe::egui_wgpu::RenderState>,
    /// The session file last saved or opened.
    pub session_file: Option<PathBuf>,
    pub autosave_path: Option<PathBuf>,
    /// A crashed studio's session, offered for restoring.
    pub recovery: Option<PathBuf>,
    /// The class search box.
    pub target_query: String,
    /// Wakes the UI from other threads (the engine, the model loader).
    pub waker: Option<Waker>,
}

impl Runtime {
    pub fn model_ready(&self) -> bool {
        matches!(self.model, ModelSlot::Ready { .. })
    }

    pub fn engine(&self) -> Option<&Engine> {
        match &self.model {
            ModelSlot::Ready { engine, .. } => Some(engine),
            _ => None,
        }
    }

    pub fn engine_mut(&mut self) -> Option<&mut Engine> {
        match &mut self.model {
            ModelSlot::Ready { engine, .. } => Some(engine),
            _ => None,
        }
    }

    /// The loaded model's input normalisation.
    pub fn normalization(&self) -> Option<Normalization> {
        self.engine().map(|e| e.model().normalization())
    }

    /// The model file, unless it is the embedded default.
    pub fn model_file(&self) -> Option<String> {
        match &self.model {
            ModelSlot::Ready { name, .. } if name != crate::assets::DEFAULT_MODEL_NAME => Some(name.clone()),
            _ => None,
        }
    }

    /// True while the run's jobs are queued or running.
    pub fn running(&self) -> bool {
        !self.run.jobs.is_empty() && !self.run.finished
    }

    pub fn label_of(&self, class: Option<usize>) -> Option<String> {
        class.map(|t| self.labels.name(t))
    }

    /// Cancels the run's jobs, if any are queued or running.
    pub fn cancel_run(&mut self) {
        let jobs: Vec<JobId> = self.run.jobs.iter().map(|(j, _)| *j).collect();
        if let Some(engine) = self.engine_mut() {
            for job in jobs {
                engine.cancel(job);
            }
        }
    }

    pub fn wake(&self) {
        if let Some(wake) = &self.waker {
            wake();
        }
    }
}

/// The textures panels draw with, rebuilt when what they show changes.
#[derive(Default)]
pub struct Textures {
    /// The photo's crop.
    pub image: Option<TextureHandle>,
    /// The current run's panels.
    pub panels: HashMap<Variant, MapPanel>,
    /// The pinned rows' panels, by row.
    pub pinned: Vec<HashMap<Variant, MapPanel>>,
    /// The baseline thumbnail and what it was made from.
    pub baseline_preview: Option<(String, TextureHandle)>,
}
