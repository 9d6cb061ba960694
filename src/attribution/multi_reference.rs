//! Multi-reference path methods (algorithms.md §2.4) and their re-calibration (§2.10):
//! IG-Uniform, IG-SG, IG-SQ and Expected Gradients as in ypeiyu/attribution_recalibration
//! ("RECAL").
//!
//! Each estimates A = E_{r∼D, α∼π}[(x − r) ⊙ ∇f(r + α(x − r))] from m references with k
//! interpolation points each: m·k gradient evaluations, called slots j = 0..m·k−1; slot j
//! belongs to group b = j div k, and group b is scored against reference r_b. With G_b the
//! mean gradient of group b and g_j the gradient of slot j at its point p_j:
//! - [`Recalibration::Vanilla`]: A = (1/m) Σ_b (x − r_b) ⊙ G_b; IG-SQ: (x − r_b) ⊙ G_b².
//! - [`Recalibration::ValidRef`]: the m terms T_b = (x − r_b) ⊙ G_b, re-calibrated.
//! - [`Recalibration::ValidIp`]: the m·k terms T_j, re-calibrated (see [`RecalCompat`]).
//!
//! In the re-calibrated modes IG-SQ sums T² while the mask still looks at the sign of T.
//!
//! Random numbers: one `ChaCha8Rng` seeded with `MultiReferenceConfig::seed`, drawn in this
//! order: (1) the references, reference by reference, each element in CHW order — one f32
//! U[0,1) per element for IG-Uniform, one f32 normal per element for IG-SG/IG-SQ (none
//! when the input is constant), one `index::sample(pool, m)` for Expected Gradients;
//! (2) Expected Gradients only: one f32 α ∼ U[0,1) per slot, in slot order.

use candle_core::{DType, Tensor};
use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::baseline::DEFAULT_NOISE_FRACTION;
use super::recalibration::{RecalAccumulator, Recalibration};
use super::{AttributionError, GradientOracle, Monitor, Result};
use crate::model::Normalization;

/// The clean estimator, or RECAL's code with its quirks, for reproduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecalCompat {
    /// Slot j evaluates reference b = j div k, so every reference is integrated over its
    /// own α grid; the valid_ip term is T_j = (x − r_b) ⊙ g_j, without a 1/k factor
    /// (IG restricted to the valid points: f = w·x gives w ⊙ (x − r) where that is ≥ 0).
    #[default]
    Clean,
    /// RECAL HEAD (IG_SG.py and its subclasses), three quirks together:
    /// - pairing: slot j evaluates reference ρ(j) = j mod m (the reference stack is tiled k
    ///   times) at α(j) = grid[j mod k], yet its gradient is averaged into group j div k and
    ///   multiplied by (x − r_{j div k}). With k = 5, m = 10 only 10 distinct points exist,
    ///   each evaluated 5 times, and reference i is only seen at α = (i mod 5)/4;
    /// - valid_ip term T_j = (g_j / k) ⊙ (x − p_j), i.e. a 1/k factor and the remaining
    ///   distance (1 − α_j)(x − r) instead of (x − r); the α = 1 term is then exactly 0 and
    ///   counts as valid.
    Reference,
}

impl RecalCompat {
    pub const ALL: [RecalCompat; 2] = [RecalCompat::Clean, RecalCompat::Reference];

    pub fn name(self) -> &'static str {
        match self {
            RecalCompat::Clean => "clean",
            RecalCompat::Reference => "reference",
        }
    }
}

text_form!(RecalCompat, "estimator");

/// Which references and α the estimator uses.
#[derive(Debug, Clone, Default)]
pub enum MultiReferenceMethod {
    /// References U[0,1) per element in pixel space, then normalised; α on the grid.
    #[default]
    IgUniform,
    /// References clamp(u + N(0, σ²), 0, 1) in pixel space, u the input in pixels,
    /// σ = noise_fraction · (max u − min u); α on the grid.
    IgSg,
    /// IG-SG's references and grid, with squared terms (RECAL IG_SQ.py).
    IgSq,
    /// m references drawn without replacement from `pool` (normalised tensors shaped like
    /// the input, e.g. images of a folder loaded by the caller); α ∼ U[0,1) per slot.
    ExpectedGradients { pool: Vec<Tensor> },
}

