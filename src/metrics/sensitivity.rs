//! Sensitivity-n (Ancona et al., ICLR 2018; algorithms.md §4.4, details unverified).
//!
//! For each subset-size fraction q, `samples` pixel subsets S of exact size n = round(q·HW) are
//! drawn without replacement (all channels of a pixel move together). Per sample the two sides
//! are Σ_{p∈S} R_p and f(x) − f(x with x_S replaced by the reference); the result for q is their
//! Pearson correlation across the samples, `None` when it is undefined (a constant side, e.g.
//! n = 0 or n = HW).
//!
//! Difference from RECAL (evaluator.py `sensitivity_n`): RECAL draws i.i.d. Bernoulli(q) pixel
//! masks, so its subset size is random (about q·HW); here the size is exactly round(q·HW). RECAL
//! also fixes the reference to 0 or U[0,1) noise in normalised space; here it is an argument.
//!
//! Random numbers: one `ChaCha8Rng::seed_from_u64(seed)`, drawn in order: for each fraction in
//! the order given, for each sample, one `rand::seq::index::sample(rng, HW, n)`.
//!
//! Model calls: 1 + `fractions.len()·samples`, the first on the unperturbed image.

use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::MetricError;

/// Pearson correlation of `a` and `b`, accumulated in f64. `None` when the lengths differ, there
/// are fewer than 2 points, a value is non-finite, or either side is constant (the NaN case).
/// The result is clamped to [−1, 1].
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    let n = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    let (mut cov, mut var_a, mut var_b) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x - mean_a, y - mean_b);
        cov += dx * dy;
        var_a += dx * dx;
        var_b += dy * dy;
    }
    if var_a <= 0.0 || var_b <= 0.0 {
        return None;
    }
    let r = cov / (var_a.sqrt() * var_b.sqrt());
    r.is_finite().then(|| r.clamp(-1.0, 1.0))
}

