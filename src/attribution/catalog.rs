//! The method catalog: one identifier, [`MethodId`], for every method and variant
//! Pathscope computes, with its text form, its human title and the [`MethodSpec`] it
//! builds. The CLI (`explain`, `figure`, `eval`, `sanity`), the studio, figure titles and
//! session files all name methods through it, so a map is called the same everywhere.
//!
//! Text form: `FAMILY[:OPTION]...`, e.g. `ig`, `ig:blur`, `ig:guided:idgi`,
//! `ig-uniform:valid-ip`, `smoothgrad`. An option is a path (`straight`, `blur`,
//! `guided`), an integration (`riemann`, `idgi`) or a re-calibration (`vanilla`,
//! `valid-ip`, `valid-ref`), in any order. The path and integration apply to IG and to
//! ensembles around IG; the re-calibration to the multi-reference methods and AGI. The
//! canonical form written by `Display` names the path of IG (`ig:straight`), `idgi` when
//! chosen and the re-calibration of the methods that have one, so it reads back as the
//! same method whatever the defaults.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use candle_core::Tensor;

use super::agi::AgiConfig;
use super::baseline::Baseline;
use super::ensemble::{EnsembleConfig, EnsembleKind};
use super::method::{MethodSpec, PathKind};
use super::multi_reference::{MultiReferenceConfig, MultiReferenceMethod, RecalCompat};
use super::path::Integration;
use super::quadrature::IntegrationRule;
use super::recalibration::Recalibration;
use super::{AttributionError, Result};

/// A family of methods: what `--method` names before any option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Family {
    /// A single-baseline path integral: IG on the straight path, Blur IG or Guided IG.
    #[serde(rename = "ig", alias = "PathIntegral")]
    Ig,
    /// The vanilla gradient ∇f(x).
    #[serde(rename = "gradient", alias = "Gradient")]
    Gradient,
    /// x ⊙ ∇f(x).
    #[serde(rename = "input-x-gradient", alias = "InputXGradient")]
    InputXGradient,
    /// SmoothGrad: the mean of the base method over noisy inputs.
    #[serde(rename = "smoothgrad", alias = "SmoothGrad")]
    SmoothGrad,
    /// SmoothGrad²: the mean of the squared maps.
    #[serde(rename = "smoothgrad-sq", alias = "SmoothGradSquared")]
    SmoothGradSquared,
    /// VarGrad: the variance of the maps.
    #[serde(rename = "vargrad", alias = "VarGrad")]
    VarGrad,
    /// IG averaged over uniform-noise references (RECAL's IG-Uniform).
    #[serde(rename = "ig-uniform", alias = "IgUniform")]
    IgUniform,
    /// IG averaged over Gaussian references around the input (IG-SG).
    #[serde(rename = "ig-sg", alias = "IgSg")]
    IgSg,
    /// IG-SG with squared mean gradients (IG-SQ).
    #[serde(rename = "ig-sq", alias = "IgSq")]
    IgSq,
    /// Expected Gradients: references drawn from a pool of images, α random.
    #[serde(rename = "expected-gradients", alias = "ExpectedGradients")]
    ExpectedGradients,
    /// Adversarial Gradient Integration.
    #[serde(rename = "agi", alias = "Agi")]
    Agi,
}

impl Family {
    pub const ALL: [Family; 11] = [
        Family::Ig,
        Family::Gradient,
        Family::InputXGradient,
        Family::SmoothGrad,
        Family::SmoothGradSquared,
        Family::VarGrad,
        Family::IgUniform,
        Family::IgSg,
        Family::IgSq,
        Family::ExpectedGradients,
        Family::Agi,
    ];

