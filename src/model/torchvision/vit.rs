//! torchvision's Vision Transformer (Dosovitskiy et al. 2021): a p×p stride-p patch
//! projection, a class token, learned position embeddings (which fix the input size),
//! pre-norm encoder layers (multi-head self-attention, an MLP with GELU) and a linear head
//! on the class token. Width, patch, depth and MLP size come from the shapes; the number of
//! heads, which no shape holds, is torchvision's for its widths and width/64 otherwise.

use candle_core::{Result, Tensor};

use super::blocks::{self, Act, Dense, LayerNorm};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::{Binary, Graph, Unary};
use crate::net::layers::{Activation, Constant, Conv, Linear, Padding};

const FAMILY: &str = "Vision Transformer";
const LN_EPS: f64 = 1e-6;

/// torchvision's builders: width, patch, layers.
const VARIANTS: &[(&str, usize, usize, usize)] = &[
    ("vit_b_16", 768, 16, 12),
    ("vit_b_32", 768, 32, 12),
    ("vit_l_16", 1024, 16, 24),
    ("vit_l_32", 1024, 32, 24),
    ("vit_h_14", 1280, 14, 32),
];

fn layer_count(w: &WeightStore) -> usize {
    (0..)
        .take_while(|i| w.contains(&format!("encoder.layers.encoder_layer_{i}.ln_1.weight")))
        .count()
}

/// A ViT when it has the class token and the encoder's position embedding.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !(w.contains("class_token") && w.contains("encoder.pos_embedding")) {
        return None;
    }
    if !w.contains("conv_proj.weight") {
        // torchvision's optional convolutional stem (`conv_proj.conv_bn_relu_{i}`) has
        // strides no shape tells.
        return Some(Err(ModelError::UnknownArchitecture {
            path: w.path().to_path_buf(),
            hint: "a Vision Transformer without a single patch projection `conv_proj.weight` \
                   (a convolutional stem) is not supported"
                .into(),
        }));
    }
    let proj = w.shape("conv_proj.weight").unwrap_or(&[]);
    let (width, patch) = match proj {
        [d, _, p, _] => (*d, *p),
        _ => (0, 0),
    };
    let layers = layer_count(w);
    let variant = VARIANTS
        .iter()
        .find(|v| (v.1, v.2, v.3) == (width, patch, layers))
        .map_or(CUSTOM, |v| v.0);
    Some(Ok(variant))
}

/// torchvision's heads for its widths (ViT-B 12, ViT-L and ViT-H 16), else one per 64
/// features (the usual head size); `None` when that does not divide the width.
fn heads_for(width: usize) -> Option<usize> {
    match width {
        768 => Some(12),
        1024 | 1280 => Some(16),
        d if d > 0 && d % 64 == 0 => Some(d / 64),
        _ => None,
    }
}

/// Multi-head self-attention with its query, key and value projections split from one
/// fused [3D, D] matrix (rows q, k, v) and the query pre-scaled by 1/√d_h, as both
/// `nn.MultiheadAttention` and Swin's window attention scale it.
pub(crate) struct SelfAttention {
    q: Dense,
    k: Dense,
    v: Dense,
    out: Dense,
    heads: usize,
}

impl SelfAttention {
    /// From the fused projection `weight_name` [3D, D] (and `bias_name` [3D], if present)
    /// and the output projection `out_prefix`, with `heads` heads.
    pub(crate) fn from_fused(
        w: &mut WeightStore,
        weight_name: &str,
        bias_name: &str,
        out_prefix: &str,
        d: usize,
        heads: usize,
    ) -> std::result::Result<Self, ModelError> {
        if heads == 0 || !d.is_multiple_of(heads) {
            return Err(ModelError::Format {
                path: w.path().to_path_buf(),
                message: format!("`{weight_name}`: {d} features do not split into {heads} heads"),
            });
        }
        let weight = w.get(weight_name, Some(&[3 * d, d]))?;
        let bias = if w.contains(bias_name) {
            Some(w.get(bias_name, Some(&[3 * d]))?)
        } else {
            None
        };
        let scale = 1.0 / ((d / heads) as f64).sqrt();
        let part = |i: usize, s: f64| -> Result<(Tensor, Option<Tensor>)> {
            let wi = (weight.narrow(0, i * d, d)? * s)?.contiguous()?;
            let bi = bias
                .as_ref()
                .map(|b| (b.narrow(0, i * d, d)? * s)?.contiguous())
                .transpose()?;
            Ok((wi, bi))
        };
        let make = |w: &WeightStore, i: usize, s: f64| -> std::result::Result<Dense, ModelError> {
            let (wi, bi) = part(i, s).map_err(|e| ModelError::candle(w.path(), e))?;
            Dense::from_tensors(w, wi, bi)
        };
        let (q, k, v) = (make(w, 0, scale)?, make(w, 1, 1.0)?, make(w, 2, 1.0)?);
        let out = Dense::load(w, out_prefix)?;
        if out.dims() != (d, d) {
            let (o, i) = out.dims();
            return Err(blocks::shape_error(
                w,
                &format!("{out_prefix}.weight"),
                &[d, d],
                &[o, i],
            ));
        }
        Ok(Self { q, k, v, out, heads })
    }

