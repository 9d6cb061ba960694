//! A ranking at a fraction applied to a dataset: ROAR replaces each image's top t % of
//! pixels (all channels of a pixel together), KAR keeps the top t % and replaces the rest.
//! Replaced pixels take the training set's per-channel mean (the survey's choice) or
//! ROAD's noisy linear imputation from the pixels that stay.

use rayon::prelude::*;

use super::dataset::Dataset;
use super::Result;
use crate::metrics::imputation::{impute, Imputation};

/// Which pixels a fraction names. Text form: `roar`, `kar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Remove the most relevant t % (RemOve And Retrain).
    Remove,
    /// Keep the most relevant t %, remove the rest (Keep And Retrain).
    Keep,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Remove, Mode::Keep];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Remove => "roar",
            Mode::Keep => "kar",
        }
    }

    /// What the fraction axis of a table or figure means.
    pub fn fraction_label(self) -> &'static str {
        match self {
            Mode::Remove => "fraction of pixels removed",
            Mode::Keep => "fraction of pixels kept",
        }
    }
}

text_form!(Mode, "mode");

/// How many of `pixels` a fraction covers (rounded to the nearest pixel).
pub fn pixel_count(fraction: f64, pixels: usize) -> usize {
    ((fraction * pixels as f64).round() as usize).min(pixels)
}

/// `data` with each image's pixels replaced as `mode` and `fraction` say, ranked by
/// `rankings[i]` (most relevant first); `fill` is the per-channel mean; image i's noise is
/// drawn from `first_seed + i`.
pub fn apply(
    data: &Dataset,
    rankings: &[Vec<u32>],
    fraction: f64,
    mode: Mode,
    imputation: Imputation,
    fill: &[f32],
    first_seed: u64,
) -> Result<Dataset> {
    let pixels = data.height * data.width;
    let count = pixel_count(fraction, pixels);
    let images: Vec<Vec<f32>> = (0..data.len())
        .into_par_iter()
        .map(|i| {
            let ranking = &rankings[i];
            let mut removed = vec![mode == Mode::Keep; pixels];
            for &p in &ranking[..count] {
                removed[p as usize] = mode == Mode::Remove;
            }
            let out = impute(
                data.image(i),
                data.channels,
                data.height,
                data.width,
                &removed,
                imputation,
                fill,
                first_seed.wrapping_add(i as u64),
            )?;
            Ok(out)
        })
        .collect::<Result<_>>()?;
    Ok(data.with_images(images.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_images() -> Dataset {
        Dataset {
            channels: 1,
            height: 2,
            width: 2,
            images: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            labels: vec![0, 1],
            classes: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn roar_replaces_the_top_pixels_and_kar_the_rest() {
        let data = two_images();
        let rankings = vec![vec![3, 2, 1, 0], vec![0, 1, 2, 3]];
        let removed = apply(&data, &rankings, 0.5, Mode::Remove, Imputation::Mean, &[0.0], 0).unwrap();
        assert_eq!(removed.images, [1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 7.0, 8.0]);
        let kept = apply(&data, &rankings, 0.25, Mode::Keep, Imputation::Mean, &[0.0], 0).unwrap();
        assert_eq!(kept.images, [0.0, 0.0, 0.0, 4.0, 5.0, 0.0, 0.0, 0.0]);
        assert_eq!(kept.labels, data.labels);
        let nothing = apply(&data, &rankings, 0.0, Mode::Remove, Imputation::Mean, &[0.0], 0).unwrap();
        assert_eq!(nothing, data);
    }
}
