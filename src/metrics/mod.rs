//! Scoring attribution maps (algorithms.md §4): pure computation on maps, images and a
//! classifier's scores; no UI.

pub mod localisation;
pub mod sensitivity;
