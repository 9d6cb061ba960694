//! One ROAR run: train the network on the unmodified data, rank every train and test image
//! by each estimator, then for every cell (estimator × fraction × retrain) replace pixels,
//! retrain from scratch and record the test accuracy. Cells are enumerated in one fixed
//! order, so a shard (a contiguous block of them) and a resumed run both know which cells
//! are theirs; the retrain index seeds the network, so every estimator and fraction is
//! compared on the same initialisations.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::dataset::Split;
use super::estimator::{rankings, Estimator, MapSettings};
use super::network::{SmallCnn, TrainConfig};
use super::removal::{apply, Mode};
use super::table::{CellKey, Row, UNMODIFIED};
use super::{Result, RoarError};
use crate::metrics::imputation::Imputation;

/// Everything that decides a run's numbers.
#[derive(Debug, Clone)]
pub struct RoarConfig {
    pub estimators: Vec<Estimator>,
    pub fractions: Vec<f64>,
    pub retrains: usize,
    pub mode: Mode,
    pub imputation: Imputation,
    pub training: TrainConfig,
    pub maps: MapSettings,
    pub seed: u64,
}

impl RoarConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(RoarError::InvalidArgument(m));
        if self.estimators.is_empty() {
            return bad("no estimators to compare".into());
        }
        if let Some(f) = self.fractions.iter().find(|f| !(**f > 0.0 && **f < 1.0)) {
            return bad(format!(
                "fractions must lie strictly between 0 and 100 %, got {}",
                f * 100.0
            ));
        }
        if self.fractions.is_empty() {
            return bad("no fractions to remove".into());
        }
        if self.retrains == 0 {
            return bad("at least one retrain per cell is needed".into());
        }
        if self.training.epochs == 0 || self.training.batch_size == 0 {
            return bad("training needs at least one epoch and a batch of at least one image".into());
        }
        Ok(())
    }

    /// The fraction of the unmodified networks: nothing removed, or everything kept.
    fn unmodified_fraction(&self) -> f64 {
        match self.mode {
            Mode::Remove => 0.0,
            Mode::Keep => 1.0,
        }
    }

    /// Every cell of the run, in the order shards and resumes count them: the unmodified
    /// networks, then estimator by estimator, fraction by fraction, retrain by retrain.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells: Vec<Cell> = (0..self.retrains)
            .map(|retrain| Cell {
                estimator: None,
                fraction: self.unmodified_fraction(),
                retrain,
            })
            .collect();
        for &e in &self.estimators {
            for &fraction in &self.fractions {
                for retrain in 0..self.retrains {
                    cells.push(Cell {
                        estimator: Some(e),
                        fraction,
                        retrain,
                    });
                }
            }
        }
        cells
    }
}

/// One retrained network's place in the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// `None`: the unmodified data.
    pub estimator: Option<Estimator>,
    pub fraction: f64,
    pub retrain: usize,
}

impl Cell {
    pub fn estimator_name(&self) -> String {
        self.estimator.map_or(UNMODIFIED.to_string(), |e| e.to_string())
    }

    pub fn key(&self) -> CellKey {
        CellKey::new(&self.estimator_name(), self.fraction, self.retrain)
    }
}

/// Shard `index` of `count` (1-based): a contiguous block of the cells, so a shard
/// computes the maps of few estimators.
pub fn shard_cells(cells: Vec<Cell>, index: usize, count: usize) -> Vec<Cell> {
    let n = cells.len();
    let (start, end) = ((index - 1) * n / count, index * n / count);
    cells.into_iter().skip(start).take(end - start).collect()
}

/// What a run reports as it goes.
pub enum Progress {
    /// The network on the unmodified data is trained (its test accuracy).
    BaseTrained { test_accuracy: f64 },
    /// Maps of `done` of `total` images (all estimators of the run) computed.
    Maps { done: usize, total: usize },
    /// `done` of `total` cells retrained.
    Cells { done: usize, total: usize },
}

