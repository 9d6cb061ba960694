//! The background engine: one worker thread owns the model and runs attribution jobs
//! sent over a channel, so a UI never blocks on computation.
//!
//! - Progress, and for path methods the map accumulated so far, stream back as events.
//! - [`Engine::cancel`] raises a flag the job checks between model passes, so a job stops
//!   within one forward/backward pass.
//! - Finished results are cached by everything that determines them (model, the input's
//!   values, target, the method's settings and the content of its reference images or
//!   baseline file, options); asking again returns the cached map without computing.
//!   Display settings never reach the engine at all.
//! - Metrics jobs ([`Engine::submit_metrics`]) score a computed map by insertion and
//!   deletion (and ROAD, when asked) on the same worker, with the same progress, cancel and failure events.
//! - Sanity jobs ([`Engine::submit_sanity`], [`sanity`]) run the cascading model
//!   randomisation of one method with the edge-detector control, reporting every stage.
//! - Convergence jobs ([`Engine::submit_convergence`], [`convergence`]) run the study of
//!   quadrature rules against gradient evaluations on one image's straight path.
//! - Prediction jobs ([`Engine::submit_predict`]) normalise a photo for the model and
//!   return its input tensor and class probabilities, so a UI never runs the model itself.
//! - A [`Waker`] given with [`Engine::set_waker`] is called after every event, so a UI
//!   that sleeps until something happens is woken instead of polling on a timer.
//! - A panic inside a job is caught and reported as [`Event::Failed`]; if the worker
//!   thread dies anyway, the next request starts a new one.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candle_core::Tensor;
use image::RgbImage;

use crate::attribution::key::ContentKey;
use crate::attribution::memory::{JobMemory, MemoryPlan};
use crate::attribution::method::{explain_observed, explain_walk, Explanation, MethodSpec, RunOptions};
use crate::attribution::oracle::default_memory_budget;
use crate::attribution::path::Integration;
use crate::attribution::path::{PathStep, StepSink};
use crate::attribution::{AttributionError, ModelOracle, Monitor, Objective};
use crate::device::available_memory;
use crate::metrics::road::{road_curves, Road, RoadParams};
use crate::metrics::sanity::SanityStage;
use crate::metrics::scoring::{insertion_deletion_curves, CurveParams, InsertionDeletion};
use crate::metrics::MetricError;
use crate::model::Classifier;

pub mod convergence;
pub mod plan;
pub mod sanity;

pub use convergence::ConvergenceRequest;
pub use sanity::{CheckpointSource, SanityDepths, SanityRequest};

/// Identifies a job in events.
pub type JobId = u64;

/// Called after every event the worker sends (e.g. egui's `request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Everything that determines a result.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The normalised input [C, H, W].
    pub input: Arc<Tensor>,
    pub target: usize,
    pub objective: Objective,
    pub spec: MethodSpec,
    pub options: RunOptions,
}

impl JobRequest {
    /// The result cache's key: a hash of the content of everything the result depends on
    /// (the worker's cache belongs to one model).
    fn cache_key(&self) -> Result<u64, AttributionError> {
        let mut key = ContentKey::new();
        key.tensor(&self.input)?;
        key.u64(self.target as u64);
        key.text(self.objective.name());
        key.spec(&self.spec)?;
        let o = &self.options;
        key.u64(o.batch_size as u64);
        key.u64(o.seed);
        key.u64(o.record_trace as u64);
        key.u64(o.trace_budget as u64);
        Ok(key.finish())
    }
}

/// A prediction job: the photo's crop normalised for the model, and the model's class
/// probabilities for it.
#[derive(Debug, Clone)]
pub struct PredictRequest {
    /// The preprocessed crop, 8-bit RGB.
    pub crop: Arc<RgbImage>,
}