    /// The text form (`--method` and the head of a [`MethodId`]).
    pub fn name(self) -> &'static str {
        match self {
            Family::Ig => "ig",
            Family::Gradient => "gradient",
            Family::InputXGradient => "input-x-gradient",
            Family::SmoothGrad => "smoothgrad",
            Family::SmoothGradSquared => "smoothgrad-sq",
            Family::VarGrad => "vargrad",
            Family::IgUniform => "ig-uniform",
            Family::IgSg => "ig-sg",
            Family::IgSq => "ig-sq",
            Family::ExpectedGradients => "expected-gradients",
            Family::Agi => "agi",
        }
    }

    /// One line on what the family computes (command-line help, tooltips).
    pub fn summary(self) -> &'static str {
        match self {
            Family::Ig => "a path integral: IG on the straight path, Blur IG or Guided IG",
            Family::Gradient => "the vanilla gradient ∇f(x)",
            Family::InputXGradient => "x ⊙ ∇f(x)",
            Family::SmoothGrad => "SmoothGrad: the mean of the base method over noisy inputs",
            Family::SmoothGradSquared => "SmoothGrad²: the mean of the squared maps",
            Family::VarGrad => "VarGrad: the variance of the maps",
            Family::IgUniform => "IG averaged over uniform-noise references (RECAL's IG-Uniform)",
            Family::IgSg => "IG averaged over Gaussian references around the input (IG-SG)",
            Family::IgSq => "IG-SG with squared mean gradients (IG-SQ)",
            Family::ExpectedGradients => "Expected Gradients: references from a folder of images, α random",
            Family::Agi => "Adversarial Gradient Integration",
        }
    }

    /// Whether a path and an integration apply (IG, and the ensembles, whose base method
    /// may be IG).
    pub fn has_path(self) -> bool {
        matches!(
            self,
            Family::Ig | Family::SmoothGrad | Family::SmoothGradSquared | Family::VarGrad
        )
    }

    /// Whether a re-calibration applies (the multi-reference methods and AGI).
    pub fn has_recalibration(self) -> bool {
        matches!(
            self,
            Family::IgUniform | Family::IgSg | Family::IgSq | Family::ExpectedGradients | Family::Agi
        )
    }

    pub fn is_ensemble(self) -> bool {
        matches!(self, Family::SmoothGrad | Family::SmoothGradSquared | Family::VarGrad)
    }

    fn multi_reference(self) -> Option<MultiReferenceMethod> {
        match self {
            Family::IgUniform => Some(MultiReferenceMethod::IgUniform),
            Family::IgSg => Some(MultiReferenceMethod::IgSg),
            Family::IgSq => Some(MultiReferenceMethod::IgSq),
            _ => None,
        }
    }
}

text_form!(Family, "method");

fn family_names() -> String {
    Family::ALL.map(Family::name).join(", ")
}

/// One method and variant: a family with the options that apply to it. Options that do
/// not apply hold their defaults, so two ids are equal exactly when they name the same
/// computation (given the same [`MethodParams`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodId {
    family: Family,
    path: PathKind,
    integration: Integration,
    recalibration: Recalibration,
}

impl MethodId {
    /// `family` with the default options (straight path, Riemann sum, valid-ip).
    pub fn new(family: Family) -> Self {
        Self {
            family,
            path: PathKind::Straight,
            integration: Integration::Riemann,
            recalibration: Recalibration::ValidIp,
        }
    }

    /// IG on `path`, integrated by `integration`.
    pub fn path_integral(path: PathKind, integration: Integration) -> Self {
        Self::new(Family::Ig).with_path(path).with_integration(integration)
    }

    pub fn family(self) -> Family {
        self.family
    }

    /// The path, for the families that have one.
    pub fn path(self) -> Option<PathKind> {
        self.family.has_path().then_some(self.path)
    }

    /// The integration, for the families that have a path.
    pub fn integration(self) -> Option<Integration> {
        self.family.has_path().then_some(self.integration)
    }

    /// The re-calibration, for the families that have one.
    pub fn recalibration(self) -> Option<Recalibration> {
        self.family.has_recalibration().then_some(self.recalibration)
    }

    /// This method on `path` (no change for families without a path).
    pub fn with_path(mut self, path: PathKind) -> Self {
        if self.family.has_path() {
            self.path = path;
        }
        self
    }

    pub fn with_integration(mut self, integration: Integration) -> Self {
        if self.family.has_path() {
            self.integration = integration;
        }
        self
    }

    pub fn with_recalibration(mut self, recalibration: Recalibration) -> Self {
        if self.family.has_recalibration() {
            self.recalibration = recalibration;
        }
        self
    }