/// Seeds: the base network, each image's draws, and each retrain.
fn base_seed(seed: u64) -> u64 {
    seed
}
fn train_images_seed(seed: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(10_000_000)
}
fn test_images_seed(seed: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(20_000_000)
}
fn retrain_seed(seed: u64, retrain: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(1 + retrain as u64)
}

/// Runs `cells` of `config` on `data` (those whose keys are in `done` are skipped),
/// handing each finished row to `on_row` before the next cell starts.
pub fn run(
    config: &RoarConfig,
    data: &Split,
    cells: &[Cell],
    done: &HashSet<CellKey>,
    on_progress: &(dyn Fn(Progress) + Sync),
    on_row: &mut dyn FnMut(Row) -> Result<()>,
    cancel: &AtomicBool,
) -> Result<()> {
    config.validate()?;
    let pending: Vec<Cell> = cells.iter().copied().filter(|c| !done.contains(&c.key())).collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut estimators: Vec<Estimator> = Vec::new();
    for e in pending.iter().filter_map(|c| c.estimator) {
        if !estimators.contains(&e) {
            estimators.push(e);
        }
    }
    let fill = data.train.channel_means();
    let needs_model = estimators.iter().any(|e| !e.is_control());
    // Rankings [estimator][image] of the train and the test images.
    let (train_ranks, test_ranks) = if estimators.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let base = if needs_model {
            let net = SmallCnn::train(&data.train, &config.training, base_seed(config.seed))?;
            on_progress(Progress::BaseTrained {
                test_accuracy: net.accuracy(&data.test)?,
            });
            Some(net)
        } else {
            None
        };
        let total = data.train.len() + data.test.len();
        let counted = AtomicUsize::new(0);
        let tick = || {
            let done = counted.fetch_add(1, Ordering::Relaxed) + 1;
            on_progress(Progress::Maps { done, total });
        };
        let oracle = base
            .as_ref()
            .map(|net| net as &(dyn crate::attribution::oracle::GradientOracle + Sync));
        let train = rankings(
            &estimators,
            oracle,
            &data.train,
            &config.maps,
            train_images_seed(config.seed),
            &tick,
        )?;
        if cancel.load(Ordering::Relaxed) {
            return Err(RoarError::Cancelled);
        }
        let test = rankings(
            &estimators,
            oracle,
            &data.test,
            &config.maps,
            test_images_seed(config.seed),
            &tick,
        )?;
        (train, test)
    };
    let total = pending.len();
    for (n, cell) in pending.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(RoarError::Cancelled);
        }
        let started = Instant::now();
        let (train, test) = match cell.estimator {
            None => (data.train.clone(), data.test.clone()),
            Some(e) => {
                let at = estimators.iter().position(|x| *x == e).expect("ranked");
                let modify = |set, ranks: &[Vec<u32>], first_seed| {
                    apply(
                        set,
                        ranks,
                        cell.fraction,
                        config.mode,
                        config.imputation,
                        &fill,
                        first_seed,
                    )
                };
                (
                    modify(&data.train, &train_ranks[at], train_images_seed(config.seed))?,
                    modify(&data.test, &test_ranks[at], test_images_seed(config.seed))?,
                )
            }
        };
        let net = SmallCnn::train_observed(
            &train,
            &config.training,
            retrain_seed(config.seed, cell.retrain),
            &mut |_| !cancel.load(Ordering::Relaxed),
        )?;
        let row = Row {
            dataset: data.name.clone(),
            mode: config.mode.name().into(),
            removal: config.imputation.name().into(),
            estimator: cell.estimator_name(),
            fraction: cell.fraction,
            retrain: cell.retrain,
            seed: config.seed,
            test_accuracy: net.accuracy(&test)?,
            train_accuracy: net.accuracy(&train)?,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_row(row)?;
        on_progress(Progress::Cells { done: n + 1, total });
    }
    Ok(())
}