/// Sensitivity-n of one image.
///
/// - `image`, `reference`: flat CHW, `channels` planes of HW pixels each.
/// - `attribution_per_pixel`: HW values, already reduced over channels (e.g. Σ_c A or Σ_c |A|).
/// - `fractions`: each q in [0, 1]; n = round(q·HW).
/// - `samples` ≥ 2 subsets per fraction; `seed` seeds the subset draws.
/// - `model`: the scalar output (e.g. the target logit) for a flat CHW image.
///
/// Returns `(q, PCC)` per fraction, in the order given.
#[allow(clippy::too_many_arguments)]
pub fn sensitivity_n(
    image: &[f32],
    reference: &[f32],
    attribution_per_pixel: &[f32],
    channels: usize,
    fractions: &[f64],
    samples: usize,
    seed: u64,
    mut model: impl FnMut(&[f32]) -> f64,
) -> Result<Vec<(f64, Option<f64>)>, MetricError> {
    if image.is_empty() {
        return Err(MetricError::Empty("image"));
    }
    if channels == 0 {
        return Err(MetricError::InvalidParameter("channels must be > 0".into()));
    }
    if !image.len().is_multiple_of(channels) {
        return Err(MetricError::InvalidParameter(format!(
            "image length {} is not a multiple of channels = {channels}",
            image.len()
        )));
    }
    if reference.len() != image.len() {
        return Err(MetricError::LengthMismatch {
            what: "reference",
            expected: image.len(),
            got: reference.len(),
        });
    }
    let hw = image.len() / channels;
    if attribution_per_pixel.len() != hw {
        return Err(MetricError::LengthMismatch {
            what: "attribution_per_pixel",
            expected: hw,
            got: attribution_per_pixel.len(),
        });
    }
    if fractions.is_empty() {
        return Err(MetricError::Empty("fractions"));
    }
    if let Some(q) = fractions.iter().find(|q| !(q.is_finite() && (0.0..=1.0).contains(*q))) {
        return Err(MetricError::InvalidParameter(format!("fraction {q} is not in [0, 1]")));
    }
    if samples < 2 {
        return Err(MetricError::TooFewSamples(samples));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let f_x = model(image);
    let mut perturbed = image.to_vec();
    let mut sums = Vec::with_capacity(samples);
    let mut deltas = Vec::with_capacity(samples);
    let mut out = Vec::with_capacity(fractions.len());
    for &q in fractions {
        let n = ((q * hw as f64).round() as usize).min(hw);
        sums.clear();
        deltas.clear();
        for _ in 0..samples {
            let subset = index::sample(&mut rng, hw, n);
            let mut sum = 0.0f64;
            for p in subset.iter() {
                sum += attribution_per_pixel[p] as f64;
                for c in 0..channels {
                    perturbed[c * hw + p] = reference[c * hw + p];
                }
            }
            deltas.push(f_x - model(&perturbed));
            sums.push(sum);
            // Restore only what was changed.
            for p in subset.iter() {
                for c in 0..channels {
                    perturbed[c * hw + p] = image[c * hw + p];
                }
            }
        }
        out.push((q, pearson(&sums, &deltas)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn pearson_linear_anti_linear_constant() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let up: Vec<f64> = a.iter().map(|x| 3.0 * x + 2.0).collect();
        let down: Vec<f64> = a.iter().map(|x| -0.5 * x + 7.0).collect();
        assert!((pearson(&a, &up).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&a, &down).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&a, &[2.0; 5]), None);
        assert_eq!(pearson(&[2.0; 5], &a), None);
        assert_eq!(pearson(&a, &a[..4]), None);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
        // A hand-computed non-trivial value: a = [1,2,3], b = [1,3,2] → cov = 1, var = 2, 2 → 0.5.
        assert!((pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap() - 0.5).abs() < 1e-12);
    }

    struct Fixture {
        image: Vec<f32>,
        reference: Vec<f32>,
        weights: Vec<f32>,
        channels: usize,
        hw: usize,
    }

    fn fixture() -> Fixture {
        let (channels, hw) = (3, 8 * 8);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut draw =
            |lo: f32, hi: f32| -> Vec<f32> { (0..channels * hw).map(|_| rng.random_range(lo..hi)).collect() };
        let image = draw(0.0, 1.0);
        let reference = draw(0.0, 0.2);
        let weights = draw(-1.0, 1.0);
        Fixture {
            image,
            reference,
            weights,
            channels,
            hw,
        }
    }

    fn linear(weights: &[f32]) -> impl FnMut(&[f32]) -> f64 + '_ {
        move |x: &[f32]| x.iter().zip(weights).map(|(&x, &w)| x as f64 * w as f64).sum()
    }

    const FRACTIONS: [f64; 4] = [0.1, 0.3, 0.5, 0.9];

    #[test]
    fn linear_model_with_exact_attribution_has_pcc_one() {
        let f = fixture();
        // A_p = Σ_c w ⊙ (x − reference): f(x) − f(x̃) = Σ_{p∈S} A_p exactly.
        let attribution: Vec<f32> = (0..f.hw)
            .map(|p| {
                (0..f.channels)
                    .map(|c| {
                        let i = c * f.hw + p;
                        f.weights[i] as f64 * (f.image[i] as f64 - f.reference[i] as f64)
                    })
                    .sum::<f64>() as f32
            })
            .collect();
        let out = sensitivity_n(
            &f.image,
            &f.reference,
            &attribution,
            f.channels,
            &FRACTIONS,
            20,
            1,
            linear(&f.weights),
        )
        .unwrap();
        assert_eq!(out.len(), FRACTIONS.len());
        for (&q, &(got_q, pcc)) in FRACTIONS.iter().zip(&out) {
            assert_eq!(q, got_q);
            let pcc = pcc.unwrap();
            assert!((pcc - 1.0).abs() < 1e-9, "q = {q}: PCC = {pcc}");
        }
    }

    #[test]
    fn random_attribution_has_low_pcc() {
        let f = fixture();
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let attribution: Vec<f32> = (0..f.hw).map(|_| rng.random_range(-1.0..1.0)).collect();
        let out = sensitivity_n(
            &f.image,
            &f.reference,
            &attribution,
            f.channels,
            &FRACTIONS,
            50,
            1,
            linear(&f.weights),
        )
        .unwrap();
        for &(q, pcc) in &out {
            let pcc = pcc.unwrap();
            assert!(pcc.abs() < 0.6, "q = {q}: PCC = {pcc}");
        }
    }

    #[test]
    fn same_seed_same_output_and_seed_matters() {
        let f = fixture();
        let attribution: Vec<f32> = (0..f.hw).map(|p| (p as f32 * 0.37).sin()).collect();
        let run = |seed| {
            sensitivity_n(
                &f.image,
                &f.reference,
                &attribution,
                f.channels,
                &FRACTIONS,
                10,
                seed,
                linear(&f.weights),
            )
            .unwrap()
        };
        let a = run(5);
        assert_eq!(a, run(5));
        assert_ne!(a, run(6));
    }

    #[test]
    fn degenerate_fractions_give_none_and_model_call_count() {
        let f = fixture();
        let attribution = vec![1.0f32; f.hw];
        let mut calls = 0usize;
        let model = |x: &[f32]| {
            calls += 1;
            x.iter().map(|&v| v as f64).sum()
        };
        // q = 0 (empty subset) and q = 1 (every pixel) make both sides constant.
        let out = sensitivity_n(
            &f.image,
            &f.reference,
            &attribution,
            f.channels,
            &[0.0, 1.0],
            4,
            0,
            model,
        )
        .unwrap();
        assert_eq!(out, vec![(0.0, None), (1.0, None)]);
        assert_eq!(calls, 1 + 2 * 4);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let f = fixture();
        let a = vec![0.0f32; f.hw];
        let m = |_: &[f32]| 0.0;
        let e = |r: Result<_, MetricError>| r.unwrap_err();
        assert_eq!(
            e(sensitivity_n(&f.image, &f.reference, &a, f.channels, &[0.5], 1, 0, m)),
            MetricError::TooFewSamples(1)
        );
        assert!(matches!(
            e(sensitivity_n(
                &f.image,
                &f.reference[1..],
                &a,
                f.channels,
                &[0.5],
                2,
                0,
                m
            )),
            MetricError::LengthMismatch { what: "reference", .. }
        ));
        assert!(matches!(
            e(sensitivity_n(
                &f.image,
                &f.reference,
                &a[1..],
                f.channels,
                &[0.5],
                2,
                0,
                m
            )),
            MetricError::LengthMismatch {
                what: "attribution_per_pixel",
                ..
            }
        ));
        assert!(matches!(
            e(sensitivity_n(&f.image, &f.reference, &a, 0, &[0.5], 2, 0, m)),
            MetricError::InvalidParameter(_)
        ));
        assert!(matches!(
            e(sensitivity_n(&f.image, &f.reference, &a, 5, &[0.5], 2, 0, m)),
            MetricError::InvalidParameter(_)
        ));
        assert!(matches!(
            e(sensitivity_n(&f.image, &f.reference, &a, f.channels, &[1.5], 2, 0, m)),
            MetricError::InvalidParameter(_)
        ));
        assert_eq!(
            e(sensitivity_n(&[], &[], &[], 1, &[0.5], 2, 0, m)),
            MetricError::Empty("image")
        );
        assert_eq!(
            e(sensitivity_n(&f.image, &f.reference, &a, f.channels, &[], 2, 0, m)),
            MetricError::Empty("fractions")
        );
    }
}
