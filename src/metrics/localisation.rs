//! Weakly-supervised localisation of a saliency map against a binary ground-truth mask
//! (algorithms.md §4.7; the protocol there is marked unverified).
//!
//! Inputs are one image's reduced map S (one value per pixel, any layout, for example [H,W]
//! row-major) and a mask Y of the same length. Scores:
//! - ROC-AUC: the Mann–Whitney U from average ranks (ties count ½), AUC = U/(n₊n₋). `None` when
//!   Y is all 0 or all 1 (the caller skips such images).
//! - Best-threshold F_β: the maximum over every distinct value τ of S of
//!   (1+β²)PR/(β²P + R), with B_τ = [S ≥ τ], P = |B∧Y|/|B| (0 when B is empty) and
//!   R = |B∧Y|/|Y| (0 when Y is empty). β = 1 gives F1; the salient-object literature uses
//!   β² = 0.3 ([`BETA_SALIENT_OBJECT`]).
//! - MAE: mean |S − Y| with S min-max normalised to [0,1]; a constant S normalises to all 0.
//!
//! Ranks and thresholds are taken on the raw S: min-max normalisation is monotone, and using the
//! raw values avoids f32 rounding merging distinct values. All sums are accumulated in f64.

use super::MetricError;

/// β for F_β as used in the salient-object literature: β² = 0.3.
pub const BETA_SALIENT_OBJECT: f64 = 0.547_722_557_505_166_1;

/// One image's localisation scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalisationScores {
    /// ROC-AUC; `None` when the mask is all 0 or all 1.
    pub roc_auc: Option<f64>,
    /// The best F_β over all thresholds τ ∈ distinct values of S.
    pub best_f: f64,
    /// The τ attaining `best_f` (the highest such τ on ties), in min-max normalised units [0,1]
    /// (0 when S is constant).
    pub best_threshold: f32,
    /// Mean |S_normalised − Y|.
    pub mae: f64,
}

/// Scores `saliency` against `mask` (same length, non-empty, finite saliency; β finite and > 0).
pub fn localisation(saliency: &[f32], mask: &[bool], beta: f64) -> Result<LocalisationScores, MetricError> {
    if saliency.is_empty() {
        return Err(MetricError::Empty("saliency"));
    }
    if mask.len() != saliency.len() {
        return Err(MetricError::LengthMismatch {
            what: "mask",
            expected: saliency.len(),
            got: mask.len(),
        });
    }
    if saliency.iter().any(|v| !v.is_finite()) {
        return Err(MetricError::NonFinite("saliency"));
    }
    if !(beta.is_finite() && beta > 0.0) {
        return Err(MetricError::InvalidParameter(format!(
            "beta must be finite and > 0, got {beta}"
        )));
    }

    let n = saliency.len();
    let n_pos = mask.iter().filter(|&&y| y).count();
    let n_neg = n - n_pos;

    let min = saliency.iter().fold(f32::INFINITY, |a, &b| a.min(b)) as f64;
    let max = saliency.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let range = max - min;
    let normalise = |v: f64| if range > 0.0 { (v - min) / range } else { 0.0 };

    // Indices sorted by ascending saliency; equal values form contiguous tie groups.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| saliency[a].total_cmp(&saliency[b]));
    let groups = tie_groups(saliency, &order);

    // ROC-AUC from average ranks: the group occupying sorted positions [s, e) has 1-based
    // ranks s+1..=e, average (s + 1 + e)/2.
    let roc_auc = if n_pos == 0 || n_neg == 0 {
        None
    } else {
        let mut rank_sum_pos = 0.0f64;
        for &(s, e) in &groups {
            let avg_rank = (s + 1 + e) as f64 / 2.0;
            let pos_in_group = order[s..e].iter().filter(|&&i| mask[i]).count();
            rank_sum_pos += avg_rank * pos_in_group as f64;
        }
        let np = n_pos as f64;
        let u = rank_sum_pos - np * (np + 1.0) / 2.0;
        Some(u / (np * n_neg as f64))
    };

    // Best F_β: walk the tie groups from the highest value down; after group g, B_τ with τ the
    // group's value is every pixel in that group or above.
    let beta2 = beta * beta;
    let mut best_f = f64::NEG_INFINITY;
    let mut best_tau = max;
    let (mut selected, mut true_pos) = (0usize, 0usize);
    for &(s, e) in groups.iter().rev() {
        selected += e - s;
        true_pos += order[s..e].iter().filter(|&&i| mask[i]).count();
        let p = true_pos as f64 / selected as f64; // selected ≥ 1 here
        let r = if n_pos == 0 {
            0.0
        } else {
            true_pos as f64 / n_pos as f64
        };
        let denom = beta2 * p + r;
        let f = if denom > 0.0 {
            (1.0 + beta2) * p * r / denom
        } else {
            0.0
        };
        if f > best_f {
            best_f = f;
            best_tau = saliency[order[s]] as f64;
        }
    }

    let mae = saliency
        .iter()
        .zip(mask)
        .map(|(&s, &y)| (normalise(s as f64) - if y { 1.0 } else { 0.0 }).abs())
        .sum::<f64>()
        / n as f64;

    Ok(LocalisationScores {
        roc_auc,
        best_f,
        best_threshold: normalise(best_tau) as f32,
        mae,
    })
}

