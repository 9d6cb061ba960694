//! What the studio shows and how: the state a session file keeps. Plain data, no handles
//! (no engine, channels or textures; those are in [`super::runtime`]), so saving is a
//! function of this alone and panels can edit it directly.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use image::RgbImage;

use crate::attribution::catalog::{EnsembleBase, Family, MethodId, MethodParams, Variant};
use crate::attribution::display::{reduce_channels, ChannelReduction};
use crate::attribution::method::{Explanation, MethodSpec, PathKind};
use crate::attribution::recalibration::Recalibration;
use crate::attribution::{Baseline, IntegrationRule, Objective};

use super::view::ViewState;

/// Everything the Method panel sets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The family chosen; its panels are the catalog's comparison ([`Variant`]).
    pub method: Family,
    pub path: PathKind,
    pub baseline: Baseline,
    pub steps: usize,
    pub rule: IntegrationRule,
    /// The tolerance mode on the straight and blur paths (adaptive points until converged);
    /// `None`: `steps` points of `rule`.
    pub tolerance: Option<f64>,
    /// The most gradients the tolerance mode may take.
    pub max_points: usize,
    pub idgi: bool,
    pub recalibration: Recalibration,
    pub references: usize,
    pub objective: Objective,
    pub batch_size: usize,
    pub seed: u64,
    /// Ensembles: noisy samples and σ as a fraction of the pixel range.
    pub samples: usize,
    pub noise: f64,
    /// What an ensemble averages (the gradient, input × gradient, or IG on `path`).
    pub ensemble_base: EnsembleBase,
    /// Expected Gradients' reference images: every image in this folder.
    pub reference_folder: Option<PathBuf>,
    /// Steps typed for the paths not chosen now, so switching back keeps them.
    pub steps_per_path: HashMap<PathKind, usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            method: Family::Ig,
            path: PathKind::Straight,
            baseline: Baseline::Black,
            steps: 50,
            rule: IntegrationRule::GaussLegendre,
            tolerance: None,
            max_points: crate::attribution::adaptive::DEFAULT_MAX_POINTS,
            idgi: true,
            recalibration: Recalibration::ValidIp,
            references: 10,
            objective: Objective::Logit,
            batch_size: 16,
            seed: 0,
            samples: 25,
            noise: 0.15,
            ensemble_base: EnsembleBase::Gradient,
            reference_folder: None,
            steps_per_path: HashMap::new(),
        }
    }
}

/// The families the Method panel offers, with the words it offers them in.
pub const STUDIO_FAMILIES: [(Family, &str); 11] = [
    (Family::Ig, "Path integral (IG / Blur IG / Guided IG)"),
    (Family::Gradient, "Gradient"),
    (Family::InputXGradient, "Input × Gradient"),
    (Family::IgUniform, "IG, uniform references"),
    (Family::IgSg, "IG-SG, Gaussian references"),
    (Family::IgSq, "IG-SQ"),
    (Family::ExpectedGradients, "Expected Gradients (reference folder)"),
    (Family::Agi, "AGI (adversarial paths)"),
    (Family::SmoothGrad, "SmoothGrad"),
    (Family::SmoothGradSquared, "SmoothGrad²"),
    (Family::VarGrad, "VarGrad"),
];

/// The Method panel's words for `family`.
pub fn family_label(family: Family) -> &'static str {
    STUDIO_FAMILIES
        .iter()
        .find(|(f, _)| *f == family)
        .map_or(family.name(), |(_, label)| label)
}

impl Settings {
    /// The method the panel describes.
    pub fn method_id(&self) -> MethodId {
        let method = MethodId::new(self.method).with_recalibration(self.recalibration);
        // The path belongs to IG, and to ensembles only when they average IG.
        if self.uses_path() {
            method.with_path(self.path)
        } else {
            method
        }
    }

    /// Whether the path, baseline and steps apply to the chosen method.
    pub fn uses_path(&self) -> bool {
        self.method == Family::Ig || (self.method.is_ensemble() && self.ensemble_base == EnsembleBase::Ig)
    }

