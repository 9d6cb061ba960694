//! Writes ResNet-50 and ViT-B/16 with random weights under torchvision's tensor names, for
//! timing on a machine without PyTorch (bench/gpu.sh; a GPU machine need not reach PyPI).
//! Timings do not depend on the values; bench/zoo_weights.py writes torchvision's own
//! initialisation where PyTorch is at hand.
//!
//!     cargo run --release --example zoo_random_weights -- OUT_DIR [resnet50] [vit_b_16]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Result, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

struct Weights {
    tensors: HashMap<String, Tensor>,
    rng: rand_chacha::ChaCha8Rng,
}

impl Weights {
    fn new() -> Self {
        Self {
            tensors: HashMap::new(),
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(0),
        }
    }

    /// N(0, std²) with std = √(2 / fan-in) (He), fan-in the product of all dims but the first.
    fn he(&mut self, name: &str, dims: &[usize]) -> Result<()> {
        let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
        self.normal(name, dims, (2.0 / fan_in as f64).sqrt())
    }

    fn normal(&mut self, name: &str, dims: &[usize], std: f64) -> Result<()> {
        let normal = Normal::new(0.0f32, std as f32).expect("a positive deviation");
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|_| normal.sample(&mut self.rng)).collect();
        self.tensors
            .insert(name.to_string(), Tensor::from_vec(values, dims, &Device::Cpu)?);
        Ok(())
    }

    fn constant(&mut self, name: &str, dims: &[usize], value: f64) -> Result<()> {
        self.tensors.insert(
            name.to_string(),
            (Tensor::ones(dims, DType::F32, &Device::Cpu)? * value)?,
        );
        Ok(())
    }

    fn batch_norm(&mut self, prefix: &str, c: usize) -> Result<()> {
        self.constant(&format!("{prefix}.weight"), &[c], 1.0)?;
        self.constant(&format!("{prefix}.bias"), &[c], 0.0)?;
        self.constant(&format!("{prefix}.running_mean"), &[c], 0.0)?;
        self.constant(&format!("{prefix}.running_var"), &[c], 1.0)
    }

    fn layer_norm(&mut self, prefix: &str, c: usize) -> Result<()> {
        self.constant(&format!("{prefix}.weight"), &[c], 1.0)?;
        self.constant(&format!("{prefix}.bias"), &[c], 0.0)
    }

    fn linear(&mut self, prefix: &str, n_out: usize, n_in: usize) -> Result<()> {
        self.normal(&format!("{prefix}.weight"), &[n_out, n_in], (1.0 / n_in as f64).sqrt())?;
        self.constant(&format!("{prefix}.bias"), &[n_out], 0.0)
    }
}

/// torchvision's `resnet50`: bottlenecks [3, 4, 6, 3], expansion 4.
fn resnet50() -> Result<Weights> {
    let mut w = Weights::new();
    w.he("conv1.weight", &[64, 3, 7, 7])?;
    w.batch_norm("bn1", 64)?;
    let mut inplanes = 64;
    for (layer, (planes, blocks)) in [(64, 3), (128, 4), (256, 6), (512, 3)].into_iter().enumerate() {
        for b in 0..blocks {
            let p = format!("layer{}.{b}", layer + 1);
            w.he(&format!("{p}.conv1.weight"), &[planes, inplanes, 1, 1])?;
            w.batch_norm(&format!("{p}.bn1"), planes)?;
            w.he(&format!("{p}.conv2.weight"), &[planes, planes, 3, 3])?;
            w.batch_norm(&format!("{p}.bn2"), planes)?;
            w.he(&format!("{p}.conv3.weight"), &[planes * 4, planes, 1, 1])?;
            w.batch_norm(&format!("{p}.bn3"), planes * 4)?;
            if b == 0 {
                w.he(&format!("{p}.downsample.0.weight"), &[planes * 4, inplanes, 1, 1])?;
                w.batch_norm(&format!("{p}.downsample.1"), planes * 4)?;
            }
            inplanes = planes * 4;
        }
    }
    w.linear("fc", 1000, 2048)?;
    Ok(w)
}

/// torchvision's `vit_b_16`: 12 layers, width 768, MLP 3072, 224² in 16² patches.
fn vit_b_16() -> Result<Weights> {
    let mut w = Weights::new();
    let d = 768;
    w.normal("class_token", &[1, 1, d], 0.02)?;
    w.he("conv_proj.weight", &[d, 3, 16, 16])?;
    w.constant("conv_proj.bias", &[d], 0.0)?;
    w.normal("encoder.pos_embedding", &[1, 197, d], 0.02)?;
    for i in 0..12 {
        let p = format!("encoder.layers.encoder_layer_{i}");
        w.layer_norm(&format!("{p}.ln_1"), d)?;
        w.linear(&format!("{p}.self_attention.in_proj"), 3 * d, d)?;
        // torchvision's MultiheadAttention names: in_proj_weight / in_proj_bias.
        let weight = w
            .tensors
            .remove(&format!("{p}.self_attention.in_proj.weight"))
            .expect("just made");
        let bias = w
            .tensors
            .remove(&format!("{p}.self_attention.in_proj.bias"))
            .expect("just made");
        w.tensors.insert(format!("{p}.self_attention.in_proj_weight"), weight);
        w.tensors.insert(format!("{p}.self_attention.in_proj_bias"), bias);
        w.linear(&format!("{p}.self_attention.out_proj"), d, d)?;
        w.layer_norm(&format!("{p}.ln_2"), d)?;
        w.linear(&format!("{p}.mlp.0"), 3072, d)?;
        w.linear(&format!("{p}.mlp.3"), d, 3072)?;
    }
    w.layer_norm("encoder.ln", d)?;
    w.linear("heads.head", 1000, d)?;
    Ok(w)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: zoo_random_weights OUT_DIR [resnet50] [vit_b_16]");
        std::process::exit(2);
    };
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = vec!["resnet50".into(), "vit_b_16".into()];
    }
    std::fs::create_dir_all(&out)?;
    for name in names {
        let path = out.join(format!("{name}.safetensors"));
        if path.exists() {
            continue;
        }
        let weights = match name.as_str() {
            "resnet50" => resnet50()?,
            "vit_b_16" => vit_b_16()?,
            other => {
                eprintln!("unknown model `{other}` (resnet50 or vit_b_16)");
                std::process::exit(2);
            }
        };
        candle_core::safetensors::save(&weights.tensors, &path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
