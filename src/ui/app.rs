//! The studio application: its state, its runtime, and the one place where commands are
//! carried out and engine events arrive.
//!
//! A frame draws the panels from [`StudioState`] and [`Runtime`]; panels push
//! [`Command`]s, which [`PathscopeApp::execute`] carries out after the frame's drawing.
//! Nothing here waits on computation: models load on a thread, predictions and attribution
//! jobs run on the engine's worker, and both wake the UI when something arrives.

use std::path::{Path, PathBuf};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::Instant;

use eframe::egui;

use crate::attribution::catalog::{Family, Variant};
use crate::device::Compute;
use crate::engine::{CheckpointSource, Engine, Event, JobId, JobRequest, PredictRequest, Waker};
use crate::model::conventions::Overrides;
use crate::model::labels::Labels;
use crate::model::preprocess::{decode_rgb, load_rgb};
use crate::model::Classifier;
use crate::model::Preprocessing;
use crate::session::Session;

use super::command::{Command, Commands};
use super::convergence_view::{self, ConvergenceView};
use super::export_dialog::{self, ExportDialog};
use super::file_dialog::FileDialogs;
use super::metrics_view::{self, MetricsView};
use super::panels::{compare, inputs, method, top_bar};
use super::runtime::{ModelLoad, ModelSlot, RunState, Runtime, Textures};
use super::scrubber::{self, Scrubber};
use super::session::crashed_path;
use super::state::{Photo, StudioState, Tab};

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
    /// Preprocessing and labels set on the command line, over the model's own.
    pub conventions: Overrides,
    /// The device (and CPU path) every model of this window runs on.
    pub compute: Compute,
}

pub struct PathscopeApp {
    /// What the studio shows: what a session saves.
    pub state: StudioState,
    /// The engine, jobs in flight, messages.
    pub runtime: Runtime,
    textures: Textures,
    /// The Interpolation scrubber tab.
    pub scrubber: Scrubber,
    /// The Metrics tab: insertion/deletion scores of the computed maps.
    pub metrics: MetricsView,
    /// The Convergence tab: the quadrature rules' convergence study of the current image.
    pub convergence: ConvergenceView,
    /// The Export dialog (figures and raw data).
    pub export: ExportDialog,
    /// The system file dialogs in flight and the in-app chooser.
    pub files: FileDialogs,
    commands: Commands,
}

fn load_model(path: Option<PathBuf>, overrides: &Overrides, compute: &Compute) -> ModelLoad {
    let device = &compute.device;
    let result = match &path {
        Some(p) => Classifier::load(p, device).map(|m| (m, p.display().to_string())),
        None => crate::assets::default_classifier(device).map(|m| (m, crate::assets::DEFAULT_MODEL_NAME.to_string())),
    };
    let (mut model, name) = result.map_err(|e| e.to_string())?;
    model.set_generic(compute.generic);
    if !overrides.is_empty() {
        model.override_conventions(overrides).map_err(|e| e.to_string())?;
    }
    Ok((Arc::new(model), name))
}

/// Loads a model on a thread; the answer arrives on the returned slot, and `waker` is
/// called when it does.
fn start_loading(path: Option<PathBuf>, overrides: Overrides, compute: Compute, waker: Option<Waker>) -> ModelSlot {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("pathscope-model-load".into())
        .spawn(move || {
            let _ = tx.send(load_model(path, &overrides, &compute));
            if let Some(wake) = waker {
                wake();
            }
        })
        .expect("spawning the model loader");
    ModelSlot::Loading(rx)
}

fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl PathscopeApp {
    /// The studio in an eframe window: heatmaps on the GPU where egui runs on wgpu, and
    /// every engine event wakes the window.
    pub fn new(cc: &eframe::CreationContext<'_>, options: StudioOptions) -> Self {
        let ctx = cc.egui_ctx.clone();
        let waker: Waker = Arc::new(move || ctx.request_repaint());
        let mut app = Self::build(options, Some(waker));
        if let Some(rs) = &cc.wgpu_render_state {
            crate::render::heatmap::HeatmapRenderer::install(rs);
            app.runtime.gpu = Some(rs.clone());
        }
        app
    }

    /// The app without a window to wake; the model loads on a thread and the first frames
    /// poll for it.
    pub fn with_options(options: StudioOptions) -> Self {
        Self::build(options, None)
    }

    fn build(options: StudioOptions, waker: Option<Waker>) -> Self {
        let runtime = Runtime {
            model: start_loading(
                options.model.clone(),
                options.conventions.clone(),
                options.compute.clone(),
                waker.clone(),
            ),
            compute: options.compute.clone(),
            overrides: options.conventions.clone(),
            model_source: CheckpointSource::from_path(options.model.clone()),
            model_info: None,
            labels: Labels::imagenet(),
            input: None,
            predictions: Vec::new(),
            prediction_job: None,
            restored_target: None,
            run: RunState::default(),
            partial: None,
            errors: Vec::new(),
            panel_errors: std::collections::HashMap::new(),
            reference_pool: None,
            pending_pool: None,
            retrace_pending: false,
            metrics_pending: Default::default(),
            notice: None,
            pending_image: None,
            run_on_start: options.run_on_start,
            gpu: None,
            session_file: None,
            autosave_path: options.autosave.clone(),
            recovery: None,
            target_query: String::new(),
            waker,
        };
        let mut app = Self {
            state: StudioState {
                model_path: options.model.clone(),
                ..StudioState::default()
            },
            runtime,
            textures: Textures::default(),
            scrubber: Scrubber::default(),
            metrics: MetricsView::default(),
            convergence: ConvergenceView::default(),
            export: ExportDialog::default(),
            files: FileDialogs::default(),
            commands: Commands::default(),
        };
        match options.image {
            Some(p) => app.runtime.pending_image = Some(p),
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
        self.runtime.gpu.is_some()
    }

    pub fn model_ready(&self) -> bool {
        self.runtime.model_ready()
    }

    pub fn target_label(&self) -> Option<String> {
        self.runtime.label_of(self.state.target)
    }

    /// True while the run's jobs are queued or running.
    pub fn running(&self) -> bool {
        self.runtime.running()
    }

    /// Fraction of the run's gradients computed, 0..=1 (never decreasing during a run).
    pub fn progress(&self) -> f32 {
        method::progress(&self.runtime)
    }

    /// The 2-D (channel-summed) map of a panel, if computed (or partially computed).
    pub fn map_of(&self, variant: Variant) -> Option<Vec<f32>> {
        self.state.map_of(variant, self.runtime.partial.as_deref())
    }

    /// The maps the Metrics tab can score, as (label, 2-D map).
    pub fn metric_sources(&self) -> Vec<(String, Vec<f32>)> {
        metrics_view::metric_sources(&self.state, &self.runtime)
    }

    /// Whether the sanity check computes every depth (see [`metrics_view::sanity_every_block`]).
    pub fn sanity_every_block(&self) -> bool {
        metrics_view::sanity_every_block(&self.metrics, &self.runtime)
    }

    /// The session a cleanly closed studio left, if any.
    pub fn last_session(&self) -> Option<PathBuf> {
        top_bar::last_session(&self.runtime)
    }

    /// Carries out a panel's command.
    pub fn execute(&mut self, command: Command) {
        match command {
            Command::OpenModel(path) => self.open_model(path),
            Command::SetPreprocessing(overrides) => {
                // Checked against the loaded model first: a preset that does not fit its
                // input is reported, and the model stays.
                let check = self.runtime.engine().map(|e| e.model().conventions_with(&overrides));
                match check {
                    Some(Err(e)) => self.runtime.errors.push(e.to_string()),
                    _ => {
                        self.runtime.overrides = overrides;
                        self.open_model(self.state.model_path.clone());
                    }
                }
            }
            Command::OpenImage(path) => self.set_image_file(&path),
            Command::OpenSample(i) => {
                if let Some(s) = crate::assets::SAMPLE_IMAGES.get(i) {
                    self.set_image_bytes(s.name, s.bytes);
                }
            }
            Command::SetTarget(class) => {
                self.state.target = Some(class);
                self.runtime.target_query.clear();
            }
            Command::Run => self.start_run(),
            Command::CancelRun => self.runtime.cancel_run(),
            Command::Pin => self.pin_current(),
            Command::RemovePinned(r) => {
                if r < self.state.pinned.len() {
                    self.state.pinned.remove(r);
                    // Rows below move up: their panels are drawn again under their new ids.
                    self.textures.pinned.clear();
                }
            }
            Command::DismissError(i) => {
                if i < self.runtime.errors.len() {
                    self.runtime.errors.remove(i);
                }
            }
            Command::ReportError(message) => self.runtime.errors.push(message),
            Command::SaveSession(path) => self.save_session(&path),
            Command::OpenSession(path) => self.open_session(&path),
            Command::RecoverSession => self.recover(),
            Command::DismissRecovery => self.dismiss_recovery(),
            Command::ScoreMaps => self.score_maps(),
            Command::CancelScoring => metrics_view::cancel_scoring(&self.metrics, &mut self.runtime),
            Command::StartSanity => self.start_sanity(),
            Command::StartConvergence => convergence_view::start(&mut self.convergence, &self.state, &mut self.runtime),
            Command::CancelConvergence => convergence_view::cancel(&self.convergence, &mut self.runtime),
            Command::ExportConvergence(path) => {
                self.convergence.status = Some(match convergence_view::save(&self.convergence, &path) {
                    Ok(()) => format!("wrote {}", path.display()),
                    Err(e) => format!("could not save: {e}"),
                });
            }
            Command::CancelSanity => metrics_view::cancel_sanity(&self.metrics, &mut self.runtime),
            Command::OpenExportDialog => self.export.open = true,
            Command::ExportFigure(path) => {
                self.export.status = Some(match self.export_to(&path) {
                    Ok(()) => format!("wrote {}", path.display()),
                    Err(e) => format!("could not save: {e}"),
                });
            }
            Command::ExportMaps { path, npy } => {
                self.export.status = Some(match (self.export_maps(&path, npy), npy) {
                    (Ok(n), false) => format!("wrote {n} maps to {}", path.display()),
                    (Ok(n), true) => format!("wrote {n} .npy files into {}", path.display()),
                    (Err(e), _) => format!("could not save: {e}"),
                });
            }
            Command::ExportTrace(path) => {
                self.export.status = Some(match self.export_trace(&path) {
                    Ok(()) => format!("wrote {}", path.display()),
                    Err(e) => format!("could not save: {e}"),
                });
            }
            Command::ChooseFile(request) => self.files.request(request, self.runtime.waker.clone()),
            Command::DismissNotice => self.runtime.notice = None,
        }
    }

    /// The loaded model's preprocessing; ImageNet's while none is loaded (the photo is
    /// cropped again when the model arrives).
    fn preprocessing(&self) -> Preprocessing {
        self.runtime
            .engine()
            .map(|e| *e.model().preprocessing())
            .unwrap_or(Preprocessing::IMAGENET)
    }

    pub(crate) fn set_image_bytes(&mut self, name: &str, bytes: &[u8]) {
        match decode_rgb(Path::new(name), bytes) {
            Ok(img) => self.set_photo(Photo {
                name: name.to_string(),
                source: None,
                crop: self.preprocessing().apply(&img),
                original: Some(Arc::new(img)),
            }),
            Err(e) => self.runtime.errors.push(e.to_string()),
        }
    }

    pub fn set_image_file(&mut self, path: &Path) {
        match load_rgb(path) {
            Ok(img) => self.set_photo(Photo {
                name: path.display().to_string(),
                source: Some(path.to_path_buf()),
                crop: self.preprocessing().apply(&img),
                original: Some(Arc::new(img)),
            }),
            Err(e) => self.runtime.errors.push(e.to_string()),
        }
    }

    /// Shows a preprocessed crop and asks the engine for its predictions.
    fn set_photo(&mut self, photo: Photo) {
        self.state.image = Some(photo);
        self.textures.image = None;
        self.runtime.input = None;
        self.runtime.predictions.clear();
        self.state.target = None;
        self.clear_results();
        self.request_prediction();
    }

    /// Queues the prediction of the current photo, if a model is ready; its answer sets
    /// the input, the predictions and the target.
    fn request_prediction(&mut self) {
        let Some(image) = &self.state.image else {
            return;
        };
        let crop = Arc::new(image.crop.clone());
        if let Some(engine) = self.runtime.engine_mut() {
            self.runtime.prediction_job = Some(engine.submit_predict(PredictRequest { crop }));
        }
    }

    fn clear_results(&mut self) {
        self.runtime.cancel_run();
        self.runtime.run = RunState::default();
        self.runtime.partial = None;
        self.state.results.clear();
        self.state.computed = None;
        self.state.metrics_shown = Default::default();
        self.textures.panels.clear();
        self.scrubber = Scrubber::default();
    }

    /// Sends one job per panel the settings define. The vanilla job records a trace for the
    /// scrubber.
    pub fn start_run(&mut self) {
        let (Some((input, _)), Some(target)) = (self.runtime.input.clone(), self.state.target) else {
            self.runtime.errors.push("load a model and an image first".into());
            return;
        };
        let mut params = self.state.settings.params();
        if self.state.settings.method == Family::ExpectedGradients {
            match self.reference_pool() {
                Some(pool) => params.reference_pool = pool,
                // Read on a thread; the run starts when the images arrive.
                None => return,
            }
        }
        self.clear_results();
        self.state.computed = Some(self.state.settings.clone());
        let (requests, refused) = self.state.settings.run_requests(&params, &input, target);
        for (v, message) in refused {
            self.runtime
                .errors
                .push(format!("{}: {message}", self.state.panel_title(v)));
        }
        let submitted = self.submit_jobs(requests);
        if submitted {
            for (_, v) in &self.runtime.run.jobs {
                self.runtime.panel_errors.remove(v);
            }
            self.runtime.panel_errors.remove(&Variant::Absolute);
            self.autosave();
        }
    }

    /// Sends the jobs of a run to the engine and makes them the run whose progress the
    /// Method panel shows, each weighted by its gradient count; false without an engine.
    fn submit_jobs(&mut self, requests: Vec<(Variant, JobRequest)>) -> bool {
        let Some(engine) = self.runtime.engine_mut() else {
            return false;
        };
        let groups = crate::engine::plan::walk_groups(requests);
        let mut weights = std::collections::HashMap::new();
        let mut jobs = Vec::new();
        for group in groups {
            let variants: Vec<Variant> = group.iter().map(|(v, _)| *v).collect();
            // A shared walk's jobs progress together; each counts its share of the walk.
            let weight = group[0].1.spec.gradient_count() / group.len();
            let ids = engine.submit_walk(group.into_iter().map(|(_, r)| r).collect());
            for (job, variant) in ids.into_iter().zip(variants) {
                weights.insert(job, weight.max(1));
                jobs.push((job, variant));
            }
        }
        self.runtime.run = RunState {
            jobs,
            weights,
            started: Some(Instant::now()),
            ..RunState::default()
        };
        true
    }

    pub fn cancel_run(&mut self) {
        self.runtime.cancel_run();
    }

    /// Computes a restored vanilla map again with its trace, for the scrubber; the other
    /// restored maps stay as they are.
    fn retrace(&mut self) {
        let (Some((input, _)), Some(target)) = (self.runtime.input.clone(), self.state.target) else {
            return;
        };
        let settings = self.state.computed_settings().clone();
        let Some(spec) = settings.spec_for(Variant::Vanilla) else {
            return;
        };
        let request = settings.job_request(input, target, spec, true);
        if !self.submit_jobs(vec![(Variant::Vanilla, request)]) {
            return;
        }
        self.runtime.notice = Some(
            "session restored; its path is being walked again for the scrubber (session files keep the maps, not the per-step trace)"
                .into(),
        );
    }

    /// Expected Gradients' reference images, preprocessed like the photo. `None` while
    /// they are read on a thread (the run starts when they arrive) or when there is no
    /// folder (reported).
    fn reference_pool(&mut self) -> Option<Arc<Vec<candle_core::Tensor>>> {
        let Some(folder) = self.state.settings.reference_folder.clone() else {
            self.runtime
                .errors
                .push("Expected Gradients needs a folder of reference images: type it under Method".into());
            return None;
        };
        let pre = self.preprocessing();
        let key = format!("{}|{pre:?}", folder.display());
        if let Some((k, pool)) = &self.runtime.reference_pool {
            if *k == key {
                return Some(pool.clone());
            }
        }
        if self.runtime.pending_pool.is_none() {
            let (tx, rx) = channel();
            let waker = self.runtime.waker.clone();
            let spawned = std::thread::Builder::new()
                .name("pathscope-references".into())
                .spawn(move || {
                    let _ = tx.send((key, crate::ui::runtime::read_reference_pool(&folder, &pre)));
                    if let Some(wake) = waker {
                        wake();
                    }
                });
            match spawned {
                Ok(_) => self.runtime.pending_pool = Some(rx),
                Err(e) => self
                    .runtime
                    .errors
                    .push(format!("could not start reading the references: {e}")),
            }
        }
        None
    }

    /// Keeps the current maps as a row of the grid.
    pub fn pin_current(&mut self) {
        if let Some(row) = self.state.current_as_row() {
            self.state.pinned.push(row);
            self.autosave();
        }
    }

    pub fn score_maps(&mut self) {
        metrics_view::score_maps(&mut self.metrics, &self.state, &mut self.runtime);
        self.state.metrics_shown.scores = true;
    }

    pub fn start_sanity(&mut self) {
        metrics_view::start_sanity(&mut self.metrics, &self.state, &mut self.runtime);
        self.state.metrics_shown.sanity = true;
    }

    /// Loads another model on a thread (`None`: the embedded default); what fails is
    /// reported in the error panel.
    pub fn open_model(&mut self, path: Option<PathBuf>) {
        self.clear_results();
        self.metrics.clear();
        self.convergence.clear();
        self.runtime.model_source = CheckpointSource::from_path(path.clone());
        self.state.model_path = path.clone();
        self.runtime.model = start_loading(
            path,
            self.runtime.overrides.clone(),
            self.runtime.compute.clone(),
            self.runtime.waker.clone(),
        );
        self.runtime.model_info = None;
    }

    fn variant_of(&self, job: JobId) -> Option<Variant> {
        self.runtime.run.jobs.iter().find(|(j, _)| *j == job).map(|(_, v)| *v)
    }

    /// Takes what arrived from the model loader and the engine; returns true if anything
    /// changed.
    pub fn poll(&mut self) -> bool {
        let mut changed = self.poll_model_load();
        if let Some(rx) = &self.runtime.pending_pool {
            if let Ok((key, outcome)) = rx.try_recv() {
                self.runtime.pending_pool = None;
                changed = true;
                match outcome {
                    Ok(pool) => {
                        self.runtime.reference_pool = Some((key, Arc::new(pool)));
                        self.start_run();
                    }
                    Err(e) => self.runtime.errors.push(format!("Expected Gradients: {e}")),
                }
            }
        }
        let events = match self.runtime.engine_mut() {
            Some(engine) => engine.poll(),
            None => Vec::new(),
        };
        let mut finished_a_job = false;
        for event in events {
            changed = true;
            if self.metrics.on_event(&event, &mut self.runtime.errors) {
                continue;
            }
            if self.convergence.on_event(&event, &mut self.runtime.errors) {
                continue;
            }
            if self.runtime.prediction_job == Some(event.job()) {
                self.on_prediction(event);
                continue;
            }
            let Some(variant) = self.variant_of(event.job()) else {
                continue;
            };
            let rt = &mut self.runtime;
            let job = event.job();
            match event {
                Event::Progress { done, total, .. } => {
                    if total > 0 {
                        rt.run.set_job_progress(job, done as f64 / total as f64);
                    }
                }
                Event::Partial { map, .. } => {
                    if variant == Variant::Vanilla && !self.state.results.contains_key(&variant) {
                        rt.partial = Some(map.as_ref().clone());
                        self.textures.panels.remove(&Variant::Vanilla);
                        self.textures.panels.remove(&Variant::Absolute);
                    }
                }
                Event::Finished { result, .. } => {
                    if variant == Variant::Vanilla {
                        rt.partial = None;
                        self.scrubber = Scrubber::default();
                        self.textures.panels.remove(&Variant::Absolute);
                        rt.panel_errors.remove(&Variant::Absolute);
                    }
                    rt.run.set_job_progress(job, 1.0);
                    rt.run.ended.insert(job);
                    rt.panel_errors.remove(&variant);
                    self.state.results.insert(variant, result);
                    self.textures.panels.remove(&variant);
                    finished_a_job = true;
                }
                Event::Predicted { .. }
                | Event::Scored { .. }
                | Event::SanityStage { .. }
                | Event::SanityDone { .. }
                | Event::Converged { .. } => {}
                Event::Cancelled { .. } => {
                    rt.run.ended.insert(job);
                    if rt.run.cancelled.is_none() {
                        rt.run.cancelled = Some((rt.run.done(), rt.run.total()));
                    }
                    rt.panel_errors.insert(variant, "cancelled before it finished".into());
                    if variant == Variant::Vanilla {
                        rt.partial = None;
                        self.textures.panels.remove(&Variant::Vanilla);
                        self.textures.panels.remove(&Variant::Absolute);
                        rt.panel_errors
                            .insert(Variant::Absolute, "cancelled before it finished".into());
                    }
                }
                Event::Failed { message, .. } => {
                    rt.run.ended.insert(job);
                    rt.panel_errors.insert(variant, message);
                }
                Event::Notice { message, .. } => rt.errors.push(format!("{}: {message}", variant.title())),
            }
        }
        let run = &mut self.runtime.run;
        if !run.jobs.is_empty() && run.jobs.iter().all(|(j, _)| run.ended.contains(j)) {
            run.finished = true;
        }
        // A queued job may still finish from the cache after the cancel: the count follows.
        if run.cancelled.is_some() {
            run.cancelled = Some((run.done(), run.total()));
        }
        if finished_a_job {
            self.autosave();
        }
        if self.runtime.retrace_pending
            && self.runtime.input.is_some()
            && self.state.target.is_some()
            && !self.runtime.running()
        {
            self.runtime.retrace_pending = false;
            self.retrace();
            changed = true;
        }
        let pending = self.runtime.metrics_pending;
        if (pending.scores || pending.sanity)
            && !self.runtime.retrace_pending
            && self.runtime.input.is_some()
            && self.state.target.is_some()
            && !self.runtime.running()
        {
            self.runtime.metrics_pending = Default::default();
            if pending.scores {
                self.score_maps();
            }
            if pending.sanity {
                self.start_sanity();
            }
            let what = match (pending.scores, pending.sanity) {
                (true, true) => "the insertion/deletion curves and the sanity check",
                (true, false) => "the insertion/deletion curves",
                _ => "the sanity check",
            };
            self.runtime.notice = Some(format!(
                "session restored; recomputing {what} it showed (session files keep the maps, not the curves)"
            ));
            changed = true;
        }
        if self.runtime.run_on_start && self.runtime.input.is_some() && self.state.target.is_some() {
            self.runtime.run_on_start = false;
            self.start_run();
            changed = true;
        }
        changed
    }

    /// The model loader's answer, if it has come: an engine for the model, or the error.
    fn poll_model_load(&mut self) -> bool {
        let ModelSlot::Loading(rx) = &self.runtime.model else {
            return false;
        };
        let Ok(outcome) = rx.try_recv() else {
            return false;
        };
        match outcome {
            Ok((model, name)) => {
                let rt = &mut self.runtime;
                rt.model_info = Some((
                    model.architecture().to_string(),
                    Compute {
                        device: model.device().clone(),
                        generic: model.is_generic(),
                    }
                    .describe(),
                    model.summary(),
                ));
                rt.labels = model.labels().clone();
                let engine = Engine::new(model);
                if let Some(waker) = &rt.waker {
                    engine.set_waker(waker.clone());
                }
                rt.model = ModelSlot::Ready { engine, name };
                // The input and target were the previous model's: crop with this model's
                // preprocessing and predict again.
                rt.input = None;
                rt.predictions.clear();
                self.state.target = None;
                let recrop = self.state.image.as_ref().and_then(|i| i.original.clone());
                match (self.runtime.pending_image.take(), recrop) {
                    (Some(p), _) => self.set_image_file(&p),
                    (None, Some(original)) => {
                        let pre = self.preprocessing();
                        if let Some(image) = &mut self.state.image {
                            let crop = pre.apply(&original);
                            if crop != image.crop {
                                image.crop = crop;
                                self.textures.image = None;
                                self.clear_results();
                            }
                        }
                        self.request_prediction();
                    }
                    (None, None) => self.request_prediction(),
                }
            }
            Err(e) => {
                self.runtime.errors.push(e);
                self.runtime.model = ModelSlot::Failed;
            }
        }
        true
    }

    /// A prediction job's answer: the input tensor, the top-5 and the target (a restored
    /// session's, if the model has that class, else the top prediction).
    fn on_prediction(&mut self, event: Event) {
        let rt = &mut self.runtime;
        match event {
            Event::Predicted {
                input, probabilities, ..
            } => {
                rt.prediction_job = None;
                let mut idx: Vec<usize> = (0..probabilities.len()).collect();
                idx.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
                rt.predictions = idx.iter().take(5).map(|&i| (i, probabilities[i])).collect();
                let restored = rt.restored_target.take().filter(|&t| t < probabilities.len());
                self.state.target = restored.or(rt.predictions.first().map(|p| p.0));
                if let Some(image) = &self.state.image {
                    let key = format!("{}#{}", image.name, content_hash(image.crop.as_raw()));
                    rt.input = Some((input, key));
                }
            }
            Event::Failed { message, .. } => {
                rt.prediction_job = None;
                let name = self.state.image.as_ref().map(|i| i.name.clone()).unwrap_or_default();
                rt.errors.push(format!("{name}: {message}"));
            }
            _ => {}
        }
    }

    /// Replaces the studio's state with a session's. The model reloads in the background
    /// if it differs; the maps show at once.
    pub fn restore(&mut self, session: Session, origin: &Path) {
        let restored = match StudioState::from_session(&session, origin) {
            Ok(s) => s,
            Err(e) => {
                self.runtime.errors.push(e);
                return;
            }
        };
        let same_model = self.state.model_path == restored.model_path && self.runtime.model_ready();
        if !same_model {
            self.open_model(restored.model_path.clone());
        }
        self.runtime.pending_image = None;
        self.runtime.restored_target = restored.target;
        if let Some(photo) = restored.image {
            self.set_photo(photo);
        }
        // Targets of a model with fewer classes are dropped when it has predicted.
        self.state.target = restored.target.or(self.state.target);
        self.state.settings = restored.settings;
        self.state.view = restored.view;
        self.state.tab = restored.tab;
        self.state.hidden = restored.hidden;
        self.state.results = restored.results;
        self.state.computed = restored.computed;
        self.runtime.panel_errors.clear();
        self.runtime.run = RunState::default();
        self.state.metrics_shown = restored.metrics_shown;
        self.runtime.metrics_pending = restored.metrics_shown;
        self.runtime.retrace_pending = self
            .state
            .results
            .get(&Variant::Vanilla)
            .is_some_and(|r| r.trace.is_none())
            && self
                .state
                .computed_settings()
                .spec_for(Variant::Vanilla)
                .is_some_and(|spec| spec.is_path_integral());
        self.textures.panels.clear();
        self.state.pinned = restored.pinned;
        self.textures.pinned.clear();
        self.runtime.session_file = Some(origin.to_path_buf());
    }

    /// Opens a session file; errors go to the error panel.
    pub fn open_session(&mut self, path: &Path) {
        match Session::open(path) {
            Ok(s) => self.restore(s, path),
            Err(e) => self.runtime.errors.push(e.to_string()),
        }
    }

    /// Saves the session to `path` (atomically); errors go to the error panel.
    pub fn save_session(&mut self, path: &Path) {
        match self.state.to_session().save(path) {
            Ok(()) => {
                let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                self.runtime.notice = Some(format!("saved session to {}", shown.display()));
                self.runtime.session_file = Some(path.to_path_buf());
            }
            Err(e) => self.runtime.errors.push(format!("could not save the session: {e}")),
        }
    }

    /// Writes the autosave, if enabled. A failure is reported once and turns it off.
    fn autosave(&mut self) {
        let Some(path) = self.runtime.autosave_path.clone() else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = self.state.to_session().save(&path) {
            self.runtime
                .errors
                .push(format!("autosave failed, and is off for this session: {e}"));
            self.runtime.autosave_path = None;
        }
    }

    /// At start-up: an autosave left behind means the last studio did not close cleanly.
    /// It is moved aside (so this studio's autosaves cannot overwrite it) and offered.
    fn check_for_crashed_session(&mut self) {
        let Some(path) = &self.runtime.autosave_path else {
            return;
        };
        if path.exists() {
            let crashed = crashed_path(path);
            match std::fs::rename(path, &crashed) {
                Ok(()) => self.runtime.recovery = Some(crashed),
                Err(e) => self.runtime.errors.push(format!(
                    "could not set aside the previous autosave {}: {e}",
                    path.display()
                )),
            }
        }
    }

    /// Restores the crashed session offered at start-up.
    pub fn recover(&mut self) {
        if let Some(path) = self.runtime.recovery.take() {
            self.open_session(&path);
        }
    }

    /// Declines the offer; the file stays on disk as `crashed-session.pathscope`.
    pub fn dismiss_recovery(&mut self) {
        self.runtime.recovery = None;
    }

    /// On a clean exit: the final state, moved to `last-session.pathscope`.
    fn close_autosave(&mut self) {
        self.autosave();
        if let Some(path) = &self.runtime.autosave_path {
            let _ = std::fs::rename(path, crate::session::last_session_path(path));
        }
    }

    /// Writes the export dialog's figure of the current maps to `path`.
    pub fn export_to(&self, path: &Path) -> Result<(), String> {
        export_dialog::export_figure(&self.export.settings, &self.state, &self.runtime, path)
    }

    /// The current maps as one safetensors file, or one .npy each into `path`.
    pub fn export_maps(&self, path: &Path, npy: bool) -> Result<usize, String> {
        export_dialog::export_maps(&self.state, path, npy)
    }

    /// The vanilla run's per-step trace as safetensors.
    pub fn export_trace(&self, path: &Path) -> Result<(), String> {
        export_dialog::export_trace(&self.state, path)
    }
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
            self.commands
                .push(if crate::model::MODEL_EXTENSIONS.contains(&ext.as_str()) {
                    Command::OpenModel(Some(path))
                } else {
                    Command::OpenImage(path)
                });
        }
        let (state, rt, commands) = (&mut self.state, &mut self.runtime, &mut self.commands);
        top_bar::show(ui, state, rt, commands);
        top_bar::errors(ui, rt, commands);
        export_dialog::show(&ctx, &mut self.export, state, rt, commands);
        self.files.show(&ctx, commands);
        egui::Panel::left("controls")
            .resizable(true)
            .min_size(280.0)
            .show(ui, |ui| {
                egui::Panel::bottom("run-controls").show(ui, |ui| {
                    ui.add_space(4.0);
                    method::run_controls(ui, state, rt, commands);
                });
                egui::ScrollArea::vertical().show(ui, |ui| {
                    inputs::image_section(ui, state, &mut self.textures.image, commands);
                    inputs::preprocessing_section(ui, rt, commands);
                    ui.separator();
                    inputs::predictions(ui, state, rt, commands);
                    ui.separator();
                    ui.strong("Attribution");
                    method::show(ui, state, rt, &mut self.textures, commands);
                });
            });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut state.tab, Tab::Compare, "Comparison");
                ui.selectable_value(&mut state.tab, Tab::Scrubber, "Interpolation scrubber");
                ui.selectable_value(&mut state.tab, Tab::Metrics, "Metrics");
                ui.selectable_value(&mut state.tab, Tab::Convergence, "Convergence");
            });
            ui.separator();
            match state.tab {
                Tab::Compare => compare::show(ui, state, rt, &mut self.textures, commands),
                Tab::Scrubber => scrubber::view(ui, &mut self.scrubber, state, rt),
                Tab::Metrics => {
                    metrics_view::sync_context(&mut self.metrics, state, rt);
                    metrics_view::show(ui, &mut self.metrics, state, rt, commands);
                }
                Tab::Convergence => convergence_view::show(ui, &mut self.convergence, state, rt, commands),
            }
        });
        let asked = self.commands.take();
        if !asked.is_empty() {
            for command in asked {
                self.execute(command);
            }
            ctx.request_repaint();
        }
    }
}
