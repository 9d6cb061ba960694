//! Baselines (references) x′ for path methods, built in pixel space [0, 1] and then
//! normalised like the input, so that "black" means a black photo whatever the model's
//! normalisation.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::blur::{gaussian_blur, Boundary};
use super::{AttributionError, Result};
use crate::model::preprocess::load_rgb;
use crate::model::{Normalization, Preprocessing};

/// Default σ (pixels) of the blurred-input baseline.
pub const DEFAULT_BLUR_SIGMA: f64 = 20.0;
/// Default σ of the Gaussian-noise baseline, as a fraction of the input's pixel range
/// (the 0.15 of SmoothGrad and RECAL's IG-SG references).
pub const DEFAULT_NOISE_FRACTION: f64 = 0.15;

/// A baseline x′. Text form (`--baseline`, session files): `black`, `white`, `zero`,
/// `blur:SIGMA`, `uniform`, `gaussian:FRACTION`, or an image file's path.
#[derive(Debug, Clone, PartialEq)]
pub enum Baseline {
    /// A black image, (0 − μ)/σ in normalised space.
    Black,
    /// A white image, (1 − μ)/σ.
    White,
    /// All zeros in normalised space (Captum's default): the dataset-mean colour.
    Zero,
    /// The input blurred with a Gaussian of this σ in pixels (reflect boundary).
    Blur { sigma: f64 },
    /// Uniform noise U[0, 1) per element, in pixel space.
    Uniform,
    /// clamp(x + N(0, (fraction·range)²), 0, 1) in pixel space.
    Gaussian { fraction: f64 },
    /// A user's image, preprocessed like the input.
    Image(PathBuf),
}

impl fmt::Display for Baseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Baseline::Black => write!(f, "black"),
            Baseline::White => write!(f, "white"),
            Baseline::Zero => write!(f, "zero"),
            Baseline::Blur { sigma } => write!(f, "blur:{sigma}"),
            Baseline::Uniform => write!(f, "uniform"),
            Baseline::Gaussian { fraction } => write!(f, "gaussian:{fraction}"),
            Baseline::Image(p) => write!(f, "{}", p.display()),
        }
    }
}

impl FromStr for Baseline {
    type Err = String;
    /// `black`, `white`, `zero`, `blur[:SIGMA]`, `uniform`, `gaussian[:FRACTION]`, or a path.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) if !n.contains(['/', '\\', '.']) => (n, Some(a)),
            _ => (s, None),
        };
        let number = |a: Option<&str>, default: f64, what: &str| -> std::result::Result<f64, String> {
            match a {
                None => Ok(default),
                Some(a) => match a.parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                    _ => Err(format!("{what} must be a non-negative number, got `{a}`")),
                },
            }
        };
        Ok(match name {
            "black" => Baseline::Black,
            "white" => Baseline::White,
            "zero" => Baseline::Zero,
            "blur" => Baseline::Blur {
                sigma: number(arg, DEFAULT_BLUR_SIGMA, "blur sigma")?,
            },
            "uniform" => Baseline::Uniform,
            "gaussian" => Baseline::Gaussian {
                fraction: number(arg, DEFAULT_NOISE_FRACTION, "gaussian noise fraction")?,
            },
            _ => Baseline::Image(PathBuf::from(s)),
        })
    }
}

impl serde::Serialize for Baseline {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Baseline {
    /// The text form, or the enum layout sessions written before it used (`"Black"`,
    /// `{"Blur": {"sigma": 20.0}}`, `{"Image": "photo.png"}`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        enum Legacy {
            Black,
            White,
            Zero,
            Blur { sigma: f64 },
            Uniform,
            Gaussian { fraction: f64 },
            Image(PathBuf),
        }
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            Legacy(Legacy),
        }
        let legacy = match Stored::deserialize(d)? {
            Stored::Text(t) => match t.as_str() {
                "Black" => Legacy::Black,
                "White" => Legacy::White,
                "Zero" => Legacy::Zero,
                "Uniform" => Legacy::Uniform,
                _ => return t.parse().map_err(serde::de::Error::custom),
            },
            Stored::Legacy(l) => l,
        };
        Ok(match legacy {
            Legacy::Black => Baseline::Black,
            Legacy::White => Baseline::White,
            Legacy::Zero => Baseline::Zero,
            Legacy::Blur { sigma } => Baseline::Blur { sigma },
            Legacy::Uniform => Baseline::Uniform,
            Legacy::Gaussian { fraction } => Baseline::Gaussian { fraction },
            Legacy::Image(p) => Baseline::Image(p),
        })
    }
}

impl Baseline {
    /// The words a person reads (the studio's controls and panel titles).
    pub fn label(&self) -> String {
        match self {
            Baseline::Black => "black image".into(),
            Baseline::White => "white image".into(),
            Baseline::Zero => "zero (the dataset mean)".into(),
            Baseline::Blur { sigma } => format!("blurred input (σ = {sigma} px)"),
            Baseline::Uniform => "uniform noise".into(),
            Baseline::Gaussian { fraction } => format!("input + Gaussian noise (σ = {fraction} × range)"),
            Baseline::Image(p) => format!(
                "image {}",
                p.file_name()
                    .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
            ),
        }
    }

