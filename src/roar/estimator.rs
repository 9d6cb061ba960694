//! What ranks the pixels of an image in ROAR: a method of the catalog (ensembles around
//! the gradient or around IG), a random ranking, or a Sobel edge filter (the survey's two
//! controls). Each image's map is computed for its true class on the network trained on
//! the unmodified data; a pixel's relevance is Σ_c |A_c| (the survey ranks by magnitude),
//! ties broken by a seeded random order so flat regions are not removed in raster order.

use std::fmt;
use std::str::FromStr;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::dataset::Dataset;
use super::{Result, RoarError};
use crate::attribution::catalog::{EnsembleBase, Family, MethodId, MethodParams};
use crate::attribution::ensemble::{ensemble, EnsembleConfig, EnsembleKind};
use crate::attribution::method::{explain, MethodSpec, RunOptions};
use crate::attribution::oracle::GradientOracle;
use crate::attribution::Monitor;
use crate::model::preprocess::{ChannelOrder, Normalization};

/// One ranking of pixels. Text form: `random`, `sobel`, a catalog method (`ig:blur:idgi`,
/// `ig-uniform:valid-ip`), or an ensemble with its base after `+` (`vargrad+ig`; a bare
/// ensemble averages the gradient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    Random,
    Sobel,
    Method { id: MethodId, base: EnsembleBase },
}

/// The survey's estimators and controls with the catalog's path methods, IDGI and the
/// re-calibrated multi-reference IG: ROAR's default `--methods`.
pub const DEFAULT_ESTIMATORS: [&str; 17] = [
    "random",
    "sobel",
    "gradient",
    "ig",
    "ig:idgi",
    "ig:blur",
    "ig:blur:idgi",
    "ig:guided",
    "ig:guided:idgi",
    "smoothgrad",
    "smoothgrad-sq",
    "vargrad",
    "smoothgrad+ig",
    "smoothgrad-sq+ig",
    "vargrad+ig",
    "ig-uniform:vanilla",
    "ig-uniform:valid-ip",
];

impl Estimator {
    pub fn defaults() -> Vec<Estimator> {
        DEFAULT_ESTIMATORS
            .iter()
            .map(|s| s.parse().expect("the default estimators parse"))
            .collect()
    }

    /// The name in tables and figures.
    pub fn title(self) -> String {
        match self {
            Estimator::Random => "Random".into(),
            Estimator::Sobel => "Sobel edges".into(),
            Estimator::Method { id, base } if id.family().is_ensemble() && base == EnsembleBase::Ig => {
                format!("{} (IG)", id.title())
            }
            Estimator::Method { id, .. } => id.title(),
        }
    }

