//! Attribution re-calibration (Yang et al., ICLR 2023; code ypeiyu/attribution_recalibration,
//! "RECAL"; algorithms.md §2.10) as a streaming accumulator.
//!
//! Re-calibration keeps, per feature, only the terms that say moving the feature toward the
//! input raises the score (term ≥ 0) and averages them: A_i = Σ kept terms / max(1, #kept).
//! That needs one running sum and one count per feature, so a method can hand over terms as
//! each gradient batch comes back instead of storing all of them. A feature with no valid
//! term gets 0 (RECAL divides by 1 where the count is 0), so re-calibrated maps are ≥ 0.

/// Which terms a path method keeps, and at which level a term is formed. Text form:
/// `vanilla`, `valid-ip`, `valid-ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recalibration {
    /// No filtering: the method's plain estimator (the mean over references for the
    /// multi-reference methods, the sum over classes and steps for AGI).
    #[serde(alias = "Vanilla")]
    Vanilla,
    /// One term per interpolation point, kept where ≥ 0 (RECAL `valid_ip`, its CLI default).
    #[default]
    #[serde(alias = "ValidIp")]
    ValidIp,
    /// One term per reference (its whole path estimate), kept where ≥ 0 (RECAL `valid_ref`).
    #[serde(alias = "ValidRef")]
    ValidRef,
}

impl Recalibration {
    pub const ALL: [Recalibration; 3] = [Recalibration::Vanilla, Recalibration::ValidIp, Recalibration::ValidRef];

    /// The words a person reads (the studio's controls).
    pub fn label(self) -> &'static str {
        match self {
            Recalibration::Vanilla => "none (the plain mean)",
            Recalibration::ValidIp => "valid interpolation points (RECAL)",
            Recalibration::ValidRef => "valid references (RECAL)",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Recalibration::Vanilla => "vanilla",
            Recalibration::ValidIp => "valid-ip",
            Recalibration::ValidRef => "valid-ref",
        }
    }

    /// Whether terms with a negative sign are dropped.
    pub fn filters(self) -> bool {
        self != Recalibration::Vanilla
    }
}

text_form!(Recalibration, "re-calibration");

/// Σ of the kept terms and their count, per feature, in f64.
#[derive(Debug, Clone)]
pub struct RecalAccumulator {
    filter: bool,
    sum: Vec<f64>,
    count: Vec<u32>,
    offered: u64,
    kept: u64,
}

impl RecalAccumulator {
    /// `filter`: keep only terms ≥ 0 (re-calibration); otherwise keep every term.
    pub fn new(features: usize, filter: bool) -> Self {
        Self {
            filter,
            sum: vec![0.0; features],
            count: vec![0; features],
            offered: 0,
            kept: 0,
        }
    }

    /// Offers feature `i` one term. `term` decides validity; `value` is what is summed when
    /// it is valid: the term itself, or (IG-SQ) its square. −0.0 counts as valid, as
    /// torch's `x >= 0.` does (the α = 1 point of RECAL's valid_ip gives exactly ±0).
    /// A NaN term is never valid under filtering.
    #[inline]
    pub fn add(&mut self, i: usize, term: f64, value: f64) {
        self.offered += 1;
        if !self.filter || term >= 0.0 {
            self.sum[i] += value;
            self.count[i] += 1;
            self.kept += 1;
        }
    }

    /// Σ kept / max(1, #kept) per feature: the re-calibrated estimate, or the plain mean
    /// when nothing is filtered.
    pub fn mean(&self) -> Vec<f32> {
        self.sum
            .iter()
            .zip(&self.count)
            .map(|(&s, &c)| (s / c.max(1) as f64) as f32)
            .collect()
    }

    /// Σ kept per feature, undivided (AGI's vanilla estimator).
    pub fn total(&self) -> Vec<f32> {
        self.sum.iter().map(|&s| s as f32).collect()
    }

    /// Kept terms over offered terms, across all features (1 when nothing was offered).
    pub fn kept_fraction(&self) -> f64 {
        if self.offered == 0 {
            1.0
        } else {
            self.kept as f64 / self.offered as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtering_keeps_non_negative_terms_and_averages_them() {
        let mut acc = RecalAccumulator::new(3, true);
        for (i, t) in [(0, 2.0), (0, -1.0), (0, 4.0), (1, -3.0), (2, -0.0), (2, -5.0)] {
            acc.add(i, t, t);
        }
        // Feature 0: (2 + 4)/2; feature 1: nothing valid → 0/1; feature 2: −0.0 is valid.
        assert_eq!(acc.mean(), vec![3.0, 0.0, 0.0]);
        assert!((acc.kept_fraction() - 3.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn squared_values_are_summed_but_the_mask_follows_the_term() {
        let mut acc = RecalAccumulator::new(1, true);
        acc.add(0, -2.0, 4.0);
        acc.add(0, 3.0, 9.0);
        assert_eq!(acc.mean(), vec![9.0]);
    }

    #[test]
    fn vanilla_keeps_everything() {
        let mut acc = RecalAccumulator::new(1, false);
        for t in [1.0, -3.0, 5.0, f64::from(0.5f32)] {
            acc.add(0, t, t);
        }
        assert_eq!(acc.mean(), vec![0.875]);
        assert_eq!(acc.total(), vec![3.5]);
        assert_eq!(acc.kept_fraction(), 1.0);
    }
}