impl MultiReferenceMethod {
    pub fn name(&self) -> &'static str {
        match self {
            MultiReferenceMethod::IgUniform => "ig-uniform",
            MultiReferenceMethod::IgSg => "ig-sg",
            MultiReferenceMethod::IgSq => "ig-sq",
            MultiReferenceMethod::ExpectedGradients { .. } => "expected-gradients",
        }
    }

    fn squared_terms(&self) -> bool {
        matches!(self, MultiReferenceMethod::IgSq)
    }
}

#[derive(Debug, Clone)]
pub struct MultiReferenceConfig {
    pub method: MultiReferenceMethod,
    pub recalibration: Recalibration,
    pub compat: RecalCompat,
    /// m, the number of references (RECAL `bg_size`).
    pub references: usize,
    /// k, the interpolation points per reference.
    pub points_per_reference: usize,
    /// σ of IG-SG/IG-SQ references as a fraction of the input's pixel range.
    pub noise_fraction: f64,
    pub seed: u64,
    /// Points per forward/backward pass.
    pub batch_size: usize,
}

impl Default for MultiReferenceConfig {
    /// RECAL's CLI defaults (m = 10, k = 5, valid_ip), with the clean estimator.
    fn default() -> Self {
        Self {
            method: MultiReferenceMethod::default(),
            recalibration: Recalibration::default(),
            compat: RecalCompat::default(),
            references: 10,
            points_per_reference: 5,
            noise_fraction: DEFAULT_NOISE_FRACTION,
            seed: 0,
            batch_size: 16,
        }
    }
}

impl MultiReferenceConfig {
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(AttributionError::InvalidArgument(m));
        if self.references == 0 {
            return invalid("the number of references must be at least 1".into());
        }
        if self.points_per_reference == 0 {
            return invalid("the number of points per reference must be at least 1".into());
        }
        if self.batch_size == 0 {
            return invalid("batch size must be at least 1".into());
        }
        if !(self.noise_fraction.is_finite() && self.noise_fraction >= 0.0) {
            return invalid(format!(
                "noise fraction must be a non-negative number, got {}",
                self.noise_fraction
            ));
        }
        if let MultiReferenceMethod::ExpectedGradients { pool } = &self.method {
            if pool.len() < self.references {
                return invalid(format!(
                    "expected gradients draws {} distinct references but the pool has {} images; \
                     add images or lower the number of references",
                    self.references,
                    pool.len()
                ));
            }
        }
        Ok(())
    }

    /// Everything but the references and α.
    pub fn estimator(&self) -> Estimator {
        Estimator {
            points_per_reference: self.points_per_reference,
            squared_terms: self.method.squared_terms(),
            recalibration: self.recalibration,
            compat: self.compat,
            batch_size: self.batch_size,
        }
    }
}

/// How evaluated slots become an attribution, whatever the references and α are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimator {
    pub points_per_reference: usize,
    /// IG-SQ: sum squared terms.
    pub squared_terms: bool,
    pub recalibration: Recalibration,
    pub compat: RecalCompat,
    pub batch_size: usize,
}

#[derive(Debug, Clone)]
pub struct MultiReferenceResult {
    /// The attribution, with the input's shape (normalised-space units, like IG).
    pub attribution: Tensor,
    /// The m references used, normalised, in group order.
    pub references: Vec<Tensor>,
    /// α of each slot (m·k).
    pub slot_alphas: Vec<f32>,
    /// Fraction of (term, feature) pairs kept by re-calibration; 1 for vanilla.
    pub valid_fraction: f64,
    /// Points sent through a forward and a backward pass (m·k).
    pub gradient_evaluations: usize,
}

/// RECAL's grid: linspace(0, 1, k) in f32, or [1] when k = 1.
pub fn alpha_grid(k: usize) -> Vec<f32> {
    match k {
        1 => vec![1.0],
        _ => (0..k).map(|i| (i as f64 / (k - 1) as f64) as f32).collect(),
    }
}

/// The grid's α of every slot: slot j gets grid[j mod k] (the same in both compat modes;
/// only the reference a slot evaluates differs).
pub fn grid_slot_alphas(references: usize, k: usize) -> Vec<f32> {
    let grid = alpha_grid(k);
    (0..references * k).map(|j| grid[j % k]).collect()
}

