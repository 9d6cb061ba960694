//! Colour maps, defined once as control points and sampled into 256-entry lookup tables.
//! The CPU exporters use [`Colormap::lut`]; the GPU renderer uploads the same table, so
//! screen and file agree.

/// Colour scales for attribution maps. Text form ([`Colormap::name`]): `rdbu`, `reds`,
/// `viridis`, `inferno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Colormap {
    /// Diverging blue–white–red (ColorBrewer RdBu, reversed: negative blue, positive red).
    #[default]
    #[serde(rename = "rdbu", alias = "RdBu")]
    RdBu,
    /// Sequential white–red (ColorBrewer Reds), for absolute maps.
    #[serde(rename = "reds", alias = "Reds")]
    Reds,
    /// Sequential, perceptually uniform dark purple–green–yellow (matplotlib's viridis).
    #[serde(rename = "viridis", alias = "Viridis")]
    Viridis,
    /// Sequential, perceptually uniform black–red–yellow (matplotlib's inferno).
    #[serde(rename = "inferno", alias = "Inferno")]
    Inferno,
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

// matplotlib's viridis and inferno (Stéfan van der Walt, Nathaniel Smith; CC0): every 17th of
// their 256 entries (0, 17, …, 255), so each control point lands on a LUT entry. Linear
// interpolation between them stays within 1–2/255 of matplotlib's table over most of the
// range and within about 7/255 where a channel turns (viridis' blue near the yellow end).
const VIRIDIS: [[u8; 3]; 16] = [
    [0x44, 0x01, 0x54],
    [0x48, 0x1a, 0x6c],
    [0x47, 0x2f, 0x7d],
    [0x41, 0x44, 0x87],
    [0x39, 0x56, 0x8c],
    [0x31, 0x68, 0x8e],
    [0x2a, 0x78, 0x8e],
    [0x23, 0x88, 0x8e],
    [0x1f, 0x98, 0x8b],
    [0x22, 0xa8, 0x84],
    [0x35, 0xb7, 0x79],
    [0x54, 0xc5, 0x68],
    [0x7a, 0xd1, 0x51],
    [0xa5, 0xdb, 0x36],
    [0xd2, 0xe2, 0x1b],
    [0xfd, 0xe7, 0x25],
];
const INFERNO: [[u8; 3]; 16] = [
    [0x00, 0x00, 0x04],
    [0x0c, 0x08, 0x26],
    [0x24, 0x0c, 0x4f],
    [0x42, 0x0a, 0x68],
    [0x5d, 0x12, 0x6e],
    [0x78, 0x1c, 0x6d],
    [0x93, 0x26, 0x67],
    [0xae, 0x30, 0x5c],
    [0xc7, 0x3e, 0x4c],
    [0xdd, 0x51, 0x3a],
    [0xed, 0x69, 0x25],
    [0xf8, 0x85, 0x0f],
    [0xfc, 0xa5, 0x0a],
    [0xfa, 0xc6, 0x2d],
    [0xf2, 0xe6, 0x61],
    [0xfc, 0xff, 0xa4],
];

impl Colormap {
    /// Every colour scale, in menu order (the GPU renderer builds one LUT texture each).
    pub const ALL: [Colormap; 4] = [Colormap::RdBu, Colormap::Reds, Colormap::Viridis, Colormap::Inferno];

    /// The lower-case name used in settings and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Colormap::RdBu => "rdbu",
            Colormap::Reds => "reds",
            Colormap::Viridis => "viridis",
            Colormap::Inferno => "inferno",
        }
    }

    pub fn is_diverging(self) -> bool {
        matches!(self, Colormap::RdBu)
    }

    fn control_points(self) -> &'static [[u8; 3]] {
        match self {
            Colormap::RdBu => &RDBU_R,
            Colormap::Reds => &REDS,
            Colormap::Viridis => &VIRIDIS,
            Colormap::Inferno => &INFERNO,
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

impl std::str::FromStr for Colormap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Colormap::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("colormap `{s}`: expected rdbu, reds, viridis or inferno"))
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

    /// The control points sit on LUT entries 0, 17, …, 255, so the table reproduces them
    /// exactly; a typo in a control point shows up as a non-monotone lightness.
    #[test]
    fn viridis_and_inferno_hit_their_control_points_and_brighten() {
        for (map, pts) in [(Colormap::Viridis, &VIRIDIS), (Colormap::Inferno, &INFERNO)] {
            assert!(!map.is_diverging());
            let lut = map.lut();
            for (k, p) in pts.iter().enumerate() {
                assert_eq!(lut[17 * k], *p, "{map:?} control point {k}");
            }
            let luma = |c: [u8; 3]| 0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32;
            for w in pts.windows(2) {
                assert!(luma(w[1]) > luma(w[0]), "{map:?}: {:?} -> {:?}", w[0], w[1]);
            }
        }
    }
}
