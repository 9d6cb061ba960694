//! Quadrature rules on [0, 1] for the straight-line path integral, exactly as Captum
//! builds them (`captum/attr/_utils/approximation_methods.py`): Riemann α-grids come from
//! a float32 `linspace`, Gauss–Legendre nodes from the n-point rule on [−1, 1].

use std::fmt;
use std::str::FromStr;

/// A quadrature rule. Text form: `left`, `right`, `middle`, `trapezoid`, `gauss-legendre`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum IntegrationRule {
    #[serde(rename = "left", alias = "RiemannLeft")]
    RiemannLeft,
    #[default]
    #[serde(rename = "right", alias = "RiemannRight")]
    RiemannRight,
    #[serde(rename = "middle", alias = "RiemannMiddle")]
    RiemannMiddle,
    /// Captum's trapezoid: α = linspace(0, 1, n), weights 1/n with 1/(2n) at both ends.
    /// The weights sum to (n − 1)/n, not 1 (Captum's convention, kept for parity).
    #[serde(rename = "trapezoid", alias = "RiemannTrapezoid")]
    RiemannTrapezoid,
    #[serde(rename = "gauss-legendre", alias = "GaussLegendre")]
    GaussLegendre,
}

impl IntegrationRule {
    pub const ALL: [IntegrationRule; 5] = [
        IntegrationRule::RiemannLeft,
        IntegrationRule::RiemannRight,
        IntegrationRule::RiemannMiddle,
        IntegrationRule::RiemannTrapezoid,
        IntegrationRule::GaussLegendre,
    ];

    /// The words a person reads (the studio's controls).
    pub fn label(self) -> &'static str {
        match self {
            IntegrationRule::RiemannLeft => "left Riemann sum",
            IntegrationRule::RiemannRight => "right Riemann sum",
            IntegrationRule::RiemannMiddle => "midpoint Riemann sum",
            IntegrationRule::RiemannTrapezoid => "trapezoid rule (Captum)",
            IntegrationRule::GaussLegendre => "Gauss–Legendre",
        }
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            IntegrationRule::RiemannLeft => "left",
            IntegrationRule::RiemannRight => "right",
            IntegrationRule::RiemannMiddle => "middle",
            IntegrationRule::RiemannTrapezoid => "trapezoid",
            IntegrationRule::GaussLegendre => "gauss-legendre",
        }
    }

    /// Captum's name for the rule.
    pub fn captum_name(self) -> &'static str {
        match self {
            IntegrationRule::RiemannLeft => "riemann_left",
            IntegrationRule::RiemannRight => "riemann_right",
            IntegrationRule::RiemannMiddle => "riemann_middle",
            IntegrationRule::RiemannTrapezoid => "riemann_trapezoid",
            IntegrationRule::GaussLegendre => "gausslegendre",
        }
    }

    /// (α_k, w_k) for `n` points, n ≥ 1.
    pub fn nodes(self, n: usize) -> (Vec<f64>, Vec<f64>) {
        assert!(n >= 1, "a quadrature rule needs at least one point");
        let nf = n as f64;
        let uniform = vec![1.0 / nf; n];
        match self {
            IntegrationRule::RiemannLeft => (linspace_f32(0.0, 1.0 - 1.0 / nf, n), uniform),
            IntegrationRule::RiemannRight => (linspace_f32(1.0 / nf, 1.0, n), uniform),
            IntegrationRule::RiemannMiddle => (linspace_f32(1.0 / (2.0 * nf), 1.0 - 1.0 / (2.0 * nf), n), uniform),
            IntegrationRule::RiemannTrapezoid => {
                let mut w = uniform;
                w[0] = 1.0 / (2.0 * nf);
                w[n - 1] = 1.0 / (2.0 * nf);
                (linspace_f32(0.0, 1.0, n), w)
            }
            IntegrationRule::GaussLegendre => {
                let (t, v) = gauss_legendre(n);
                (
                    t.iter().map(|t| 0.5 * (1.0 + t)).collect(),
                    v.iter().map(|v| 0.5 * v).collect(),
                )
            }
        }
    }
}

impl fmt::Display for IntegrationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IntegrationRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.to_ascii_lowercase().replace('_', "-");
        Ok(match s.as_str() {
            "left" | "riemann-left" => IntegrationRule::RiemannLeft,
            "right" | "riemann-right" => IntegrationRule::RiemannRight,
            "middle" | "riemann-middle" => IntegrationRule::RiemannMiddle,
            "trapezoid" | "riemann-trapezoid" => IntegrationRule::RiemannTrapezoid,
            "gauss-legendre" | "gausslegendre" | "gl" => IntegrationRule::GaussLegendre,
            _ => {
                return Err(format!(
                    "unknown rule `{s}` (expected left, right, middle, trapezoid or gauss-legendre)"
                ))
            }
        })
    }
}

