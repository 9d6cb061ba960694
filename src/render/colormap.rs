//! Colour maps, defined once as control points and sampled into 256-entry lookup tables.
//! The CPU exporters use [`Colormap::lut`]; the GPU renderer uploads the same table, so
//! screen and file agree.

/// Colour scales for attribution maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Diverging blue–white–red (ColorBrewer RdBu, reversed: negative blue, positive red).
    #[default]
    RdBu,
    /// Sequential white–red (ColorBrewer Reds), for absolute maps.
    Reds,
}

// ColorBrewer (Cynthia Brewer, Apache-2.0 licensed colour specifications).
const RDBU_R: [[u8; 3]; 11] = [
    [0x05, 0x30, 0x61],
    [0x21, 0x66, 0xac],
    [0x43, 0x93, 0xc3],
    [0x92, 0xc5, 0xde],
    [0xd1, 0xe5, 0xf0],
    [0xf7, 0xf7, 0xf7],
    [0xfd, 0xdb, 0xc7],
    [0xf4, 0xa5, 0x82],
    [0xd6, 0x60, 0x4d],
    [0xb2, 0x18, 0x2b],
    [0x67, 0x00, 0x1f],
];
const REDS: [[u8; 3]; 9] = [
    [0xff, 0xf5, 0xf0],
    [0xfe, 0xe0, 0xd2],
    [0xfc, 0xbb, 0xa1],
    [0xfc, 0x92, 0x72],
    [0xfb, 0x6a, 0x4a],
    [0xef, 0x3b, 0x2c],
    [0xcb, 0x18, 0x1d],
    [0xa5, 0x0f, 0x15],
    [0x67, 0x00, 0x0d],
];

impl Colormap {
    pub fn is_diverging(self) -> bool {
        matches!(self, Colormap::RdBu)
    }

    fn control_points(self) -> &'static [[u8; 3]] {
        match self {
            Colormap::RdBu => &RDBU_R,
            Colormap::Reds => &REDS,
        }
    }

    /// The 256-entry RGB lookup table (piecewise-linear through the control points).
    pub fn lut(self) -> Vec<[u8; 3]> {
        let pts = self.control_points();
        let segs = (pts.len() - 1) as f64;
        (0..256)
            .map(|i| {
                let t = i as f64 / 255.0 * segs;
                let k = (t.floor() as usize).min(pts.len() - 2);
                let f = t - k as f64;
                let mut c = [0u8; 3];
                for ch in 0..3 {
                    let v = pts[k][ch] as f64 * (1.0 - f) + pts[k + 1][ch] as f64 * f;
                    c[ch] = v.round() as u8;
                }
                c
            })
            .collect()
    }

    /// The colour of `t` ∈ [0, 1] (clamped), by nearest LUT entry.
    pub fn sample(lut: &[[u8; 3]], t: f32) -> [u8; 3] {
        let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.5 };
        lut[(t * 255.0).round() as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_map_is_white_at_zero_and_blue_red_at_ends() {
        let lut = Colormap::RdBu.lut();
        assert_eq!(lut[0], RDBU_R[0]);
        assert_eq!(lut[255], RDBU_R[10]);
        let mid = Colormap::sample(&lut, 0.5);
        assert!(mid.iter().all(|&c| c > 0xe0), "{mid:?}");
        assert!(lut[0][2] > lut[0][0] && lut[255][0] > lut[255][2]);
    }
}
