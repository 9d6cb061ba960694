//! The application state and its frame.
//!
//! State is plain data (settings, the current image, results by variant, view state);
//! every frame polls the engine and draws. Nothing here waits on computation: model
//! loading runs on a thread, attribution jobs on the engine's worker.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use eframe::egui::{self, TextureHandle};
use image::RgbImage;

use crate::attribution::display::{reduce_channels, ChannelReduction};
use crate::attribution::ensemble::{EnsembleConfig, EnsembleKind};
use crate::attribution::method::{Explanation, MethodSpec, PathKind, RunOptions};
use crate::attribution::multi_reference::{MultiReferenceConfig, MultiReferenceMethod};
use crate::attribution::path::Integration;
use crate::attribution::recalibration::Recalibration;
use crate::attribution::{Baseline, IntegrationRule, Objective};
use crate::engine::{CheckpointSource, Engine, Event, JobId, JobRequest};
use crate::model::labels::Labels;
use crate::model::preprocess::{decode_rgb, load_rgb, resize_and_crop};
use crate::model::Classifier;

use super::scrubber::Scrubber;
use super::view::{MapPanel, ViewState};

/// What the studio opens with.
#[derive(Debug, Clone, Default)]
pub struct StudioOptions {
    /// Model weights; the embedded SqueezeNet-1.1 when `None`.
    pub model: Option<PathBuf>,
    /// A photo; the first bundled sample when `None`.
    pub image: Option<PathBuf>,
    /// Start computing as soon as the model and the image are ready.
    pub run_on_start: bool,
    /// A saved session to reopen (its model and image replace the two above).
    pub session: Option<PathBuf>,
    /// Where to autosave (see [`super::session`]); `None` turns autosave off.
    pub autosave: Option<PathBuf>,
}

pub(crate) type ModelLoad = Result<(Arc<Classifier>, String), String>;

pub(crate) enum ModelSlot {
    Loading(Receiver<ModelLoad>),
    Ready { engine: Engine, name: String },
    Failed,
}

/// The method families the Method panel offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MethodChoice {
    PathIntegral,
    Gradient,
    InputXGradient,
    IgUniform,
    IgSg,
    IgSq,
    SmoothGrad,
    SmoothGradSquared,
    VarGrad,
}

impl MethodChoice {
    pub const ALL: [MethodChoice; 9] = [
        MethodChoice::PathIntegral,
        MethodChoice::Gradient,
        MethodChoice::InputXGradient,
        MethodChoice::IgUniform,
        MethodChoice::IgSg,
        MethodChoice::IgSq,
        MethodChoice::SmoothGrad,
        MethodChoice::SmoothGradSquared,
        MethodChoice::VarGrad,
    ];

    pub fn is_ensemble(self) -> bool {
        matches!(
            self,
            MethodChoice::SmoothGrad | MethodChoice::SmoothGradSquared | MethodChoice::VarGrad
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            MethodChoice::PathIntegral => "Path integral (IG / Blur IG / Guided IG)",
            MethodChoice::Gradient => "Gradient",
            MethodChoice::InputXGradient => "Input × Gradient",
            MethodChoice::IgUniform => "IG, uniform references",
            MethodChoice::IgSg => "IG-SG, Gaussian references",
            MethodChoice::IgSq => "IG-SQ",
            MethodChoice::SmoothGrad => "SmoothGrad (of the gradient)",
            MethodChoice::SmoothGradSquared => "SmoothGrad²",
            MethodChoice::VarGrad => "VarGrad",
        }
    }
}

/// Everything the Method panel sets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub method: MethodChoice,
    pub path: PathKind,
    pub baseline: Baseline,
    pub steps: usize,
    pub rule: IntegrationRule,
    pub idgi: bool,
    pub recalibration: Recalibration,
    pub references: usize,
    pub objective: Objective,
    pub batch_size: usize,
    pub seed: u64,
    /// Ensembles: noisy samples and σ as a fraction of the pixel range.
    pub samples: usize,
    pub noise: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            method: MethodChoice::PathIntegral,
            path: PathKind::Straight,
            baseline: Baseline::Black,
            steps: 50,
            rule: IntegrationRule::GaussLegendre,
            idgi: true,
            recalibration: Recalibration::ValidIp,
            references: 10,
            objective: Objective::Logit,
            batch_size: 16,
            seed: 0,
            samples: 25,
            noise: 0.15,
        }
    }
}

