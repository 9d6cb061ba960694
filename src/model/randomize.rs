//! Parameter randomisation for the model sanity checks (Adebayo et al. 2018; algorithms.md §4.5).
//!
//! A checkpoint is cut into *blocks* (a module and everything under it), listed top-down: the
//! logits layer first, the stem last. Randomising the first k blocks of that list is stage k of
//! the cascading randomisation. The blocks are derived from the tensor names, so a checkpoint
//! with more or fewer blocks of the same family (SqueezeNet 1.0/1.1, any torchvision ResNet,
//! EfficientNet-Lite0) needs no list of its own.
//!
//! Re-drawing rule: RECAL's. Every learned parameter (conv/linear weight and bias, BatchNorm
//! weight and bias) is replaced by draws from N(mean(θ), std(θ)) of the original tensor, std
//! with the N − 1 denominator as `torch.std`. BatchNorm running statistics are kept: they are
//! not learned by gradient descent, and RECAL keeps them too. SANITY instead used each
//! variable's own TensorFlow initialiser (e.g. truncated normal / Glorot), which keeps no trace
//! of the trained scale; the two rules give different absolute numbers, not a different trend.
//!
//! Randomise the raw tensors and then build a [`Classifier`]: BatchNorm is folded into the
//! convolutions when a model is built, after which its parameters no longer exist by name.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::architecture::Architecture;
use super::classifier::Classifier;
use super::error::ModelError;
use super::torchvision::{Family, Model};
use super::weights::WeightStore;

/// Errors of the randomisation: the checkpoint has tensors no block claims, or a request
/// names more blocks than there are.
#[derive(Debug, thiserror::Error)]
pub enum RandomizeError {
    /// A learned tensor whose name fits no block of the architecture; randomising around it
    /// would silently leave it trained.
    #[error("tensor `{name}` belongs to no randomisation block of {architecture}")]
    UnknownTensor { name: String, architecture: Architecture },
    #[error("cannot randomise the top {k} blocks: the model has {available}")]
    TooManyBlocks { k: usize, available: usize },
    #[error("block `{block}` names tensor `{name}`, which the checkpoint does not have")]
    MissingTensor { block: String, name: String },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// One randomisation unit: a module of the network and its learned parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The module prefix, e.g. `features.12`, `layer4.1`, `_blocks.15`; a stem or head made
    /// of two modules is named `conv1+bn1`, `_conv_head+_bn1`, `_conv_stem+_bn0`.
    pub name: String,
    /// Names of the learned tensors in the block (sorted).
    pub params: Vec<String>,
}

pub use super::weights::is_learned_parameter;

/// Position of a tensor's block in the network (larger = nearer the output) and its name.
fn block_of(architecture: Architecture, name: &str) -> Option<((u8, usize, usize), String)> {
    let parts: Vec<&str> = name.split('.').collect();
    let index = |i: usize| parts.get(i).and_then(|s| s.parse::<usize>().ok());
    match architecture {
        Architecture::SqueezeNet1_0 | Architecture::SqueezeNet1_1 => {
            let i = index(1)?;
            match parts[0] {
                "classifier" => Some(((1, i, 0), format!("classifier.{i}"))),
                "features" => Some(((0, i, 0), format!("features.{i}"))),
                _ => None,
            }
        }
        Architecture::ResNet(_)
        | Architecture::Torchvision(Model {
            family: Family::ResNet, ..
        }) => match parts[0] {
            "fc" => Some(((2, 0, 0), "fc".into())),
            "conv1" | "bn1" => Some(((0, 0, 0), "conv1+bn1".into())),
            layer => {
                let stage = layer.strip_prefix("layer")?.parse::<usize>().ok()?;
                let b = index(1)?;
                Some(((1, stage, b), format!("{layer}.{b}")))
            }
        },
        Architecture::EfficientNetLite0 => match parts[0] {
            "_fc" => Some(((3, 0, 0), "_fc".into())),
            "_conv_head" | "_bn1" => Some(((2, 0, 0), "_conv_head+_bn1".into())),
            "_blocks" => {
                let i = index(1)?;
                Some(((1, i, 0), format!("_blocks.{i}")))
            }
            "_conv_stem" | "_bn0" => Some(((0, 0, 0), "_conv_stem+_bn0".into())),
            _ => None,
        },
        Architecture::Torchvision(_) => torchvision_block(&parts),
        Architecture::Onnx => None,
    }
}

