//! Reading a checkpoint into named tensors, and taking them out one by one with checks.
//!
//! A [`WeightStore`] remembers which tensors an architecture consumed, so that after
//! building a model it can report the names it expected but did not find and the names
//! the file has that the architecture does not use — the two ways a checkpoint goes wrong.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::error::ModelError;
use crate::net::layers::{Conv, Padding};

/// The geometry of a convolution layer, as an architecture declares it.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: Padding,
    pub groups: usize,
}

impl ConvSpec {
    pub fn new(c_in: usize, c_out: usize, kernel: usize, stride: usize, padding: Padding) -> Self {
        Self {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
            groups: 1,
        }
    }

    /// Depthwise: one group per channel.
    pub fn depthwise(mut self) -> Self {
        self.groups = self.c_in;
        self
    }
}

/// The tensors of one checkpoint, in f32 on the CPU, with bookkeeping of what was used.
pub struct WeightStore {
    path: PathBuf,
    device: Device,
    tensors: HashMap<String, Tensor>,
    used: BTreeSet<String>,
    missing: BTreeSet<String>,
}

/// Whether gradient descent learned this tensor (conv/linear/BN weight or bias). BatchNorm
/// running statistics and `num_batches_tracked` are not.
pub fn is_learned_parameter(name: &str) -> bool {
    name.ends_with(".weight") || name.ends_with(".bias")
}

