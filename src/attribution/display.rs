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

/// Which part of a signed map is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DisplayMode {
    /// The map as it is (the "vanilla" view), on a diverging scale.
    #[default]
    Signed,
    /// |A|, on a sequential scale.
    Absolute,
    /// max(A, 0).
    PositiveOnly,
    /// max(−A, 0): negative evidence, shown as positive magnitudes.
    NegativeOnly,
}

impl DisplayMode {
    pub const ALL: [DisplayMode; 4] = [
        DisplayMode::Signed,
        DisplayMode::Absolute,
        DisplayMode::PositiveOnly,
        DisplayMode::NegativeOnly,
    ];

    pub fn apply(self, map: &[f32]) -> Vec<f32> {
        map.iter()
            .map(|&v| match self {
                DisplayMode::Signed => v,
                DisplayMode::Absolute => v.abs(),
                DisplayMode::PositiveOnly => v.max(0.0),
                DisplayMode::NegativeOnly => (-v).max(0.0),
            })
            .collect()
    }

    pub fn is_signed(self) -> bool {
        self == DisplayMode::Signed
    }
}

/// How the colour range is chosen from the values. The two conventions in use are
/// different things and are named apart. Text form (`--clip`, session files): `max`, `pN`
/// (e.g. `p99`), `captumN` (e.g. `captum2`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClipRule {
    /// The largest |value|.
    MaxAbs,
    /// PAIR's (and RECAL's) count percentile: the p-th percentile of |value| (p = 99).
    Percentile(f64),
    /// Captum's `outlier_perc`: the smallest |value| at which the ascending cumulative sum
    /// of |values| reaches (100 − p) % of the total, i.e. the largest values that together
    /// hold p % of the mass are clipped (p = 2).
    CaptumOutlierMass(f64),
}

impl Default for ClipRule {
    fn default() -> Self {
        ClipRule::Percentile(99.0)
    }
}

impl std::fmt::Display for ClipRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClipRule::MaxAbs => write!(f, "max"),
            ClipRule::Percentile(p) => write!(f, "p{p}"),
            ClipRule::CaptumOutlierMass(p) => write!(f, "captum{p}"),
        }
    }
}

impl std::str::FromStr for ClipRule {
    type Err = String;
    /// Parses `max`, `pN` (N-th percentile of |A|) or `captumN` (Captum's outlier mass N %).
    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| {
            t.parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| format!("range rule `{s}`: expected max, pN or captumN with 0 ≤ N ≤ 100"))
        };
        if s == "max" {
            Ok(ClipRule::MaxAbs)
        } else if let Some(p) = s.strip_prefix("captum") {
            Ok(ClipRule::CaptumOutlierMass(num(p)?))
        } else if let Some(p) = s.strip_prefix('p') {
            Ok(ClipRule::Percentile(num(p)?))
        } else {
            Err(format!("range rule `{s}`: expected max, pN or captumN"))
        }
    }
}

impl serde::Serialize for ClipRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ClipRule {
    /// The text form, or the enum layout sessions written before it used
    /// (`{"Percentile": 99.0}`, `"MaxAbs"`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        enum Legacy {
            MaxAbs,
            Percentile(f64),
            CaptumOutlierMass(f64),
        }
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            Legacy(Legacy),
        }
        match Stored::deserialize(d)? {
            Stored::Text(t) if t == "MaxAbs" => Ok(ClipRule::MaxAbs),
            Stored::Text(t) => t.parse().map_err(serde::de::Error::custom),
            Stored::Legacy(Legacy::MaxAbs) => Ok(ClipRule::MaxAbs),
            Stored::Legacy(Legacy::Percentile(p)) => Ok(ClipRule::Percentile(p)),
            Stored::Legacy(Legacy::CaptumOutlierMass(p)) => Ok(ClipRule::CaptumOutlierMass(p)),
        }
    }
}

