//! The studio: egui panels and app state. Computation happens in the [`crate::engine`];
//! the UI sends jobs and polls events each frame, never waiting.

pub mod app;
pub mod metrics_view;
pub mod export_dialog;
mod panels;
pub mod scrubber;
pub mod view;

pub use app::{PathscopeApp, StudioOptions};