/// A metrics job: insertion and deletion curves of a 2-D map (see
/// [`crate::metrics::scoring`]), and optionally its ROAD curves ([`crate::metrics::road`]). Not cached: the UI keeps the curves it asked for.
#[derive(Debug, Clone)]
pub struct MetricsRequest {
    /// The normalised input [C, H, W] the map explains.
    pub input: Arc<Tensor>,
    /// The 2-D saliency [H, W]; pixels are moved in decreasing order of it.
    pub saliency: Arc<Vec<f32>>,
    /// The class whose probability is plotted.
    pub target: usize,
    pub params: CurveParams,
    /// The ROAD curves too (after insertion and deletion), when set.
    pub road: Option<RoadParams>,
}

/// What the engine reports.
#[derive(Debug, Clone)]
pub enum Event {
    Progress {
        job: JobId,
        done: usize,
        total: usize,
        /// Steps per second so far.
        rate: f64,
    },
    /// The attribution accumulated over the path's steps so far (flat, input-shaped).
    Partial {
        job: JobId,
        step: usize,
        map: Arc<Vec<f32>>,
    },
    Finished {
        job: JobId,
        result: Arc<Explanation>,
        from_cache: bool,
        seconds: f64,
    },
    /// A prediction job's result: the normalised input [C, H, W] and softmax probabilities.
    Predicted {
        job: JobId,
        input: Arc<Tensor>,
        probabilities: Arc<Vec<f32>>,
    },
    /// A metrics job's curves (its progress counts scored images).
    Scored {
        job: JobId,
        curves: Arc<InsertionDeletion>,
        /// The ROAD curves, when the request asked for them.
        road: Option<Arc<Road>>,
        seconds: f64,
    },
    /// A sanity job's stage, as soon as it is computed (after its [`Event::Progress`]): the
    /// method's similarity to the trained model's map, and the edge control's.
    SanityStage {
        job: JobId,
        stage: SanityStage,
        control: SanityStage,
    },
    /// A sanity job's stages in order of depth (its progress counts stages).
    SanityDone {
        job: JobId,
        stages: Vec<SanityStage>,
        /// The Sobel edge-detector control at the same depths: 1 throughout.
        control: Vec<SanityStage>,
        seconds: f64,
    },
    /// A convergence job's study (its progress counts gradient evaluations).
    Converged {
        job: JobId,
        study: convergence::StudyResult,
        seconds: f64,
    },
    Cancelled {
        job: JobId,
    },
    Failed {
        job: JobId,
        message: String,
    },
    /// Something the user should know about a job that goes on (e.g. a coarser trace for
    /// lack of memory).
    Notice {
        job: JobId,
        message: String,
    },
}

impl Event {
    pub fn job(&self) -> JobId {
        match self {
            Event::Progress { job, .. }
            | Event::Partial { job, .. }
            | Event::Finished { job, .. }
            | Event::Predicted { job, .. }
            | Event::Scored { job, .. }
            | Event::SanityStage { job, .. }
            | Event::SanityDone { job, .. }
            | Event::Converged { job, .. }
            | Event::Cancelled { job }
            | Event::Failed { job, .. }
            | Event::Notice { job, .. } => *job,
        }
    }

    /// Whether this is the last event of its job.
    pub fn ends_job(&self) -> bool {
        matches!(
            self,
            Event::Finished { .. }
                | Event::Predicted { .. }
                | Event::Scored { .. }
                | Event::SanityDone { .. }
                | Event::Converged { .. }
                | Event::Cancelled { .. }
                | Event::Failed { .. }
        )
    }
}

enum Command {
    Run {
        job: JobId,
        request: Box<JobRequest>,
        cancel: Arc<AtomicBool>,
    },
    /// Jobs that integrate one walk (see [`Engine::submit_walk`]).
    Walk {
        jobs: Vec<(JobId, Box<JobRequest>)>,
        cancel: Arc<AtomicBool>,
    },
    Metrics {
        job: JobId,
        request: Box<MetricsRequest>,
        cancel: Arc<AtomicBool>,
    },
    Predict {
        job: JobId,
        request: Box<PredictRequest>,
    },
    Sanity {
        job: JobId,
        request: Box<SanityRequest>,
        cancel: Arc<AtomicBool>,
    },
    Convergence {
        job: JobId,
        request: Box<ConvergenceRequest>,
        cancel: Arc<AtomicBool>,
    },
    /// A job that panics, to test that a panic is reported and the engine survives.
    Crash {
        job: JobId,
    },
}

