//! torchvision's Swin Transformer (Liu et al. 2021, v1): a patch embedding, stages of
//! blocks with multi-head self-attention inside W×W windows (shifted by W/2 in every second
//! block, with a learned relative position bias and a mask between the regions a shift
//! wraps together), and patch merging (2×2 neighbours concatenated, LayerNorm, a linear
//! reduction) between stages. Widths, heads and window size come from the shapes; the
//! attention's position bias and mask are constants, the mask made per input size.
//! LayerNorm eps is torchvision's 1e-5.

use candle_core::{Device, Result, Tensor};

use super::blocks::{self, Dense, LayerNorm};
use super::vit::{check_norm, shape_text, Mlp, SelfAttention};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::{Binary, Graph, Reduction};
use crate::net::layers::{Activation, Constant, Conv, Linear, Padding};

const FAMILY: &str = "Swin Transformer";
const LN_EPS: f64 = 1e-5;
/// The logit torchvision gives a pair of tokens from regions a shift wrapped together.
const MASKED: f32 = -100.0;

/// The most position-bias values (heads · W⁴) a block may have: 2²⁶, far above any Swin's
/// (torchvision's 7×7 windows with 32 heads: 77 thousand; 24×24 with 48: 16 million).
const MAX_BIAS: usize = 1 << 26;

/// torchvision's v1 builders: embedding width and depths (4×4 patches, 7×7 windows).
const VARIANTS: &[(&str, usize, [usize; 4])] = &[
    ("swin_t", 96, [2, 2, 6, 2]),
    ("swin_s", 96, [2, 2, 18, 2]),
    ("swin_b", 128, [2, 2, 18, 2]),
];

/// What `features.{i}` (i ≥ 1) is.
enum Layer {
    /// Swin blocks: their count.
    Stage(usize),
    PatchMerging,
}

fn layout(w: &WeightStore) -> Vec<Layer> {
    let mut layers = Vec::new();
    for i in 1.. {
        let blocks = (0..)
            .take_while(|b| w.contains(&format!("features.{i}.{b}.norm1.weight")))
            .count();
        if blocks > 0 {
            layers.push(Layer::Stage(blocks));
        } else if w.contains(&format!("features.{i}.reduction.weight")) {
            layers.push(Layer::PatchMerging);
        } else {
            break;
        }
    }
    layers
}

/// The window side W of a relative position bias table of (2W − 1)² rows.
fn window_from_table(rows: usize) -> Option<usize> {
    let side = (rows as f64).sqrt().round() as usize;
    (side * side == rows && side % 2 == 1).then_some(side.div_ceil(2))
}

/// A Swin Transformer when the patch embedding and the first block's attention bias table
/// are there; Swin V2 (cosine attention, a position-bias MLP) is recognised but refused.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !w.contains("features.0.0.weight") {
        return None;
    }
    if w.contains("features.1.0.attn.logit_scale") && w.contains("features.1.0.attn.cpb_mlp.0.weight") {
        return Some(Err(ModelError::UnknownArchitecture {
            path: w.path().to_path_buf(),
            hint: "Swin Transformer V2 (swin_v2_t, swin_v2_s, swin_v2_b) is not supported; Swin V1 is".into(),
        }));
    }
    if !w.contains("features.1.0.attn.relative_position_bias_table") {
        return None;
    }
    let embed = w.shape("features.0.0.weight").and_then(|s| s.first().copied());
    let patch = w.shape("features.0.0.weight").and_then(|s| s.get(2).copied());
    let window = w
        .shape("features.1.0.attn.relative_position_bias_table")
        .and_then(|s| s.first().copied())
        .and_then(window_from_table);
    let depths: Vec<usize> = layout(w)
        .iter()
        .filter_map(|l| match l {
            Layer::Stage(n) => Some(*n),
            Layer::PatchMerging => None,
        })
        .collect();
    let variant = VARIANTS
        .iter()
        .find(|(_, e, d)| Some(*e) == embed && depths == d[..] && patch == Some(4) && window == Some(7))
        .map_or(CUSTOM, |(name, _, _)| name);
    Some(Ok(variant))
}