    /// Chooses `path`, keeping the steps typed for the old one and restoring the steps
    /// last typed for the new one (its default the first time).
    pub fn set_path(&mut self, path: PathKind) {
        if path == self.path {
            return;
        }
        self.steps_per_path.insert(self.path, self.steps);
        self.path = path;
        self.steps = self.steps_per_path.get(&path).copied().unwrap_or(path.default_steps());
    }

    /// The method `variant`'s panel computes, if it has one (the absolute panel shows the
    /// vanilla map's magnitude and computes nothing).
    pub fn panel_method(&self, variant: Variant) -> Option<MethodId> {
        crate::engine::plan::panel_method(self.method_id(), self.recalibration, self.idgi, variant)
    }

    /// The run these settings ask for, with `params` (the settings' own, with Expected
    /// Gradients' references filled in).
    pub fn run_plan(&self, params: MethodParams) -> crate::engine::plan::RunPlan {
        crate::engine::plan::RunPlan {
            method: self.method_id(),
            recalibration: self.recalibration,
            idgi: self.idgi,
            params,
            objective: self.objective,
            batch_size: self.batch_size,
            seed: self.seed,
        }
    }

    /// The tolerance in force: only the straight and blur paths have the tolerance mode.
    pub fn tolerance(&self) -> Option<f64> {
        self.tolerance.filter(|_| self.path != PathKind::Guided)
    }

    /// Everything else the methods read.
    pub fn params(&self) -> MethodParams {
        MethodParams {
            baseline: self.baseline.clone(),
            steps: Some(match self.tolerance() {
                Some(_) => self.max_points,
                None => self.steps,
            }),
            rule: self.rule,
            tolerance: self.tolerance(),
            samples: self.samples,
            noise: self.noise,
            ensemble_base: self.ensemble_base,
            references: self.references,
            seed: self.seed,
            batch_size: self.batch_size,
            ..MethodParams::default()
        }
    }

    /// The engine job computing `spec` for class `target` of `input` with these settings;
    /// `record_trace` for the panel the scrubber plays back.
    pub fn job_request(
        &self,
        input: Arc<candle_core::Tensor>,
        target: usize,
        spec: MethodSpec,
        record_trace: bool,
    ) -> crate::engine::JobRequest {
        self.run_plan(self.params()).job(input, target, spec, record_trace)
    }

    /// The engine jobs of a run with `params` ([`crate::engine::plan::RunPlan::requests`]).
    pub fn run_requests(
        &self,
        params: &MethodParams,
        input: &Arc<candle_core::Tensor>,
        target: usize,
    ) -> crate::engine::plan::PanelJobs {
        self.run_plan(params.clone()).requests(input, target)
    }

    /// The computation of `variant`'s panel.
    pub fn spec_for(&self, variant: Variant) -> Option<MethodSpec> {
        self.panel_method(variant)?.spec(&self.params()).ok()
    }

    /// A short description of what the settings compute (the grid's header, a pinned
    /// row, the figure's title), in the words of the controls.
    pub fn method_label(&self) -> String {
        let path = || {
            let baseline = match self.path {
                PathKind::Blur => String::new(),
                _ => format!(", {} baseline", self.baseline.label()),
            };
            let points = match self.tolerance() {
                Some(t) => format!("to {}% tolerance", t * 100.0),
                None => format!("{} steps", self.steps),
            };
            format!(
                "{}{baseline}, {points}",
                self.method_id()
                    .with_integration(crate::attribution::path::Integration::Riemann)
                    .title(),
            )
        };
        let objective = match self.objective {
            Objective::Logit => String::new(),
            o => format!(", explaining the {}", o.label()),
        };
        let what = match self.method {
            Family::Ig => path(),
            Family::IgUniform | Family::IgSg | Family::IgSq => {
                format!("{}, {} references", family_label(self.method), self.references)
            }
            Family::ExpectedGradients => {
                let folder = self
                    .reference_folder
                    .as_ref()
                    .and_then(|f| f.file_name())
                    .map_or_else(|| "no folder".to_string(), |n| n.to_string_lossy().into_owned());
                format!("Expected Gradients, references from {folder}")
            }
            m if m.is_ensemble() => {
                let base = match self.ensemble_base {
                    EnsembleBase::Ig => path(),
                    b => b.label().to_string(),
                };
                format!(
                    "{} of {base}, {} samples, σ = {} × range",
                    family_label(m),
                    self.samples,
                    self.noise
                )
            }
            m => family_label(m).to_string(),
        };
        format!("{what}{objective}")
    }
}