/// `torch.linspace(start, end, n)` in float32, returned as f64 (as Captum's `.tolist()`).
fn linspace_f32(start: f64, end: f64, n: usize) -> Vec<f64> {
    let (s, e) = (start as f32, end as f32);
    if n == 1 {
        return vec![s as f64];
    }
    let step = (e - s) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                s + step * i as f32
            } else {
                e - step * (n - 1 - i) as f32
            }
        })
        .map(|v| v as f64)
        .collect()
}

/// Nodes t and weights v of the n-point Gauss–Legendre rule on [−1, 1], ascending.
/// Newton iteration on P_n from Tricomi's initial guess; weights 2/((1 − t²) P'_n(t)²).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for i in 1..=n {
        let mut t = (std::f64::consts::PI * (i as f64 - 0.25) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            // P_n(t) and P_{n−1}(t) by the three-term recurrence.
            let (mut p0, mut p1) = (1.0, t);
            for j in 1..n {
                let p2 = ((2 * j + 1) as f64 * t * p1 - j as f64 * p0) / (j + 1) as f64;
                p0 = p1;
                p1 = p2;
            }
            let (pn, pn1) = if n == 1 { (t, 1.0) } else { (p1, p0) };
            dp = n as f64 * (t * pn - pn1) / (t * t - 1.0);
            let dt = pn / dp;
            t -= dt;
            if dt.abs() < 1e-15 {
                break;
            }
        }
        // Recompute the derivative at the converged node for the weight.
        let (mut p0, mut p1) = (1.0, t);
        for j in 1..n {
            let p2 = ((2 * j + 1) as f64 * t * p1 - j as f64 * p0) / (j + 1) as f64;
            p0 = p1;
            p1 = p2;
        }
        let (pn, pn1) = if n == 1 { (t, 1.0) } else { (p1, p0) };
        if (t * t - 1.0).abs() > 0.0 {
            dp = n as f64 * (t * pn - pn1) / (t * t - 1.0);
        }
        nodes.push(t);
        weights.push(2.0 / ((1.0 - t * t) * dp * dp));
    }
    let mut pairs: Vec<(f64, f64)> = nodes.into_iter().zip(weights).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    pairs.into_iter().unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn gauss_legendre_matches_tabulated_nodes() {
        let (a, w) = IntegrationRule::GaussLegendre.nodes(2);
        assert!(close(a[0], 0.2113248654, 1e-9) && close(a[1], 0.7886751346, 1e-9));
        assert!(close(w[0], 0.5, 1e-12) && close(w[1], 0.5, 1e-12));
        let (a, w) = IntegrationRule::GaussLegendre.nodes(3);
        for (x, y) in a.iter().zip([0.1127016654, 0.5, 0.8872983346]) {
            assert!(close(*x, y, 1e-9), "{x} vs {y}");
        }
        for (x, y) in w.iter().zip([0.2777777778, 0.4444444444, 0.2777777778]) {
            assert!(close(*x, y, 1e-9), "{x} vs {y}");
        }
    }

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        // An n-point rule is exact up to degree 2n − 1: ∫₀¹ α^d dα = 1/(d + 1).
        for n in [1usize, 4, 16, 50, 64] {
            let (a, w) = IntegrationRule::GaussLegendre.nodes(n);
            assert!(close(w.iter().sum::<f64>(), 1.0, 1e-12), "n={n}");
            let d = (2 * n - 1).min(31) as i32;
            let integral: f64 = a.iter().zip(&w).map(|(a, w)| w * a.powi(d)).sum();
            assert!(
                close(integral, 1.0 / (d as f64 + 1.0), 1e-11),
                "n={n} d={d}: {integral}"
            );
        }
    }

    /// algorithms.md §1.2 worked check: ∫₀¹ 2α dα with n = 4 (IG of x² from 0 to 1).
    #[test]
    fn worked_quadrature_check() {
        let ig = |rule: IntegrationRule| {
            let (a, w) = rule.nodes(4);
            a.iter().zip(&w).map(|(a, w)| w * 2.0 * a).sum::<f64>()
        };
        assert!(close(ig(IntegrationRule::RiemannLeft), 0.75, 1e-7));
        assert!(close(ig(IntegrationRule::RiemannRight), 1.25, 1e-7));
        assert!(close(ig(IntegrationRule::RiemannMiddle), 1.0, 1e-7));
        assert!(close(ig(IntegrationRule::GaussLegendre), 1.0, 1e-12));
        assert!(close(ig(IntegrationRule::RiemannTrapezoid), 0.75, 1e-7));
    }

    #[test]
    fn trapezoid_weights_sum_to_captum_convention() {
        let (_, w) = IntegrationRule::RiemannTrapezoid.nodes(32);
        assert!(close(w.iter().sum::<f64>(), 31.0 / 32.0, 1e-12));
    }

    #[test]
    fn rules_parse_from_cli_names() {
        for r in IntegrationRule::ALL {
            assert_eq!(r.name().parse::<IntegrationRule>().unwrap(), r);
            assert_eq!(r.captum_name().parse::<IntegrationRule>().unwrap(), r);
        }
        assert!("simpson".parse::<IntegrationRule>().is_err());
    }
}