/// (Shifted) window attention and the MLP, each pre-normed with a residual add.
struct SwinBlock {
    norm1: LayerNorm,
    attention: SelfAttention,
    /// [1, heads, W², W²]: the learned bias of each pair of positions in a window.
    position_bias: Constant,
    window: usize,
    /// W/2 in odd blocks, 0 in even ones (before the feature map's size may cancel it).
    shift: usize,
    norm2: LayerNorm,
    mlp: Mlp,
}

impl SwinBlock {
    fn load(w: &mut WeightStore, p: &str, c: usize, shifted: bool) -> std::result::Result<Self, ModelError> {
        let norm1 = LayerNorm::load(w, &format!("{p}.norm1"), LN_EPS)?;
        check_norm(w, &format!("{p}.norm1"), &norm1, c)?;
        let table_name = format!("{p}.attn.relative_position_bias_table");
        let table_dims = blocks::shape(w, &table_name, FAMILY)?;
        let (window, heads) = match &table_dims[..] {
            [rows, heads] if *heads > 0 => match window_from_table(*rows) {
                Some(window) => (window, *heads),
                None => return Err(blocks::shape_error(w, &table_name, &[169, *heads], &table_dims)),
            },
            _ => return Err(blocks::shape_error(w, &table_name, &[169, 1], &table_dims)),
        };
        // The bias is heads·W⁴ values: refuse windows no Swin uses before allocating it.
        let bias_len = (window * window)
            .checked_mul(window * window)
            .and_then(|n| n.checked_mul(heads));
        if bias_len.is_none_or(|n| n > MAX_BIAS) {
            return Err(ModelError::Format {
                path: w.path().to_path_buf(),
                message: format!("`{table_name}` describes {window}×{window} windows of {heads} heads, too large"),
            });
        }
        let table = w.get(&table_name, Some(&table_dims))?;
        let attention = SelfAttention::from_fused(
            w,
            &format!("{p}.attn.qkv.weight"),
            &format!("{p}.attn.qkv.bias"),
            &format!("{p}.attn.proj"),
            c,
            heads,
        )?;
        let position_bias = position_bias(w, p, &table, window, heads)?;
        let norm2 = LayerNorm::load(w, &format!("{p}.norm2"), LN_EPS)?;
        check_norm(w, &format!("{p}.norm2"), &norm2, c)?;
        let mlp = Mlp::load(w, &format!("{p}.mlp.0"), &format!("{p}.mlp.3"), c)?;
        Ok(Self {
            norm1,
            attention,
            position_bias,
            window,
            shift: if shifted { window / 2 } else { 0 },
            norm2,
            mlp,
        })
    }

    fn build<G: Graph>(&self, g: &mut G, x: &G::Value, device: &Device) -> Result<G::Value> {
        let y = self.norm1.apply(g, x)?;
        let y = self.window_attention(g, &y, device)?;
        let x = g.binary(&y, x, Binary::Add)?;
        let y = self.norm2.apply(g, &x)?;
        let y = self.mlp.apply(g, &y)?;
        g.binary(&y, &x, Binary::Add)
    }