/// The reference slot j is evaluated at, among m, with k points per reference.
pub fn slot_reference(compat: RecalCompat, slot: usize, references: usize, k: usize) -> usize {
    match compat {
        RecalCompat::Clean => slot / k,
        RecalCompat::Reference => slot % references,
    }
}

/// The multi-reference attribution of `input` ([C, H, W], normalised with `norm`) for
/// class `target`, with references and α drawn from `config.seed`.
pub fn multi_reference_attribution(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    norm: &Normalization,
    target: usize,
    config: &MultiReferenceConfig,
    monitor: &mut Monitor,
) -> Result<MultiReferenceResult> {
    config.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let references = draw_references(config, input, norm, &mut rng)?;
    let slots = config.references * config.points_per_reference;
    let slot_alphas = match config.method {
        MultiReferenceMethod::ExpectedGradients { .. } => (0..slots).map(|_| rng.random::<f32>()).collect(),
        _ => grid_slot_alphas(config.references, config.points_per_reference),
    };
    let (attribution, valid_fraction) = estimate_from_references(
        oracle,
        input,
        &references,
        &slot_alphas,
        &config.estimator(),
        target,
        monitor,
    )?;
    Ok(MultiReferenceResult {
        attribution: Tensor::from_vec(attribution, input.dims(), input.device())?,
        references,
        slot_alphas,
        valid_fraction,
        gradient_evaluations: slots,
    })
}

