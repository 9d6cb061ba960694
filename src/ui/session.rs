//! The studio's state as a [`Session`]: save, reopen, autosave and crash recovery.
//!
//! What is kept: the model's path, the photo's crop, the target, the Method panel, the
//! display settings, the tab, the hidden panels, the computed maps with their scores, and
//! the pinned rows. What is not: metric curves and the sanity plot (recomputed from the
//! maps on request) and the scrubber's per-step trace (rerun to see it).
//!
//! Autosave writes the session after every finished job and when a run starts, so a crash
//! loses at most the job in flight. A clean exit moves the autosave aside as the "last
//! session"; an autosave found at start-up therefore means the previous studio died, and
//! the studio offers to restore it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::attribution::method::Explanation;
use crate::session::{Session, SessionImage, SessionMap};

use super::app::{PathscopeApp, PinnedRow, Settings, Tab, Variant};
use super::view::ViewState;

/// The studio's part of a session file (`state` in its header).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct StudioState {
    settings: Settings,
    target: Option<usize>,
    tab: Tab,
    view: ViewState,
    hidden: Vec<Variant>,
    results: Vec<SavedResult>,
    pinned: Vec<PinnedLabel>,
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
    format!("result/{v:?}")
}

fn pinned_name(row: usize, v: Variant) -> String {
    format!("pinned/{row}/{v:?}")
}

/// Where a crashed studio's autosave is kept while the user decides.
fn crashed_path(autosave: &Path) -> PathBuf {
    autosave.with_file_name(format!("crashed-session.{}", crate::session::EXTENSION))
}

impl PathscopeApp {
    /// The current state as a session.
    pub fn session(&self) -> Session {
        let mut maps = Vec::new();
        let mut results = Vec::new();
        let mut variants: Vec<_> = self.results.keys().copied().collect();
        variants.sort_by_key(|v| Variant::ALL.iter().position(|a| a == v));
        for variant in variants {
            let r = &self.results[&variant];
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
        let mut hidden: Vec<Variant> = self.hidden.iter().copied().collect();
        hidden.sort_by_key(|v| Variant::ALL.iter().position(|a| a == v));
        let state = StudioState {
            settings: self.settings.clone(),
            target: self.target,
            tab: self.tab,
            view: self.view.clone(),
            hidden,
            results,
            pinned,
        };
        Session {
            model: self.model_path.clone(),
            image: self.image.as_ref().map(|i| SessionImage {
                name: i.name.clone(),
                source: i.source.clone(),
                crop: i.crop.clone(),
            }),
            state: serde_json::to_value(&state).unwrap_or_default(),
            maps,
        }
    }

    /// Replaces the studio's state with a session's. The model reloads in the background
    /// if it differs; the maps show at once.
    pub fn restore(&mut self, session: Session, origin: &Path) {
        let state: StudioState = match serde_json::from_value(session.state.clone()) {
            Ok(s) => s,
            Err(e) => {
                self.errors
                    .push(format!("{}: damaged session file: settings: {e}", origin.display()));
                return;
            }
        };
        let same_model = self.model_path == session.model && self.model_ready();
        if !same_model {
            self.open_model(session.model.clone());
        }
        self.pending_image = None;
        self.restored_target = state.target;
        if let Some(image) = session.image.clone() {
            self.set_crop(image.name, image.source, image.crop);
        }
        // Targets of a model with fewer classes are dropped by `prepare_input`.
        self.target = state.target.or(self.target);
        self.settings = state.settings;
        self.view = state.view;
        self.tab = state.tab;
        self.hidden = state.hidden.into_iter().collect();
        self.results.clear();
        self.panels.clear();
        for saved in state.results {
            let Some(map) = session.map(&result_name(saved.variant)) else {
                continue;
            };
            let Ok(attribution) = Tensor::from_vec(map.data.clone(), map.shape.as_slice(), &Device::Cpu) else {
                continue;
            };
            self.results.insert(
                saved.variant,
                Arc::new(Explanation {
                    attribution,
                    score_input: saved.score_input,
                    score_baseline: saved.score_baseline,
                    attribution_sum: saved.attribution_sum,
                    convergence_delta: saved.convergence_delta,
                    trace: None,
                }),
            );
        }
        self.pinned = state
            .pinned
            .into_iter()
            .enumerate()
            .map(|(i, row)| PinnedRow {
                label: row.label,
                maps: row
                    .variants
                    .iter()
                    .filter_map(|v| session.map(&pinned_name(i, *v)).map(|m| (*v, m.data.clone())))
                    .collect(),
                panels: Default::default(),
            })
            .collect();
        self.session_file = Some(origin.to_path_buf());
    }

    /// Opens a session file; errors go to the error panel.
    pub fn open_session(&mut self, path: &Path) {
        match Session::open(path) {
            Ok(s) => self.restore(s, path),
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    /// Saves the session to `path` (atomically); errors go to the error panel.
    pub fn save_session(&mut self, path: &Path) {
        match self.session().save(path) {
            Ok(()) => self.session_file = Some(path.to_path_buf()),
            Err(e) => self.errors.push(format!("could not save the session: {e}")),
        }
    }

    /// Writes the autosave, if enabled. A failure is reported once and turns it off.
    pub(crate) fn autosave(&mut self) {
        let Some(path) = self.autosave_path.clone() else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = self.session().save(&path) {
            self.errors
                .push(format!("autosave failed, and is off for this session: {e}"));
            self.autosave_path = None;
        }
    }

    /// At start-up: an autosave left behind means the last studio did not close cleanly.
    /// It is moved aside (so this studio's autosaves cannot overwrite it) and offered.
    pub(crate) fn check_for_crashed_session(&mut self) {
        let Some(path) = &self.autosave_path else {
            return;
        };
        if path.exists() {
            let crashed = crashed_path(path);
            match std::fs::rename(path, &crashed) {
                Ok(()) => self.recovery = Some(crashed),
                Err(e) => self.errors.push(format!(
                    "could not set aside the previous autosave {}: {e}",
                    path.display()
                )),
            }
        }
    }

    /// Restores the crashed session offered at start-up.
    pub fn recover(&mut self) {
        if let Some(path) = self.recovery.take() {
            self.open_session(&path);
        }
    }

    /// Declines the offer; the file stays on disk as `crashed-session.pathscope`.
    pub fn dismiss_recovery(&mut self) {
        self.recovery = None;
    }

    /// On a clean exit: the final state, moved to `last-session.pathscope`.
    pub(crate) fn close_autosave(&mut self) {
        self.autosave();
        if let Some(path) = &self.autosave_path {
            let _ = std::fs::rename(path, crate::session::last_session_path(path));
        }
    }

    /// The session a cleanly closed studio left, if any.
    pub fn last_session(&self) -> Option<PathBuf> {
        let path = crate::session::last_session_path(self.autosave_path.as_ref()?);
        path.exists().then_some(path)
    }
}