    /// Whether the ranking is a control rather than an attribution method.
    pub fn is_control(self) -> bool {
        matches!(self, Estimator::Random | Estimator::Sobel)
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Estimator::Random => f.write_str("random"),
            Estimator::Sobel => f.write_str("sobel"),
            Estimator::Method { id, base } => {
                id.fmt(f)?;
                if id.family().is_ensemble() && *base != EnsembleBase::Gradient {
                    write!(f, "+{}", base.name())?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Estimator {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "random" => return Ok(Estimator::Random),
            "sobel" => return Ok(Estimator::Sobel),
            _ => {}
        }
        let (method, base) = match s.split_once('+') {
            Some((m, b)) => (m, b.parse::<EnsembleBase>()?),
            None => (s.as_str(), EnsembleBase::Gradient),
        };
        let id: MethodId = method.parse()?;
        if base != EnsembleBase::Gradient && !id.family().is_ensemble() {
            return Err(format!(
                "`{s}`: only an ensemble (smoothgrad, smoothgrad-sq, vargrad) takes a `+BASE`"
            ));
        }
        match id.family() {
            Family::ExpectedGradients | Family::Agi => Err(format!(
                "`{s}`: ROAR ranks with the methods that need no reference folder or class search; \
                 {} is not among them",
                id.family()
            )),
            _ => Ok(Estimator::Method { id, base }),
        }
    }
}

/// How the maps are computed: the catalog's parameters, sized for small images.
#[derive(Debug, Clone)]
pub struct MapSettings {
    /// Points of every path (straight, blur, guided).
    pub steps: usize,
    /// Noisy samples of the ensembles.
    pub samples: usize,
    pub seed: u64,
}

impl Default for MapSettings {
    fn default() -> Self {
        Self {
            steps: 32,
            samples: 16,
            seed: 0,
        }
    }
}

/// The network's input space is the pixel space ([0, 1]); the black baseline is 0.
pub fn identity_normalization(channels: usize) -> Normalization {
    Normalization {
        mean: [0.0; 3],
        std: [1.0; 3],
        channels: if channels == 1 {
            ChannelOrder::Grey
        } else {
            ChannelOrder::Rgb
        },
    }
}

/// Pixels of every image of `data`, most relevant first, by each of `estimators`:
/// `[estimator][image]` → H·W pixel indices. `oracle` is the network trained on the
/// unmodified data (`None` will do when every estimator is a control); image i's random draws (noise, ties, the random ranking) come from
/// `first_seed + i`. The ensembles around one base share their noisy samples (they differ
/// only in how the samples' maps are combined). `on_image` is called after each image.
pub fn rankings(
    estimators: &[Estimator],
    oracle: Option<&(dyn GradientOracle + Sync)>,
    data: &Dataset,
    settings: &MapSettings,
    first_seed: u64,
    on_image: &(dyn Fn() + Sync),
) -> Result<Vec<Vec<Vec<u32>>>> {
    let params = |base| MethodParams {
        steps: Some(settings.steps),
        samples: settings.samples,
        ensemble_base: base,
        batch_size: 64,
        ..MethodParams::default()
    };
    // Each estimator's computation; for an ensemble, the base it averages.
    let specs: Vec<Option<MethodSpec>> = estimators
        .iter()
        .map(|e| match e {
            Estimator::Method { id, base } => Ok(Some(match id.spec(&params(*base))? {
                MethodSpec::Ensemble { base, .. } => *base,
                spec => spec,
            })),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    let oracle = match (oracle, specs.iter().any(Option::is_some)) {
        (Some(o), _) => o,
        (None, false) => &NoOracle,
        (None, true) => {
            return Err(RoarError::InvalidArgument(
                "ranking by an attribution method needs a trained network".into(),
            ))
        }
    };
    let norm = identity_normalization(data.channels);
    let pixels = data.height * data.width;
    let per_image: Vec<Vec<Vec<u32>>> = (0..data.len())
        .into_par_iter()
        .map(|i| {
            let seed = first_seed.wrapping_add(i as u64);
            let input = Tensor::from_slice(data.image(i), (data.channels, data.height, data.width), &Device::Cpu)?;
            let target = data.labels[i];
            let options = RunOptions {
                batch_size: 64,
                seed: settings.seed ^ seed,
                ..RunOptions::default()
            };
            // Ensemble families already computed for this image, by base.
            let mut families: Vec<(EnsembleBase, [Vec<f32>; 3])> = Vec::new();
            let mut out = Vec::with_capacity(estimators.len());
            for (estimator, spec) in estimators.iter().zip(&specs) {
                let relevance = match (estimator, spec) {
                    (Estimator::Random, _) => {
                        let mut rng = ChaCha8Rng::seed_from_u64(seed);
                        (0..pixels).map(|_| rng.random::<f32>()).collect()
                    }
                    (Estimator::Sobel, _) => sobel(data.image(i), data.channels, data.height, data.width),
                    (Estimator::Method { id, base }, Some(spec)) if id.family().is_ensemble() => {
                        let kind = match id.family() {
                            Family::SmoothGrad => 0,
                            Family::SmoothGradSquared => 1,
                            _ => 2,
                        };
                        let family = match families.iter().position(|(b, _)| b == base) {
                            Some(at) => &families[at].1,
                            None => {
                                let maps = ensemble_family(
                                    oracle,
                                    &input,
                                    &norm,
                                    target,
                                    spec,
                                    settings.samples,
                                    settings.seed ^ seed,
                                )?;
                                families.push((*base, maps));
                                &families[families.len() - 1].1
                            }
                        };
                        magnitude(&family[kind], data.channels, pixels)
                    }
                    (_, Some(spec)) => {
                        let map = explain(oracle, &input, &norm, target, spec, &options, &mut Monitor::none())?;
                        magnitude(&map.attribution.flatten_all()?.to_vec1::<f32>()?, data.channels, pixels)
                    }
                    _ => unreachable!("methods have a spec"),
                };
                out.push(rank(&relevance, seed));
            }
            on_image();
            Ok(out)
        })
        .collect::<Result<_>>()?;
    // [image][estimator] → [estimator][image].
    let mut by_estimator: Vec<Vec<Vec<u32>>> = vec![Vec::with_capacity(data.len()); estimators.len()];
    for image in per_image {
        for (e, ranking) in image.into_iter().enumerate() {
            by_estimator[e].push(ranking);
        }
    }
    Ok(by_estimator)
}

/// Stands in for the network where only the controls rank (they never call it).
struct NoOracle;

impl GradientOracle for NoOracle {
    fn scores(&self, _: &Tensor, _: usize) -> crate::attribution::Result<Vec<f32>> {
        Err(crate::attribution::AttributionError::InvalidArgument(
            "no network".into(),
        ))
    }
    fn scores_and_gradients(&self, _: &Tensor, _: usize) -> crate::attribution::Result<(Vec<f32>, Tensor)> {
        Err(crate::attribution::AttributionError::InvalidArgument(
            "no network".into(),
        ))
    }
    fn num_classes(&self) -> usize {
        0
    }
}

/// The SmoothGrad, SmoothGrad² and VarGrad maps of one image from one set of noisy
/// samples (the three differ only in how the samples' maps are combined).
pub fn ensemble_family(
    oracle: &(dyn GradientOracle + Sync),
    input: &Tensor,
    norm: &Normalization,
    target: usize,
    base: &MethodSpec,
    samples: usize,
    seed: u64,
) -> Result<[Vec<f32>; 3]> {
    let options = RunOptions {
        batch_size: 64,
        seed,
        ..RunOptions::default()
    };
    let mut recorded: Vec<Tensor> = Vec::new();
    let kinds = [
        EnsembleKind::SmoothGrad,
        EnsembleKind::SmoothGradSquared,
        EnsembleKind::VarGrad,
    ];
    let mut out: [Vec<f32>; 3] = Default::default();
    for (k, kind) in kinds.into_iter().enumerate() {
        let config = EnsembleConfig {
            kind,
            samples,
            noise: 0.15,
            seed,
        };
        let mut replay = 0usize;
        let map = ensemble(input, norm, &config, &mut Monitor::none(), |noisy| {
            if k == 0 {
                let m = explain(oracle, noisy, norm, target, base, &options, &mut Monitor::none())?.attribution;
                recorded.push(m.clone());
                Ok(m)
            } else {
                replay += 1;
                Ok(recorded[replay - 1].clone())
            }
        })?;
        out[k] = map.flatten_all()?.to_vec1::<f32>()?;
    }
    Ok(out)
}

/// Σ_c |A_c| per pixel.
pub fn magnitude(map: &[f32], channels: usize, pixels: usize) -> Vec<f32> {
    let mut out = vec![0f32; pixels];
    for c in 0..channels {
        for (o, &v) in out.iter_mut().zip(&map[c * pixels..(c + 1) * pixels]) {
            *o += v.abs();
        }
    }
    out
}

/// Pixel indices by decreasing relevance, ties in a random order drawn from `seed`
/// (NaN counts as least relevant).
pub fn rank(relevance: &[f32], seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..relevance.len() as u32).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5E_ED0F_7135));
    let key = |i: u32| {
        let v = relevance[i as usize];
        if v.is_nan() {
            f32::NEG_INFINITY
        } else {
            v
        }
    };
    // A stable sort keeps the shuffled order among equal values.
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    order
}

/// The Sobel gradient magnitude of an image (edges replicated), summed over channels.
pub fn sobel(image: &[f32], channels: usize, height: usize, width: usize) -> Vec<f32> {
    let plane = height * width;
    let mut out = vec![0f32; plane];
    let at = |c: usize, y: isize, x: isize| {
        let y = y.clamp(0, height as isize - 1) as usize;
        let x = x.clamp(0, width as isize - 1) as usize;
        image[c * plane + y * width + x]
    };
    for c in 0..channels {
        for y in 0..height as isize {
            for x in 0..width as isize {
                let gx = (at(c, y - 1, x + 1) + 2.0 * at(c, y, x + 1) + at(c, y + 1, x + 1))
                    - (at(c, y - 1, x - 1) + 2.0 * at(c, y, x - 1) + at(c, y + 1, x - 1));
                let gy = (at(c, y + 1, x - 1) + 2.0 * at(c, y + 1, x) + at(c, y + 1, x + 1))
                    - (at(c, y - 1, x - 1) + 2.0 * at(c, y - 1, x) + at(c, y - 1, x + 1));
                out[y as usize * width + x as usize] += (gx * gx + gy * gy).sqrt();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_read_back() {
        for s in DEFAULT_ESTIMATORS {
            let e: Estimator = s.parse().unwrap();
            assert_eq!(e.to_string().parse::<Estimator>().unwrap(), e, "{s}");
        }
        assert_eq!("vargrad+ig".parse::<Estimator>().unwrap().title(), "VarGrad (IG)");
        assert!("ig+ig".parse::<Estimator>().is_err());
        assert!("agi".parse::<Estimator>().is_err());
        assert!("nonsense".parse::<Estimator>().is_err());
    }

    #[test]
    fn ranks_by_decreasing_relevance_with_seeded_ties() {
        let r = rank(&[0.1, 5.0, 0.0, 0.0, 2.0, 0.0], 1);
        assert_eq!(&r[..3], &[1, 4, 0]);
        let mut tail = r[3..].to_vec();
        tail.sort();
        assert_eq!(tail, [2, 3, 5]);
        assert_eq!(r, rank(&[0.1, 5.0, 0.0, 0.0, 2.0, 0.0], 1));
    }

    #[test]
    fn sobel_finds_a_vertical_edge() {
        // 4×4, left half 0, right half 1: the two middle columns carry the edge.
        let img: Vec<f32> = (0..16).map(|i| if i % 4 >= 2 { 1.0 } else { 0.0 }).collect();
        let s = sobel(&img, 1, 4, 4);
        assert_eq!(s[1], 4.0);
        assert_eq!(s[2], 4.0);
        assert_eq!(s[0], 0.0);
        assert_eq!(s[3], 0.0);
    }
}
