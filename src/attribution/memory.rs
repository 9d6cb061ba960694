//! What a job will hold in memory, estimated before it starts, so that a job that cannot
//! fit is refused with a message and one that fits only without its full trace runs with
//! a coarser trace (and says so), instead of the process being killed mid-way.
//!
//! The three parts: one gradient pass (the batch of points and every activation the
//! reverse pass needs; [`crate::model::Classifier::gradient_bytes_per_point`] per point,
//! the batch capped as [`super::ModelOracle`] caps it, at half the available memory); the
//! path's trace for the scrubber (bounded by [`RunOptions::trace_budget`]); and the
//! method's own buffers (f64 sums, the path's current points, the result), a few copies
//! of the input.

use super::method::{MethodSpec, RunOptions};
use super::trace::bytes_per_step;
use crate::attribution::method::PathKind;

const MB: f64 = 1024.0 * 1024.0;

/// Copies of the input (in 8-byte units) a method keeps besides its passes: the running
/// f64 sums, the batch of points being built, the baseline, the result. Generous on
/// purpose: the estimate must not be below the truth.
const BUFFER_COPIES: u64 = 8;

/// A job's estimated peak memory, in bytes, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobMemory {
    /// One gradient pass at the job's batch size.
    pub pass: u64,
    /// One gradient pass on a single point: the least any job needs.
    pub single_point_pass: u64,
    /// The trace, at the job's trace budget.
    pub trace: u64,
    /// The method's own buffers.
    pub buffers: u64,
}

/// What to do with a job, given the memory there is.
#[derive(Debug, Clone, PartialEq)]
pub enum MemoryPlan {
    Run,
    /// Run with a smaller trace budget; `message` says what the user loses.
    ShrinkTrace {
        trace_budget: usize,
        message: String,
    },
    Refuse {
        message: String,
    },
}

impl JobMemory {
    /// `input_len`: elements of one input ([C, H, W]); `per_point`: bytes one point takes
    /// in a gradient pass; `pass_cap`: the most bytes one pass may take (the oracle splits
    /// larger batches).
    pub fn estimate(spec: &MethodSpec, options: &RunOptions, input_len: usize, per_point: u64, pass_cap: u64) -> Self {
        let batch = options.batch_size.max(1) as u64;
        let pass = (batch * per_point).min(pass_cap.max(per_point));
        let trace = match spec {
            MethodSpec::PathIntegral { path, steps, .. } if options.record_trace => {
                let full = bytes_per_step(input_len, *path == PathKind::Guided) as u64 * (*steps as u64 + 1);
                full.min(options.trace_budget as u64)
            }
            _ => 0,
        };
        Self {
            pass,
            single_point_pass: per_point,
            trace,
            buffers: BUFFER_COPIES * 8 * input_len as u64,
        }
    }

    pub fn total(&self) -> u64 {
        self.pass + self.trace + self.buffers
    }

    /// Decides against `available` bytes, keeping a tenth of them free for everything
    /// else (the UI, other jobs' results).
    pub fn plan(&self, available: u64) -> MemoryPlan {
        let usable = available - available / 10;
        let minimum = self.single_point_pass + self.buffers;
        if minimum > usable {
            return MemoryPlan::Refuse {
                message: format!(
                    "not enough memory: this job needs at least {:.0} MB (one model pass on one point, {:.0} MB, \
                     plus {:.0} MB of buffers) and {:.0} MB is available; close other programs or use a smaller model",
                    minimum as f64 / MB,
                    self.single_point_pass as f64 / MB,
                    self.buffers as f64 / MB,
                    available as f64 / MB
                ),
            };
        }
        // The oracle splits batches to fit, so only the trace can push a job over.
        let pass = self.pass.min(usable / 2).max(self.single_point_pass);
        if self.trace == 0 || pass + self.trace + self.buffers <= usable {
            return MemoryPlan::Run;
        }
        let room = usable.saturating_sub(pass + self.buffers);
        let trace_budget = room as usize;
        // Here the trace is non-zero (a zero trace always runs, above).
        let kept = (self.trace as f64 / room.max(1) as f64).ceil();
        MemoryPlan::ShrinkTrace {
            trace_budget,
            message: format!(
                "memory is short ({:.0} MB available): the scrubber keeps the gradient of about every {}{} step \
                 instead of every step; the map itself is unchanged",
                available as f64 / MB,
                kept,
                ordinal_suffix(kept as u64)
            ),
        }
    }
}

fn ordinal_suffix(n: u64) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::path::Integration;
    use crate::attribution::{Baseline, IntegrationRule};

    fn ig(steps: usize, path: PathKind) -> MethodSpec {
        MethodSpec::PathIntegral {
            path,
            integration: Integration::Riemann,
            baseline: Baseline::Black,
            steps,
            rule: IntegrationRule::GaussLegendre,
            tolerance: None,
        }
    }

    const LEN: usize = 3 * 224 * 224;

    #[test]
    fn the_estimate_adds_its_parts() {
        let options = RunOptions {
            record_trace: true,
            batch_size: 16,
            ..RunOptions::default()
        };
        let m = JobMemory::estimate(&ig(200, PathKind::Straight), &options, LEN, 10 << 20, u64::MAX);
        assert_eq!(m.pass, 160 << 20);
        // 201 steps × (gradient + contribution) × f16.
        assert_eq!(m.trace, 201 * LEN as u64 * 4);
        assert_eq!(m.buffers, 64 * LEN as u64);
        assert_eq!(m.total(), m.pass + m.trace + m.buffers);
        // Guided IG also keeps its points; the budget (256 MiB) caps its 362 MB at 400 steps.
        let g = JobMemory::estimate(&ig(400, PathKind::Guided), &options, LEN, 10 << 20, u64::MAX);
        assert_eq!(g.trace, options.trace_budget as u64);
        // No trace without recording, and the oracle's cap bounds the pass.
        let plain = JobMemory::estimate(
            &ig(200, PathKind::Straight),
            &RunOptions::default(),
            LEN,
            10 << 20,
            40 << 20,
        );
        assert_eq!((plain.trace, plain.pass), (0, 40 << 20));
    }

    #[test]
    fn plenty_runs_short_shrinks_the_trace_and_too_little_refuses() {
        let options = RunOptions {
            record_trace: true,
            ..RunOptions::default()
        };
        let m = JobMemory::estimate(&ig(200, PathKind::Straight), &options, LEN, 10 << 20, u64::MAX);
        assert_eq!(m.plan(8 << 30), MemoryPlan::Run);

        // 250 MB: 225 MB usable; the oracle halves the pass to 112 MB, and the 121 MB trace
        // does not fit beside it and the buffers.
        let MemoryPlan::ShrinkTrace { trace_budget, message } = m.plan(250 << 20) else {
            panic!("expected a smaller trace");
        };
        let usable = (250u64 << 20) - (250u64 << 20) / 10;
        assert_eq!(trace_budget as u64, usable - (usable / 2) - m.buffers);
        assert!(
            message.contains("the scrubber keeps the gradient of about every"),
            "{message}"
        );
        assert!(message.contains("the map itself is unchanged"), "{message}");

        // 15 MB cannot hold even one point's pass (10 MB) and the buffers (9.2 MiB).
        let MemoryPlan::Refuse { message } = m.plan(15 << 20) else {
            panic!("expected a refusal");
        };
        assert!(
            message.starts_with("not enough memory: this job needs at least 19 MB"),
            "{message}"
        );
    }
}