/// The name of a map: the method it shows, in the catalog's title (`IG + IDGI`,
/// `IG-Uniform (valid-ip)`), the same on screen, in figures (also those the command line
/// makes) and in the Metrics tab; the absolute panel is the magnitude `|IG|`.
pub fn map_title(variant: Variant, method: Option<MethodId>) -> String {
    match (variant, method) {
        (Variant::Absolute, Some(m)) => format!("|{}|", m.title()),
        (_, Some(m)) => m.title(),
        (v, None) => v.title().to_string(),
    }
}

impl Settings {
    /// Whether `other` computes the same maps (remembered steps of other paths aside).
    pub fn computes_same(&self, other: &Settings) -> bool {
        let strip = |s: &Settings| Settings {
            steps_per_path: HashMap::new(),
            ..s.clone()
        };
        strip(self) == strip(other)
    }
}

/// The panels of the comparison grid: the tabs of the central area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tab {
    #[default]
    #[serde(alias = "Compare")]
    Compare,
    #[serde(alias = "Scrubber")]
    Scrubber,
    #[serde(alias = "Metrics")]
    Metrics,
    Convergence,
}

/// The loaded photo: the crop the model sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Photo {
    pub name: String,
    /// The file it was read from (none for the bundled samples).
    pub source: Option<PathBuf>,
    /// What the model sees: the photo after the model's preprocessing.
    pub crop: RgbImage,
    /// The decoded photo, to crop again when another model (another preprocessing) loads;
    /// `None` for a session's image, which keeps only its crop.
    pub original: Option<std::sync::Arc<RgbImage>>,
}

/// A row of maps kept for comparison with later runs (channel-summed, as drawn).
#[derive(Debug, Clone, PartialEq)]
pub struct PinnedRow {
    pub label: String,
    pub maps: Vec<(Variant, Vec<f32>)>,
}

/// What a session saves.
#[derive(Debug, Clone, Default)]
pub struct StudioState {
    /// The model file; `None` for the embedded default.
    pub model_path: Option<PathBuf>,
    pub image: Option<Photo>,
    pub target: Option<usize>,
    pub settings: Settings,
    pub tab: Tab,
    pub view: ViewState,
    /// Panels the user switched off (any subset of the four).
    pub hidden: HashSet<Variant>,
    /// The current run's finished maps, by panel.
    pub results: HashMap<Variant, Arc<Explanation>>,
    /// The settings the current maps were computed with: titles describe what is shown,
    /// not what the controls say now.
    pub computed: Option<Settings>,
    /// Earlier results kept as rows of the comparison grid (any method as rows).
    pub pinned: Vec<PinnedRow>,
    /// What the Metrics tab computed for these maps; a reopened session computes it again
    /// (sessions keep maps, not curves).
    pub metrics_shown: MetricsShown,
}

/// The Metrics tab's results a session asks to see again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MetricsShown {
    /// Insertion/deletion curves of the maps.
    pub scores: bool,
    /// The cascading-randomisation sanity check.
    pub sanity: bool,
}