fn flat_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// The m references of the configured method, normalised like the input.
fn draw_references(
    config: &MultiReferenceConfig,
    input: &Tensor,
    norm: &Normalization,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Tensor>> {
    let m = config.references;
    if let MultiReferenceMethod::ExpectedGradients { pool } = &config.method {
        let picked = index::sample(rng, pool.len(), m);
        return picked
            .iter()
            .map(|i| {
                let r = &pool[i];
                if r.dims() != input.dims() {
                    return Err(AttributionError::InvalidArgument(format!(
                        "reference {i} has shape {:?}, the input {:?}",
                        r.dims(),
                        input.dims()
                    )));
                }
                Ok(r.to_dtype(DType::F32)?)
            })
            .collect();
    }
    let (c, h, w) = input.dims3()?;
    let hw = h * w;
    let mut pixels = flat_f32(input)?;
    norm.denormalize(&mut pixels, hw);
    let (lo, hi) = pixels
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let sd = (config.noise_fraction * (hi - lo) as f64) as f32;
    let normal = (sd > 0.0)
        .then(|| Normal::new(0f32, sd).map_err(|e| AttributionError::InvalidArgument(e.to_string())))
        .transpose()?;
    (0..m)
        .map(|_| {
            let mut r: Vec<f32> = match (&config.method, &normal) {
                (MultiReferenceMethod::IgUniform, _) => (0..c * hw).map(|_| rng.random::<f32>()).collect(),
                (_, Some(normal)) => pixels
                    .iter()
                    .map(|&v| (v + normal.sample(rng)).clamp(0.0, 1.0))
                    .collect(),
                (_, None) => pixels.iter().map(|&v| v.clamp(0.0, 1.0)).collect(),
            };
            norm.normalize_pixels(&mut r, hw);
            Ok(Tensor::from_vec(r, (c, h, w), input.device())?)
        })
        .collect()
}

/// The estimator on given references (m, each shaped like `input`) and the α of each of
/// the m·k slots: the core of every multi-reference method, usable with any reference set
/// (e.g. several fixed baselines on the α grid). Streams: holds one batch of gradients and
/// one group sum, never all slots. Returns the flat attribution and the kept fraction.
pub fn estimate_from_references(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    references: &[Tensor],
    slot_alphas: &[f32],
    estimator: &Estimator,
    target: usize,
    monitor: &mut Monitor,
) -> Result<(Vec<f32>, f64)> {
    let (m, k) = (references.len(), estimator.points_per_reference);
    let slots = m * k;
    if m == 0 || k == 0 || estimator.batch_size == 0 {
        return Err(AttributionError::InvalidArgument(
            "references, points per reference and batch size must all be at least 1".into(),
        ));
    }
    if slot_alphas.len() != slots {
        return Err(AttributionError::InvalidArgument(format!(
            "{} α values for {m} references × {k} points",
            slot_alphas.len()
        )));
    }
    if let Some(r) = references.iter().find(|r| r.dims() != input.dims()) {
        return Err(AttributionError::InvalidArgument(format!(
            "a reference has shape {:?}, the input {:?}",
            r.dims(),
            input.dims()
        )));
    }
    let x = flat_f32(input)?;
    let n = x.len();
    let refs = references.iter().map(flat_f32).collect::<Result<Vec<_>>>()?;
    let per_point = estimator.recalibration == Recalibration::ValidIp;
    let mut acc = RecalAccumulator::new(n, estimator.recalibration.filters());
    let mut group_sum = vec![0f64; if per_point { 0 } else { n }];
    let mut shape = vec![0];
    shape.extend(input.dims());

    for start in (0..slots).step_by(estimator.batch_size) {
        let end = (start + estimator.batch_size).min(slots);
        // (1 − α) r + α x, as RECAL builds them: the α = 1 point is exactly x.
        let mut points = Vec::with_capacity((end - start) * n);
        for (j, &a) in slot_alphas.iter().enumerate().take(end).skip(start) {
            let r = &refs[slot_reference(estimator.compat, j, m, k)];
            points.extend(x.iter().zip(r).map(|(&xi, &ri)| (1.0 - a) * ri + a * xi));
        }
        shape[0] = end - start;
        let batch = Tensor::from_slice(&points, shape.as_slice(), input.device())?;
        let (_, grads) = oracle.scores_and_gradients(&batch, target)?;
        let g = flat_f32(&grads)?;
        if g.len() != points.len() {
            return Err(AttributionError::InvalidArgument(format!(
                "the oracle returned {} gradient values for {} point values",
                g.len(),
                points.len()
            )));
        }
        for (row, j) in (start..end).enumerate() {
            let (gj, pj) = (&g[row * n..(row + 1) * n], &points[row * n..(row + 1) * n]);
            let group = j / k;
            if per_point {
                add_point_terms(&mut acc, estimator, &x, &refs[group], gj, pj);
            } else {
                for (s, &gi) in group_sum.iter_mut().zip(gj) {
                    *s += gi as f64;
                }
                if j % k == k - 1 {
                    add_reference_terms(&mut acc, estimator, &x, &refs[group], &group_sum);
                    group_sum.fill(0.0);
                }
            }
        }
        monitor.step(end, slots)?;
    }
    Ok((acc.mean(), acc.kept_fraction()))
}

/// valid_ip: one term per feature for slot j (group reference `r`, point `p`, gradient `g`).
fn add_point_terms(acc: &mut RecalAccumulator, estimator: &Estimator, x: &[f32], r: &[f32], g: &[f32], p: &[f32]) {
    let k = estimator.points_per_reference as f64;
    for i in 0..x.len() {
        let term = match estimator.compat {
            RecalCompat::Clean => g[i] as f64 * (x[i] - r[i]) as f64,
            RecalCompat::Reference => g[i] as f64 / k * (x[i] - p[i]) as f64,
        };
        let value = if estimator.squared_terms { term * term } else { term };
        acc.add(i, term, value);
    }
}

/// vanilla / valid_ref: one term per feature for a finished group (reference `r`,
/// gradient sum over its k slots).
fn add_reference_terms(acc: &mut RecalAccumulator, estimator: &Estimator, x: &[f32], r: &[f32], group_sum: &[f64]) {
    let k = estimator.points_per_reference as f64;
    for i in 0..x.len() {
        let (delta, mean_grad) = ((x[i] - r[i]) as f64, group_sum[i] / k);
        let term = delta * mean_grad;
        let value = match (estimator.squared_terms, estimator.recalibration) {
            (false, _) => term,
            (true, Recalibration::Vanilla) => delta * mean_grad * mean_grad,
            (true, _) => term * term,
        };
        acc.add(i, term, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::testing::FnOracle;
    use candle_core::Device;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::atomic::AtomicBool;

    const NORM: Normalization = Normalization::IMAGENET;
    const W12: [f64; 12] = [0.5, -2.0, 3.0, 0.25, -1.0, 1.5, 0.0, -0.75, 2.0, -3.0, 1.0, 0.1];

    fn linear12() -> FnOracle {
        FnOracle {
            f: |x| x.iter().zip(W12).map(|(a, w)| a * w).sum(),
            grad: |_| W12.to_vec(),
        }
    }

    /// f = Σ sin(1.7 x_i + 0.3 i) + 0.1 (Σ x)²: non-linear, non-separable, with gradients of
    /// both signs.
    fn non_linear() -> FnOracle {
        FnOracle {
            f: |x| {
                let s: f64 = x.iter().sum();
                x.iter()
                    .enumerate()
                    .map(|(i, &v)| (1.7 * v + 0.3 * i as f64).sin())
                    .sum::<f64>()
                    + 0.1 * s * s
            },
            grad: |x| {
                let s: f64 = x.iter().sum();
                x.iter()
                    .enumerate()
                    .map(|(i, &v)| 1.7 * (1.7 * v + 0.3 * i as f64).cos() + 0.2 * s)
                    .collect()
            },
        }
    }

    /// A normalised [3, 2, 2] image whose pixels lie in [0.1, 0.9]; `phase` varies it.
    fn image(phase: f32) -> Tensor {
        let mut px: Vec<f32> = (0..12).map(|i| 0.5 + 0.4 * (i as f32 * 0.37 + phase).sin()).collect();
        NORM.normalize_pixels(&mut px, 4);
        Tensor::from_vec(px, (3, 2, 2), &Device::Cpu).unwrap()
    }

    fn pool(len: usize) -> Vec<Tensor> {
        (0..len).map(|i| image(1.0 + i as f32)).collect()
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn run(oracle: &dyn GradientOracle, input: &Tensor, config: &MultiReferenceConfig) -> MultiReferenceResult {
        multi_reference_attribution(oracle, input, &NORM, 0, config, &mut Monitor::none()).unwrap()
    }

    fn assert_close(got: &[f32], expected: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), expected.len(), "{what}");
        for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
            assert!((g as f64 - e).abs() <= tol, "{what}, feature {i}: {g} vs {e}");
        }
    }

    fn two_feature_linear() -> FnOracle {
        FnOracle {
            f: |x| 2.0 * x[0] - x[1],
            grad: |_| vec![2.0, -1.0],
        }
    }

    /// algorithms.md §7 #12 (§2.10 item 4): f = w·x, w = (2, −1), x = (1, 1), r = (0, 0),
    /// k = 5 on the grid. RECAL's valid_ip gives (0.2, 0); the clean estimator (2, 0).
    #[test]
    fn valid_ip_worked_example() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[1f32, 1.0], &dev).unwrap();
        let r = Tensor::new(&[0f32, 0.0], &dev).unwrap();
        for (compat, expected) in [(RecalCompat::Reference, [0.2, 0.0]), (RecalCompat::Clean, [2.0, 0.0])] {
            let estimator = Estimator {
                points_per_reference: 5,
                squared_terms: false,
                recalibration: Recalibration::ValidIp,
                compat,
                batch_size: 2,
            };
            let (a, kept) = estimate_from_references(
                &two_feature_linear(),
                &x,
                std::slice::from_ref(&r),
                &grid_slot_alphas(1, 5),
                &estimator,
                0,
                &mut Monitor::none(),
            )
            .unwrap();
            assert_close(&a, &expected, 1e-6, &format!("{compat:?}"));
            // Reference: 5 valid terms for feature 0, only the α = 1 zero for feature 1.
            let expected_kept = if compat == RecalCompat::Reference { 6.0 } else { 5.0 } / 10.0;
            assert!((kept - expected_kept).abs() < 1e-12, "{compat:?}: kept {kept}");
        }
    }

    /// algorithms.md §7 #13 (§2.10 item 5): references (0, 0) and (2, 2): valid_ref gives
    /// (2, 1), vanilla Expected Gradients (0, 0), in both compat modes.
    #[test]
    fn valid_ref_worked_example_and_vanilla_expected_gradients() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[[1f32, 1.0]]], &dev).unwrap();
        let pool = vec![
            Tensor::new(&[[[0f32, 0.0]]], &dev).unwrap(),
            Tensor::new(&[[[2f32, 2.0]]], &dev).unwrap(),
        ];
        for compat in [RecalCompat::Clean, RecalCompat::Reference] {
            for (recalibration, expected) in [
                (Recalibration::ValidRef, [2.0, 1.0]),
                (Recalibration::Vanilla, [0.0, 0.0]),
            ] {
                let config = MultiReferenceConfig {
                    method: MultiReferenceMethod::ExpectedGradients { pool: pool.clone() },
                    recalibration,
                    compat,
                    references: 2,
                    ..MultiReferenceConfig::default()
                };
                let r = run(&two_feature_linear(), &x, &config);
                assert_close(
                    &flat(&r.attribution),
                    &expected,
                    1e-6,
                    &format!("{compat:?} {recalibration:?}"),
                );
                assert_eq!(r.gradient_evaluations, 10);
            }
        }
    }

    /// algorithms.md §7 #14: re-calibrated maps are ≥ 0 on a non-linear model, for every
    /// method, both modes and both compat settings; vanilla maps of the same runs are not.
    #[test]
    fn recalibrated_maps_are_non_negative() {
        let oracle = non_linear();
        let x = image(0.0);
        let methods = [
            MultiReferenceMethod::IgUniform,
            MultiReferenceMethod::IgSg,
            MultiReferenceMethod::IgSq,
            MultiReferenceMethod::ExpectedGradients { pool: pool(12) },
        ];
        for method in methods {
            for compat in [RecalCompat::Clean, RecalCompat::Reference] {
                let mut config = MultiReferenceConfig {
                    method: method.clone(),
                    compat,
                    noise_fraction: 0.5,
                    seed: 3,
                    ..MultiReferenceConfig::default()
                };
                for recalibration in [Recalibration::ValidIp, Recalibration::ValidRef] {
                    config.recalibration = recalibration;
                    let r = run(&oracle, &x, &config);
                    let a = flat(&r.attribution);
                    let what = format!("{} {compat:?} {recalibration:?}", method.name());
                    assert!(a.iter().all(|&v| v >= 0.0), "{what}: {a:?}");
                    assert!(a.iter().any(|&v| v > 0.0), "{what}: all zero");
                    assert!(
                        r.valid_fraction > 0.0 && r.valid_fraction < 1.0,
                        "{what}: {}",
                        r.valid_fraction
                    );
                }
                config.recalibration = Recalibration::Vanilla;
                let a = flat(&run(&oracle, &x, &config).attribution);
                assert!(
                    a.iter().any(|&v| v < 0.0),
                    "{} {compat:?}: vanilla has no negative",
                    method.name()
                );
            }
        }
    }

    /// Records every evaluated point (as bits) and answers with a linear model.
    struct RecordingOracle {
        points: RefCell<Vec<Vec<u32>>>,
        batch_sizes: RefCell<Vec<usize>>,
    }

    impl GradientOracle for RecordingOracle {
        fn scores(&self, points: &Tensor, target: usize) -> Result<Vec<f32>> {
            linear12().scores(points, target)
        }
        fn scores_and_gradients(&self, points: &Tensor, target: usize) -> Result<(Vec<f32>, Tensor)> {
            let rows = points.flatten_from(1)?.to_vec2::<f32>()?;
            self.batch_sizes.borrow_mut().push(rows.len());
            for r in rows {
                self.points.borrow_mut().push(r.iter().map(|v| v.to_bits()).collect());
            }
            linear12().scores_and_gradients(points, target)
        }
        fn num_classes(&self) -> usize {
            1
        }
    }

    /// algorithms.md §7 #15: with k = 5, m = 10, RECAL's pairing evaluates exactly 10
    /// distinct (reference, α) pairs, each 5 times, reference i only at α = (i mod 5)/4.
    /// The clean pairing evaluates 50 distinct points. Checked on the index functions and
    /// on the points the estimator actually sends to the oracle.
    #[test]
    fn reference_compat_pairing_enumeration() {
        let (m, k) = (10, 5);
        let alphas = grid_slot_alphas(m, k);
        for (compat, distinct, repeats) in [(RecalCompat::Reference, 10, 5), (RecalCompat::Clean, 50, 1)] {
            let mut pairs: HashMap<(usize, u32), usize> = HashMap::new();
            for (j, a) in alphas.iter().enumerate() {
                *pairs.entry((slot_reference(compat, j, m, k), a.to_bits())).or_default() += 1;
            }
            assert_eq!(pairs.len(), distinct, "{compat:?}");
            assert!(pairs.values().all(|&c| c == repeats), "{compat:?}: {pairs:?}");
            if compat == RecalCompat::Reference {
                for &(reference, a) in pairs.keys() {
                    assert_eq!(f32::from_bits(a), (reference % 5) as f32 / 4.0);
                }
            }

            let oracle = RecordingOracle {
                points: RefCell::new(Vec::new()),
                batch_sizes: RefCell::new(Vec::new()),
            };
            let config = MultiReferenceConfig {
                compat,
                ..MultiReferenceConfig::default()
            };
            let x = image(0.0);
            let x_bits: Vec<u32> = flat(&x).iter().map(|v| v.to_bits()).collect();
            let r = run(&oracle, &x, &config);
            let mut seen: HashMap<Vec<u32>, usize> = HashMap::new();
            for p in oracle.points.borrow().iter() {
                *seen.entry(p.clone()).or_default() += 1;
            }
            assert_eq!(r.gradient_evaluations, 50);
            assert_eq!(oracle.batch_sizes.borrow().as_slice(), &[16, 16, 16, 2]);
            // Every α = 1 slot is exactly x whatever its reference: 10 of them in both modes.
            // The other slots: RECAL evaluates 8 (reference, α < 1) pairs 5 times each,
            // the clean pairing 40 distinct points.
            assert_eq!(seen.remove(&x_bits), Some(10), "{compat:?}");
            let (distinct_off_input, repeats) = if compat == RecalCompat::Reference {
                (8, 5)
            } else {
                (40, 1)
            };
            assert_eq!(seen.len(), distinct_off_input, "{compat:?}");
            assert!(seen.values().all(|&c| c == repeats), "{compat:?}");
        }
    }

    /// algorithms.md §2.4: on f = w·x every vanilla estimator gives w ⊙ (x − mean_b r_b)
    /// (IG-SQ: w² ⊙ (x − mean_b r_b)), in both compat modes.
    #[test]
    fn vanilla_estimators_on_a_linear_model() {
        let x = image(0.0);
        let xs = flat(&x);
        let methods = [
            MultiReferenceMethod::IgUniform,
            MultiReferenceMethod::IgSg,
            MultiReferenceMethod::IgSq,
            MultiReferenceMethod::ExpectedGradients { pool: pool(15) },
        ];
        for method in methods {
            for compat in [RecalCompat::Clean, RecalCompat::Reference] {
                let config = MultiReferenceConfig {
                    method: method.clone(),
                    compat,
                    recalibration: Recalibration::Vanilla,
                    seed: 11,
                    ..MultiReferenceConfig::default()
                };
                let r = run(&linear12(), &x, &config);
                assert_eq!(r.references.len(), 10);
                let refs: Vec<Vec<f32>> = r.references.iter().map(flat).collect();
                let expected: Vec<f64> = (0..12)
                    .map(|i| {
                        let mean_r = refs.iter().map(|r| r[i] as f64).sum::<f64>() / 10.0;
                        let w = if method.squared_terms() {
                            W12[i] * W12[i]
                        } else {
                            W12[i]
                        };
                        w * (xs[i] as f64 - mean_r)
                    })
                    .collect();
                let what = format!("{} {compat:?}", method.name());
                assert_close(&flat(&r.attribution), &expected, 1e-5, &what);
                assert!(expected.iter().any(|&e| e.abs() > 0.1), "{what}: degenerate references");
                assert_eq!(r.valid_fraction, 1.0);
            }
        }
    }

    /// §2.10 property 3: when every per-reference term is ≥ 0, valid_ref equals vanilla.
    #[test]
    fn valid_ref_equals_vanilla_when_all_terms_are_non_negative() {
        let dev = Device::Cpu;
        let oracle = FnOracle {
            f: |x| 2.0 * x[0] - x[1] + 0.5 * x[2],
            grad: |_| vec![2.0, -1.0, 0.5],
        };
        let x = Tensor::new(&[[[1f32, 1.0, 1.0]]], &dev).unwrap();
        // Every reference lies on the side of x where w ⊙ (x − r) ≥ 0.
        let pool: Vec<Tensor> = [[0.0f32, 1.5, 0.2], [-1.0, 3.0, 0.9], [0.5, 1.1, -2.0], [0.9, 2.0, 1.0]]
            .iter()
            .map(|r| Tensor::new(&[[*r]], &dev).unwrap())
            .collect();
        for compat in [RecalCompat::Clean, RecalCompat::Reference] {
            let mut config = MultiReferenceConfig {
                method: MultiReferenceMethod::ExpectedGradients { pool: pool.clone() },
                compat,
                references: 4,
                recalibration: Recalibration::Vanilla,
                ..MultiReferenceConfig::default()
            };
            let vanilla = flat(&run(&oracle, &x, &config).attribution);
            config.recalibration = Recalibration::ValidRef;
            let valid_ref = flat(&run(&oracle, &x, &config).attribution);
            let expected = [2.0 * (1.0 - 0.1), -(1.0 - 1.9), 0.5 * (1.0 - 0.025)];
            assert_close(&vanilla, &expected, 1e-6, "vanilla");
            assert_close(&valid_ref, &expected, 1e-6, "valid_ref");
        }
    }

    #[test]
    fn same_seed_is_bit_identical_and_another_seed_differs() {
        let x = image(0.0);
        for method in [
            MultiReferenceMethod::IgUniform,
            MultiReferenceMethod::IgSq,
            MultiReferenceMethod::ExpectedGradients { pool: pool(30) },
        ] {
            let config = |seed| MultiReferenceConfig {
                method: method.clone(),
                seed,
                ..MultiReferenceConfig::default()
            };
            let a = run(&non_linear(), &x, &config(5));
            let b = run(&non_linear(), &x, &config(5));
            let c = run(&non_linear(), &x, &config(6));
            assert_eq!(flat(&a.attribution), flat(&b.attribution), "{}", method.name());
            assert_eq!(a.slot_alphas, b.slot_alphas);
            assert_ne!(flat(&a.attribution), flat(&c.attribution), "{}", method.name());
        }
    }

    #[test]
    fn expected_gradients_alphas_are_random_and_the_grid_is_recal_linspace() {
        assert_eq!(alpha_grid(5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(alpha_grid(1), vec![1.0]);
        let config = MultiReferenceConfig {
            method: MultiReferenceMethod::ExpectedGradients { pool: pool(10) },
            ..MultiReferenceConfig::default()
        };
        let r = run(&linear12(), &image(0.0), &config);
        assert_eq!(r.slot_alphas.len(), 50);
        assert!(r.slot_alphas.iter().all(|a| (0.0..1.0).contains(a)));
        assert!(r.slot_alphas.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn progress_after_every_batch_and_cancellation_between_batches() {
        let mut calls = Vec::new();
        let mut record = |done, total| calls.push((done, total));
        let mut monitor = Monitor {
            on_progress: Some(&mut record),
            cancel: None,
        };
        let config = MultiReferenceConfig::default();
        multi_reference_attribution(&linear12(), &image(0.0), &NORM, 0, &config, &mut monitor).unwrap();
        assert_eq!(calls, vec![(16, 50), (32, 50), (48, 50), (50, 50)]);

        let cancel = AtomicBool::new(true);
        let mut monitor = Monitor {
            on_progress: None,
            cancel: Some(&cancel),
        };
        let r = multi_reference_attribution(&linear12(), &image(0.0), &NORM, 0, &config, &mut monitor);
        assert!(matches!(r, Err(AttributionError::Cancelled)));
    }

    #[test]
    fn invalid_configurations_are_errors_not_panics() {
        let x = image(0.0);
        let bad = [
            MultiReferenceConfig {
                references: 0,
                ..MultiReferenceConfig::default()
            },
            MultiReferenceConfig {
                points_per_reference: 0,
                ..MultiReferenceConfig::default()
            },
            MultiReferenceConfig {
                batch_size: 0,
                ..MultiReferenceConfig::default()
            },
            MultiReferenceConfig {
                noise_fraction: f64::NAN,
                ..MultiReferenceConfig::default()
            },
            MultiReferenceConfig {
                method: MultiReferenceMethod::ExpectedGradients { pool: pool(9) },
                ..MultiReferenceConfig::default()
            },
            MultiReferenceConfig {
                method: MultiReferenceMethod::ExpectedGradients {
                    pool: vec![Tensor::zeros((3, 2, 3), DType::F32, &Device::Cpu).unwrap(); 10],
                },
                ..MultiReferenceConfig::default()
            },
        ];
        for config in bad {
            assert!(
                multi_reference_attribution(&linear12(), &x, &NORM, 0, &config, &mut Monitor::none()).is_err(),
                "{config:?}"
            );
        }
    }
}
