//! Scoring attribution maps (algorithms.md §4): pure computation on maps, images and a
//! classifier's scores; no UI.

pub mod insertion_deletion;
pub mod localisation;
pub mod sensitivity;
pub mod ssim;