    /// Parses the text form, taking options the text does not give from `defaults` (e.g.
    /// `--path blur` beside `--method ig`). Options the family does not take are errors.
    pub fn parse_over(text: &str, defaults: MethodOptions) -> std::result::Result<Self, String> {
        let lowered = text.trim().to_ascii_lowercase();
        let s = lowered.as_str();
        let mut parts = s.split(':');
        let head = parts.next().unwrap_or_default();
        let family: Family = head
            .parse()
            .map_err(|_| format!("method `{head}` in `{s}`: expected one of {}", family_names()))?;
        let mut id = MethodId::new(family)
            .with_path(defaults.path)
            .with_integration(defaults.integration)
            .with_recalibration(defaults.recalibration);
        for option in parts {
            let applies = if let Ok(path) = option.parse::<PathKind>() {
                id.path = path;
                family.has_path()
            } else if let Ok(integration) = option.parse::<Integration>() {
                id.integration = integration;
                family.has_path()
            } else if let Ok(recalibration) = option.parse::<Recalibration>() {
                id.recalibration = recalibration;
                family.has_recalibration()
            } else {
                return Err(format!(
                    "`{option}` in `{s}`: expected a path (straight, blur, guided), an integration \
                     (riemann, idgi) or a re-calibration (vanilla, valid-ip, valid-ref)"
                ));
            };
            if !applies {
                return Err(format!("`{option}` in `{s}`: {family} takes no such option"));
            }
        }
        Ok(id)
    }

    /// The title of the method's maps in figures, tables and the studio.
    pub fn title(self) -> String {
        let recalibration = self.recalibration.to_string();
        let base = match self.family {
            Family::Ig => match self.path {
                PathKind::Straight => "IG".to_string(),
                PathKind::Blur => "Blur IG".to_string(),
                PathKind::Guided => "Guided IG".to_string(),
            },
            Family::Gradient => "Gradient".into(),
            Family::InputXGradient => "Input × Gradient".into(),
            Family::SmoothGrad => "SmoothGrad".into(),
            Family::SmoothGradSquared => "SmoothGrad^2".into(),
            Family::VarGrad => "VarGrad".into(),
            Family::IgUniform => format!("IG-Uniform ({recalibration})"),
            Family::IgSg => format!("IG-SG ({recalibration})"),
            Family::IgSq => format!("IG-SQ ({recalibration})"),
            Family::ExpectedGradients => format!("Expected Gradients ({recalibration})"),
            Family::Agi => format!("AGI ({recalibration})"),
        };
        if self.family == Family::Ig && self.integration == Integration::Idgi {
            format!("{base} + IDGI")
        } else {
            base
        }
    }

    /// The method a panel of the comparison shows when this method is the one chosen, or
    /// `None` where the panel has nothing to show for it:
    /// - vanilla (and absolute, its magnitude): the method with its own Riemann sum and no
    ///   re-calibration;
    /// - re-calibrated: a multi-reference method or AGI re-calibrated by `recalibration`;
    ///   for IG on the straight line, IG-Uniform re-calibrated by it (the multi-reference
    ///   form of IG the re-calibration paper defines);
    /// - IDGI: the same path integrated with IDGI (IG only).
    pub fn variant(self, variant: Variant, recalibration: Recalibration) -> Option<MethodId> {
        match (variant, self.family) {
            (Variant::Vanilla | Variant::Absolute, _) => Some(
                self.with_integration(Integration::Riemann)
                    .with_recalibration(Recalibration::Vanilla),
            ),
            (Variant::Recalibrated, Family::Ig) => (self.path == PathKind::Straight)
                .then(|| MethodId::new(Family::IgUniform).with_recalibration(recalibration)),
            (Variant::Recalibrated, f) if f.has_recalibration() => Some(self.with_recalibration(recalibration)),
            (Variant::Recalibrated, _) => None,
            (Variant::Idgi, Family::Ig) => Some(self.with_integration(Integration::Idgi)),
            (Variant::Idgi, _) => None,
        }
    }

