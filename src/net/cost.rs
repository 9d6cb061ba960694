//! The cost of a forward pass, from shapes alone.

use candle_core::Result;

use super::graph::{AvgPool2d, Binary, Graph, Reduction, Unary};
use super::layers::{Activation, Constant, Conv, ConvShape, Linear, MaxPool2d};
use crate::kernels::pointwise::broadcast_shape;

/// Counts, from shapes alone (no arithmetic), the multiply–adds of a forward pass (the
/// numerator of a benchmark's achieved GFLOP/s) and the elements of every value it
/// produces (what a recording tape keeps alive until its reverse pass).
#[derive(Debug, Default)]
pub struct CostCounter {
    pub macs: u64,
    pub activation_elements: u64,
    /// Count what candle's graph keeps instead of the tape (the device-generic path, see
    /// [`super::candle_graph::CandleGraph`]): every intermediate of the composites, and the
    /// gradient candle's backward computes and keeps for every operand of a binary op,
    /// needed or not (a broadcast weight's or bias's gradient is as large as the output).
    pub candle_graph: bool,
}

/// Elements candle's graph keeps per element of a clamp's output: the output, the
/// detached clamped copy it selects from, a byte mask (¼), and the gradient backward
/// keeps for that copy.
const CANDLE_CLAMP: f64 = 3.25;

impl CostCounter {
    /// Counts what candle's graph keeps on the device-generic path.
    pub fn for_candle_graph() -> Self {
        Self {
            candle_graph: true,
            ..Self::default()
        }
    }

    fn produced(&mut self, dims: Vec<usize>) -> Vec<usize> {
        self.activation_elements += dims.iter().product::<usize>() as u64;
        dims
    }

    fn also_kept(&mut self, elements: usize, times: f64) {
        self.activation_elements += (elements as f64 * times).ceil() as u64;
    }

    /// What the composite convolution keeps besides its output (see
    /// [`Conv::forward_composite`]): padded copies of the input where it pads itself, the
    /// bias sum and its kept operand gradient, and for a depthwise layer its k² terms,
    /// their partial sums and each per-channel weight's kept gradient (with stride, the
    /// strided copies of the input too).
    fn candle_conv_extra(&mut self, x: &[usize], out: &[usize], k: &ConvShape) {
        let pads = k.pads;
        let out_len: usize = out.iter().product();
        let in_len: usize = x.iter().product();
        let depthwise = k.groups > 1 && k.c_in / k.groups == 1 && k.groups == k.c_out;
        let symmetric = pads.top == pads.bottom && pads.left == pads.right && pads.top == pads.left;
        let padded = pads.top + pads.bottom + pads.left + pads.right > 0;
        if (depthwise || !symmetric) && padded {
            let (ph, pw) = (x[2] + pads.top + pads.bottom, x[3] + pads.left + pads.right);
            self.also_kept(x[0] * x[1] * ph * pw, 2.0);
        }
        if depthwise {
            let kk = (k.kh * k.kw) as f64;
            self.also_kept(out_len, 3.0 * kk - 1.0);
            if k.stride > 1 {
                self.also_kept(in_len, k.kh as f64);
                self.also_kept(out_len, 2.0 * kk);
            }
        }
        if k.has_bias {
            self.also_kept(out_len, 2.0);
        }
    }
}

impl Graph for CostCounter {
    type Value = Vec<usize>;

    fn conv(&mut self, x: &Vec<usize>, conv: &Conv, act: Activation) -> Result<Vec<usize>> {
        let [n, c, h, w] = x[..] else {
            candle_core::bail!("conv input must be NCHW, got {x:?}");
        };
        let k = conv.shape(h, w)?;
        if c != k.c_in {
            candle_core::bail!("conv2d: input has {c} channels, the layer expects {}", k.c_in);
        }
        let (oh, ow) = k.out;
        self.macs += (n * k.c_out * oh * ow * (k.c_in / k.groups) * k.kh * k.kw) as u64;
        let out = self.produced(vec![n, k.c_out, oh, ow]);
        if self.candle_graph {
            self.candle_conv_extra(x, &out, &k);
            if act != Activation::Identity {
                self.also_kept(out.iter().product(), CANDLE_CLAMP);
            }
        }
        Ok(out)
    }