/// The panels of the comparison grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Variant {
    Vanilla,
    Absolute,
    Recalibrated,
    Idgi,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::Vanilla,
        Variant::Absolute,
        Variant::Recalibrated,
        Variant::Idgi,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Variant::Vanilla => "vanilla (signed)",
            Variant::Absolute => "absolute",
            Variant::Recalibrated => "re-calibrated",
            Variant::Idgi => "IDGI",
        }
    }
}

/// The loaded photo.
pub struct ImageState {
    pub name: String,
    /// The file it was read from (none for the bundled samples).
    pub source: Option<PathBuf>,
    pub crop: RgbImage,
    pub texture: Option<TextureHandle>,
}

/// A job in flight or done, per variant.
#[derive(Default)]
pub struct RunState {
    pub jobs: Vec<(JobId, Variant)>,
    pub done: usize,
    pub total: usize,
    pub rate: f64,
    pub started: Option<Instant>,
    pub finished: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Tab {
    #[default]
    Compare,
    Scrubber,
    Metrics,
}

pub struct PathscopeApp {
    pub(crate) model: ModelSlot,
    /// Where the model's raw tensors are read again for the sanity check.
    pub(crate) model_source: CheckpointSource,
    pub(crate) model_info: Option<(String, String)>,
    pub(crate) labels: Labels,
    pub image: Option<ImageState>,
    pub(crate) input: Option<(Arc<Tensor>, String)>,
    /// Top-5 (class, probability) of the current image.
    pub predictions: Vec<(usize, f32)>,
    pub target: Option<usize>,
    pub(crate) target_query: String,
    pub settings: Settings,
    pub run: RunState,
    pub results: std::collections::HashMap<Variant, Arc<Explanation>>,
    pub(crate) partial: Option<Vec<f32>>,
    pub panels: std::collections::HashMap<Variant, MapPanel>,
    pub view: ViewState,
    pub tab: Tab,
    pub scrubber: Scrubber,
    pub errors: Vec<String>,
    pub(crate) pending_image: Option<PathBuf>,
    pub(crate) run_on_start: bool,
    /// egui's wgpu state, when the heatmaps can be drawn by the shader.
    pub(crate) gpu: Option<eframe::egui_wgpu::RenderState>,
    pub(crate) baseline_preview: Option<(String, TextureHandle)>,
    /// Earlier results kept as rows of the comparison grid (any method as rows).
    pub pinned: Vec<PinnedRow>,
    /// Panels the user switched off (any subset of the four).
    pub hidden: std::collections::HashSet<Variant>,
    /// The Metrics tab: insertion/deletion scores of the computed maps.
    pub metrics: super::metrics_view::MetricsView,
    /// The Export dialog (figures and raw data).
    pub export: super::export_dialog::ExportDialog,
    /// The model file; `None` for the embedded default.
    pub(crate) model_path: Option<PathBuf>,
    /// A restored session's target, applied once the model has predicted.
    pub(crate) restored_target: Option<usize>,
    /// The session file last saved or opened.
    pub session_file: Option<PathBuf>,
    pub(crate) autosave_path: Option<PathBuf>,
    /// A crashed studio's session, offered for restoring.
    pub recovery: Option<PathBuf>,
}

/// A row of maps kept for comparison with later runs.
pub struct PinnedRow {
    pub label: String,
    pub maps: Vec<(Variant, Vec<f32>)>,
    pub panels: std::collections::HashMap<Variant, MapPanel>,
}

fn load_model(path: Option<PathBuf>) -> ModelLoad {
    let result = match &path {
        Some(p) => Classifier::load(p, &Device::Cpu).map(|m| (m, p.display().to_string())),
        None => {
            crate::assets::default_classifier(&Device::Cpu).map(|m| (m, crate::assets::DEFAULT_MODEL_NAME.to_string()))
        }
    };
    result.map(|(m, name)| (Arc::new(m), name)).map_err(|e| e.to_string())
}

impl PathscopeApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: StudioOptions) -> Self {
        let mut app = Self::with_options(options);
        if let Some(rs) = &cc.wgpu_render_state {
            crate::render::heatmap::HeatmapRenderer::install(rs);
            app.gpu = Some(rs.clone());
        }
        app
    }

    /// The app state; the model loads on a thread and the first frames poll for it.
    pub fn with_options(options: StudioOptions) -> Self {
        let (tx, rx) = channel();
        let model_path = options.model.clone();
        std::thread::Builder::new()
            .name("pathscope-model-load".into())
            .spawn(move || {
                let _ = tx.send(load_model(model_path));
            })
            .expect("spawning the model loader");
        let mut app = Self {
            model: ModelSlot::Loading(rx),
            model_source: CheckpointSource::from_path(options.model.clone()),
            model_info: None,
            labels: Labels::imagenet(),
            image: None,
            input: None,
            predictions: Vec::new(),
            target: None,
            target_query: String::new(),
            settings: Settings::default(),
            run: RunState::default(),
            results: Default::default(),
            partial: None,
            panels: Default::default(),
            view: ViewState::default(),
            tab: Tab::Compare,
            scrubber: Scrubber::default(),
            errors: Vec::new(),
            pending_image: None,
            run_on_start: options.run_on_start,
            gpu: None,
            baseline_preview: None,
            pinned: Vec::new(),
            hidden: Default::default(),
            metrics: Default::default(),
            export: Default::default(),
            model_path: options.model.clone(),
            restored_target: None,
            session_file: None,
            autosave_path: options.autosave.clone(),
            recovery: None,
        };
        match options.image {
            Some(p) => app.pending_image = Some(p),
            None => {
                let s = &crate::assets::SAMPLE_IMAGES[0];
                app.set_image_bytes(s.name, s.bytes);
            }
        }
        app.check_for_crashed_session();
        if let Some(session) = &options.session {
            app.open_session(session);
        }
        app
    }

    /// Whether the heatmaps are drawn by the WGSL shader (else by CPU textures).
    pub fn gpu_rendering(&self) -> bool {
        self.gpu.is_some()
    }

    pub fn model_ready(&self) -> bool {
        matches!(self.model, ModelSlot::Ready { .. })
    }

    pub fn target_label(&self) -> Option<String> {
        self.target.map(|t| self.labels.name(t))
    }

    pub(crate) fn set_image_bytes(&mut self, name: &str, bytes: &[u8]) {
        match decode_rgb(Path::new(name), bytes) {
            Ok(img) => self.set_image(name.to_string(), img),
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    pub(crate) fn set_image_file(&mut self, path: &Path) {
        match load_rgb(path) {
            Ok(img) => self.set_crop(
                path.display().to_string(),
                Some(path.to_path_buf()),
                resize_and_crop(&img),
            ),
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    fn set_image(&mut self, name: String, img: RgbImage) {
        self.set_crop(name, None, resize_and_crop(&img));
    }

    /// Shows an already preprocessed crop (a restored session's) and predicts on it.
    pub(crate) fn set_crop(&mut self, name: String, source: Option<PathBuf>, crop: RgbImage) {
        self.image = Some(ImageState {
            name,
            source,
            crop,
            texture: None,
        });
        self.input = None;
        self.predictions.clear();
        self.target = None;
        self.clear_results();
        self.prepare_input();
    }

    fn clear_results(&mut self) {
        if let ModelSlot::Ready { engine, .. } = &mut self.model {
            for (job, _) in &self.run.jobs {
                engine.cancel(*job);
            }
        }
        self.run = RunState::default();
        self.results.clear();
        self.panels.clear();
        self.partial = None;
        self.scrubber = Scrubber::default();
    }

    /// Normalises the crop for the loaded model and predicts (one forward pass, ~20 ms).
    fn prepare_input(&mut self) {
        let (ModelSlot::Ready { engine, .. }, Some(image)) = (&self.model, &self.image) else {
            return;
        };
        let model = engine.model().clone();
        let outcome = (|| -> candle_core::Result<(Tensor, Vec<f32>)> {
            let input = model
                .normalization()
                .image_to_tensor(&image.crop, &Device::Cpu)?
                .squeeze(0)?;
            let logits = model.forward(&input.unsqueeze(0)?)?.squeeze(0)?;
            let probs = candle_nn::ops::softmax(&logits, 0)?.to_vec1::<f32>()?;
            Ok((input, probs))
        })();
        match outcome {
            Ok((input, probs)) => {
                let mut idx: Vec<usize> = (0..probs.len()).collect();
                idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
                self.predictions = idx.iter().take(5).map(|&i| (i, probs[i])).collect();
                let restored = self.restored_target.take().filter(|&t| t < probs.len());
                self.target = restored.or(self.predictions.first().map(|p| p.0));
                let key = format!("{}#{}", image.name, content_hash(image.crop.as_raw()));
                self.input = Some((Arc::new(input), key));
            }
            Err(e) => self
                .errors
                .push(format!("could not run the model on {}: {e}", image.name)),
        }
    }

    pub(crate) fn spec_for(&self, variant: Variant) -> Option<MethodSpec> {
        let s = &self.settings;
        let path_integral = |integration| MethodSpec::PathIntegral {
            path: s.path,
            integration,
            baseline: s.baseline.clone(),
            steps: s.steps,
            rule: s.rule,
        };
        let multi = |method, recalibration| {
            MethodSpec::MultiReference(MultiReferenceConfig {
                method,
                recalibration,
                references: s.references,
                seed: s.seed,
                batch_size: s.batch_size,
                ..MultiReferenceConfig::default()
            })
        };
        let multi_method = match s.method {
            MethodChoice::IgUniform => Some(MultiReferenceMethod::IgUniform),
            MethodChoice::IgSg => Some(MultiReferenceMethod::IgSg),
            MethodChoice::IgSq => Some(MultiReferenceMethod::IgSq),
            _ => None,
        };
        match (variant, s.method) {
            (Variant::Absolute, _) => None,
            (Variant::Vanilla, MethodChoice::PathIntegral) => Some(path_integral(Integration::Riemann)),
            (Variant::Vanilla, MethodChoice::Gradient) => Some(MethodSpec::Gradient),
            (Variant::Vanilla, MethodChoice::InputXGradient) => Some(MethodSpec::InputXGradient),
            (Variant::Vanilla, m) if m.is_ensemble() => Some(MethodSpec::Ensemble {
                base: Box::new(MethodSpec::Gradient),
                config: EnsembleConfig {
                    kind: match m {
                        MethodChoice::SmoothGrad => EnsembleKind::SmoothGrad,
                        MethodChoice::SmoothGradSquared => EnsembleKind::SmoothGradSquared,
                        _ => EnsembleKind::VarGrad,
                    },
                    samples: s.samples,
                    noise: s.noise,
                    seed: s.seed,
                },
            }),
            (Variant::Vanilla, _) => multi_method.map(|m| multi(m, Recalibration::Vanilla)),
            (Variant::Recalibrated, MethodChoice::PathIntegral) if s.path == PathKind::Straight => {
                Some(multi(MultiReferenceMethod::IgUniform, s.recalibration))
            }
            (Variant::Recalibrated, _) => multi_method.map(|m| multi(m, s.recalibration)),
            (Variant::Idgi, MethodChoice::PathIntegral) if s.idgi => Some(path_integral(Integration::Idgi)),
            (Variant::Idgi, _) => None,
        }
    }

    /// Sends one job per variant the settings define. The vanilla job records a trace for
    /// the scrubber.
    pub fn start_run(&mut self) {
        let (Some((input, key)), Some(target)) = (self.input.clone(), self.target) else {
            self.errors.push("load a model and an image first".into());
            return;
        };
        self.clear_results();
        let specs: Vec<(Variant, MethodSpec)> = Variant::ALL
            .into_iter()
            .filter_map(|v| self.spec_for(v).map(|s| (v, s)))
            .collect();
        let ModelSlot::Ready { engine, .. } = &mut self.model else {
            return;
        };
        let mut jobs = Vec::new();
        for (variant, spec) in specs {
            let request = JobRequest {
                input: input.clone(),
                input_key: key.clone(),
                target,
                objective: self.settings.objective,
                spec,
                options: RunOptions {
                    batch_size: self.settings.batch_size,
                    seed: self.settings.seed,
                    record_trace: variant == Variant::Vanilla,
                    ..RunOptions::default()
                },
            };
            jobs.push((engine.submit(request), variant));
        }
        self.run = RunState {
            jobs,
            started: Some(Instant::now()),
            ..RunState::default()
        };
        self.autosave();
    }

    pub fn cancel_run(&mut self) {
        if let ModelSlot::Ready { engine, .. } = &mut self.model {
            for (job, _) in &self.run.jobs {
                engine.cancel(*job);
            }
        }
    }

    /// True while jobs are queued or running.
    pub fn running(&self) -> bool {
        !self.run.jobs.is_empty() && !self.run.finished
    }

    /// Fraction of the run's jobs that have finished, 0..=1.
    pub fn progress(&self) -> f32 {
        if self.run.jobs.is_empty() {
            return 0.0;
        }
        if self.run.finished {
            return 1.0;
        }
        let finished = self
            .run
            .jobs
            .iter()
            .filter(|(_, v)| self.results.contains_key(v))
            .count();
        let within = if self.run.total > 0 {
            self.run.done as f32 / self.run.total as f32
        } else {
            0.0
        };
        ((finished as f32 + within) / self.run.jobs.len() as f32).min(0.99)
    }

    fn variant_of(&self, job: JobId) -> Option<Variant> {
        self.run.jobs.iter().find(|(j, _)| *j == job).map(|(_, v)| *v)
    }

    /// Polls the model loader and the engine; returns true if anything changed.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        if let ModelSlot::Loading(rx) = &self.model {
            if let Ok(outcome) = rx.try_recv() {
                changed = true;
                match outcome {
                    Ok((model, name)) => {
                        self.model_info = Some((
                            model.architecture().to_string(),
                            crate::device::describe(model.device()),
                        ));
                        if self.labels.len() != model.num_classes() {
                            self.errors.push(format!(
                                "{} labels for a model with {} classes; unnamed classes show as `class N`",
                                self.labels.len(),
                                model.num_classes()
                            ));
                        }
                        self.model = ModelSlot::Ready {
                            engine: Engine::new(model, name.clone()),
                            name,
                        };
                        if let Some(p) = self.pending_image.take() {
                            self.set_image_file(&p);
                        } else {
                            self.prepare_input();
                        }
                    }
                    Err(e) => {
                        self.errors.push(e);
                        self.model = ModelSlot::Failed;
                    }
                }
            }
        }
        let events = match &mut self.model {
            ModelSlot::Ready { engine, .. } => engine.poll(),
            _ => Vec::new(),
        };
        let mut finished_a_job = false;
        for event in events {
            changed = true;
            if self.metrics.on_event(&event, &mut self.errors) {
                continue;
            }
            let Some(variant) = self.variant_of(event.job()) else {
                continue;
            };
            match event {
                Event::Progress { done, total, rate, .. } => {
                    self.run.done = done;
                    self.run.total = total;
                    self.run.rate = rate;
                }
                Event::Partial { map, .. } => {
                    if variant == Variant::Vanilla && !self.results.contains_key(&variant) {
                        self.partial = Some(map.as_ref().clone());
                        self.panels.remove(&Variant::Vanilla);
                        self.panels.remove(&Variant::Absolute);
                    }
                }
                Event::Finished { result, .. } => {
                    if variant == Variant::Vanilla {
                        self.partial = None;
                        self.scrubber = Scrubber::default();
                        self.panels.remove(&Variant::Absolute);
                    }
                    self.results.insert(variant, result);
                    self.panels.remove(&variant);
                    finished_a_job = true;
                }
                Event::Scored { .. } | Event::SanityStage { .. } | Event::SanityDone { .. } => {}
                Event::Cancelled { .. } => {
                    self.run.jobs.retain(|(_, v)| *v != variant);
                    self.errors.push(format!("{} cancelled", variant.title()));
                }
                Event::Failed { message, .. } => {
                    self.run.jobs.retain(|(_, v)| *v != variant);
                    self.errors.push(format!("{}: {message}", variant.title()));
                }
                Event::Notice { message, .. } => self.errors.push(format!("{}: {message}", variant.title())),
            }
        }
        if !self.run.jobs.is_empty() && self.run.jobs.iter().all(|(_, v)| self.results.contains_key(v)) {
            self.run.finished = true;
        }
        if finished_a_job {
            self.autosave();
        }
        if self.run_on_start && self.input.is_some() && self.target.is_some() {
            self.run_on_start = false;
            self.start_run();
            changed = true;
        }
        changed
    }

    /// The 2-D (channel-summed) map of a variant, if computed (or partially computed).
    pub fn map_of(&self, variant: Variant) -> Option<Vec<f32>> {
        if variant == Variant::Absolute && !self.results.contains_key(&Variant::Vanilla) && self.partial.is_none() {
            return None;
        }
        let flat = match variant {
            Variant::Absolute => {
                return self
                    .map_of(Variant::Vanilla)
                    .map(|m| m.iter().map(|v| v.abs()).collect())
            }
            Variant::Vanilla => match (self.results.get(&variant), &self.partial) {
                (Some(r), _) => r.attribution.flatten_all().ok()?.to_vec1::<f32>().ok()?,
                (None, Some(p)) => p.clone(),
                _ => return None,
            },
            _ => self
                .results
                .get(&variant)?
                .attribution
                .flatten_all()
                .ok()?
                .to_vec1::<f32>()
                .ok()?,
        };
        let hw = flat.len() / 3;
        Some(reduce_channels(&flat, 3, hw, ChannelReduction::Sum))
    }

    /// A short description of what the current settings compute, for a pinned row.
    pub fn method_label(&self) -> String {
        let s = &self.settings;
        match s.method {
            MethodChoice::PathIntegral => format!("{} IG, {} baseline, {} steps", s.path, s.baseline, s.steps),
            m => m.label().to_string(),
        }
    }

    /// Keeps the current maps as a row of the grid.
    pub fn pin_current(&mut self) {
        let maps: Vec<(Variant, Vec<f32>)> = Variant::ALL
            .into_iter()
            .filter_map(|v| self.map_of(v).map(|m| (v, m)))
            .collect();
        if !maps.is_empty() {
            self.pinned.push(PinnedRow {
                label: self.method_label(),
                maps,
                panels: Default::default(),
            });
            self.autosave();
        }
    }

    pub(crate) fn variant_is_signed(variant: Variant) -> bool {
        matches!(variant, Variant::Vanilla | Variant::Idgi)
    }

    /// Loads another model on a thread (`None`: the embedded default); what fails is
    /// reported in the error panel.
    pub fn open_model(&mut self, path: Option<PathBuf>) {
        self.clear_results();
        self.metrics.clear();
        self.model_source = CheckpointSource::from_path(path.clone());
        self.model_path = path.clone();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(load_model(path));
        });
        self.model = ModelSlot::Loading(rx);
        self.model_info = None;
    }
}

fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl eframe::App for PathscopeApp {
    fn on_exit(&mut self) {
        self.close_autosave();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if self.poll() {
            ctx.request_repaint();
        }
        if matches!(self.model, ModelSlot::Loading(_))
            || self.running()
            || self.metrics.running()
            || self.metrics.sanity_running()
        {
            // Keep polling while work is under way (the engine does not wake the UI), but
            // only 5 times a second: with a software renderer every frame costs the CPU
            // the computation needs.
            ctx.request_repaint_after(std::time::Duration::from_millis(200));
        }
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for path in dropped {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            if crate::model::MODEL_EXTENSIONS.contains(&ext.as_str()) {
                self.open_model(Some(path));
            } else {
                self.set_image_file(&path);
            }
        }
        self.top_bar(ui);
        self.error_panel(ui);
        self.export_window(&ctx);
        egui::Panel::left("controls")
            .resizable(true)
            .min_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    self.image_section(ui);
                    ui.separator();
                    self.model_section(ui);
                    ui.separator();
                    self.method_section(ui);
                });
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.tab, Tab::Compare, "Comparison");
                ui.selectable_value(&mut self.tab, Tab::Scrubber, "Interpolation scrubber");
                ui.selectable_value(&mut self.tab, Tab::Metrics, "Metrics");
            });
            ui.separator();
            match self.tab {
                Tab::Compare => self.compare_view(ui),
                Tab::Scrubber => self.scrubber_view(ui),
                Tab::Metrics => self.metrics_view(ui),
            }
        });
    }
}
