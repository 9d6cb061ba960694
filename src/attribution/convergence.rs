//! The convergence study: how fast each way of integrating the straight path converges,
//! measured against gradient evaluations (algorithms.md §1.5).
//!
//! For each fixed rule at each n, the adaptive rule round by round, and IDGI at each n,
//! in both directions (baseline → input, and input → baseline with the path reversed), a
//! row gives the gradients used, the completeness error |Σ A − Δf| / |Δf| and the map's
//! relative L2 distance to a reference: the same path integrated with `reference_steps`
//! Gauss–Legendre points (IDGI against IDGI over the same reference walk).

use std::fmt;
use std::time::Instant;

use candle_core::Tensor;

use super::adaptive::{adaptive_path, AdaptiveConfig, StraightGeometry};
use super::integrated_gradients::straight_path;
use super::path::{IdgiSink, Integration, RiemannSink, StepSink, Tee, Walk, ZeroGradientPolicy};
use super::{AttributionError, GradientOracle, IgConfig, IntegrationRule, Monitor, Result};

/// Which way the path is walked. Text form: `to-input`, `to-baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the baseline to the input (the usual one).
    ToInput,
    /// From the input to the baseline: the same integral with the sign reversed; rules
    /// that are not symmetric (left, right) put their points at the other ends.
    ToBaseline,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::ToInput, Direction::ToBaseline];

    pub fn name(self) -> &'static str {
        match self {
            Direction::ToInput => "to-input",
            Direction::ToBaseline => "to-baseline",
        }
    }

    /// The words a person reads.
    pub fn label(self) -> &'static str {
        match self {
            Direction::ToInput => "baseline to input",
            Direction::ToBaseline => "input to baseline (reversed)",
        }
    }
}

text_form!(Direction, "direction");

/// One way of integrating: a fixed rule, the adaptive rule, or IDGI. Text form: the rule's
/// name (`gauss-legendre`, …), `adaptive`, `idgi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Rule(IntegrationRule),
    Adaptive,
    /// IDGI on the paper's grid (α = j/n, the left rule's points and the input).
    Idgi,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Rule(r) => r.name(),
            Scheme::Adaptive => "adaptive",
            Scheme::Idgi => "idgi",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Scheme::Rule(r) => r.label(),
            Scheme::Adaptive => "adaptive (tolerance mode)",
            Scheme::Idgi => "IDGI",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "adaptive" => Ok(Scheme::Adaptive),
            "idgi" => Ok(Scheme::Idgi),
            other => other
                .parse::<IntegrationRule>()
                .map(Scheme::Rule)
                .map_err(|_| format!("unknown scheme `{s}` (expected a rule, adaptive or idgi)")),
        }
    }
}

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyConfig {
    pub schemes: Vec<Scheme>,
    /// n of the fixed rules and IDGI.
    pub steps: Vec<usize>,
    /// The adaptive rule runs once to the smallest of these; every round is a row.
    pub tolerance: f64,
    /// The adaptive rule's budget.
    pub max_points: usize,
    pub directions: Vec<Direction>,
    /// Gauss–Legendre points of the reference.
    pub reference_steps: usize,
    pub batch_size: usize,
}

impl Default for StudyConfig {
    fn default() -> Self {
        let mut schemes: Vec<Scheme> = IntegrationRule::ALL.into_iter().map(Scheme::Rule).collect();
        schemes.push(Scheme::Adaptive);
        schemes.push(Scheme::Idgi);
        Self {
            schemes,
            steps: vec![4, 8, 16, 32, 64, 128],
            tolerance: 0.002,
            max_points: 256,
            directions: Direction::ALL.to_vec(),
            reference_steps: 1024,
            batch_size: 16,
        }
    }
}