    /// The computation this method names, with `params` for everything else.
    pub fn spec(self, params: &MethodParams) -> Result<MethodSpec> {
        let invalid = |m: String| Err(AttributionError::InvalidArgument(m));
        let path_integral = || MethodSpec::PathIntegral {
            path: self.path,
            integration: self.integration,
            baseline: params.baseline.clone(),
            steps: params.steps.unwrap_or(match params.tolerance {
                Some(_) => crate::attribution::adaptive::DEFAULT_MAX_POINTS,
                None => self.path.default_steps(),
            }),
            rule: params.rule,
            tolerance: params.tolerance,
        };
        let ensemble = |kind| -> Result<MethodSpec> {
            if !(params.noise.is_finite() && params.noise >= 0.0) {
                return invalid(format!(
                    "the ensemble noise must be a non-negative fraction of the pixel range, got {}",
                    params.noise
                ));
            }
            let base = match params.ensemble_base {
                EnsembleBase::Gradient => MethodSpec::Gradient,
                EnsembleBase::InputXGradient => MethodSpec::InputXGradient,
                EnsembleBase::Ig => path_integral(),
            };
            Ok(MethodSpec::Ensemble {
                base: Box::new(base),
                config: EnsembleConfig {
                    kind,
                    samples: params.samples,
                    noise: params.noise,
                    seed: params.seed,
                },
            })
        };
        let multi = |method: MultiReferenceMethod, references: usize| {
            MethodSpec::MultiReference(MultiReferenceConfig {
                method,
                recalibration: self.recalibration,
                compat: params.compat,
                references,
                points_per_reference: params.points_per_reference,
                seed: params.seed,
                batch_size: params.batch_size,
                ..MultiReferenceConfig::default()
            })
        };
        Ok(match self.family {
            Family::Ig => path_integral(),
            Family::Gradient => MethodSpec::Gradient,
            Family::InputXGradient => MethodSpec::InputXGradient,
            Family::SmoothGrad => ensemble(EnsembleKind::SmoothGrad)?,
            Family::SmoothGradSquared => ensemble(EnsembleKind::SmoothGradSquared)?,
            Family::VarGrad => ensemble(EnsembleKind::VarGrad)?,
            Family::IgUniform | Family::IgSg | Family::IgSq => {
                let method = self.family.multi_reference().expect("a multi-reference family");
                multi(method, params.references)
            }
            Family::ExpectedGradients => {
                if params.reference_pool.is_empty() {
                    return invalid("expected-gradients needs a pool of reference images (--references DIR)".into());
                }
                let pool = params.reference_pool.as_ref().clone();
                // Distinct references up to 10 (RECAL's m), as many as the pool holds.
                let references = pool.len().min(10);
                multi(MultiReferenceMethod::ExpectedGradients { pool }, references)
            }
            Family::Agi => MethodSpec::Agi(AgiConfig {
                recalibration: self.recalibration,
                seed: params.seed,
                batch_size: params.batch_size,
                ..AgiConfig::default()
            }),
        })
    }
}

impl fmt::Display for MethodId {
    /// The canonical text form (see the module documentation).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.family.name())?;
        if self.family == Family::Ig {
            write!(f, ":{}", self.path)?;
        } else if self.family.has_path() && self.path != PathKind::Straight {
            // An ensemble's path only matters around IG; written when not the default.
            write!(f, ":{}", self.path)?;
        }
        if self.family.has_path() && self.integration == Integration::Idgi {
            write!(f, ":{}", self.integration)?;
        }
        if self.family.has_recalibration() {
            write!(f, ":{}", self.recalibration)?;
        }
        Ok(())
    }
}

impl FromStr for MethodId {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::parse_over(s, MethodOptions::default())
    }
}

impl serde::Serialize for MethodId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MethodId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The options of a method's text form, as defaults for what a text leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MethodOptions {
    pub path: PathKind,
    pub integration: Integration,
    pub recalibration: Recalibration,
}