    pub(crate) fn heads(&self) -> usize {
        self.heads
    }

    /// x [B, S, D] → [B, S, D]. `logits` sees the [B, heads, S, S] attention logits
    /// before the softmax (Swin adds its position bias and mask there).
    pub(crate) fn apply<G: Graph>(
        &self,
        g: &mut G,
        x: &G::Value,
        logits: impl FnOnce(&mut G, G::Value) -> Result<G::Value>,
    ) -> Result<G::Value> {
        let dims = g.dims(x);
        let &[b, s, d] = &dims[..] else {
            candle_core::bail!("attention over tokens [B, S, D], got {}", shape_text(&dims));
        };
        let h = self.heads;
        let split = |g: &mut G, proj: &Dense| -> Result<G::Value> {
            let y = proj.apply(g, x)?;
            let y = g.reshape(&y, &[b, s, h, d / h])?;
            g.permute(&y, &[0, 2, 1, 3])
        };
        let q = split(g, &self.q)?;
        let k = split(g, &self.k)?;
        let v = split(g, &self.v)?;
        let a = g.matmul(&q, &k, true)?;
        let a = logits(g, a)?;
        let a = g.softmax(&a, false)?;
        let y = g.matmul(&a, &v, false)?;
        let y = g.permute(&y, &[0, 2, 1, 3])?;
        let y = g.reshape(&y, &[b, s, d])?;
        self.out.apply(g, &y)
    }
}

/// Linear → GELU → Linear, the MLP of ViT's and Swin's blocks.
pub(crate) struct Mlp {
    fc1: Dense,
    fc2: Dense,
}

impl Mlp {
    /// `fc1` [hidden, d] and `fc2` [d, hidden].
    pub(crate) fn load(w: &mut WeightStore, fc1: &str, fc2: &str, d: usize) -> std::result::Result<Self, ModelError> {
        let first = Dense::load(w, fc1)?;
        let (hidden, input) = first.dims();
        if input != d {
            return Err(blocks::shape_error(
                w,
                &format!("{fc1}.weight"),
                &[hidden, d],
                &[hidden, input],
            ));
        }
        let second = Dense::load(w, fc2)?;
        if second.dims() != (d, hidden) {
            let (o, i) = second.dims();
            return Err(blocks::shape_error(w, &format!("{fc2}.weight"), &[d, hidden], &[o, i]));
        }
        Ok(Self {
            fc1: first,
            fc2: second,
        })
    }

    pub(crate) fn apply<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let y = self.fc1.apply(g, x)?;
        let y = blocks::act(g, &y, Act::Gelu)?;
        self.fc2.apply(g, &y)
    }
}

/// A shape as `1×3×224×224`, for messages.
pub(crate) fn shape_text(dims: &[usize]) -> String {
    dims.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}

/// An error unless the LayerNorm `prefix` normalises `d` features.
pub(crate) fn check_norm(
    w: &WeightStore,
    prefix: &str,
    norm: &LayerNorm,
    d: usize,
) -> std::result::Result<(), ModelError> {
    if norm.dim() == d {
        Ok(())
    } else {
        Err(blocks::shape_error(w, &format!("{prefix}.weight"), &[d], &[norm.dim()]))
    }
}

/// x + attention(ln_1(x)), then x + mlp(ln_2(x)).
struct EncoderLayer {
    ln_1: LayerNorm,
    attention: SelfAttention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl EncoderLayer {
    fn load(w: &mut WeightStore, p: &str, d: usize, heads: usize) -> std::result::Result<Self, ModelError> {
        let ln_1 = LayerNorm::load(w, &format!("{p}.ln_1"), LN_EPS)?;
        check_norm(w, &format!("{p}.ln_1"), &ln_1, d)?;
        let attention = SelfAttention::from_fused(
            w,
            &format!("{p}.self_attention.in_proj_weight"),
            &format!("{p}.self_attention.in_proj_bias"),
            &format!("{p}.self_attention.out_proj"),
            d,
            heads,
        )?;
        let ln_2 = LayerNorm::load(w, &format!("{p}.ln_2"), LN_EPS)?;
        check_norm(w, &format!("{p}.ln_2"), &ln_2, d)?;
        // Checkpoints from before torchvision 0.13 name the MLP's Linears `linear_1`/`linear_2`.
        let mlp = if w.contains(&format!("{p}.mlp.linear_1.weight")) {
            Mlp::load(w, &format!("{p}.mlp.linear_1"), &format!("{p}.mlp.linear_2"), d)?
        } else {
            Mlp::load(w, &format!("{p}.mlp.0"), &format!("{p}.mlp.3"), d)?
        };
        Ok(Self {
            ln_1,
            attention,
            ln_2,
            mlp,
        })
    }

    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let y = self.ln_1.apply(g, x)?;
        let y = self.attention.apply(g, &y, |_, a| Ok(a))?;
        let x = g.binary(&y, x, Binary::Add)?;
        let y = self.ln_2.apply(g, &x)?;
        let y = self.mlp.apply(g, &y)?;
        g.binary(&y, &x, Binary::Add)
    }
}