impl ClipRule {
    /// The value mapped to the end of the colour scale (> 0 unless the map is all zero).
    pub fn range(self, map: &[f32]) -> f32 {
        let abs: Vec<f32> = map.iter().map(|v| v.abs()).filter(|v| v.is_finite()).collect();
        match self {
            ClipRule::MaxAbs => abs.iter().cloned().fold(0.0, f32::max),
            ClipRule::Percentile(p) => percentile(&abs, p),
            ClipRule::CaptumOutlierMass(p) => cumulative_sum_threshold(&abs, 100.0 - p),
        }
    }
}

/// Captum's `_cumulative_sum_threshold`: sort ascending, accumulate, and return the first
/// value at which the running sum reaches `percentile` % of the total.
pub fn cumulative_sum_threshold(values: &[f32], percentile: f64) -> f32 {
    let mut v: Vec<f32> = values.to_vec();
    v.sort_by(f32::total_cmp);
    let total: f64 = v.iter().map(|&x| x as f64).sum();
    let target = total * percentile / 100.0;
    let mut acc = 0f64;
    for &x in &v {
        acc += x as f64;
        if acc >= target {
            return x;
        }
    }
    v.last().copied().unwrap_or(0.0)
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
    fn clip_rules_parse_and_print() {
        for s in ["max", "p99", "p99.5", "captum2"] {
            assert_eq!(s.parse::<ClipRule>().unwrap().to_string(), s);
        }
        assert!("p101".parse::<ClipRule>().is_err());
        assert!("median".parse::<ClipRule>().is_err());
    }

    /// Stored as its text form; the enum layout of earlier session files still reads.
    #[test]
    fn clip_rules_store_as_text_and_read_the_old_layout() {
        let rule = ClipRule::CaptumOutlierMass(2.0);
        assert_eq!(serde_json::to_string(&rule).unwrap(), "\"captum2\"");
        for (stored, expected) in [
            ("\"captum2\"", rule),
            ("{\"CaptumOutlierMass\":2.0}", rule),
            ("{\"Percentile\":99.0}", ClipRule::Percentile(99.0)),
            ("\"MaxAbs\"", ClipRule::MaxAbs),
            ("\"max\"", ClipRule::MaxAbs),
        ] {
            assert_eq!(serde_json::from_str::<ClipRule>(stored).unwrap(), expected, "{stored}");
        }
        assert!(serde_json::from_str::<ClipRule>("\"p200\"").is_err());
    }

    #[test]
    fn reductions() {
        let m = [1.0, -2.0, /* c1 */ -3.0, 1.0];
        assert_eq!(reduce_channels(&m, 2, 2, ChannelReduction::Sum), vec![-2.0, -1.0]);
        assert_eq!(reduce_channels(&m, 2, 2, ChannelReduction::AbsSum), vec![4.0, 3.0]);
        assert_eq!(reduce_channels(&m, 2, 2, ChannelReduction::MaxAbs), vec![-3.0, -2.0]);
    }

    /// algorithms.md §7 rows 20–21.
    #[test]
    fn captum_cumulative_sum_threshold() {
        assert_eq!(cumulative_sum_threshold(&[1.0, 1.0, 1.0, 97.0], 98.0), 97.0);
        let mut v = vec![1.0f32; 98];
        v.extend([50.0, 50.0]);
        assert_eq!(cumulative_sum_threshold(&v, 98.0), 50.0);
        assert_eq!(ClipRule::CaptumOutlierMass(2.0).range(&[-1.0, 1.0, -1.0, 97.0]), 97.0);
    }

    #[test]
    fn display_modes() {
        let m = [-2.0, 0.0, 3.0];
        assert_eq!(DisplayMode::Signed.apply(&m), vec![-2.0, 0.0, 3.0]);
        assert_eq!(DisplayMode::Absolute.apply(&m), vec![2.0, 0.0, 3.0]);
        assert_eq!(DisplayMode::PositiveOnly.apply(&m), vec![0.0, 0.0, 3.0]);
        assert_eq!(DisplayMode::NegativeOnly.apply(&m), vec![2.0, 0.0, 0.0]);
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v: Vec<f32> = (1..=5).map(|x| x as f32).collect();
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 90.0), 4.6);
        assert_eq!(percentile(&v, 100.0), 5.0);
    }
}