    /// torchvision's `shifted_window_attention` on [B, H, W, C]: pad to whole windows,
    /// roll by −shift, attend within each window (position bias; mask when shifted), roll
    /// back, crop.
    fn window_attention<G: Graph>(&self, g: &mut G, x: &G::Value, device: &Device) -> Result<G::Value> {
        let dims = g.dims(x);
        let &[b, h, w, c] = &dims[..] else {
            candle_core::bail!("Swin attention over [B, H, W, C], got {}", shape_text(&dims));
        };
        let win = self.window;
        let (ph, pw) = (h.div_ceil(win) * win, w.div_ceil(win) * win);
        let mut x = x.clone();
        if ph > h {
            x = g.pad(&x, 1, 0, ph - h, 0.0)?;
        }
        if pw > w {
            x = g.pad(&x, 2, 0, pw - w, 0.0)?;
        }
        // No shift along an axis the window already covers.
        let sh = if win >= ph { 0 } else { self.shift };
        let sw = if win >= pw { 0 } else { self.shift };
        x = roll(g, &x, 1, sh, true)?;
        x = roll(g, &x, 2, sw, true)?;
        let (nh, nw) = (ph / win, pw / win);
        let windows = nh * nw;
        let t = win * win;
        let y = g.reshape(&x, &[b, nh, win, nw, win, c])?;
        let y = g.permute(&y, &[0, 1, 3, 2, 4, 5])?;
        let y = g.reshape(&y, &[b * windows, t, c])?;
        let mask = if sh > 0 || sw > 0 {
            Some(shift_mask(ph, pw, win, sh, sw, device)?)
        } else {
            None
        };
        let heads = self.attention.heads();
        let y = self.attention.apply(g, &y, |g, a| {
            let bias = g.constant(&self.position_bias)?;
            let a = g.binary(&a, &bias, Binary::Add)?;
            match &mask {
                Some(mask) => {
                    let a = g.reshape(&a, &[b, windows, heads, t, t])?;
                    let m = g.constant(mask)?;
                    let a = g.binary(&a, &m, Binary::Add)?;
                    g.reshape(&a, &[b * windows, heads, t, t])
                }
                None => Ok(a),
            }
        })?;
        let y = g.reshape(&y, &[b, nh, nw, win, win, c])?;
        let y = g.permute(&y, &[0, 1, 3, 2, 4, 5])?;
        let mut y = g.reshape(&y, &[b, ph, pw, c])?;
        y = roll(g, &y, 1, sh, false)?;
        y = roll(g, &y, 2, sw, false)?;
        if ph > h {
            y = g.select(&y, 1, &(0..h).collect::<Vec<_>>())?;
        }
        if pw > w {
            y = g.select(&y, 2, &(0..w).collect::<Vec<_>>())?;
        }
        Ok(y)
    }
}

/// `torch.roll` along `axis` by −`shift` (`back` false: by +`shift`).
fn roll<G: Graph>(g: &mut G, x: &G::Value, axis: usize, shift: usize, back: bool) -> Result<G::Value> {
    if shift == 0 {
        return Ok(x.clone());
    }
    let n = g.dims(x)[axis];
    let offset = if back { shift } else { n - shift % n };
    let indices: Vec<usize> = (0..n).map(|i| (i + offset) % n).collect();
    g.select(x, axis, &indices)
}

/// The bias table's rows gathered by `relative_position_index` (the buffer in the state
/// dict, or torchvision's formula when a loader dropped it) into [1, heads, W², W²].
fn position_bias(
    w: &mut WeightStore,
    p: &str,
    table: &Tensor,
    window: usize,
    heads: usize,
) -> std::result::Result<Constant, ModelError> {
    let t = window * window;
    let rows = (2 * window - 1) * (2 * window - 1);
    let index_name = format!("{p}.attn.relative_position_index");
    let index: Vec<usize> = if w.contains(&index_name) {
        let tensor = w.get(&index_name, None)?;
        let values = tensor
            .flatten_all()
            .and_then(|v| v.to_dtype(candle_core::DType::F32))
            .and_then(|v| v.to_vec1::<f32>())
            .map_err(|e| ModelError::candle(w.path(), e))?;
        if values.len() != t * t {
            return Err(blocks::shape_error(w, &index_name, &[t * t], tensor.dims()));
        }
        let mut index = Vec::with_capacity(values.len());
        for v in values {
            if !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < rows) {
                return Err(ModelError::Format {
                    path: w.path().to_path_buf(),
                    message: format!("`{index_name}` holds {v}, not a row of the {rows}-row bias table"),
                });
            }
            index.push(v as usize);
        }
        index
    } else {
        relative_position_index(window)
    };
    let table = table
        .flatten_all()
        .and_then(|v| v.to_vec1::<f32>())
        .map_err(|e| ModelError::candle(w.path(), e))?;
    let mut bias = vec![0f32; heads * t * t];
    for head in 0..heads {
        for (pair, &row) in index.iter().enumerate() {
            bias[head * t * t + pair] = table[row * heads + head];
        }
    }
    Tensor::from_vec(bias, (1, heads, t, t), w.device())
        .and_then(Constant::new)
        .map_err(|e| ModelError::candle(w.path(), e))
}

