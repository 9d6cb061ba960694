//! SmoothGrad (Smilkov et al. 2017), SmoothGrad² and VarGrad (Adebayo et al. 2018; the
//! ROAR paper's ensembles, seed 004) around any base method: the base method is run on
//! n noisy copies of the input and the maps are averaged, squared-averaged or their
//! (population) variance taken.
//!
//! Noise is Gaussian with σ = `noise` × (max − min) of the input's pixels (PAIR's
//! `stdev_spread`), added in pixel space [0, 1] without clamping and then normalised
//! like the input, so the same fraction means the same thing for every model. Only the
//! input is noised: a baseline stays fixed, as in PAIR.

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::{AttributionError, Monitor, Result};
use crate::model::Normalization;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsembleKind {
    /// E[a]
    SmoothGrad,
    /// E[a²]
    SmoothGradSquared,
    /// E[a²] − E[a]² (population variance, as Captum).
    VarGrad,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnsembleConfig {
    pub kind: EnsembleKind,
    pub samples: usize,
    /// σ as a fraction of the input's pixel range (0.15 in PAIR and RECAL).
    pub noise: f64,
    pub seed: u64,
}

impl EnsembleConfig {
    pub fn validate(&self) -> Result<()> {
        if self.samples == 0 {
            return Err(AttributionError::InvalidArgument(
                "an ensemble needs at least 1 sample".into(),
            ));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(AttributionError::InvalidArgument(format!(
                "noise must be a non-negative fraction of the input range, got {}",
                self.noise
            )));
        }
        Ok(())
    }
}

/// Runs `base` on `samples` noisy copies of `input` ([C, H, W], normalised) and combines
/// the maps. Draw order: sample by sample, elements in CHW order, from ChaCha8(seed).
pub fn ensemble(
    input: &Tensor,
    norm: &Normalization,
    config: &EnsembleConfig,
    monitor: &mut Monitor,
    mut base: impl FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    config.validate()?;
    let (c, h, w) = input.dims3()?;
    let hw = h * w;
    let mut pixels = input.flatten_all()?.to_vec1::<f32>()?;
    norm.denormalize(&mut pixels, hw);
    let (lo, hi) = pixels
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let sd = (config.noise * (hi - lo) as f64) as f32;
    let normal = Normal::new(0f32, sd.max(0.0)).map_err(|e| AttributionError::InvalidArgument(e.to_string()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let n = c * hw;
    let mut sum = vec![0f64; n];
    let mut sum_sq = vec![0f64; n];
    for s in 0..config.samples {
        monitor.check_cancel()?;
        let noisy = if sd > 0.0 {
            let mut v: Vec<f32> = pixels.iter().map(|&p| p + normal.sample(&mut rng)).collect();
            norm.normalize_pixels(&mut v, hw);
            Tensor::from_vec(v, (c, h, w), input.device())?
        } else {
            input.clone()
        };
        let map = base(&noisy)?.flatten_all()?.to_vec1::<f32>()?;
        if map.len() != n {
            return Err(AttributionError::InvalidArgument(format!(
                "the base method returned {} values for an input of {n}",
                map.len()
            )));
        }
        for ((a, b), &m) in sum.iter_mut().zip(sum_sq.iter_mut()).zip(&map) {
            *a += m as f64;
            *b += (m as f64) * (m as f64);
        }
        monitor.step(s + 1, config.samples)?;
    }
    let k = config.samples as f64;
    let out: Vec<f32> = sum
        .iter()
        .zip(&sum_sq)
        .map(|(&a, &b)| {
            let mean = a / k;
            let mean_sq = b / k;
            (match config.kind {
                EnsembleKind::SmoothGrad => mean,
                EnsembleKind::SmoothGradSquared => mean_sq,
                EnsembleKind::VarGrad => (mean_sq - mean * mean).max(0.0),
            }) as f32
        })
        .collect();
    Ok(Tensor::from_vec(out, (c, h, w), input.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::gradient::gradient;
    use crate::attribution::testing::FnOracle;
    use candle_core::Device;

    fn oracle() -> FnOracle {
        FnOracle {
            f: |x| x.iter().enumerate().map(|(i, v)| (v * (i % 5 + 1) as f64).sin()).sum(),
            grad: |x| {
                x.iter()
                    .enumerate()
                    .map(|(i, v)| (i % 5 + 1) as f64 * (v * (i % 5 + 1) as f64).cos())
                    .collect()
            },
        }
    }

    fn input() -> Tensor {
        let v: Vec<f32> = (0..3 * 4 * 4).map(|i| ((i * 37) % 11) as f32 / 11.0 - 0.5).collect();
        Tensor::from_vec(v, (3, 4, 4), &Device::Cpu).unwrap()
    }

    fn run(kind: EnsembleKind, noise: f64, seed: u64) -> Vec<f32> {
        let o = oracle();
        let cfg = EnsembleConfig {
            kind,
            samples: 7,
            noise,
            seed,
        };
        ensemble(&input(), &Normalization::IMAGENET, &cfg, &mut Monitor::none(), |x| {
            Ok(gradient(&o, x, 0)?.1)
        })
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
    }

    /// algorithms.md §7 rows 6–7: with σ = 0, SmoothGrad = ∇f, SmoothGrad² = (∇f)², VarGrad = 0.
    #[test]
    fn zero_noise_reduces_to_the_base_method() {
        let g = gradient(&oracle(), &input(), 0)
            .unwrap()
            .1
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let sg = run(EnsembleKind::SmoothGrad, 0.0, 1);
        let sq = run(EnsembleKind::SmoothGradSquared, 0.0, 1);
        let var = run(EnsembleKind::VarGrad, 0.0, 1);
        for i in 0..g.len() {
            assert!((sg[i] - g[i]).abs() < 1e-6);
            assert!((sq[i] - g[i] * g[i]).abs() < 1e-5);
            assert!(var[i].abs() < 1e-5);
        }
    }

    #[test]
    fn noise_changes_the_map_deterministically_per_seed() {
        let a = run(EnsembleKind::SmoothGrad, 0.15, 3);
        assert_eq!(a, run(EnsembleKind::SmoothGrad, 0.15, 3));
        assert_ne!(a, run(EnsembleKind::SmoothGrad, 0.15, 4));
        let var = run(EnsembleKind::VarGrad, 0.15, 3);
        assert!(var.iter().all(|&v| v >= 0.0) && var.iter().any(|&v| v > 1e-4));
    }

    #[test]
    fn invalid_settings_are_errors() {
        let cfg = EnsembleConfig {
            kind: EnsembleKind::SmoothGrad,
            samples: 0,
            noise: 0.1,
            seed: 0,
        };
        assert!(cfg.validate().is_err());
        assert!(EnsembleConfig {
            samples: 1,
            noise: -1.0,
            ..cfg
        }
        .validate()
        .is_err());
    }
}