/// The worker's side of the event channel: sends, then wakes the UI.
#[derive(Clone)]
struct EventSender {
    tx: Sender<Event>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl EventSender {
    /// A job's progress, with its rate since `started`.
    fn progress(&self, job: JobId, done: usize, total: usize, started: Instant) {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        self.send(Event::Progress {
            job,
            done,
            total,
            rate: done as f64 / secs,
        });
    }

    fn send(&self, event: Event) {
        // A UI that has gone away is not an error for a job that is still running.
        let _ = self.tx.send(event);
        let waker = self.waker.lock().map(|w| w.clone()).unwrap_or_default();
        if let Some(wake) = waker {
            wake();
        }
    }
}

struct Worker {
    model: Arc<Classifier>,
    cache: ResultCache,
    events: EventSender,
    /// Memory to plan jobs against; the kernel's `MemAvailable` when `None`.
    memory_limit: Option<u64>,
}

/// Finished results by cache key, oldest evicted first beyond a byte budget: a result
/// with its scrubber trace can take hundreds of MB, and a session runs many.
#[derive(Default)]
struct ResultCache {
    entries: HashMap<u64, Arc<Explanation>>,
    order: std::collections::VecDeque<u64>,
    bytes: u64,
}

/// At most this much is cached (less when memory is short: a quarter of what is available).
const CACHE_BUDGET: u64 = 1 << 30;

fn explanation_bytes(e: &Explanation) -> u64 {
    4 * e.attribution.elem_count() as u64 + e.trace.as_ref().map_or(0, |t| t.memory_bytes() as u64)
}

impl ResultCache {
    fn get(&self, key: u64) -> Option<&Arc<Explanation>> {
        self.entries.get(&key)
    }

    /// Inserts, then evicts the oldest entries (never the new one) until within `budget`.
    fn insert(&mut self, key: u64, result: Arc<Explanation>, budget: u64) {
        self.bytes += explanation_bytes(&result);
        if let Some(old) = self.entries.insert(key, result) {
            self.bytes -= explanation_bytes(&old);
            self.order.retain(|k| *k != key);
        }
        self.order.push_back(key);
        while self.bytes > budget && self.order.len() > 1 {
            if let Some(oldest) = self.order.pop_front() {
                if let Some(e) = self.entries.remove(&oldest) {
                    self.bytes -= explanation_bytes(&e);
                }
            }
        }
    }
}

/// Streams the map accumulated so far, at most every `interval`.
struct PartialMaps<'a> {
    job: JobId,
    sum: Vec<f64>,
    events: &'a EventSender,
    last: Instant,
    interval: Duration,
}

impl StepSink for PartialMaps<'_> {
    fn step(&mut self, step: &PathStep) -> crate::attribution::Result<()> {
        if step.contribution.len() == self.sum.len() {
            for (a, &c) in self.sum.iter_mut().zip(step.contribution) {
                *a += c as f64;
            }
            if self.last.elapsed() >= self.interval {
                self.last = Instant::now();
                let map = Arc::new(self.sum.iter().map(|&v| v as f32).collect());
                self.events.send(Event::Partial {
                    job: self.job,
                    step: step.index,
                    map,
                });
            }
        }
        Ok(())
    }
}

/// Whether `companion` integrates the same walk as `primary`: both path integrals that
/// differ in their integration only, on the same input, target, objective and options
/// (the trace belongs to the primary).
fn shares_walk(primary: &JobRequest, companion: &JobRequest) -> bool {
    let (
        MethodSpec::PathIntegral {
            path,
            baseline,
            steps,
            rule,
            tolerance,
            ..
        },
        MethodSpec::PathIntegral {
            path: path2,
            baseline: baseline2,
            steps: steps2,
            rule: rule2,
            tolerance: tolerance2,
            ..
        },
    ) = (&primary.spec, &companion.spec)
    else {
        return false;
    };
    let content = |t: &Tensor| {
        let mut key = ContentKey::new();
        key.tensor(t).ok().map(|_| key.finish())
    };
    let same_input = Arc::ptr_eq(&primary.input, &companion.input)
        || (primary.input.dims() == companion.input.dims() && content(&primary.input) == content(&companion.input));
    path == path2
        && baseline == baseline2
        && steps == steps2
        && rule == rule2
        && tolerance == tolerance2
        && same_input
        && primary.target == companion.target
        && primary.objective == companion.objective
        && primary.options.batch_size == companion.options.batch_size
        && primary.options.seed == companion.options.seed
}

