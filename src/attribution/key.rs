//! Keys for cached results, made from content rather than from names or `Debug` text:
//! two reference pools of the same size, or a baseline image edited on disk, give
//! different keys. The hash (FNV-1a, 64 bits) is fixed here, so keys written into file
//! names stay the same across releases and platforms.

use std::path::Path;

use candle_core::{DType, Tensor};

use super::baseline::Baseline;
use super::ensemble::EnsembleKind;
use super::method::MethodSpec;
use super::multi_reference::MultiReferenceMethod;
use super::Result;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A running hash of typed content. Every piece is written with its length or its
/// variant, so different sequences of pieces do not run together into the same bytes.
#[derive(Debug, Clone)]
pub struct ContentKey(u64);

impl Default for ContentKey {
    fn default() -> Self {
        Self::new()
    }
}

impl ContentKey {
    pub fn new() -> Self {
        Self(OFFSET)
    }

    fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ b as u64).wrapping_mul(PRIME);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        for &b in bytes {
            self.byte(b);
        }
    }

    pub fn u64(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.byte(b);
        }
    }

    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    pub fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// A tensor's shape and values (as f32).
    pub fn tensor(&mut self, t: &Tensor) -> Result<()> {
        self.u64(t.rank() as u64);
        for &d in t.dims() {
            self.u64(d as u64);
        }
        let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        self.u64(values.len() as u64);
        // Whole words at a time: pools of reference images are tens of MB.
        for v in values {
            self.0 = (self.0 ^ v.to_bits() as u64).wrapping_mul(PRIME);
        }
        Ok(())
    }

    /// A file's bytes, or, where it cannot be read, its path (the job that reads it then
    /// fails with the reason).
    pub fn file(&mut self, path: &Path) {
        match std::fs::read(path) {
            Ok(bytes) => {
                self.text("file");
                self.bytes(&bytes);
            }
            Err(_) => {
                self.text("unreadable");
                self.text(&path.display().to_string());
            }
        }
    }

    pub fn baseline(&mut self, b: &Baseline) {
        self.text(&b.to_string());
        if let Baseline::Image(path) = b {
            self.file(path);
        }
    }

    /// Everything a [`MethodSpec`] computes from: its variant, every setting, the tensors
    /// of a reference pool and the bytes of a baseline image.
    pub fn spec(&mut self, spec: &MethodSpec) -> Result<()> {
        match spec {
            MethodSpec::Gradient => self.text("gradient"),
            MethodSpec::InputXGradient => self.text("input-x-gradient"),
            MethodSpec::PathIntegral {
                path,
                integration,
                baseline,
                steps,
                rule,
                tolerance,
            } => {
                self.text("path-integral");
                self.text(&path.to_string());
                self.text(integration.name());
                self.baseline(baseline);
                self.u64(*steps as u64);
                self.text(rule.name());
                // Only when set, so that fixed-n keys stay as they were.
                if let Some(t) = tolerance {
                    self.text("tolerance");
                    self.u64(t.to_bits());
                }
            }
            MethodSpec::Ensemble { base, config } => {
                self.text("ensemble");
                self.text(match config.kind {
                    EnsembleKind::SmoothGrad => "smoothgrad",
                    EnsembleKind::SmoothGradSquared => "smoothgrad-sq",
                    EnsembleKind::VarGrad => "vargrad",
                });
                self.u64(config.samples as u64);
                self.f64(config.noise);
                self.u64(config.seed);
                self.spec(base)?;
            }
            MethodSpec::MultiReference(config) => {
                self.text("multi-reference");
                self.text(config.method.name());
                if let MultiReferenceMethod::ExpectedGradients { pool } = &config.method {
                    self.u64(pool.len() as u64);
                    for t in pool {
                        self.tensor(t)?;
                    }
                }
                self.text(config.recalibration.name());
                self.text(config.compat.name());
                self.u64(config.references as u64);
                self.u64(config.points_per_reference as u64);
                self.f64(config.noise_fraction);
                self.u64(config.seed);
                self.u64(config.batch_size as u64);
            }
            MethodSpec::Agi(config) => {
                self.text("agi");
                self.u64(config.classes as u64);
                self.u64(config.steps as u64);
                self.f64(config.eps);
                self.text(config.recalibration.name());
                self.u64(config.seed);
                self.u64(config.batch_size as u64);
            }
        }
        Ok(())
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::multi_reference::MultiReferenceConfig;
    use candle_core::Device;

    fn key_of(spec: &MethodSpec) -> u64 {
        let mut k = ContentKey::new();
        k.spec(spec).unwrap();
        k.finish()
    }

    fn pool(fill: f32) -> MethodSpec {
        let image = Tensor::full(fill, (3, 4, 4), &Device::Cpu).unwrap();
        MethodSpec::MultiReference(MultiReferenceConfig {
            method: MultiReferenceMethod::ExpectedGradients {
                pool: vec![image.clone(), image],
            },
            references: 2,
            ..MultiReferenceConfig::default()
        })
    }

    #[test]
    fn pools_of_the_same_size_with_other_images_differ() {
        assert_eq!(key_of(&pool(0.5)), key_of(&pool(0.5)));
        assert_ne!(key_of(&pool(0.5)), key_of(&pool(0.25)));
    }

    #[test]
    fn an_edited_baseline_image_changes_the_key() {
        let file = std::env::temp_dir().join(format!("pathscope-key-{}.png", std::process::id()));
        let spec = MethodSpec::PathIntegral {
            path: crate::attribution::method::PathKind::Straight,
            integration: crate::attribution::path::Integration::Riemann,
            baseline: Baseline::Image(file.clone()),
            steps: 8,
            rule: crate::attribution::IntegrationRule::GaussLegendre,
            tolerance: None,
        };
        std::fs::write(&file, b"first").unwrap();
        let first = key_of(&spec);
        assert_eq!(first, key_of(&spec));
        std::fs::write(&file, b"second").unwrap();
        assert_ne!(first, key_of(&spec));
        std::fs::remove_file(&file).unwrap();
        assert_ne!(
            first,
            key_of(&spec),
            "a file that is gone is not the one that was there"
        );
    }

    #[test]
    fn pieces_do_not_run_together() {
        let mut a = ContentKey::new();
        a.text("ab");
        a.text("c");
        let mut b = ContentKey::new();
        b.text("a");
        b.text("bc");
        assert_ne!(a.finish(), b.finish());
    }

    /// The hash is FNV-1a, fixed: cached map names written by one release are found by
    /// the next.
    #[test]
    fn the_hash_is_stable() {
        let mut k = ContentKey::new();
        k.text("ig:straight");
        // FNV-1a of the 8-byte little-endian length 11 and the text, computed independently.
        assert_eq!(k.finish(), 0x6b6f_daf3_0328_f212, "{:#x}", k.finish());
    }
}