/// The panels of a comparison of one method (the studio's grid, `explain --compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The method's own map, signed.
    #[serde(alias = "Vanilla")]
    Vanilla,
    /// The magnitude of the vanilla map.
    #[serde(alias = "Absolute")]
    Absolute,
    /// The re-calibrated map (ICLR 2023).
    #[serde(alias = "Recalibrated")]
    Recalibrated,
    /// The path integrated by IDGI (CVPR 2023).
    #[serde(alias = "Idgi")]
    Idgi,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::Vanilla,
        Variant::Absolute,
        Variant::Recalibrated,
        Variant::Idgi,
    ];

    /// The text form (file and directory names, session files).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Vanilla => "vanilla",
            Variant::Absolute => "absolute",
            Variant::Recalibrated => "recalibrated",
            Variant::Idgi => "idgi",
        }
    }

    /// The panel's heading.
    pub fn title(self) -> &'static str {
        match self {
            Variant::Vanilla => "vanilla (signed)",
            Variant::Absolute => "absolute",
            Variant::Recalibrated => "re-calibrated",
            Variant::Idgi => "IDGI",
        }
    }

    /// Whether the panel's values carry a sign (a diverging colour scale).
    pub fn is_signed(self) -> bool {
        matches!(self, Variant::Vanilla | Variant::Idgi)
    }

    /// Parses the text form, and the names files written before the text form existed
    /// used (`Vanilla`, `Idgi`, ...).
    pub fn from_name(s: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == s || v.legacy_name() == s)
    }

    /// The name session format 1 wrote (the Rust identifier), read for old files only.
    pub fn legacy_name(self) -> &'static str {
        match self {
            Variant::Vanilla => "Vanilla",
            Variant::Absolute => "Absolute",
            Variant::Recalibrated => "Recalibrated",
            Variant::Idgi => "Idgi",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The method an ensemble averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnsembleBase {
    #[default]
    Gradient,
    InputXGradient,
    /// IG on the method's path, with its integration.
    Ig,
}

impl EnsembleBase {
    pub const ALL: [EnsembleBase; 3] = [EnsembleBase::Gradient, EnsembleBase::InputXGradient, EnsembleBase::Ig];

    /// The words a person reads (the studio's controls).
    pub fn label(self) -> &'static str {
        match self {
            EnsembleBase::Gradient => "gradient",
            EnsembleBase::InputXGradient => "input × gradient",
            EnsembleBase::Ig => "IG on the chosen path",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EnsembleBase::Gradient => "gradient",
            EnsembleBase::InputXGradient => "input-x-gradient",
            EnsembleBase::Ig => "ig",
        }
    }
}

text_form!(EnsembleBase, "base method");

/// Everything a method needs besides its [`MethodId`]; the defaults are those of
/// `pathscope explain`.
#[derive(Debug, Clone)]
pub struct MethodParams {
    /// x′ of the straight and guided paths.
    pub baseline: Baseline,
    /// Points along the path; `None`: the path's default ([`PathKind::default_steps`]).
    pub steps: Option<usize>,
    /// The straight line's quadrature rule.
    pub rule: IntegrationRule,
    /// The tolerance mode on the straight and blur paths (`steps` then caps its gradients).
    pub tolerance: Option<f64>,
    /// What SmoothGrad, SmoothGrad² and VarGrad average.
    pub ensemble_base: EnsembleBase,
    pub samples: usize,
    /// Ensemble noise σ as a fraction of the input's pixel range.
    pub noise: f64,
    /// m, the references of IG-Uniform, IG-SG and IG-SQ.
    pub references: usize,
    /// k, the interpolation points per reference.
    pub points_per_reference: usize,
    pub compat: RecalCompat,
    /// Expected Gradients' references: images normalised like the input.
    pub reference_pool: Arc<Vec<Tensor>>,
    pub seed: u64,
    /// Points per forward/backward pass.
    pub batch_size: usize,
}