impl Worker {
    fn run(&mut self, job: JobId, request: &JobRequest, cancel: &AtomicBool) {
        self.run_walk(&[(job, request)], cancel);
    }

    /// Runs `jobs` (the first the primary; the others integrate its walk, see
    /// [`shares_walk`]) as one computation; each job gets its own progress, result and
    /// cache entry. Jobs that cannot share, or when any is cached, run one by one.
    fn run_walk(&mut self, jobs: &[(JobId, &JobRequest)], cancel: &AtomicBool) {
        let mut keys = Vec::with_capacity(jobs.len());
        for (job, request) in jobs {
            match request.cache_key() {
                Ok(key) => keys.push(key),
                Err(e) => {
                    for (job2, _) in jobs {
                        let message = if job2 == job {
                            e.to_string()
                        } else {
                            format!("not computed: {e}")
                        };
                        self.events.send(Event::Failed { job: *job2, message });
                    }
                    return;
                }
            }
        }
        let (primary_job, request) = jobs[0];
        let shareable = jobs[1..].iter().all(|(_, r)| shares_walk(request, r));
        let any_cached = keys.iter().any(|k| self.cache.get(*k).is_some());
        if jobs.len() > 1 && (!shareable || any_cached) {
            for (job, r) in jobs {
                self.run_walk(&[(*job, r)], cancel);
            }
            return;
        }
        if let Some(hit) = self.cache.get(keys[0]) {
            self.events.send(Event::Finished {
                job: primary_job,
                result: hit.clone(),
                from_cache: true,
                seconds: 0.0,
            });
            return;
        }
        let available = self.memory_limit.or_else(available_memory);
        let mut options = request.options;
        let input_len = request.input.elem_count();
        let per_point = match request.input.dims() {
            [_, h, w] => self.model.gradient_bytes_per_point(*h, *w),
            _ => None,
        };
        let pass_cap = available.map_or_else(default_memory_budget, |a| a / 2);
        if let (Some(available), Some(per_point)) = (available, per_point) {
            let estimate = JobMemory::estimate(&request.spec, &options, input_len, per_point, pass_cap);
            match estimate.plan(available) {
                MemoryPlan::Run => {}
                MemoryPlan::ShrinkTrace { trace_budget, message } => {
                    options.trace_budget = trace_budget;
                    self.events.send(Event::Notice {
                        job: primary_job,
                        message,
                    });
                }
                MemoryPlan::Refuse { message } => {
                    for (job, _) in jobs {
                        self.events.send(Event::Failed {
                            job: *job,
                            message: message.clone(),
                        });
                    }
                    return;
                }
            }
        }
        let started = Instant::now();
        let events = self.events.clone();
        let ids: Vec<JobId> = jobs.iter().map(|(j, _)| *j).collect();
        let mut on_progress = |done: usize, total: usize| {
            for &job in &ids {
                events.progress(job, done, total, started);
            }
        };
        let mut monitor = Monitor {
            on_progress: Some(&mut on_progress),
            cancel: Some(cancel),
        };
        let mut partial = PartialMaps {
            job: primary_job,
            sum: vec![0.0; request.input.elem_count()],
            events: &self.events,
            last: Instant::now(),
            interval: Duration::from_millis(100),
        };
        let oracle = ModelOracle::new(&self.model, request.objective).with_memory_budget(pass_cap);
        let norm = self.model.normalization();
        let also: Vec<Integration> = jobs[1..]
            .iter()
            .filter_map(|(_, r)| match &r.spec {
                MethodSpec::PathIntegral { integration, .. } => Some(*integration),
                _ => None,
            })
            .collect();
        let outcome = if also.is_empty() {
            explain_observed(
                &oracle,
                &request.input,
                &norm,
                request.target,
                &request.spec,
                &options,
                &mut monitor,
                Some(&mut partial),
            )
            .map(|e| vec![e])
        } else {
            explain_walk(
                &oracle,
                &request.input,
                &norm,
                request.target,
                &request.spec,
                &also,
                &options,
                &mut monitor,
                Some(&mut partial),
            )
        };
        match outcome {
            Ok(results) => {
                let budget = available.map_or(CACHE_BUDGET, |a| (a / 4).min(CACHE_BUDGET));
                let seconds = started.elapsed().as_secs_f64();
                for ((job, _), (key, result)) in jobs.iter().zip(keys.iter().zip(results)) {
                    let result = Arc::new(result);
                    self.cache.insert(*key, result.clone(), budget);
                    self.events.send(Event::Finished {
                        job: *job,
                        result,
                        from_cache: false,
                        seconds,
                    });
                }
            }
            Err(AttributionError::Cancelled) => {
                for (job, _) in jobs {
                    self.events.send(Event::Cancelled { job: *job });
                }
            }
            Err(e) => {
                for (job, _) in jobs {
                    self.events.send(Event::Failed {
                        job: *job,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
}

impl Worker {
    fn predict(&mut self, job: JobId, request: &PredictRequest) {
        let outcome = (|| -> candle_core::Result<(Tensor, Vec<f32>)> {
            let input = self
                .model
                .normalization()
                .image_to_tensor(&request.crop, self.model.device())?
                .squeeze(0)?;
            let logits = self.model.forward(&input.unsqueeze(0)?)?.squeeze(0)?;
            let probabilities = candle_nn::ops::softmax(&logits, 0)?.to_vec1::<f32>()?;
            Ok((input, probabilities))
        })();
        self.events.send(match outcome {
            Ok((input, probabilities)) => Event::Predicted {
                job,
                input: Arc::new(input),
                probabilities: Arc::new(probabilities),
            },
            Err(e) => Event::Failed {
                job,
                message: format!("could not run the model on the image: {e}"),
            },
        });
    }

    fn score(&mut self, job: JobId, request: &MetricsRequest, cancel: &AtomicBool) {
        let started = Instant::now();
        let events = self.events.clone();
        // One progress bar for the whole job: insertion/deletion's images, then ROAD's.
        let (h, w) = request.input.dims3().map(|(_, h, w)| (h, w)).unwrap_or((0, 0));
        let first = 2 * request.params.images_per_curve(h * w);
        let total = first + request.road.as_ref().map_or(0, RoadParams::images);
        let mut on_progress = |done: usize, _: usize| events.progress(job, done, total, started);
        let outcome = insertion_deletion_curves(
            &self.model,
            &request.input,
            &request.saliency,
            request.target,
            request.params,
            &mut on_progress,
            Some(cancel),
        )
        .and_then(|curves| {
            let road = match &request.road {
                Some(params) => {
                    let mut on_progress = |done: usize, _: usize| events.progress(job, first + done, total, started);
                    let r = road_curves(
                        &self.model,
                        &request.input,
                        &request.saliency,
                        request.target,
                        params,
                        &mut on_progress,
                        Some(cancel),
                    )?;
                    Some(Arc::new(r))
                }
                None => None,
            };
            Ok((curves, road))
        });
        let event = match outcome {
            Ok((curves, road)) => Event::Scored {
                job,
                curves: Arc::new(curves),
                road,
                seconds: started.elapsed().as_secs_f64(),
            },
            Err(MetricError::Cancelled) => Event::Cancelled { job },
            Err(e) => Event::Failed {
                job,
                message: e.to_string(),
            },
        };
        self.events.send(event);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

fn spawn_worker(
    model: Arc<Classifier>,
    events: EventSender,
    memory_limit: Option<u64>,
) -> (Sender<Command>, JoinHandle<()>) {
    let (tx, rx) = channel::<Command>();
    let handle = std::thread::Builder::new()
        .name("pathscope-engine".into())
        .spawn(move || {
            let mut worker = Worker {
                model,
                cache: ResultCache::default(),
                events,
                memory_limit,
            };
            while let Ok(cmd) = rx.recv() {
                // An idle studio gives the pooled activation buffers back.
                let _release = ReleaseBuffersOnDrop;
                let (job, result) = match cmd {
                    Command::Run { job, request, cancel } => (
                        job,
                        catch_unwind(AssertUnwindSafe(|| worker.run(job, &request, &cancel))),
                    ),
                    Command::Walk { jobs, cancel } => {
                        let refs: Vec<(JobId, &JobRequest)> = jobs.iter().map(|(j, r)| (*j, r.as_ref())).collect();
                        (
                            jobs[0].0,
                            catch_unwind(AssertUnwindSafe(|| worker.run_walk(&refs, &cancel))),
                        )
                    }
                    Command::Metrics { job, request, cancel } => (
                        job,
                        catch_unwind(AssertUnwindSafe(|| worker.score(job, &request, &cancel))),
                    ),
                    Command::Predict { job, request } => {
                        (job, catch_unwind(AssertUnwindSafe(|| worker.predict(job, &request))))
                    }
                    Command::Sanity { job, request, cancel } => (
                        job,
                        catch_unwind(AssertUnwindSafe(|| worker.sanity(job, &request, &cancel))),
                    ),
                    Command::Convergence { job, request, cancel } => (
                        job,
                        catch_unwind(AssertUnwindSafe(|| worker.convergence(job, &request, &cancel))),
                    ),
                    Command::Crash { job } => (job, catch_unwind(|| panic!("deliberate test panic in job {job}"))),
                };
                if let Err(payload) = result {
                    worker.events.send(Event::Failed {
                        job,
                        message: format!("internal error (the job panicked): {}", panic_message(payload.as_ref())),
                    });
                }
            }
        })
        .expect("spawning the engine thread");
    (tx, handle)
}

/// The UI's handle on the worker.
pub struct Engine {
    model: Arc<Classifier>,
    commands: Sender<Command>,
    events_tx: EventSender,
    events: Receiver<Event>,
    cancels: HashMap<JobId, Arc<AtomicBool>>,
    next_job: JobId,
    memory_limit: Option<u64>,
    _worker: JoinHandle<()>,
}

impl Engine {
    /// Starts a worker for `model`.
    pub fn new(model: Arc<Classifier>) -> Self {
        Self::with_memory_limit(model, None)
    }

    /// As [`Self::new`], planning jobs against `memory_limit` bytes instead of the memory
    /// the kernel reports available (tests; a machine shared with other work).
    pub fn with_memory_limit(model: Arc<Classifier>, memory_limit: Option<u64>) -> Self {
        let (tx, events) = channel();
        let events_tx = EventSender {
            tx,
            waker: Arc::new(Mutex::new(None)),
        };
        let (commands, worker) = spawn_worker(model.clone(), events_tx.clone(), memory_limit);
        Self {
            model,
            commands,
            events_tx,
            events,
            cancels: HashMap::new(),
            next_job: 1,
            memory_limit,
            _worker: worker,
        }
    }

    pub fn model(&self) -> &Arc<Classifier> {
        &self.model
    }

    /// Calls `waker` after every event from now on (e.g. to repaint a UI).
    pub fn set_waker(&self, waker: Waker) {
        if let Ok(mut w) = self.events_tx.waker.lock() {
            *w = Some(waker);
        }
    }

    fn send(&mut self, make: impl Fn() -> Command) {
        if self.commands.send(make()).is_err() {
            // The worker is gone (it cannot panic out of a job, but be safe): start anew.
            let (commands, worker) = spawn_worker(self.model.clone(), self.events_tx.clone(), self.memory_limit);
            self.commands = commands;
            self._worker = worker;
            let _ = self.commands.send(make());
        }
    }

    /// A fresh job id and its cancel flag.
    fn new_job(&mut self) -> (JobId, Arc<AtomicBool>) {
        let job = self.next_job;
        self.next_job += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels.insert(job, cancel.clone());
        (job, cancel)
    }

    /// Queues a job and returns its id. Jobs run one at a time, in order.
    pub fn submit(&mut self, request: JobRequest) -> JobId {
        let (job, cancel) = self.new_job();
        let request = Box::new(request);
        self.send(|| Command::Run {
            job,
            request: request.clone(),
            cancel: cancel.clone(),
        });
        job
    }

    /// Queues path-integral jobs that differ only in their integration (vanilla IG and
    /// IDGI on the same path, say) as one walk: the gradients are computed once and every
    /// job gets its own events and result. Jobs that cannot share a walk run one after the
    /// other. Cancelling any of them cancels the walk.
    pub fn submit_walk(&mut self, requests: Vec<JobRequest>) -> Vec<JobId> {
        if requests.len() == 1 {
            return requests.into_iter().map(|r| self.submit(r)).collect();
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let mut jobs = Vec::with_capacity(requests.len());
        for request in requests {
            let job = self.next_job;
            self.next_job += 1;
            self.cancels.insert(job, cancel.clone());
            jobs.push((job, Box::new(request)));
        }
        let ids = jobs.iter().map(|(j, _)| *j).collect();
        self.send(|| Command::Walk {
            jobs: jobs.clone(),
            cancel: cancel.clone(),
        });
        ids
    }

    /// Queues a prediction job: the crop normalised for the model and its probabilities, in
    /// [`Event::Predicted`] (or [`Event::Failed`]).
    pub fn submit_predict(&mut self, request: PredictRequest) -> JobId {
        let (job, _) = self.new_job();
        let request = Box::new(request);
        self.send(|| Command::Predict {
            job,
            request: request.clone(),
        });
        job
    }

    /// Queues a metrics job (after any queued attribution jobs); it ends with
    /// [`Event::Scored`], [`Event::Cancelled`] or [`Event::Failed`].
    pub fn submit_metrics(&mut self, request: MetricsRequest) -> JobId {
        let (job, cancel) = self.new_job();
        let request = Box::new(request);
        self.send(|| Command::Metrics {
            job,
            request: request.clone(),
            cancel: cancel.clone(),
        });
        job
    }

    /// Queues a sanity job (cascading randomisation, [`sanity`]); it reports
    /// [`Event::Progress`] and [`Event::SanityStage`] per stage and ends with
    /// [`Event::SanityDone`], [`Event::Cancelled`] or [`Event::Failed`].
    pub fn submit_sanity(&mut self, request: SanityRequest) -> JobId {
        let (job, cancel) = self.new_job();
        let request = Box::new(request);
        self.send(|| Command::Sanity {
            job,
            request: request.clone(),
            cancel: cancel.clone(),
        });
        job
    }

    /// Queues a convergence study ([`convergence`]); it ends with [`Event::Converged`].
    pub fn submit_convergence(&mut self, request: ConvergenceRequest) -> JobId {
        let (job, cancel) = self.new_job();
        let request = Box::new(request);
        self.send(|| Command::Convergence {
            job,
            request: request.clone(),
            cancel: cancel.clone(),
        });
        job
    }

    /// Asks a job to stop; it reports [`Event::Cancelled`] within one model pass.
    pub fn cancel(&mut self, job: JobId) {
        if let Some(flag) = self.cancels.get(&job) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    #[doc(hidden)]
    pub fn submit_crash_for_test(&mut self) -> JobId {
        let job = self.next_job;
        self.next_job += 1;
        self.send(|| Command::Crash { job });
        job
    }

    /// Events that arrived since the last call; never blocks.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(e) => {
                    if e.ends_job() {
                        self.cancels.remove(&e.job());
                    }
                    out.push(e);
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return out,
            }
        }
    }

    /// Blocks until `job` ends or `timeout` passes (tests and the CLI; a UI polls).
    pub fn wait(&mut self, job: JobId, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self
                .events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(e) => {
                    let done = e.job() == job && e.ends_job();
                    seen.push(e);
                    if done {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        seen
    }
}

/// Frees the tape's pooled buffers when a job ends, however it ends.
struct ReleaseBuffersOnDrop;

impl Drop for ReleaseBuffersOnDrop {
    fn drop(&mut self) {
        crate::kernels::buffers::release();
    }
}
