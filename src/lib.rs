//! Pathscope: path-integral saliency maps (Integrated Gradients and its relatives) for
//! image classifiers, computed with candle.
//!
//! Rooms, from the bottom up: [`kernels`] (CPU f32 kernels), [`net`] (the network
//! description and its interpreters), [`model`] (architectures, loaders, preprocessing),
//! [`attribution`] (the method catalog, baselines, paths, integration), [`metrics`],
//! [`engine`] (the background worker), [`render`] (colour maps), [`export`] (files),
//! [`session`], and the studio in [`ui`]. Computation never depends on presentation;
//! `docs/ARCHITECTURE.md` says which room may use which.

/// `Display` and `FromStr` of a choice from its `name()` and `ALL`, so each choice has
/// exactly one text form, shown and parsed alike. `$what` names the choice in the error.
macro_rules! text_form {
    ($type:ty, $what:literal) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $type {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                Self::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
                    format!("unknown {} `{s}`: expected {}", $what, names.join(", "))
                })
            }
        }
    };
}

pub mod assets;
pub mod attribution;
pub mod device;
pub mod engine;
pub mod export;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod net;
pub mod render;
pub mod roar;
pub mod session;
#[cfg(feature = "studio")]
pub mod ui;