impl Default for MethodParams {
    fn default() -> Self {
        let multi = MultiReferenceConfig::default();
        Self {
            baseline: Baseline::Black,
            steps: None,
            rule: IntegrationRule::GaussLegendre,
            tolerance: None,
            ensemble_base: EnsembleBase::Gradient,
            samples: 25,
            noise: 0.15,
            references: multi.references,
            points_per_reference: multi.points_per_reference,
            compat: RecalCompat::Clean,
            reference_pool: Arc::new(Vec::new()),
            seed: 0,
            batch_size: 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> MethodId {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn titles() {
        assert_eq!(id("ig").title(), "IG");
        assert_eq!(id("ig:blur").title(), "Blur IG");
        assert_eq!(id("ig:guided:idgi").title(), "Guided IG + IDGI");
        assert_eq!(id("ig-uniform:vanilla").title(), "IG-Uniform (vanilla)");
        assert_eq!(id("agi").title(), "AGI (valid-ip)");
    }

    #[test]
    fn the_canonical_text_reads_back_as_the_same_method() {
        let paths = [PathKind::Straight, PathKind::Blur, PathKind::Guided];
        let integrations = [Integration::Riemann, Integration::Idgi];
        for family in Family::ALL {
            for path in paths {
                for integration in integrations {
                    for recalibration in Recalibration::ALL {
                        let m = MethodId::new(family)
                            .with_path(path)
                            .with_integration(integration)
                            .with_recalibration(recalibration);
                        let text = m.to_string();
                        assert_eq!(id(&text), m, "{text}");
                        assert_eq!(text.parse::<MethodId>().unwrap().to_string(), text);
                    }
                }
            }
        }
        assert_eq!(id("ig").to_string(), "ig:straight");
        assert_eq!(id("ig:idgi:blur").to_string(), "ig:blur:idgi");
        assert_eq!(id("ig-uniform").to_string(), "ig-uniform:valid-ip");
        assert_eq!(id("gradient").to_string(), "gradient");
        assert_eq!(id("smoothgrad:guided").to_string(), "smoothgrad:guided");
    }

    #[test]
    fn options_that_do_not_apply_are_errors() {
        for bad in ["gradient:blur", "ig:valid-ip", "agi:idgi", "ig:sideways", "sobel", ""] {
            let err = bad.parse::<MethodId>().unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!("ig:sideways".parse::<MethodId>().unwrap_err().contains("`sideways`"));
        assert!("gradient:blur"
            .parse::<MethodId>()
            .unwrap_err()
            .contains("gradient takes no such option"));
        assert!("sobel".parse::<MethodId>().unwrap_err().contains("method `sobel`"));
    }

    #[test]
    fn defaults_fill_what_the_text_leaves_out() {
        let defaults = MethodOptions {
            path: PathKind::Blur,
            integration: Integration::Idgi,
            recalibration: Recalibration::Vanilla,
        };
        assert_eq!(
            MethodId::parse_over("ig", defaults).unwrap().to_string(),
            "ig:blur:idgi"
        );
        assert_eq!(
            MethodId::parse_over("ig:guided", defaults).unwrap().to_string(),
            "ig:guided:idgi"
        );
        assert_eq!(
            MethodId::parse_over("agi", defaults).unwrap().to_string(),
            "agi:vanilla"
        );
    }

    #[test]
    fn variants_of_a_comparison() {
        let ip = Recalibration::ValidIp;
        let ig = id("ig");
        assert_eq!(ig.variant(Variant::Vanilla, ip), Some(ig));
        assert_eq!(ig.variant(Variant::Idgi, ip).unwrap().to_string(), "ig:straight:idgi");
        assert_eq!(
            ig.variant(Variant::Recalibrated, ip).unwrap().to_string(),
            "ig-uniform:valid-ip"
        );
        assert_eq!(
            ig.variant(Variant::Recalibrated, Recalibration::ValidRef)
                .unwrap()
                .to_string(),
            "ig-uniform:valid-ref"
        );
        assert_eq!(id("ig:blur").variant(Variant::Recalibrated, ip), None);
        let sg = id("ig-sg:valid-ref");
        assert_eq!(sg.variant(Variant::Vanilla, ip).unwrap().to_string(), "ig-sg:vanilla");
        assert_eq!(sg.variant(Variant::Recalibrated, Recalibration::ValidRef), Some(sg));
        assert_eq!(sg.variant(Variant::Idgi, ip), None);
        assert_eq!(id("vargrad").variant(Variant::Recalibrated, ip), None);
    }

    #[test]
    fn variant_names_read_old_and_new_forms() {
        for v in Variant::ALL {
            assert_eq!(Variant::from_name(v.name()), Some(v));
            assert_eq!(Variant::from_name(&format!("{v:?}")), Some(v));
        }
        assert_eq!(Variant::from_name("vanila"), None);
    }

    #[test]
    fn specs_follow_the_params() {
        let params = MethodParams {
            steps: Some(7),
            samples: 3,
            ensemble_base: EnsembleBase::Ig,
            ..MethodParams::default()
        };
        match id("ig:blur:idgi").spec(&params).unwrap() {
            MethodSpec::PathIntegral {
                path,
                integration,
                steps,
                ..
            } => assert_eq!((path, integration, steps), (PathKind::Blur, Integration::Idgi, 7)),
            other => panic!("{other:?}"),
        }
        match id("vargrad:guided").spec(&params).unwrap() {
            MethodSpec::Ensemble { base, config } => {
                assert_eq!((config.kind, config.samples), (EnsembleKind::VarGrad, 3));
                assert!(matches!(
                    *base,
                    MethodSpec::PathIntegral {
                        path: PathKind::Guided,
                        ..
                    }
                ));
            }
            other => panic!("{other:?}"),
        }
        let err = id("expected-gradients").spec(&params).unwrap_err().to_string();
        assert!(err.contains("--references DIR"), "{err}");
        let noisy = MethodParams { noise: -1.0, ..params };
        assert!(id("smoothgrad").spec(&noisy).is_err());
    }
}