impl StudyConfig {
    /// Gradient evaluations the study takes (for progress).
    pub fn gradient_count(&self) -> usize {
        let per_direction: usize = self
            .schemes
            .iter()
            .map(|s| match s {
                Scheme::Rule(_) => self.steps.iter().sum(),
                Scheme::Idgi => self.steps.iter().sum(),
                Scheme::Adaptive => self.max_points,
            })
            .sum();
        self.reference_steps + 1 + per_direction * self.directions.len()
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(AttributionError::InvalidArgument(m.into()));
        if self.schemes.is_empty() || self.directions.is_empty() {
            return bad("the study needs at least one scheme and one direction");
        }
        if self.steps.contains(&0) || self.reference_steps < 2 || self.batch_size == 0 {
            return bad("steps, reference steps and batch size must be positive");
        }
        if self.steps.is_empty() && self.schemes.iter().any(|s| *s != Scheme::Adaptive) {
            return bad("the fixed rules and IDGI need at least one step count");
        }
        Ok(())
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyRow {
    pub direction: Direction,
    pub scheme: Scheme,
    /// n for fixed rules and IDGI; the round for the adaptive rule.
    pub parameter: usize,
    pub gradient_points: usize,
    /// Forward-only evaluations (the adaptive rule's pilot; IDGI's score at the input).
    pub forward_points: usize,
    /// |Σ A − Δf| / |Δf|.
    pub completeness_error: f64,
    /// ‖A − A_ref‖₂ / ‖A_ref‖₂.
    pub map_error: f64,
    /// The adaptive rule's own estimate of `map_error` (its stopping criterion).
    pub map_error_estimate: Option<f64>,
    pub seconds: f64,
}

/// The study's rows, and the reference's facts.
#[derive(Debug, Clone)]
pub struct Study {
    pub rows: Vec<StudyRow>,
    /// f(x) − f(x′).
    pub score_change: f64,
    pub reference_steps: usize,
    /// The reference's own completeness error (how good the reference is).
    pub reference_completeness_error: f64,
}

impl Study {
    /// CSV with a header; the columns are the [`StudyRow`] fields.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "direction,scheme,parameter,gradient_points,forward_points,completeness_error,map_error,map_error_estimate,seconds\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "{},{},{},{},{},{:.6e},{:.6e},{},{:.4}\n",
                r.direction,
                r.scheme,
                r.parameter,
                r.gradient_points,
                r.forward_points,
                r.completeness_error,
                r.map_error,
                r.map_error_estimate.map_or_else(String::new, |e| format!("{e:.6e}")),
                r.seconds
            ));
        }
        out
    }

    /// The schemes measured, in the order of their first rows.
    pub fn schemes(&self) -> Vec<Scheme> {
        let mut out: Vec<Scheme> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.scheme) {
                out.push(r.scheme);
            }
        }
        out
    }

    /// The directions measured, in the order of their first rows.
    pub fn directions(&self) -> Vec<Direction> {
        let mut out: Vec<Direction> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.direction) {
                out.push(r.direction);
            }
        }
        out
    }

    /// The fewest gradients with which `scheme` in `direction` reached both a completeness
    /// error ≤ `completeness` and a map error ≤ `map` (the bench's criteria).
    pub fn points_to_reach(&self, scheme: Scheme, direction: Direction, completeness: f64, map: f64) -> Option<usize> {
        self.rows
            .iter()
            .filter(|r| r.scheme == scheme && r.direction == direction)
            .filter(|r| r.completeness_error <= completeness && r.map_error <= map)
            .map(|r| r.gradient_points)
            .min()
    }
}

fn rel_l2(a: &[f32], reference: &[f64], sign: f64) -> f64 {
    let num: f64 = a
        .iter()
        .zip(reference)
        .map(|(x, y)| (*x as f64 - sign * y).powi(2))
        .sum();
    let den: f64 = reference.iter().map(|y| y * y).sum();
    if den > 0.0 {
        (num / den).sqrt()
    } else {
        num.sqrt()
    }
}

fn sum(a: &[f32]) -> f64 {
    a.iter().map(|&v| v as f64).sum()
}

