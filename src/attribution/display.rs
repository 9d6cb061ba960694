//! Reductions of a [C, H, W] attribution to a 2-D map, and display ranges.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelReduction {
    /// Σ_c A_c (signed; Captum and PAIR's diverging views).
    #[default]
    Sum,
    /// Σ_c |A_c| (PAIR's grayscale view).
    AbsSum,
    /// The channel value of largest magnitude, with its sign.
    MaxAbs,
}

/// Reduces a flat CHW map with `channels` planes of `hw` values to one plane.
pub fn reduce_channels(map: &[f32], channels: usize, hw: usize, reduction: ChannelReduction) -> Vec<f32> {
    (0..hw)
        .map(|i| {
            let vals = (0..channels).map(|c| map[c * hw + i]);
            match reduction {
                ChannelReduction::Sum => vals.sum(),
                ChannelReduction::AbsSum => vals.map(f32::abs).sum(),
                ChannelReduction::MaxAbs => vals.fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m }),
            }
        })
        .collect()
}

/// The `p`-th percentile (0–100) of `values` with NumPy's default linear interpolation.
pub fn percentile(values: &[f32], p: f64) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    let rank = p.clamp(0.0, 100.0) / 100.0 * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let f = (rank - lo as f64) as f32;
    v[lo] * (1.0 - f) + v[hi] * f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions() {
        let m = [1.0, -2.0, /* c1 */ -3.0, 1.0];
        assert_eq!(reduce_channels(&m, 2, 2, ChannelReduction::Sum), vec![-2.0, -1.0]);
        assert_eq!(reduce_channels(&m, 2, 2, ChannelReduction::AbsSum), vec![4.0, 3.0]);
        assert_eq!(reduce_channels(&m, 2, 2, ChannelReduction::MaxAbs), vec![-3.0, -2.0]);
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v: Vec<f32> = (1..=5).map(|x| x as f32).collect();
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 90.0), 4.6);
        assert_eq!(percentile(&v, 100.0), 5.0);
    }
}
