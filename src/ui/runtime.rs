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

/// The jobs of the current run, one per panel that computes, and the run's progress as
/// a whole.
#[derive(Default)]
pub struct RunState {
    pub jobs: Vec<(JobId, Variant)>,
    /// Each job's weight in the run: about how many gradients it takes.
    pub weights: HashMap<JobId, usize>,
    /// Each job's own progress, 0..=1 (jobs report in their own units).
    pub job_progress: HashMap<JobId, f64>,
    /// The fraction shown so far: the bar never runs backwards.
    pub shown: f64,
    pub started: Option<Instant>,
    pub finished: bool,
    /// Where the run stood when it was cancelled: gradients done and in all.
    pub cancelled: Option<(usize, usize)>,
    /// Jobs that finished, failed or were cancelled.
    pub ended: std::collections::HashSet<JobId>,
}

impl RunState {
    /// Gradients in the whole run.
    pub fn total(&self) -> usize {
        self.weights.values().sum()
    }

    /// Gradients done so far (each job's share of its weight).
    pub fn done(&self) -> usize {
        self.weights
            .iter()
            .map(|(job, w)| self.job_progress.get(job).copied().unwrap_or(0.0) * *w as f64)
            .sum::<f64>()
            .round() as usize
    }

    /// Records `job`'s progress and moves the bar forward (never back).
    pub fn set_job_progress(&mut self, job: JobId, fraction: f64) {
        let f = fraction.clamp(0.0, 1.0);
        let entry = self.job_progress.entry(job).or_insert(0.0);
        *entry = entry.max(f);
        let total = self.total();
        if total > 0 {
            self.shown = self.shown.max(self.done() as f64 / total as f64);
        }
    }

    /// Gradients per second since the run started.
    pub fn rate(&self) -> f64 {
        let secs = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        if secs > 0.0 {
            self.done() as f64 / secs
        } else {
            0.0
        }
    }

    /// Seconds left at the rate so far, once there is a rate to go by.
    pub fn eta_seconds(&self) -> Option<f64> {
        let rate = self.rate();
        let left = self.total().saturating_sub(self.done());
        (rate > 0.0 && self.done() > 0).then(|| left as f64 / rate)
    }
}

/// What the reference reader sends back: the folder's key and its images, or the error.
pub type ReferencePoolLoad = (String, Result<Vec<Tensor>, String>);

/// Every image in `folder`, preprocessed with `pre` ([C, H, W] each, on the CPU).
pub fn read_reference_pool(folder: &std::path::Path, pre: &crate::model::Preprocessing) -> Result<Vec<Tensor>, String> {
    use crate::model::preprocess::{image_files_in, load_rgb};
    let files = image_files_in(folder).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!(
            "{}: no images (png, jpg, tif, webp, bmp) in the reference folder",
            folder.display()
        ));
    }
    files
        .iter()
        .map(|f| {
            let img = load_rgb(f).map_err(|e| e.to_string())?;
            pre.image_to_tensor(&img, &candle_core::Device::Cpu)
                .and_then(|t| t.squeeze(0))
                .map_err(|e| format!("{}: {e}", f.display()))
        })
        .collect()
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
    /// The device (and CPU path) models load on: `--device` of `pathscope gui`.
    pub compute: crate::device::Compute,
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
    /// Expected Gradients' references as read for a folder and preprocessing (the key).
    pub reference_pool: Option<(String, Arc<Vec<Tensor>>)>,
    /// The references being read on a thread: the key and the images or the error.
    pub pending_pool: Option<Receiver<ReferencePoolLoad>>,
    /// A restored session's vanilla map came without its trace (sessions keep maps, not
    /// traces): it is computed again, with the trace, once the model has predicted.
    pub retrace_pending: bool,
    /// A restored session's metric curves and sanity check, computed again once its maps
    /// (and trace) are ready.
    pub metrics_pending: crate::ui::state::MetricsShown,
    /// A failed or cancelled panel's message, shown in its place until it next succeeds.
    pub panel_errors: HashMap<Variant, String>,
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
