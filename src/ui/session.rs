//! The studio's state as a [`Session`] and back, and where autosaves go.
//!
//! What is kept: the model's path, the photo's crop, the target, the Method panel, the
//! display settings, the tab, the hidden panels, the computed maps with their scores, and
//! the pinned rows, and which Metrics results were shown. What is not: the metric curves,
//! the sanity plot and the scrubber's per-step trace. A reopened session computes them
//! again from its maps and settings (the vanilla path walked again for the trace, then
//! the curves and the sanity check it had shown), with a notice.
//!
//! Names in the file are written explicitly: tensors `result/<panel>` and
//! `pinned/<row>/<panel>` with the panel's text form (`vanilla`, `absolute`,
//! `recalibrated`, `idgi`), settings in each choice's text form (`valid-ip`, `blur:20`).
//! Files of session format 1 named them after the Rust identifiers (`result/Vanilla`,
//! `"ValidIp"`); they still open.
//!
//! Autosave writes the session after every finished job and when a run starts, so a crash
//! loses at most the job in flight. A clean exit moves the autosave aside as the "last
//! session"; an autosave found at start-up therefore means the previous studio died, and
//! the studio offers to restore it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::attribution::catalog::Variant;
use crate::attribution::method::Explanation;
use crate::session::{Session, SessionImage, SessionMap};

use super::state::{MetricsShown, Photo, PinnedRow, Settings, StudioState, Tab};
use super::view::ViewState;

/// The studio's part of a session file (`state` in its header).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct StoredState {
    settings: Settings,
    /// The settings the maps were computed with (absent in older files: `settings`).
    computed: Option<Settings>,
    target: Option<usize>,
    tab: Tab,
    view: ViewState,
    hidden: Vec<Variant>,
    results: Vec<SavedResult>,
    pinned: Vec<PinnedLabel>,
    metrics_shown: MetricsShown,
}

/// A computed map's scalars; the map itself is the tensor `result/<variant>`.
#[derive(Debug, Serialize, Deserialize)]
struct SavedResult {
    variant: Variant,
    score_input: f32,
    score_baseline: Option<f32>,
    attribution_sum: f64,
    convergence_delta: Option<f64>,
}

/// A pinned row; its maps are the tensors `pinned/<index>/<variant>`.
#[derive(Debug, Serialize, Deserialize)]
struct PinnedLabel {
    label: String,
    variants: Vec<Variant>,
}

fn result_name(v: Variant) -> String {
    format!("result/{}", v.name())
}

fn pinned_name(row: usize, v: Variant) -> String {
    format!("pinned/{row}/{}", v.name())
}

/// A map of `session` by one of the names `name` gives for `variant`: the text form this
/// build writes, or the identifier format 1 wrote.
fn stored_map(session: &Session, variant: Variant, name: impl Fn(&str) -> String) -> Option<&SessionMap> {
    session
        .map(&name(variant.name()))
        .or_else(|| session.map(&name(variant.legacy_name())))
}

impl StudioState {
    /// The state as a session file's content.
    pub fn to_session(&self) -> Session {
        let mut maps = Vec::new();
        let mut results = Vec::new();
        for variant in Variant::ALL {
            let Some(r) = self.results.get(&variant) else {
                continue;
            };
            let Ok(data) = r.attribution.flatten_all().and_then(|t| t.to_vec1::<f32>()) else {
                continue;
            };
            maps.push(SessionMap {
                name: result_name(variant),
                shape: r.attribution.dims().to_vec(),
                data,
            });
            results.push(SavedResult {
                variant,
                score_input: r.score_input,
                score_baseline: r.score_baseline,
                attribution_sum: r.attribution_sum,
                convergence_delta: r.convergence_delta,
            });
        }
        let mut pinned = Vec::new();
        for (i, row) in self.pinned.iter().enumerate() {
            for (v, m) in &row.maps {
                maps.push(SessionMap {
                    name: pinned_name(i, *v),
                    shape: vec![m.len()],
                    data: m.clone(),
                });
            }
            pinned.push(PinnedLabel {
                label: row.label.clone(),
                variants: row.maps.iter().map(|(v, _)| *v).collect(),
            });
        }
        let stored = StoredState {
            settings: self.settings.clone(),
            computed: self.computed.clone(),
            target: self.target,
            tab: self.tab,
            view: self.view.clone(),
            hidden: Variant::ALL.into_iter().filter(|v| self.hidden.contains(v)).collect(),
            results,
            pinned,
            metrics_shown: self.metrics_shown,
        };
        Session {
            model: self.model_path.clone(),
            image: self.image.as_ref().map(|i| SessionImage {
                name: i.name.clone(),
                source: i.source.clone(),
                crop: i.crop.clone(),
            }),
            state: serde_json::to_value(&stored).unwrap_or_default(),
            maps,
        }
    }