    /// Builds x′ for a normalised input [C, H, W]. `seed` drives the noise baselines.
    pub fn build(&self, input: &Tensor, norm: &Normalization, seed: u64) -> Result<Tensor> {
        let (c, h, w) = input.dims3()?;
        let hw = h * w;
        let device = input.device();
        let mut pixels = input.flatten_all()?.to_vec1::<f32>()?;
        norm.denormalize(&mut pixels, hw);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out: Vec<f32> = match self {
            Baseline::Zero => return Ok(input.zeros_like()?),
            Baseline::Black => vec![0.0; c * hw],
            Baseline::White => vec![1.0; c * hw],
            Baseline::Blur { sigma } => gaussian_blur(&pixels, c, h, w, *sigma, Boundary::Reflect),
            Baseline::Uniform => (0..c * hw).map(|_| rng.random::<f32>()).collect(),
            Baseline::Gaussian { fraction } => {
                let (lo, hi) = pixels
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
                let sd = (*fraction * (hi - lo) as f64) as f32;
                if sd > 0.0 {
                    let normal = Normal::new(0f32, sd).map_err(|e| AttributionError::InvalidArgument(e.to_string()))?;
                    pixels
                        .iter()
                        .map(|&v| (v + normal.sample(&mut rng)).clamp(0.0, 1.0))
                        .collect()
                } else {
                    pixels.clone()
                }
            }
            Baseline::Image(path) => {
                let img =
                    load_rgb(path).map_err(|e| AttributionError::InvalidArgument(format!("baseline image: {e}")))?;
                // Resized and cropped to the input's size by torchvision's convention (the
                // shorter side to 256/224 of the crop's), then normalised like the input.
                let crop = Preprocessing::for_input(h as u32, w as u32, *norm).apply(&img);
                return Ok(norm.image_to_tensor(&crop, device)?.squeeze(0)?);
            }
        };
        norm.normalize_pixels(&mut out, hw);
        Ok(Tensor::from_vec(out, (c, h, w), device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored as its text form; the enum layout of earlier session files still reads.
    #[test]
    fn baselines_store_as_text_and_read_the_old_layout() {
        let blur = Baseline::Blur { sigma: 20.0 };
        assert_eq!(serde_json::to_string(&blur).unwrap(), "\"blur:20\"");
        for (stored, expected) in [
            ("\"blur:20\"", blur.clone()),
            ("{\"Blur\":{\"sigma\":20.0}}", blur),
            ("\"Black\"", Baseline::Black),
            ("\"black\"", Baseline::Black),
            (
                "{\"Gaussian\":{\"fraction\":0.15}}",
                Baseline::Gaussian { fraction: 0.15 },
            ),
            ("{\"Image\":\"ref.png\"}", Baseline::Image(PathBuf::from("ref.png"))),
            ("\"ref.png\"", Baseline::Image(PathBuf::from("ref.png"))),
        ] {
            assert_eq!(serde_json::from_str::<Baseline>(stored).unwrap(), expected, "{stored}");
        }
    }
    use candle_core::Device;

    fn input() -> Tensor {
        let v: Vec<f32> = (0..3 * 4 * 5).map(|i| (i as f32 * 0.37).sin()).collect();
        Tensor::from_vec(v, (3, 4, 5), &Device::Cpu).unwrap()
    }

    #[test]
    fn black_and_white_are_normalised_constants() {
        let n = Normalization::IMAGENET;
        let b = Baseline::Black.build(&input(), &n, 0).unwrap();
        let v = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!((v[0] - (-0.485 / 0.229)).abs() < 1e-6);
        assert!((v[20] - (-0.456 / 0.224)).abs() < 1e-6);
        let wv = Baseline::White
            .build(&input(), &n, 0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((wv[59] - (1.0 - 0.406) / 0.225).abs() < 1e-6);
    }

    #[test]
    fn noise_baselines_are_seeded_and_in_range() {
        let n = Normalization::IMAGENET;
        for b in [Baseline::Uniform, Baseline::Gaussian { fraction: 0.15 }] {
            let a = b
                .build(&input(), &n, 7)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let a2 = b
                .build(&input(), &n, 7)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let c = b
                .build(&input(), &n, 8)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(a, a2);
            assert_ne!(a, c);
            let mut px = a.clone();
            n.denormalize(&mut px, 20);
            assert!(px.iter().all(|&v| (-1e-5..=1.0 + 1e-5).contains(&v)));
        }
    }

    #[test]
    fn parses_names_and_paths() {
        assert_eq!("black".parse::<Baseline>().unwrap(), Baseline::Black);
        assert_eq!("blur:5".parse::<Baseline>().unwrap(), Baseline::Blur { sigma: 5.0 });
        assert_eq!(
            "gaussian".parse::<Baseline>().unwrap(),
            Baseline::Gaussian {
                fraction: DEFAULT_NOISE_FRACTION
            }
        );
        assert_eq!(
            "my/ref.png".parse::<Baseline>().unwrap(),
            Baseline::Image("my/ref.png".into())
        );
        assert!("blur:-1".parse::<Baseline>().is_err());
    }
}