impl StudioState {
    /// The 2-D (channel-summed) map of a panel: a finished result, or for the vanilla and
    /// absolute panels the vanilla job's running `partial` sum.
    pub fn map_of(&self, variant: Variant, partial: Option<&[f32]>) -> Option<Vec<f32>> {
        let flat = match variant {
            Variant::Absolute => {
                return self
                    .map_of(Variant::Vanilla, partial)
                    .map(|m| m.iter().map(|v| v.abs()).collect())
            }
            Variant::Vanilla => match (self.results.get(&variant), partial) {
                (Some(r), _) => r.attribution.flatten_all().ok()?.to_vec1::<f32>().ok()?,
                (None, Some(p)) => p.to_vec(),
                _ => return None,
            },
            _ => self
                .results
                .get(&variant)?
                .attribution
                .flatten_all()
                .ok()?
                .to_vec1::<f32>()
                .ok()?,
        };
        let hw = flat.len() / 3;
        Some(reduce_channels(&flat, 3, hw, ChannelReduction::Sum))
    }

    /// The current maps as a pinned row, if any are computed.
    pub fn current_as_row(&self) -> Option<PinnedRow> {
        let maps: Vec<(Variant, Vec<f32>)> = Variant::ALL
            .into_iter()
            .filter_map(|v| self.map_of(v, None).map(|m| (v, m)))
            .collect();
        (!maps.is_empty()).then(|| PinnedRow {
            label: self.computed_settings().method_label(),
            maps,
        })
    }

    /// The settings the current maps show (the controls' when nothing is computed).
    pub fn computed_settings(&self) -> &Settings {
        self.computed.as_ref().unwrap_or(&self.settings)
    }

    /// The heading of `variant`'s panel, from the settings that computed it.
    pub fn panel_title(&self, variant: Variant) -> String {
        let s = self.computed_settings();
        let method = match variant {
            Variant::Absolute => s.panel_method(Variant::Vanilla),
            v => s.panel_method(v),
        };
        map_title(variant, method)
    }

    /// Whether the controls now differ from what computed the maps (a Run would change
    /// them). View settings do not count: they recolour without recomputing.
    pub fn settings_changed(&self) -> bool {
        match &self.computed {
            Some(c) => !c.computes_same(&self.settings),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The panels of each family, as the studio computed them before the catalog: IG's
    /// re-calibrated panel is IG-Uniform with the chosen re-calibration, ensembles have
    /// one panel, the IDGI panel follows its tick box.
    #[test]
    fn panels_follow_the_catalog() {
        let mut s = Settings::default();
        let names = |s: &Settings| -> Vec<Option<String>> {
            Variant::ALL
                .into_iter()
                .map(|v| s.panel_method(v).map(|m| m.to_string()))
                .collect()
        };
        let some = |t: &str| Some(t.to_string());
        assert_eq!(
            names(&s),
            [
                some("ig:straight"),
                None,
                some("ig-uniform:valid-ip"),
                some("ig:straight:idgi")
            ]
        );
        s.path = PathKind::Guided;
        s.idgi = false;
        assert_eq!(names(&s), [some("ig:guided"), None, None, None]);
        s.method = Family::IgSg;
        s.recalibration = Recalibration::ValidRef;
        assert_eq!(names(&s), [some("ig-sg:vanilla"), None, some("ig-sg:valid-ref"), None]);
        s.method = Family::VarGrad;
        assert_eq!(names(&s), [some("vargrad"), None, None, None]);
    }

    /// The bench's `--studio-run` times `RunPlan::studio_default`: it must be what the
    /// studio's first Run submits.
    #[test]
    fn the_benchmarked_default_run_is_the_studios() {
        let input = Arc::new(
            candle_core::Tensor::zeros((3, 4, 4), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
        );
        let describe = |(requests, refused): crate::engine::plan::PanelJobs| {
            assert!(refused.is_empty());
            requests
                .into_iter()
                .map(|(v, r)| format!("{v} {:?} {:?} {:?}", r.spec, r.objective, r.options))
                .collect::<Vec<_>>()
        };
        let s = Settings::default();
        let studio = describe(s.run_requests(&s.params(), &input, 3));
        let bench = describe(crate::engine::plan::RunPlan::studio_default().requests(&input, 3));
        assert_eq!(studio, bench);
        assert_eq!(studio.len(), 3);
    }
}