/// torchvision's `define_relative_position_index`: for tokens a = (ya, xa) and b = (yb, xb)
/// of a window, row (ya − yb + W − 1)·(2W − 1) + (xa − xb + W − 1).
fn relative_position_index(window: usize) -> Vec<usize> {
    let t = window * window;
    let side = 2 * window - 1;
    let mut index = Vec::with_capacity(t * t);
    for a in 0..t {
        for b in 0..t {
            let (ya, xa) = (a / window, a % window);
            let (yb, xb) = (b / window, b % window);
            index.push((ya + window - 1 - yb) * side + (xa + window - 1 - xb));
        }
    }
    index
}

/// The [1, windows, 1, W², W²] mask of a shifted block on a `ph`×`pw` (padded) map:
/// torchvision labels three bands per axis ([0, −W), [−W, −shift), [−shift, ∞)) and gives
/// −100 to pairs of tokens of a window with different labels.
fn shift_mask(ph: usize, pw: usize, win: usize, sh: usize, sw: usize, device: &Device) -> Result<Constant> {
    // With no shift along an axis torchvision's last band covers it all: one label.
    let band = |i: usize, size: usize, shift: usize| -> usize {
        if shift == 0 || i < size - win {
            0
        } else if i < size - shift {
            1
        } else {
            2
        }
    };
    let (nh, nw) = (ph / win, pw / win);
    let t = win * win;
    let mut mask = vec![0f32; nh * nw * t * t];
    let mut labels = vec![0usize; t];
    for wy in 0..nh {
        for wx in 0..nw {
            for (k, label) in labels.iter_mut().enumerate() {
                let (y, x) = (wy * win + k / win, wx * win + k % win);
                *label = band(y, ph, sh) * 3 + band(x, pw, sw);
            }
            let base = (wy * nw + wx) * t * t;
            for a in 0..t {
                for b in 0..t {
                    if labels[a] != labels[b] {
                        mask[base + a * t + b] = MASKED;
                    }
                }
            }
        }
    }
    Constant::new(Tensor::from_vec(mask, (1, nh * nw, 1, t, t), device)?)
}

/// torchvision's `PatchMerging`: pad H and W to even, concatenate each 2×2 neighbourhood's
/// tokens in the order (0, 0), (1, 0), (0, 1), (1, 1) (row, column), LayerNorm over the 4C
/// features, a linear 4C → 2C without bias.
struct PatchMerging {
    norm: LayerNorm,
    reduction: Dense,
}

impl PatchMerging {
    fn load(w: &mut WeightStore, p: &str, c: usize) -> std::result::Result<Self, ModelError> {
        let norm = LayerNorm::load(w, &format!("{p}.norm"), LN_EPS)?;
        check_norm(w, &format!("{p}.norm"), &norm, 4 * c)?;
        let reduction = Dense::load(w, &format!("{p}.reduction"))?;
        let (out, input) = reduction.dims();
        if input != 4 * c {
            return Err(blocks::shape_error(
                w,
                &format!("{p}.reduction.weight"),
                &[out, 4 * c],
                &[out, input],
            ));
        }
        Ok(Self { norm, reduction })
    }

