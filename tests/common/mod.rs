//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};

#[cfg(feature = "studio")]
pub mod studio;

/// `../shared` beside the checkout, where the reference models, photos and golden files
/// live. `None` (with a message saying which test is skipped and why) when it is absent.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if dir.join("golden").is_dir() && dir.join("models").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED {test}: {} not found; the parity tests need the shared reference data (models, golden files) beside the checkout",
            dir.display()
        );
        None
    }
}

pub fn load_golden(shared: &std::path::Path, model: &str) -> HashMap<String, Tensor> {
    let path = shared.join(format!("golden/golden_{model}_cat.safetensors"));
    candle_core::safetensors::load(&path, &Device::Cpu).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// ‖a − b‖₂ / ‖b‖₂, in f64.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The input gradient of logit `target` of every row of `x`, on whichever path `m` runs
/// (the tape, or candle's graph on the device-generic path).
pub fn target_gradient(m: &pathscope::model::Classifier, x: &Tensor, target: usize) -> Vec<f32> {
    let (_, grad) = m
        .logits_and_input_gradient(x, |l| {
            let mut s = vec![0f32; l.len()];
            s[target] = 1.0;
            s
        })
        .unwrap();
    to_vec(&grad)
}

/// The gradient of logit `target` through candle's autograd (no tape), for comparing the
/// two paths.
pub fn autograd_gradient(m: &pathscope::model::Classifier, x: &Tensor, target: usize) -> Vec<f32> {
    let v = candle_core::Var::from_tensor(x).unwrap();
    let logits = m.forward_autograd(v.as_tensor()).unwrap();
    let grads = logits
        .narrow(1, target, 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    to_vec(grads.get(v.as_tensor()).unwrap())
}

/// Where a test body runs a model: the CPU's tape (our custom ops, input-only reverse
/// pass), the CPU's device-generic path (candle's graph and autograd with candle's own
/// ops, the path a GPU takes; `--device cpu:generic`), or the first CUDA device (builds
/// with the `cuda` feature; bench/gpu.sh runs those tests on a GPU machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    CpuTape,
    CpuGeneric,
    Cuda,
}

impl Backend {
    pub fn device(self) -> Device {
        match self {
            Backend::CpuTape | Backend::CpuGeneric => Device::Cpu,
            Backend::Cuda => Device::new_cuda(0).expect("a CUDA device for the cuda:: tests"),
        }
    }

    /// Loads a model file on this backend.
    pub fn load(self, path: &std::path::Path) -> pathscope::model::Classifier {
        let mut model = pathscope::model::Classifier::load(path, &self.device())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        model.set_generic(self == Backend::CpuGeneric);
        model
    }

    /// Whether candle's graph runs the model (everywhere but the CPU tape): it keeps a
    /// batch's intermediates, so tests give it smaller batches.
    pub fn is_candle_graph(self) -> bool {
        self != Backend::CpuTape
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::CpuTape => "tape",
            Backend::CpuGeneric => "generic",
            Backend::Cuda => "cuda",
        }
    }
}

/// One test body run on each backend (candle's `test_device!` pattern): for every
/// `name => check(args…);` the tests `cpu_tape::name`, `cpu_generic::name` and, in builds
/// with the `cuda` feature, `cuda::name`, calling `check(args…, Backend::…)` with the same
/// tolerances. Needs `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! on_each_backend {
    ($($name:ident => $check:ident($($arg:expr),*);)*) => {
        mod cpu_tape {
            use super::*;
            $(#[test]
            fn $name() {
                $check($($arg,)* common::Backend::CpuTape);
            })*
        }
        mod cpu_generic {
            use super::*;
            $(#[test]
            fn $name() {
                $check($($arg,)* common::Backend::CpuGeneric);
            })*
        }
        #[cfg(feature = "cuda")]
        mod cuda {
            use super::*;
            $(#[test]
            fn $name() {
                $check($($arg,)* common::Backend::Cuda);
            })*
        }
    };
}