/// Runs the study on the straight path from `baseline` to `input` for class `target`.
/// Progress counts gradient evaluations against [`StudyConfig::gradient_count`].
pub fn convergence_study(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    baseline: &Tensor,
    target: usize,
    config: &StudyConfig,
    monitor: &mut Monitor,
) -> Result<Study> {
    config.validate()?;
    let total = config.gradient_count();
    let len = input.elem_count();
    let mut done = 0usize;
    // The reference: one Gauss–Legendre walk with both ends, integrated both ways.
    let mut reference = RiemannSink::new(len);
    let mut reference_idgi = IdgiSink::new(len, ZeroGradientPolicy::default());
    {
        let mut tee = Tee {
            sinks: vec![&mut reference, &mut reference_idgi],
        };
        let cfg = IgConfig {
            steps: config.reference_steps,
            rule: IntegrationRule::GaussLegendre,
            batch_size: config.batch_size,
        };
        let mut progress = |d: usize, _: usize| {
            if let Some(f) = monitor.on_progress.as_mut() {
                f(d, total);
            }
        };
        let mut inner = Monitor {
            on_progress: Some(&mut progress),
            cancel: monitor.cancel,
        };
        straight_path(
            oracle,
            input,
            baseline,
            target,
            &cfg,
            Walk::serving(&[Integration::Riemann, Integration::Idgi]),
            &mut tee,
            &mut inner,
        )?;
    }
    done += config.reference_steps + 1;
    let score_change = reference_idgi
        .score_change()
        .ok_or_else(|| AttributionError::InvalidArgument("the reference walk scored no points".into()))?;
    let scale = score_change.abs().max(1e-12);
    let reference_map = reference.sum.clone();
    let reference_idgi_map = reference_idgi.sum.clone();
    let reference_completeness_error = (reference_map.iter().sum::<f64>() - score_change).abs() / scale;

    let mut rows = Vec::new();
    for &direction in &config.directions {
        let (start, end, sign) = match direction {
            Direction::ToInput => (baseline, input, 1.0),
            Direction::ToBaseline => (input, baseline, -1.0),
        };
        for &scheme in &config.schemes {
            match scheme {
                Scheme::Rule(rule) => {
                    for &n in &config.steps {
                        monitor.check_cancel()?;
                        let t0 = Instant::now();
                        let mut sink = RiemannSink::new(len);
                        let cfg = IgConfig {
                            steps: n,
                            rule,
                            batch_size: config.batch_size,
                        };
                        straight_path(
                            oracle,
                            end,
                            start,
                            target,
                            &cfg,
                            Integration::Riemann,
                            &mut sink,
                            &mut Monitor::none(),
                        )?;
                        let a = sink.attribution();
                        rows.push(StudyRow {
                            direction,
                            scheme,
                            parameter: n,
                            gradient_points: n,
                            forward_points: 0,
                            completeness_error: (sum(&a) - sign * score_change).abs() / scale,
                            map_error: rel_l2(&a, &reference_map, sign),
                            map_error_estimate: None,
                            seconds: t0.elapsed().as_secs_f64(),
                        });
                        done += n;
                        monitor.step(done, total)?;
                    }
                }
                Scheme::Idgi => {
                    for &n in &config.steps {
                        monitor.check_cancel()?;
                        let t0 = Instant::now();
                        let mut sink = IdgiSink::new(len, ZeroGradientPolicy::default());
                        let cfg = IgConfig {
                            steps: n,
                            rule: IntegrationRule::RiemannLeft,
                            batch_size: config.batch_size,
                        };
                        straight_path(
                            oracle,
                            end,
                            start,
                            target,
                            &cfg,
                            Integration::Idgi,
                            &mut sink,
                            &mut Monitor::none(),
                        )?;
                        let a = sink.attribution();
                        rows.push(StudyRow {
                            direction,
                            scheme,
                            parameter: n,
                            gradient_points: n,
                            forward_points: 1,
                            completeness_error: (sum(&a) - sign * score_change).abs() / scale,
                            map_error: rel_l2(&a, &reference_idgi_map, sign),
                            map_error_estimate: None,
                            seconds: t0.elapsed().as_secs_f64(),
                        });
                        done += n;
                        monitor.step(done, total)?;
                    }
                }
                Scheme::Adaptive => {
                    monitor.check_cancel()?;
                    let t0 = Instant::now();
                    let geometry = StraightGeometry::new(oracle, end, start, target)?;
                    let cfg = AdaptiveConfig::new(config.tolerance, config.max_points, config.batch_size);
                    let mut sink = NoSink;
                    let outcome = adaptive_path(&geometry, &cfg, &mut sink, &mut Monitor::none(), true)?;
                    let seconds = t0.elapsed().as_secs_f64();
                    for (round, r) in outcome.rounds.iter().enumerate() {
                        let map = r.map.as_deref().unwrap_or(&[]);
                        rows.push(StudyRow {
                            direction,
                            scheme,
                            parameter: round,
                            gradient_points: r.gradient_points,
                            forward_points: outcome.forward_points,
                            completeness_error: (sum(map) - sign * score_change).abs() / scale,
                            map_error: rel_l2(map, &reference_map, sign),
                            map_error_estimate: Some(r.map_error_estimate),
                            seconds: seconds * r.gradient_points as f64 / outcome.gradient_points.max(1) as f64,
                        });
                    }
                    done += config.max_points;
                    monitor.step(done.min(total), total)?;
                }
            }
        }
    }
    Ok(Study {
        rows,
        score_change,
        reference_steps: config.reference_steps,
        reference_completeness_error,
    })
}

