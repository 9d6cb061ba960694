//! The cost of a forward pass, from shapes alone.

use candle_core::Result;

use super::graph::Graph;
use super::layers::{Activation, Conv, Linear, MaxPool2d};

/// Counts, from shapes alone (no arithmetic), the multiply–adds of a forward pass (the
/// numerator of a benchmark's achieved GFLOP/s) and the elements of every value it
/// produces (what a recording tape keeps alive until its reverse pass).
#[derive(Debug, Default)]
pub struct CostCounter {
    pub macs: u64,
    pub activation_elements: u64,
}

impl CostCounter {
    fn produced(&mut self, dims: Vec<usize>) -> Vec<usize> {
        self.activation_elements += dims.iter().product::<usize>() as u64;
        dims
    }
}

impl Graph for CostCounter {
    type Value = Vec<usize>;

    fn conv(&mut self, x: &Vec<usize>, conv: &Conv, _act: Activation) -> Result<Vec<usize>> {
        let [n, c, h, w] = x[..] else {
            candle_core::bail!("conv input must be NCHW, got {x:?}");
        };
        let Some(op) = conv.cpu_op(h, w) else {
            candle_core::bail!("counting needs CPU weights");
        };
        op.check_input(c, h, w)?;
        let k = &op.kernel;
        let (oh, ow) = op.out_size(h, w);
        self.macs += (n * k.c_out * oh * ow * (k.c_in / k.groups) * k.kh * k.kw) as u64;
        Ok(self.produced(vec![n, k.c_out, oh, ow]))
    }

    fn activation(&mut self, x: &Vec<usize>, _act: Activation) -> Result<Vec<usize>> {
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
        // The tape keeps only the concatenation, not the two outputs apart.
        let kept = self.activation_elements;
        let ya = self.conv(x, a, act)?;
        let yb = self.conv(x, b, act)?;
        self.activation_elements = kept;
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