    fn out_features(&self) -> usize {
        self.reduction.dims().0
    }

    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let dims = g.dims(x);
        let &[b, h, w, c] = &dims[..] else {
            candle_core::bail!("patch merging of [B, H, W, C], got {}", shape_text(&dims));
        };
        let mut x = x.clone();
        if h % 2 == 1 {
            x = g.pad(&x, 1, 0, 1, 0.0)?;
        }
        if w % 2 == 1 {
            x = g.pad(&x, 2, 0, 1, 0.0)?;
        }
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        // [B, H/2, row parity, W/2, column parity, C] → [B, H/2, W/2, column, row, C]: the
        // four neighbours in torchvision's order x0, x1, x2, x3.
        let y = g.reshape(&x, &[b, h2, 2, w2, 2, c])?;
        let y = g.permute(&y, &[0, 1, 3, 4, 2, 5])?;
        let y = g.reshape(&y, &[b, h2, w2, 4 * c])?;
        let y = self.norm.apply(g, &y)?;
        self.reduction.apply(g, &y)
    }
}

enum Stage {
    Blocks(Vec<SwinBlock>),
    Merge(PatchMerging),
}

pub struct Swin {
    patch: Conv,
    patch_norm: LayerNorm,
    stages: Vec<Stage>,
    norm: LayerNorm,
    head: Linear,
    /// Where the masks made per input size live.
    device: Device,
}

impl Swin {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let dims = blocks::shape(w, "features.0.0.weight", FAMILY)?;
        let &[_, _, p, pw] = &dims[..] else {
            return Err(blocks::shape_error(w, "features.0.0.weight", &[96, 3, 4, 4], &dims));
        };
        if p != pw || p == 0 {
            return Err(blocks::shape_error(
                w,
                "features.0.0.weight",
                &[dims[0], 3, p, p],
                &dims,
            ));
        }
        let patch = blocks::conv(w, "features.0.0", 3, p, Some(Padding::Symmetric(0)))?;
        let mut c = blocks::out_channels(&patch);
        let patch_norm = LayerNorm::load(w, "features.0.2", LN_EPS)?;
        check_norm(w, "features.0.2", &patch_norm, c)?;
        let mut stages = Vec::new();
        for (i, layer) in layout(w).into_iter().enumerate() {
            let i = i + 1;
            match layer {
                Layer::Stage(n) => {
                    let blocks = (0..n)
                        .map(|b| SwinBlock::load(w, &format!("features.{i}.{b}"), c, b % 2 == 1))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    stages.push(Stage::Blocks(blocks));
                }
                Layer::PatchMerging => {
                    let merge = PatchMerging::load(w, &format!("features.{i}"), c)?;
                    c = merge.out_features();
                    stages.push(Stage::Merge(merge));
                }
            }
        }
        let norm = LayerNorm::load(w, "norm", LN_EPS)?;
        check_norm(w, "norm", &norm, c)?;
        let head = blocks::linear(w, "head")?;
        let (classes, input) = blocks::linear_dims(&head);
        if input != c {
            return Err(blocks::shape_error(w, "head.weight", &[classes, c], &[classes, input]));
        }
        Ok(Self {
            patch,
            patch_norm,
            stages,
            norm,
            head,
            device: w.device().clone(),
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.head).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let x = g.conv(x, &self.patch, Activation::Identity)?;
        let x = g.permute(&x, &[0, 2, 3, 1])?;
        let mut x = self.patch_norm.apply(g, &x)?;
        for stage in &self.stages {
            x = match stage {
                Stage::Blocks(blocks) => {
                    for b in blocks {
                        x = b.build(g, &x, &self.device)?;
                    }
                    x
                }
                Stage::Merge(m) => m.build(g, &x)?,
            };
        }
        let x = self.norm.apply(g, &x)?;
        let x = g.reduce(&x, &[1, 2], Reduction::Mean)?;
        let dims = g.dims(&x);
        let x = g.reshape(&x, &[dims[0], dims[3]])?;
        g.linear(&x, &self.head)
    }
}