    fn activation(&mut self, x: &Vec<usize>, act: Activation) -> Result<Vec<usize>> {
        if self.candle_graph && act != Activation::Identity {
            self.also_kept(x.iter().product(), CANDLE_CLAMP - 1.0);
        }
        Ok(self.produced(x.clone()))
    }

    fn max_pool(&mut self, x: &Vec<usize>, pool: MaxPool2d) -> Result<Vec<usize>> {
        let [n, c, h, w] = x[..] else {
            candle_core::bail!("max-pool input must be NCHW, got {x:?}");
        };
        pool.check_input(h, w)?;
        let (oh, ow) = pool.geometry(h, w);
        // The recorded argmax (u32) is as large as the pooled output.
        self.activation_elements += (n * c * oh * ow) as u64;
        Ok(self.produced(vec![n, c, oh, ow]))
    }

    fn cat_channels(&mut self, a: &Vec<usize>, b: &Vec<usize>) -> Result<Vec<usize>> {
        let mut d = a.clone();
        d[1] += b[1];
        Ok(self.produced(d))
    }

    fn conv_pair_cat(&mut self, x: &Vec<usize>, a: &Conv, b: &Conv, act: Activation) -> Result<Vec<usize>> {
        // The tape keeps only the concatenation, not the two outputs apart; candle's graph
        // keeps both and their concatenation.
        let kept = self.activation_elements;
        let ya = self.conv(x, a, act)?;
        let yb = self.conv(x, b, act)?;
        if !self.candle_graph {
            self.activation_elements = kept;
        }
        self.cat_channels(&ya, &yb)
    }

    fn add(&mut self, a: &Vec<usize>, _b: &Vec<usize>) -> Result<Vec<usize>> {
        Ok(self.produced(a.clone()))
    }

    fn global_avg_pool(&mut self, x: &Vec<usize>) -> Result<Vec<usize>> {
        Ok(self.produced(x[..2].to_vec()))
    }

    fn linear(&mut self, x: &Vec<usize>, layer: &Linear) -> Result<Vec<usize>> {
        let k = &layer.cpu;
        self.macs += (x[0] * k.n_in * k.n_out) as u64;
        Ok(self.produced(vec![x[0], k.n_out]))
    }

    fn dims(&self, x: &Vec<usize>) -> Vec<usize> {
        x.clone()
    }

    fn constant(&mut self, c: &Constant) -> Result<Vec<usize>> {
        Ok(c.dims().to_vec())
    }

    fn host(&self, _x: &Vec<usize>) -> Result<Vec<f32>> {
        candle_core::bail!("counting knows shapes, not values")
    }

    fn unary(&mut self, x: &Vec<usize>, op: Unary) -> Result<Vec<usize>> {
        if self.candle_graph {
            let len: usize = x.iter().product();
            match op {
                Unary::Clamp { .. } | Unary::HardSigmoid { .. } => self.also_kept(len, CANDLE_CLAMP),
                // x · clamp(x/6 + ½, 0, 1): the affine, the clamp, the product and the
                // kept gradient of its clamp operand.
                Unary::HardSwish => self.also_kept(len, CANDLE_CLAMP + 2.0),
                Unary::LeakyRelu(_) => self.also_kept(len, 2.0 * CANDLE_CLAMP + 3.0),
                _ => {}
            }
        }
        Ok(self.produced(x.clone()))
    }

    fn binary(&mut self, a: &Vec<usize>, b: &Vec<usize>, _op: Binary) -> Result<Vec<usize>> {
        match broadcast_shape(a, b) {
            Some(d) => {
                if self.candle_graph {
                    // Candle's backward keeps a full-size gradient for each operand, a
                    // broadcast weight's included: one more output for the smaller one.
                    let len: usize = d.iter().product();
                    if a[..] != d[..] || b[..] != d[..] {
                        self.also_kept(len, 2.0);
                    }
                }
                Ok(self.produced(d))
            }
            None => candle_core::bail!("shapes {a:?} and {b:?} do not broadcast"),
        }
    }

