//! The studio: egui panels over the studio state. Computation happens in the
//! [`crate::engine`]; the UI sends jobs and is woken by their events, never waiting.
//!
//! - [`state`]: what the studio shows, the part a session saves (plain data);
//! - [`runtime`]: the engine, jobs in flight, messages, textures (nothing saved);
//! - [`command`]: the actions panels ask for, carried out in one place ([`app`]);
//! - [`panels`], [`scrubber`], [`metrics_view`], [`convergence_view`], [`export_dialog`]: what is drawn, one
//!   concern each; [`view`]: the heatmap panel and the view settings all panels share;
//! - [`session`]: the state as a session file and back.

pub mod app;
pub mod command;
pub mod convergence_view;
pub mod export_dialog;
pub mod file_dialog;
pub mod metrics_view;
pub mod panels;
pub mod runtime;
pub mod scrubber;
pub mod session;
pub mod state;
pub mod view;

pub use app::{PathscopeApp, StudioOptions};