/// Names present in torchvision state dicts that carry no weights we need.
fn is_ignorable(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

impl WeightStore {
    /// Reads `.safetensors` or PyTorch `.pth`/`.pt`/`.bin` (pickle; candle reads it
    /// without executing any code). A `state_dict` or `model` key nesting is unwrapped.
    pub fn open(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ext == "onnx" {
            // Reached by the sanity check's randomisation, which needs named tensors.
            return Err(ModelError::Format {
                path: path.to_path_buf(),
                message: "an ONNX graph, not a checkpoint of named tensors; cascading randomisation \
                          needs a .safetensors or .pth checkpoint of a known architecture"
                    .into(),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let tensors = match ext.as_str() {
            "safetensors" => Self::parse_safetensors(path, &bytes)?,
            "pth" | "pt" | "bin" | "ckpt" => Self::parse_pickle(path)?,
            // Sniff: safetensors starts with an 8-byte little-endian header length then '{'.
            _ if bytes.len() > 9 && bytes[8] == b'{' => Self::parse_safetensors(path, &bytes)?,
            _ if bytes.starts_with(b"PK") => Self::parse_pickle(path)?,
            _ => {
                return Err(ModelError::Format {
                    path: path.to_path_buf(),
                    message: "not a .safetensors or PyTorch .pth checkpoint (ONNX graphs need the .onnx extension)"
                        .into(),
                })
            }
        };
        Self::from_tensors(path, tensors, device)
    }

    /// Wraps tensors already read; they are converted to f32 and moved to `device`.
    pub fn from_tensors(path: &Path, tensors: HashMap<String, Tensor>, device: &Device) -> Result<Self, ModelError> {
        if tensors.is_empty() {
            return Err(ModelError::Format {
                path: path.to_path_buf(),
                message: "the file holds no tensors".into(),
            });
        }
        // DataParallel saves `module.`-prefixed names, PyTorch Lightning `model.`: when
        // every name carries the prefix, it is not part of the architecture's names.
        let prefix = ["module.", "model."]
            .into_iter()
            .find(|p| tensors.keys().all(|k| k.starts_with(p)));
        let mut converted = HashMap::with_capacity(tensors.len());
        for (name, t) in tensors {
            let name = match prefix {
                Some(p) => name[p.len()..].to_string(),
                None => name,
            };
            if is_ignorable(&name) {
                continue;
            }
            let t = if t.dtype() == DType::F32 {
                t
            } else if t.dtype().is_float() {
                t.to_dtype(DType::F32).map_err(|e| ModelError::candle(path, e))?
            } else {
                // Integer buffers (Swin's `relative_position_index`) hold small indices:
                // exact in f32 below 2^24, which is checked.
                let exact = t
                    .to_dtype(DType::F64)
                    .and_then(|f| f.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>())
                    .map(|m| m < (1u64 << 24) as f64)
                    .unwrap_or(t.elem_count() == 0);
                if !exact {
                    return Err(ModelError::Format {
                        path: path.to_path_buf(),
                        message: format!(
                            "tensor `{name}` holds {} integers too large to read as weights",
                            t.dtype().as_str()
                        ),
                    });
                }
                t.to_dtype(DType::F32).map_err(|e| ModelError::candle(path, e))?
            };
            let t = t.to_device(device).map_err(|e| ModelError::candle(path, e))?;
            converted.insert(name, t);
        }
        Ok(Self {
            path: path.to_path_buf(),
            device: device.clone(),
            tensors: converted,
            used: BTreeSet::new(),
            missing: BTreeSet::new(),
        })
    }

    fn parse_safetensors(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>, ModelError> {
        // Validate the container first: safetensors' own error names the problem
        // (truncated header, offsets past the end) better than a generic failure.
        safetensors::SafeTensors::deserialize(bytes).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: format!("invalid safetensors file: {e}"),
        })?;
        candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: format!("invalid safetensors file: {e}"),
        })
    }

    fn parse_pickle(path: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
        // candle's pickle reader can panic on a damaged file (e.g. LONG1 with more than 8
        // bytes overflows a shift; found by fuzzing): a damaged checkpoint must be an error.
        let read = |key: Option<&str>| {
            std::panic::catch_unwind(|| candle_core::pickle::read_all_with_key(path, key)).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                Err(candle_core::Error::Msg(format!("the pickle reader failed ({what})")))
            })
        };
        // The first error (reading the top level) is the informative one for a damaged
        // file; the nested keys fail with "key not found" when the file is merely laid out
        // differently.
        let mut first_err = None;
        for key in [None, Some("state_dict"), Some("model")] {
            match read(key) {
                Ok(v) if !v.is_empty() => return Ok(v.into_iter().collect()),
                Ok(_) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(ModelError::Format {
            path: path.to_path_buf(),
            message: match first_err {
                Some(e) => format!("could not read the PyTorch checkpoint: {e}"),
                None => "no float tensors found at the top level or under the `state_dict` or `model` keys \
                         (tensors of unsupported storage types are skipped)"
                    .into(),
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensors, unconsumed: e.g. to randomise them before building a model
    /// (see [`super::randomize`]).
    pub fn into_tensors(self) -> HashMap<String, Tensor> {
        self.tensors
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|s| s.as_str())
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.dims())
    }

    /// Takes a tensor, checking its shape when `expected` is given. A missing name is
    /// recorded (so all missing names can be reported together) and a zero placeholder
    /// of the expected shape is returned.
    pub fn get(&mut self, name: &str, expected: Option<&[usize]>) -> Result<Tensor, ModelError> {
        match self.tensors.get(name) {
            Some(t) => {
                if let Some(exp) = expected {
                    if t.dims() != exp {
                        return Err(ModelError::Shape {
                            path: self.path.clone(),
                            name: name.to_string(),
                            expected: exp.to_vec(),
                            found: t.dims().to_vec(),
                        });
                    }
                }
                self.used.insert(name.to_string());
                Ok(t.clone())
            }
            None => {
                self.missing.insert(name.to_string());
                let shape = expected.map(|s| s.to_vec()).unwrap_or_else(|| vec![1]);
                Tensor::zeros(shape, DType::F32, &self.device).map_err(|e| ModelError::candle(&self.path, e))
            }
        }
    }

    /// A convolution `prefix.weight` (+ `prefix.bias` if present) with shape checks.
    pub fn conv(&mut self, prefix: &str, spec: ConvSpec) -> Result<Conv, ModelError> {
        let ConvSpec {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
            groups,
        } = spec;
        let weight = self.get(
            &format!("{prefix}.weight"),
            Some(&[c_out, c_in / groups, kernel, kernel]),
        )?;
        let bias_name = format!("{prefix}.bias");
        let bias = if self.contains(&bias_name) {
            Some(self.get(&bias_name, Some(&[c_out]))?)
        } else {
            None
        };
        Conv::new(weight, bias, stride, padding, groups).map_err(|e| ModelError::candle(&self.path, e))
    }

    /// Folds the BatchNorm at `prefix` (weight, bias, running_mean, running_var) into `conv`.
    pub fn fold_bn(&mut self, conv: Conv, prefix: &str, eps: f64) -> Result<Conv, ModelError> {
        let c = conv.weight().dims()[0];
        let gamma = self.get(&format!("{prefix}.weight"), Some(&[c]))?;
        let beta = self.get(&format!("{prefix}.bias"), Some(&[c]))?;
        let mean = self.get(&format!("{prefix}.running_mean"), Some(&[c]))?;
        let var = self.get(&format!("{prefix}.running_var"), Some(&[c]))?;
        conv.fold_batch_norm(&gamma, &beta, &mean, &var, eps)
            .map_err(|e| ModelError::candle(&self.path, e))
    }

    /// After an architecture took its tensors: an error naming what was missing and what
    /// was left over, or Ok. Also rejects NaN/Inf weights, which would poison every map.
    pub fn finish(self, architecture: &str) -> Result<(), ModelError> {
        let unexpected: Vec<String> = {
            let mut v: Vec<String> = self
                .tensors
                .keys()
                .filter(|k| !self.used.contains(*k))
                .cloned()
                .collect();
            v.sort();
            v
        };
        if !self.missing.is_empty() || !unexpected.is_empty() {
            return Err(ModelError::TensorMismatch {
                path: self.path,
                architecture: architecture.to_string(),
                missing: self.missing.into_iter().collect(),
                unexpected,
            });
        }
        for name in &self.used {
            let t = &self.tensors[name];
            let finite = t
                .flatten_all()
                .and_then(|f| f.to_vec1::<f32>())
                .map(|v| v.iter().all(|x| x.is_finite()))
                .unwrap_or(false);
            if !finite {
                return Err(ModelError::NonFinite {
                    path: self.path.clone(),
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }
}