    /// The state a session file holds; `origin` names the file in errors.
    pub fn from_session(session: &Session, origin: &Path) -> Result<StudioState, String> {
        let stored: StoredState = serde_json::from_value(session.state.clone())
            .map_err(|e| format!("{}: damaged session file: settings: {e}", origin.display()))?;
        let mut results = std::collections::HashMap::new();
        for saved in stored.results {
            let Some(map) = stored_map(session, saved.variant, |v| format!("result/{v}")) else {
                continue;
            };
            let Ok(attribution) = Tensor::from_vec(map.data.clone(), map.shape.as_slice(), &Device::Cpu) else {
                continue;
            };
            results.insert(
                saved.variant,
                Arc::new(Explanation {
                    attribution,
                    score_input: saved.score_input,
                    score_baseline: saved.score_baseline,
                    attribution_sum: saved.attribution_sum,
                    convergence_delta: saved.convergence_delta,
                    trace: None,
                    quadrature: None,
                }),
            );
        }
        let pinned = stored
            .pinned
            .into_iter()
            .enumerate()
            .map(|(i, row)| PinnedRow {
                label: row.label,
                maps: row
                    .variants
                    .iter()
                    .filter_map(|v| {
                        let map = stored_map(session, *v, |name| format!("pinned/{i}/{name}"))?;
                        Some((*v, map.data.clone()))
                    })
                    .collect(),
            })
            .collect();
        // Files before the `computed` field: the maps were computed with the settings saved.
        let computed = stored
            .computed
            .or_else(|| (!results.is_empty()).then(|| stored.settings.clone()));
        Ok(StudioState {
            computed,
            model_path: session.model.clone(),
            image: session.image.as_ref().map(|i| Photo {
                name: i.name.clone(),
                source: i.source.clone(),
                crop: i.crop.clone(),
                original: None,
            }),
            target: stored.target,
            settings: stored.settings,
            tab: stored.tab,
            view: stored.view,
            hidden: stored.hidden.into_iter().collect(),
            results,
            pinned,
            metrics_shown: stored.metrics_shown,
        })
    }
}

/// Where a crashed studio's autosave is kept while the user decides.
pub fn crashed_path(autosave: &Path) -> PathBuf {
    autosave.with_file_name(format!("crashed-session.{}", crate::session::EXTENSION))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::catalog::Family;
    use crate::attribution::method::PathKind;

    /// A session of the previous release (format 1, written by the studio at the last
    /// commit before the method catalog): its settings, in Rust identifiers, and its maps,
    /// named `result/Vanilla` and `pinned/0/Vanilla`, all come back.
    #[test]
    fn a_session_of_format_1_opens_with_its_maps_and_settings() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/session_format1_gradient.pathscope");
        let session = Session::open(&file).unwrap();
        let state = StudioState::from_session(&session, &file).unwrap();
        let s = &state.settings;
        assert_eq!(s.method, Family::IgSg);
        assert_eq!(s.path, PathKind::Guided);
        assert_eq!(s.baseline, crate::attribution::Baseline::Blur { sigma: 20.0 });
        assert_eq!(
            s.recalibration,
            crate::attribution::recalibration::Recalibration::ValidRef
        );
        assert_eq!(s.objective, crate::attribution::Objective::LogProbability);
        assert_eq!(s.rule, crate::attribution::IntegrationRule::GaussLegendre);
        assert_eq!(s.steps, 33);
        assert_eq!(state.view.clip, crate::attribution::display::ClipRule::MaxAbs);
        assert_eq!(state.view.sequential, crate::render::colormap::Colormap::Viridis);
        assert_eq!(
            (state.view.overlay, state.tab, state.target),
            (0.25, Tab::Metrics, Some(281))
        );
        assert_eq!(state.hidden.iter().copied().collect::<Vec<_>>(), [Variant::Idgi]);
        // The maps, bit for bit as the file holds them.
        let vanilla = &state.results[&Variant::Vanilla];
        assert_eq!(vanilla.attribution.dims(), [3, 224, 224]);
        let values = vanilla.attribution.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values, session.map("result/Vanilla").unwrap().data);
        assert_eq!(vanilla.score_input, 30.563_715);
        assert_eq!(state.pinned.len(), 1);
        assert_eq!(state.pinned[0].label, "Gradient");
        let variants: Vec<Variant> = state.pinned[0].maps.iter().map(|(v, _)| *v).collect();
        assert_eq!(variants, [Variant::Vanilla, Variant::Absolute]);
        assert_eq!(
            state.pinned[0].maps[1].1,
            session.map("pinned/0/Absolute").unwrap().data
        );
        assert_eq!(state.image.as_ref().map(|i| i.crop.dimensions()), Some((224, 224)));
    }

    /// Written again, the same state uses the text forms and reads back equal.
    #[test]
    fn a_session_is_written_with_explicit_names_and_reads_back() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/session_format1_gradient.pathscope");
        let state = StudioState::from_session(&Session::open(&file).unwrap(), &file).unwrap();
        let session = state.to_session();
        let names: Vec<&str> = session.maps.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["result/vanilla", "pinned/0/vanilla", "pinned/0/absolute"]);
        let text = session.state.to_string();
        for written in [
            "\"method\":\"ig-sg\"",
            "\"path\":\"guided\"",
            "\"baseline\":\"blur:20\"",
            "\"recalibration\":\"valid-ref\"",
            "\"objective\":\"log-probability\"",
            "\"rule\":\"gauss-legendre\"",
            "\"clip\":\"max\"",
            "\"sequential\":\"viridis\"",
            "\"tab\":\"metrics\"",
            "\"hidden\":[\"idgi\"]",
        ] {
            assert!(text.contains(written), "{written} in {text}");
        }
        let back = StudioState::from_session(&session, Path::new("again")).unwrap();
        assert_eq!(back.settings, state.settings);
        assert_eq!(back.view, state.view);
        assert_eq!(back.pinned, state.pinned);
        assert_eq!(back.results.len(), 1);
    }
}
