//! The studio: egui panels and app state. Computation happens in the [`crate::engine`];
//! the UI sends jobs and polls events each frame, never waiting.

pub mod app;
pub mod export_dialog;
pub mod metrics_view;
mod panels;
pub mod scrubber;
pub mod session;
pub mod view;

pub use app::{PathscopeApp, StudioOptions};
