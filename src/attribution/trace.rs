//! A record of every step of a path, so that a UI can step through the interpolation
//! points: the point, α, the score, the gradient and the step's contribution, and the
//! attribution accumulated up to any step.
//!
//! Memory. At 3×224×224 one step's gradient is 150 528 values. Gradients, contributions
//! and (for Guided IG) points are kept as f16, 301 KB each, so a 200-step trace takes
//! about 120 MB for the straight and blur paths (points are recomputed from α or σ) and
//! 180 MB for Guided IG. Beyond [`DEFAULT_TRACE_BUDGET`] the recorder keeps the
//! per-element data of every k-th step only (scores and α of all steps are always kept),
//! so a long path can never exhaust memory; f16 keeps about 3 significant digits, enough
//! to draw, never used to compute a result.

use half::f16;

use super::path::{PathStep, StepPoint, StepSink};
use super::Result;

/// Per-element bytes a trace may hold by default (256 MiB).
pub const DEFAULT_TRACE_BUDGET: usize = 256 << 20;

/// Where a recorded point is.
#[derive(Debug, Clone)]
pub enum TracePoint {
    Straight { alpha: f64 },
    Blurred { sigma: f64 },
    Values(Vec<f16>),
}

/// One recorded step.
#[derive(Debug, Clone)]
pub struct TraceStep {
    pub index: usize,
    pub alpha: f64,
    pub score: f32,
    pub point: TracePoint,
    /// Empty when this step's per-element data was not kept (see the module doc) or the
    /// step had none (a score-only endpoint).
    pub gradient: Vec<f16>,
    pub contribution: Vec<f16>,
}

/// A [`StepSink`] that records the path.
#[derive(Debug, Clone)]
pub struct TraceRecorder {
    len: usize,
    stride: usize,
    pub steps: Vec<TraceStep>,
}

fn to_f16(v: &[f32]) -> Vec<f16> {
    v.iter().map(|&x| f16::from_f32(x)).collect()
}

/// Bytes of per-element data one step needs when it keeps everything.
pub fn bytes_per_step(len: usize, stores_points: bool) -> usize {
    len * 2 * if stores_points { 3 } else { 2 }
}

impl TraceRecorder {
    /// A recorder for a path of about `expected_steps` points of `len` values each,
    /// keeping at most `budget` bytes of per-element data.
    pub fn new(len: usize, expected_steps: usize, stores_points: bool, budget: usize) -> Self {
        let total = bytes_per_step(len, stores_points).saturating_mul(expected_steps.max(1));
        let stride = total.div_ceil(budget.max(1)).max(1);
        Self {
            len,
            stride,
            steps: Vec::new(),
        }
    }

    /// Keeps per-element data of every `stride`-th step (1: all of them).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The attribution accumulated over steps 0..=i (only the kept contributions;
    /// exact when the stride is 1).
    pub fn running_attribution(&self, i: usize) -> Vec<f32> {
        let mut acc = vec![0f32; self.len];
        for s in self.steps.iter().take(i + 1) {
            for (a, c) in acc.iter_mut().zip(&s.contribution) {
                *a += c.to_f32();
            }
        }
        acc
    }

    /// The running sum of the contributions' totals, one value per step: the curve the
    /// completeness gap is read from.
    pub fn cumulative_totals(&self) -> Vec<f64> {
        let mut t = 0.0;
        self.steps
            .iter()
            .map(|s| {
                t += s.contribution.iter().map(|c| c.to_f64()).sum::<f64>();
                t
            })
            .collect()
    }

    pub fn memory_bytes(&self) -> usize {
        self.steps
            .iter()
            .map(|s| {
                2 * (s.gradient.len()
                    + s.contribution.len()
                    + match &s.point {
                        TracePoint::Values(v) => v.len(),
                        _ => 0,
                    })
            })
            .sum()
    }
}

impl StepSink for TraceRecorder {
    fn step(&mut self, step: &PathStep) -> Result<()> {
        // A point that adds nothing to the map (the ends a shared walk visits only for
        // IDGI) is not a step of the rule the user chose: the scrubber plays that rule's
        // points.
        if step.contribution.is_empty() {
            return Ok(());
        }
        let keep = step.index.is_multiple_of(self.stride);
        let point = match step.point {
            StepPoint::Straight { alpha } => TracePoint::Straight { alpha },
            StepPoint::Blurred { sigma } => TracePoint::Blurred { sigma },
            StepPoint::Values(v) if keep => TracePoint::Values(to_f16(v)),
            StepPoint::Values(_) => TracePoint::Values(Vec::new()),
        };
        self.steps.push(TraceStep {
            index: step.index,
            alpha: step.alpha,
            score: step.score,
            point,
            gradient: match (keep, step.gradient) {
                (true, Some(g)) => to_f16(g),
                _ => Vec::new(),
            },
            contribution: if keep { to_f16(step.contribution) } else { Vec::new() },
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(rec: &mut TraceRecorder, n: usize, len: usize) {
        let g = vec![0.5f32; len];
        let c = vec![0.25f32; len];
        for i in 0..n {
            rec.step(&PathStep {
                index: i,
                alpha: i as f64 / n as f64,
                point: StepPoint::Straight {
                    alpha: i as f64 / n as f64,
                },
                score: i as f32,
                gradient: Some(&g),
                contribution: &c,
            })
            .unwrap();
        }
    }

    #[test]
    fn records_every_step_and_running_sums() {
        let mut rec = TraceRecorder::new(10, 8, false, DEFAULT_TRACE_BUDGET);
        feed(&mut rec, 8, 10);
        assert_eq!(rec.steps.len(), 8);
        assert_eq!(rec.stride(), 1);
        assert_eq!(rec.running_attribution(3), vec![1.0; 10]);
        assert_eq!(rec.cumulative_totals()[7], 20.0);
        assert_eq!(rec.memory_bytes(), 8 * bytes_per_step(10, false));
    }

    /// 200 steps at 224² would need ~120 MB; a 30 MB budget keeps every 4th step's data.
    #[test]
    fn budget_bounds_memory() {
        let len = 3 * 224 * 224;
        let rec = TraceRecorder::new(len, 200, false, 30 << 20);
        assert_eq!(bytes_per_step(len, false) * 200, 120_422_400);
        assert_eq!(rec.stride(), 4);
        let mut small = TraceRecorder::new(100, 10, false, 1000);
        feed(&mut small, 10, 100);
        assert!(small.memory_bytes() <= 1000 + bytes_per_step(100, false));
        assert_eq!(small.steps.len(), 10, "scores and α of every step are kept");
    }
}