pub struct Vit {
    patch: Conv,
    patch_size: usize,
    width: usize,
    /// Patches per side.
    grid: usize,
    class_token: Constant,
    pos_embedding: Constant,
    layers: Vec<EncoderLayer>,
    ln: LayerNorm,
    /// `heads.pre_logits` (followed by tanh), when the model has a representation layer.
    pre_logits: Option<Linear>,
    head: Linear,
}

impl Vit {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let dims = blocks::shape(w, "conv_proj.weight", FAMILY)?;
        let &[d, _, p, pw] = &dims[..] else {
            return Err(blocks::shape_error(w, "conv_proj.weight", &[768, 3, 16, 16], &dims));
        };
        if p != pw || p == 0 {
            return Err(blocks::shape_error(w, "conv_proj.weight", &[d, 3, p, p], &dims));
        }
        let patch = blocks::conv(w, "conv_proj", 3, p, Some(Padding::Symmetric(0)))?;
        let heads = heads_for(d).ok_or_else(|| ModelError::Format {
            path: w.path().to_path_buf(),
            message: format!("cannot tell the number of attention heads of a {d}-wide Vision Transformer"),
        })?;
        let class_token = w.get("class_token", Some(&[1, 1, d]))?;
        let pos_dims = blocks::shape(w, "encoder.pos_embedding", FAMILY)?;
        let tokens = match &pos_dims[..] {
            [1, t, dd] if *dd == d && *t > 1 => t - 1,
            _ => return Err(blocks::shape_error(w, "encoder.pos_embedding", &[1, 197, d], &pos_dims)),
        };
        // The patches form a square grid: (H/p)² = tokens.
        let grid = (tokens as f64).sqrt().round() as usize;
        if grid * grid != tokens {
            return Err(ModelError::Format {
                path: w.path().to_path_buf(),
                message: format!(
                    "`encoder.pos_embedding` holds {tokens} patch positions, not a square grid of patches"
                ),
            });
        }
        let pos_embedding = w.get("encoder.pos_embedding", Some(&pos_dims))?;
        let layers = (0..layer_count(w))
            .map(|i| EncoderLayer::load(w, &format!("encoder.layers.encoder_layer_{i}"), d, heads))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let ln = LayerNorm::load(w, "encoder.ln", LN_EPS)?;
        check_norm(w, "encoder.ln", &ln, d)?;
        let mut features = d;
        let pre_logits = if w.contains("heads.pre_logits.weight") {
            let l = blocks::linear(w, "heads.pre_logits")?;
            let (out, input) = blocks::linear_dims(&l);
            if input != d {
                return Err(blocks::shape_error(
                    w,
                    "heads.pre_logits.weight",
                    &[out, d],
                    &[out, input],
                ));
            }
            features = out;
            Some(l)
        } else {
            None
        };
        let head = blocks::linear(w, "heads.head")?;
        let (classes, input) = blocks::linear_dims(&head);
        if input != features {
            return Err(blocks::shape_error(
                w,
                "heads.head.weight",
                &[classes, features],
                &[classes, input],
            ));
        }
        let constant = |t: Tensor| Constant::new(t).map_err(|e| ModelError::candle(w.path(), e));
        Ok(Self {
            patch,
            patch_size: p,
            width: d,
            grid,
            class_token: constant(class_token)?,
            pos_embedding: constant(pos_embedding)?,
            layers,
            ln,
            pre_logits,
            head,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.head).0
    }

    /// The input size the position embeddings were made for (square).
    pub fn input_size(&self) -> (usize, usize) {
        let side = self.grid * self.patch_size;
        (side, side)
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let dims = g.dims(x);
        let (h, w) = self.input_size();
        if dims.len() != 4 || dims[2] != h || dims[3] != w {
            candle_core::bail!(
                "this Vision Transformer takes {h}×{w} inputs (its position embeddings fix the size), got {}",
                shape_text(&dims)
            );
        }
        let n = dims[0];
        let d = self.width;
        let t = self.grid * self.grid;
        // [N, D, h, w] → tokens [N, T, D].
        let x = g.conv(x, &self.patch, Activation::Identity)?;
        let x = g.reshape(&x, &[n, d, t])?;
        let x = g.permute(&x, &[0, 2, 1])?;
        let cls = g.constant(&self.class_token)?;
        let cls = g.broadcast_to(&cls, &[n, 1, d])?;
        let x = g.concat(&[cls, x], 1)?;
        let pos = g.constant(&self.pos_embedding)?;
        let mut x = g.binary(&x, &pos, Binary::Add)?;
        for layer in &self.layers {
            x = layer.build(g, &x)?;
        }
        // The final LayerNorm is per token: only the class token's is needed.
        let x = g.select(&x, 1, &[0])?;
        let x = g.reshape(&x, &[n, d])?;
        let mut x = self.ln.apply(g, &x)?;
        if let Some(pre) = &self.pre_logits {
            x = g.linear(&x, pre)?;
            x = g.unary(&x, Unary::Tanh)?;
        }
        g.linear(&x, &self.head)
    }
}