/// The block of a tensor of torchvision's other families: the head (`classifier`, `fc`,
/// `head`, `heads`) last; otherwise the name up to its first numbered part
/// (`features.3`, `encoder.layers.encoder_layer_5`, `trunk_output.block2.block2-1`),
/// ordered by the numbers in it; names without numbers (stems, final norms) by their first
/// two parts, before the numbered blocks of the same top-level part.
fn torchvision_block(parts: &[&str]) -> Option<((u8, usize, usize), String)> {
    let top = *parts.first()?;
    if matches!(
        top,
        "classifier" | "fc" | "head" | "heads" | "AuxLogits" | "aux1" | "aux2"
    ) {
        return Some(((3, 0, 0), top.to_string()));
    }
    let numbers = |s: &str| -> Vec<usize> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|d| !d.is_empty())
            .filter_map(|d| d.parse().ok())
            .collect()
    };
    let end = parts[..parts.len() - 1]
        .iter()
        .position(|p| !numbers(p).is_empty())
        .map(|i| i + 1)
        .unwrap_or(parts.len().saturating_sub(1).clamp(1, 2));
    let block = parts[..end].join(".");
    let n = numbers(&block);
    let rank = (
        1,
        n.first().copied().map_or(0, |v| v + 1),
        n.get(1).copied().map_or(0, |v| v + 1) * 10_000 + n.get(2).copied().unwrap_or(0),
    );
    Some((rank, block))
}

/// The randomisation blocks of a checkpoint, top-down (logits first, stem last).
pub fn randomization_blocks(
    architecture: Architecture,
    tensors: &HashMap<String, Tensor>,
) -> Result<Vec<Block>, RandomizeError> {
    let mut groups: BTreeMap<(u8, usize, usize), Block> = BTreeMap::new();
    let mut names: Vec<&String> = tensors.keys().filter(|n| is_learned_parameter(n)).collect();
    names.sort();
    for name in names {
        let (key, block) = block_of(architecture, name).ok_or_else(|| RandomizeError::UnknownTensor {
            name: name.clone(),
            architecture,
        })?;
        groups
            .entry(key)
            .or_insert_with(|| Block {
                name: block,
                params: Vec::new(),
            })
            .params
            .push(name.clone());
    }
    Ok(groups.into_values().rev().collect())
}

/// FNV-1a of the seed and the tensor name: each tensor gets its own stream, so its draws do
/// not depend on which other blocks are randomised or on the map's iteration order. A stage
/// k + 1 model thus differs from stage k only in block k + 1, as a cascade should.
fn tensor_seed(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(name.as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// θ re-drawn from N(mean(θ), std(θ)), same shape, dtype f32, same device.
fn redraw(t: &Tensor, seed: u64, name: &str) -> Result<Tensor, RandomizeError> {
    let values = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    let n = values.len();
    let mean = if n == 0 {
        0.0
    } else {
        values.iter().sum::<f64>() / n as f64
    };
    let std = if n < 2 {
        0.0
    } else {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(tensor_seed(seed, name));
    let drawn: Vec<f32> = match Normal::new(mean, std) {
        Ok(normal) if std > 0.0 => (0..n).map(|_| normal.sample(&mut rng) as f32).collect(),
        // A constant (or non-finite) tensor has no spread to draw from; keep its mean.
        _ => vec![mean as f32; n],
    };
    Ok(Tensor::from_vec(drawn, t.dims(), t.device())?)
}

/// A copy of `tensors` with every learned parameter of `blocks[..k]` re-drawn (RECAL's rule,
/// module docs); all other tensors, running statistics included, are shared unchanged.
/// Deterministic for a given `seed`.
pub fn randomize_top_blocks(
    tensors: &HashMap<String, Tensor>,
    blocks: &[Block],
    k: usize,
    seed: u64,
) -> Result<HashMap<String, Tensor>, RandomizeError> {
    if k > blocks.len() {
        return Err(RandomizeError::TooManyBlocks {
            k,
            available: blocks.len(),
        });
    }
    let mut out = tensors.clone();
    for block in &blocks[..k] {
        for name in &block.params {
            let t = tensors.get(name).ok_or_else(|| RandomizeError::MissingTensor {
                block: block.name.clone(),
                name: name.clone(),
            })?;
            out.insert(name.clone(), redraw(t, seed, name)?);
        }
    }
    Ok(out)
}

/// The raw tensors of a checkpoint (f32, on the CPU, BatchNorm not folded) with its
/// architecture: what randomisation needs and a [`Classifier`] can be built from.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Where the tensors came from; names the source in errors.
    pub source: PathBuf,
    pub architecture: Architecture,
    pub tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// Reads a `.safetensors` or PyTorch checkpoint file.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        Self::from_store(WeightStore::open(path, &Device::Cpu)?)
    }

    /// Reads a safetensors checkpoint held in memory; `name` names it in errors.
    pub fn from_bytes(name: &Path, bytes: &[u8]) -> Result<Self, ModelError> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| ModelError::Format {
            path: name.to_path_buf(),
            message: format!("invalid safetensors file: {e}"),
        })?;
        Self::from_tensors(name, tensors)
    }

    /// Wraps tensors already read (converted to f32, `num_batches_tracked` dropped).
    pub fn from_tensors(source: &Path, tensors: HashMap<String, Tensor>) -> Result<Self, ModelError> {
        Self::from_store(WeightStore::from_tensors(source, tensors, &Device::Cpu)?)
    }

    fn from_store(store: WeightStore) -> Result<Self, ModelError> {
        let architecture = Architecture::detect(&store)?;
        let source = store.path().to_path_buf();
        Ok(Self {
            source,
            architecture,
            tensors: store.into_tensors(),
        })
    }

    /// The randomisation blocks, top-down.
    pub fn blocks(&self) -> Result<Vec<Block>, RandomizeError> {
        randomization_blocks(self.architecture, &self.tensors)
    }

    /// The trained model, on `device`.
    pub fn classifier(&self, device: &Device) -> Result<Classifier, ModelError> {
        build_classifier(&self.source, self.tensors.clone(), device)
    }

    /// The model with the top `k` of `blocks` randomised, on `device`.
    pub fn randomized_classifier(
        &self,
        blocks: &[Block],
        k: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Classifier, RandomizeError> {
        let tensors = randomize_top_blocks(&self.tensors, blocks, k, seed)?;
        Ok(build_classifier(&self.source, tensors, device)?)
    }
}

