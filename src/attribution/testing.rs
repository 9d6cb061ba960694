//! Analytic oracles for unit tests: a function of all features with a known gradient.

use candle_core::Tensor;

use super::{GradientOracle, Result};

/// f(x) and ∇f(x) given as plain functions of the flattened point (f64).
pub struct FnOracle {
    pub f: fn(&[f64]) -> f64,
    pub grad: fn(&[f64]) -> Vec<f64>,
}

impl FnOracle {
    fn rows(points: &Tensor) -> Result<Vec<Vec<f64>>> {
        let rows = points.flatten_from(1)?.to_vec2::<f32>()?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_iter().map(|v| v as f64).collect())
            .collect())
    }
}

impl GradientOracle for FnOracle {
    fn scores(&self, points: &Tensor, _target: usize) -> Result<Vec<f32>> {
        Ok(Self::rows(points)?.iter().map(|r| (self.f)(r) as f32).collect())
    }

    fn scores_and_gradients(&self, points: &Tensor, _target: usize) -> Result<(Vec<f32>, Tensor)> {
        let rows = Self::rows(points)?;
        let scores = rows.iter().map(|r| (self.f)(r) as f32).collect();
        let g: Vec<f32> = rows.iter().flat_map(|r| (self.grad)(r)).map(|v| v as f32).collect();
        Ok((scores, Tensor::from_vec(g, points.dims(), points.device())?))
    }

    fn num_classes(&self) -> usize {
        1
    }
}

/// Deterministic uniform [0, 1) values from a 64-bit LCG (top 24 bits): reproducible test
/// data without depending on an RNG crate's stream.
pub fn lcg_uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}