/// A sink that keeps nothing (the study reads the adaptive rule's rounds instead).
struct NoSink;

impl StepSink for NoSink {
    fn step(&mut self, _: &super::path::PathStep) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::attribution::testing::FnOracle;

    /// On a smooth separable function every scheme's errors fall with n, the reference is
    /// exact, and the backward direction mirrors the forward one.
    #[test]
    fn study_rows_fall_with_points_and_mirror_between_directions() {
        let oracle = FnOracle {
            f: |x| x.iter().map(|v| (2.0 * v).sin() + v * v).sum(),
            grad: |x| x.iter().map(|v| 2.0 * (2.0 * v).cos() + 2.0 * v).collect(),
        };
        let x = Tensor::from_slice(&[1.0f32, -0.5, 2.0], 3, &Device::Cpu).unwrap();
        let b = Tensor::from_slice(&[0.0f32, 0.5, 0.0], 3, &Device::Cpu).unwrap();
        let config = StudyConfig {
            steps: vec![4, 16, 64],
            reference_steps: 256,
            ..StudyConfig::default()
        };
        let study = convergence_study(&oracle, &x, &b, 0, &config, &mut Monitor::none()).unwrap();
        assert!(
            study.reference_completeness_error < 1e-6,
            "{}",
            study.reference_completeness_error
        );
        for direction in Direction::ALL {
            for rule in [IntegrationRule::RiemannRight, IntegrationRule::RiemannMiddle] {
                let errors: Vec<f64> = study
                    .rows
                    .iter()
                    .filter(|r| r.direction == direction && r.scheme == Scheme::Rule(rule))
                    .map(|r| r.map_error)
                    .collect();
                assert_eq!(errors.len(), 3);
                assert!(
                    errors[0] > errors[1] && errors[1] > errors[2],
                    "{direction} {rule}: {errors:?}"
                );
            }
        }
        // Right in one direction is left in the other.
        let err = |d, r| {
            study
                .rows
                .iter()
                .find(|row| row.direction == d && row.scheme == Scheme::Rule(r) && row.parameter == 16)
                .unwrap()
                .map_error
        };
        let (a, b2) = (
            err(Direction::ToInput, IntegrationRule::RiemannRight),
            err(Direction::ToBaseline, IntegrationRule::RiemannLeft),
        );
        assert!((a - b2).abs() < 1e-4 * a.max(1e-9), "{a} vs {b2}");
        // IDGI is complete at every n.
        assert!(study
            .rows
            .iter()
            .filter(|r| r.scheme == Scheme::Idgi)
            .all(|r| r.completeness_error < 1e-5));
        let csv = study.to_csv();
        assert_eq!(csv.lines().count(), study.rows.len() + 1);
        assert!(csv.contains("to-baseline,adaptive,0,9,9,"));
    }
}