    fn matmul(&mut self, a: &Vec<usize>, b: &Vec<usize>, trans_b: bool) -> Result<Vec<usize>> {
        let (ra, rb) = (a.len(), b.len());
        if ra < 2 || rb < 2 {
            candle_core::bail!("matmul of {a:?} and {b:?}");
        }
        let (m, k) = (a[ra - 2], a[ra - 1]);
        let n = if trans_b { b[rb - 2] } else { b[rb - 1] };
        let Some(mut dims) = broadcast_shape(&a[..ra - 2], &b[..rb - 2]) else {
            candle_core::bail!("matmul batches {a:?} and {b:?} do not broadcast");
        };
        let batch: usize = dims.iter().product();
        self.macs += (batch * m * k * n) as u64;
        dims.extend([m, n]);
        Ok(self.produced(dims))
    }

    fn permute(&mut self, x: &Vec<usize>, perm: &[usize]) -> Result<Vec<usize>> {
        Ok(self.produced(perm.iter().map(|&p| x[p]).collect()))
    }

    fn reshape(&mut self, _x: &Vec<usize>, dims: &[usize]) -> Result<Vec<usize>> {
        Ok(self.produced(dims.to_vec()))
    }

    fn select(&mut self, x: &Vec<usize>, axis: usize, indices: &[usize]) -> Result<Vec<usize>> {
        let mut d = x.clone();
        d[axis] = indices.len();
        Ok(self.produced(d))
    }

    fn concat(&mut self, parts: &[Vec<usize>], axis: usize) -> Result<Vec<usize>> {
        let mut d = parts[0].clone();
        d[axis] = parts.iter().map(|p| p[axis]).sum();
        Ok(self.produced(d))
    }

    fn broadcast_to(&mut self, _x: &Vec<usize>, dims: &[usize]) -> Result<Vec<usize>> {
        Ok(self.produced(dims.to_vec()))
    }

    fn pad(&mut self, x: &Vec<usize>, axis: usize, before: usize, after: usize, _value: f32) -> Result<Vec<usize>> {
        let mut d = x.clone();
        d[axis] += before + after;
        Ok(self.produced(d))
    }

    fn reduce(&mut self, x: &Vec<usize>, axes: &[usize], _op: Reduction) -> Result<Vec<usize>> {
        Ok(self.produced(crate::kernels::reduce::reduced_dims(x, axes)))
    }

    fn softmax(&mut self, x: &Vec<usize>, _log: bool) -> Result<Vec<usize>> {
        Ok(self.produced(x.clone()))
    }

    fn layer_norm(&mut self, x: &Vec<usize>, _from_axis: usize, _eps: f64) -> Result<Vec<usize>> {
        Ok(self.produced(x.clone()))
    }

    fn avg_pool(&mut self, x: &Vec<usize>, pool: AvgPool2d) -> Result<Vec<usize>> {
        let [n, c, h, w] = x[..] else {
            candle_core::bail!("average pooling needs NCHW, got {x:?}");
        };
        let Some((oh, ow)) = pool.out_size(h, w) else {
            candle_core::bail!("an average-pooling window larger than its input");
        };
        Ok(self.produced(vec![n, c, oh, ow]))
    }

    fn select_where(&mut self, mask: &Constant, a: &Vec<usize>, b: &Vec<usize>) -> Result<Vec<usize>> {
        match broadcast_shape(mask.dims(), a).and_then(|t| broadcast_shape(&t, b)) {
            Some(d) => Ok(self.produced(d)),
            None => candle_core::bail!("where: shapes do not broadcast"),
        }
    }

    fn scatter(&mut self, data: &Vec<usize>, _positions: &[usize], _updates: &Vec<usize>) -> Result<Vec<usize>> {
        Ok(self.produced(data.clone()))
    }
}

#[cfg(test)]
mod tests {
    /// SqueezeNet-1.1 on 224×224: 352 M multiply–adds (torchvision's model card lists
    /// 0.35 "GFLOPS", which counts multiply–adds).
    #[test]
    fn squeezenet_mac_count_matches_the_published_figure() {
        let model = crate::assets::default_classifier(&candle_core::Device::Cpu).unwrap();
        let macs = model.forward_macs(224, 224).unwrap();
        assert!((macs as f64 / 1e6 - 352.0).abs() < 3.0, "{macs}");
    }
}