/// Builds a classifier from raw tensors (BatchNorm is folded here); `source` names it in errors.
pub fn build_classifier(
    source: &Path,
    tensors: HashMap<String, Tensor>,
    device: &Device,
) -> Result<Classifier, ModelError> {
    Classifier::from_store(WeightStore::from_tensors(source, tensors, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(values: Vec<f32>, shape: &[usize]) -> Tensor {
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn ramp(n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n)
            .map(|i| offset + scale * ((i * 37 % n) as f32 / n as f32 - 0.5))
            .collect()
    }

    /// A toy ResNet-like state dict: stem, one block, fc; BN running stats included.
    fn resnet_like() -> HashMap<String, Tensor> {
        let mut m = HashMap::new();
        for (prefix, c) in [("bn1", 8), ("layer1.0.bn1", 8), ("layer4.1.bn2", 4)] {
            m.insert(format!("{prefix}.weight"), t(ramp(c, 0.2, 1.0), &[c]));
            m.insert(format!("{prefix}.bias"), t(ramp(c, 0.1, 0.0), &[c]));
            m.insert(format!("{prefix}.running_mean"), t(ramp(c, 0.3, 0.1), &[c]));
            m.insert(format!("{prefix}.running_var"), t(ramp(c, 0.3, 1.0), &[c]));
        }
        m.insert("conv1.weight".into(), t(ramp(8 * 27, 0.5, 0.0), &[8, 3, 3, 3]));
        m.insert("layer1.0.conv1.weight".into(), t(ramp(8 * 72, 0.4, 0.0), &[8, 8, 3, 3]));
        m.insert("layer4.1.conv2.weight".into(), t(ramp(4 * 72, 0.4, 0.0), &[4, 8, 3, 3]));
        m.insert("layer4.0.conv1.weight".into(), t(ramp(4 * 72, 0.4, 0.0), &[4, 8, 3, 3]));
        m.insert("fc.weight".into(), t(ramp(10 * 4, 0.1, 0.02), &[10, 4]));
        m.insert("fc.bias".into(), t(ramp(10, 0.01, 0.0), &[10]));
        m
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn resnet_blocks_are_top_down_and_grouped_by_module() {
        let blocks = randomization_blocks(Architecture::ResNet(18), &resnet_like()).unwrap();
        let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["fc", "layer4.1", "layer4.0", "layer1.0", "conv1+bn1"]);
        assert_eq!(blocks[0].params, ["fc.bias", "fc.weight"]);
        assert_eq!(
            blocks[4].params,
            ["bn1.bias", "bn1.weight", "conv1.weight"],
            "running statistics are not parameters"
        );
    }

    #[test]
    fn squeezenet_orders_feature_indices_numerically() {
        let mut m = HashMap::new();
        for name in [
            "features.0.weight",
            "features.12.squeeze.bias",
            "features.3.squeeze.weight",
        ] {
            m.insert(name.to_string(), t(vec![1.0, 2.0], &[2]));
        }
        m.insert("classifier.1.weight".into(), t(vec![1.0, 2.0], &[2]));
        let blocks = randomization_blocks(Architecture::SqueezeNet1_1, &m).unwrap();
        let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["classifier.1", "features.12", "features.3", "features.0"]);
    }

    #[test]
    fn unknown_tensor_is_an_error() {
        let mut m = resnet_like();
        m.insert("head.weight".into(), t(vec![1.0], &[1]));
        let err = randomization_blocks(Architecture::ResNet(18), &m).unwrap_err();
        assert!(matches!(err, RandomizeError::UnknownTensor { ref name, .. } if name == "head.weight"));
    }

    #[test]
    fn only_the_top_k_blocks_change() {
        let m = resnet_like();
        let blocks = randomization_blocks(Architecture::ResNet(18), &m).unwrap();
        let r = randomize_top_blocks(&m, &blocks, 2, 7).unwrap();
        assert_eq!(r.len(), m.len());
        let changed: Vec<&String> = {
            let mut v: Vec<&String> = m.keys().filter(|n| values(&m[*n]) != values(&r[*n])).collect();
            v.sort();
            v
        };
        assert_eq!(
            changed,
            [
                "fc.bias",
                "fc.weight",
                "layer4.1.bn2.bias",
                "layer4.1.bn2.weight",
                "layer4.1.conv2.weight"
            ]
        );
        assert_eq!(
            values(&r["layer4.1.bn2.running_var"]),
            values(&m["layer4.1.bn2.running_var"])
        );
        assert_eq!(r["layer4.1.conv2.weight"].dims(), &[4, 8, 3, 3]);
        assert!(matches!(
            randomize_top_blocks(&m, &blocks, 6, 7),
            Err(RandomizeError::TooManyBlocks { k: 6, available: 5 })
        ));
    }

    #[test]
    fn deterministic_per_seed_and_cumulative() {
        let m = resnet_like();
        let blocks = randomization_blocks(Architecture::ResNet(18), &m).unwrap();
        let a = randomize_top_blocks(&m, &blocks, 3, 1).unwrap();
        let b = randomize_top_blocks(&m, &blocks, 3, 1).unwrap();
        let c = randomize_top_blocks(&m, &blocks, 3, 2).unwrap();
        let deeper = randomize_top_blocks(&m, &blocks, 4, 1).unwrap();
        for name in &blocks[2].params {
            assert_eq!(values(&a[name]), values(&b[name]));
            assert_ne!(values(&a[name]), values(&c[name]));
            // Stage k + 1 keeps stage k's draws.
            assert_eq!(values(&a[name]), values(&deeper[name]));
        }
    }

    #[test]
    fn embedded_squeezenet_blocks_and_randomised_model() {
        let ckpt = crate::assets::default_checkpoint().unwrap();
        assert_eq!(ckpt.architecture, Architecture::SqueezeNet1_1);
        let blocks = ckpt.blocks().unwrap();
        let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "classifier.1",
                "features.12",
                "features.11",
                "features.10",
                "features.9",
                "features.7",
                "features.6",
                "features.4",
                "features.3",
                "features.0"
            ]
        );
        // Fire modules: squeeze, expand1x1, expand3x3, each with weight and bias.
        assert_eq!(blocks[1].params.len(), 6);
        let x = Tensor::from_vec(
            crate::attribution::testing::lcg_uniform(3 * 64 * 64, 5),
            (1, 3, 64, 64),
            &Device::Cpu,
        )
        .unwrap();
        let logits = |m: &Classifier| values(&m.forward(&x).unwrap());
        let trained = logits(&ckpt.classifier(&Device::Cpu).unwrap());
        let same = logits(&ckpt.randomized_classifier(&blocks, 0, 1, &Device::Cpu).unwrap());
        let top = logits(&ckpt.randomized_classifier(&blocks, 1, 1, &Device::Cpu).unwrap());
        assert_eq!(trained, same);
        let diff: f32 = trained.iter().zip(&top).map(|(a, b)| (a - b).abs()).sum::<f32>() / trained.len() as f32;
        assert!(
            diff > 1e-3,
            "randomising classifier.1 must change the logits (mean |Δ| {diff})"
        );
    }

    #[test]
    fn redraw_keeps_mean_and_std() {
        let n = 20_000;
        let orig: Vec<f32> = ramp(n, 0.6, 0.25);
        let stats = |v: &[f32]| {
            let m = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
            let s = (v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
            (m, s)
        };
        let drawn = values(&redraw(&t(orig.clone(), &[n]), 3, "x.weight").unwrap());
        let ((m0, s0), (m1, s1)) = (stats(&orig), stats(&drawn));
        assert!((m0 - m1).abs() < 0.01 * s0 * 5.0, "mean {m0} vs {m1}");
        assert!((s0 - s1).abs() < 0.02 * s0, "std {s0} vs {s1}");
        // A constant tensor (e.g. an untrained BN weight of ones) stays constant.
        assert_eq!(
            values(&redraw(&t(vec![1.0; 4], &[4]), 3, "bn.weight").unwrap()),
            [1.0; 4]
        );
    }
}