/// Half-open position ranges [s, e) of `order` whose saliency values are equal.
fn tie_groups(values: &[f32], order: &[usize]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut s = 0;
    while s < order.len() {
        let mut e = s + 1;
        while e < order.len() && values[order[e]] == values[order[s]] {
            e += 1;
        }
        groups.push((s, e));
        s = e;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bools(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&x| x != 0).collect()
    }

    const Y: [u8; 8] = [0, 1, 1, 0, 0, 1, 0, 0];

    #[test]
    fn saliency_equal_to_mask_is_perfect() {
        let y = bools(&Y);
        let s: Vec<f32> = Y.iter().map(|&v| v as f32).collect();
        let r = localisation(&s, &y, 1.0).unwrap();
        assert_eq!(r.roc_auc, Some(1.0));
        assert!((r.best_f - 1.0).abs() < 1e-12, "{}", r.best_f);
        assert_eq!(r.best_threshold, 1.0);
        assert!(r.mae.abs() < 1e-12, "{}", r.mae);
    }

    #[test]
    fn saliency_inverse_of_mask_gives_auc_zero() {
        let y = bools(&Y);
        let s: Vec<f32> = Y.iter().map(|&v| 1.0 - v as f32).collect();
        let r = localisation(&s, &y, 1.0).unwrap();
        assert_eq!(r.roc_auc, Some(0.0));
        assert!((r.mae - 1.0).abs() < 1e-12);
        // Best F1 is at τ = min (everything selected): P = 3/8, R = 1 → F1 = 2·(3/8)/(11/8) = 6/11.
        assert!((r.best_f - 6.0 / 11.0).abs() < 1e-12, "{}", r.best_f);
        assert_eq!(r.best_threshold, 0.0);
    }

    #[test]
    fn constant_saliency_gives_auc_half() {
        let y = bools(&Y);
        let r = localisation(&[0.3; 8], &y, 1.0).unwrap();
        assert_eq!(r.roc_auc, Some(0.5));
        // S normalises to all 0, so MAE = fraction of positives = 3/8.
        assert!((r.mae - 3.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn degenerate_masks_give_no_auc() {
        let s = [0.1f32, 0.5, 0.9, 0.2];
        let zeros = localisation(&s, &[false; 4], 1.0).unwrap();
        assert_eq!(zeros.roc_auc, None);
        assert_eq!(zeros.best_f, 0.0);
        let ones = localisation(&s, &[true; 4], 1.0).unwrap();
        assert_eq!(ones.roc_auc, None);
    }

    #[test]
    fn hand_computed_case_with_ties() {
        // S = [0.1, 0.4, 0.4, 0.8], Y = [0, 1, 0, 1].
        // Average ranks: 0.1 → 1, the two 0.4 → (2+3)/2 = 2.5, 0.8 → 4.
        // Positive rank sum R₊ = 2.5 + 4 = 6.5; U = R₊ − n₊(n₊+1)/2 = 6.5 − 3 = 3.5;
        // AUC = U/(n₊n₋) = 3.5/4 = 0.875. Pairwise: (0.4 vs 0.1) 1, (0.4 vs 0.4) ½,
        // (0.8 vs 0.1) 1, (0.8 vs 0.4) 1 → 3.5/4.
        // F1 over τ: τ=0.8: P=1, R=½ → 2/3; τ=0.4: P=2/3, R=1 → 0.8; τ=0.1: P=½, R=1 → 2/3.
        // Best F1 = 0.8 at τ = 0.4, normalised (0.4−0.1)/0.7 = 3/7.
        // MAE: normalised S = [0, 3/7, 3/7, 1] → |0|+|3/7−1|+|3/7|+|0| = 1 → MAE = 1/4.
        let s = [0.1f32, 0.4, 0.4, 0.8];
        let y = bools(&[0, 1, 0, 1]);
        let r = localisation(&s, &y, 1.0).unwrap();
        assert!((r.roc_auc.unwrap() - 0.875).abs() < 1e-12, "{:?}", r.roc_auc);
        assert!((r.best_f - 0.8).abs() < 1e-12, "{}", r.best_f);
        assert!((r.best_threshold - 3.0 / 7.0).abs() < 1e-6, "{}", r.best_threshold);
        assert!((r.mae - 0.25).abs() < 1e-6, "{}", r.mae);
    }

    #[test]
    fn beta_changes_the_f_score() {
        // Same case with β² = 0.3: τ=0.8: P=1, R=½ → 1.3·½/(0.3+½) = 0.8125;
        // τ=0.4: P=2/3, R=1 → 1.3·(2/3)/(0.2+1) = 0.7222…; τ=0.1: 1.3·½/(0.15+1) = 0.5652…
        let s = [0.1f32, 0.4, 0.4, 0.8];
        let y = bools(&[0, 1, 0, 1]);
        let r = localisation(&s, &y, BETA_SALIENT_OBJECT).unwrap();
        assert!((BETA_SALIENT_OBJECT * BETA_SALIENT_OBJECT - 0.3).abs() < 1e-15);
        assert!((r.best_f - 0.8125).abs() < 1e-12, "{}", r.best_f);
        assert_eq!(r.best_threshold, 1.0);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert_eq!(localisation(&[], &[], 1.0), Err(MetricError::Empty("saliency")));
        assert!(matches!(
            localisation(&[0.1, 0.2], &[true], 1.0),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert_eq!(
            localisation(&[f32::NAN, 0.2], &[true, false], 1.0),
            Err(MetricError::NonFinite("saliency"))
        );
        assert!(matches!(
            localisation(&[0.1, 0.2], &[true, false], 0.0),
            Err(MetricError::InvalidParameter(_))
        ));
    }
}
